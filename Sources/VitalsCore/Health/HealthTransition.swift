import Foundation

/// One change of a service's reported state, as `HealthTracker` and
/// `HeartbeatTracker` return it. The caller journals it and feeds it to the
/// group engine; the trackers never perform effects themselves.
public struct HealthTransition: Sendable, Equatable, Codable, CustomStringConvertible {
    public var service: String
    public var from: HealthState
    public var to: HealthState
    /// The time of the input that caused the change (a result's `time`, a tick's `now`).
    public var at: Date
    /// Why, in an operator's words: the failing probe's reason for `down`
    /// ("status 503, expected 200-299"), "2 consecutive successes" for `up`,
    /// the soft reason for `degraded`.
    public var reason: String
    /// Which rule decided it, as `decidingRule` shows: "rise 2/2", "fall 3/3",
    /// "fall_window 3 of 5", "flapping: 6 changes in 2m", "maintenance",
    /// "heartbeat deadline".
    public var rule: String
    /// Counts at the moment of the change.
    public var consecutiveSuccesses: Int
    public var consecutiveFailures: Int

    public init(service: String, from: HealthState, to: HealthState, at: Date, reason: String,
                rule: String, consecutiveSuccesses: Int, consecutiveFailures: Int) {
        self.service = service
        self.from = from
        self.to = to
        self.at = at
        self.reason = reason
        self.rule = rule
        self.consecutiveSuccesses = consecutiveSuccesses
        self.consecutiveFailures = consecutiveFailures
    }

    /// `api: up -> down (status 503, expected 200-299; fall 3/3)`.
    public var description: String {
        "\(service): \(from.rawValue) -> \(to.rawValue) (\(reason); \(rule))"
    }
}
