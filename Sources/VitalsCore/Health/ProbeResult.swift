import Foundation

/// What a service is, as operators see it.
public enum HealthState: String, Sendable, Equatable, Codable, CaseIterable {
    /// Not yet probed enough to say.
    case unknown
    case up
    /// Answering, but breaking a soft condition (slow, certificate expiring, plugin warning).
    case degraded
    case down
    /// Put aside by an operator: not probed into decisions, not failed over to.
    case maintenance
    /// Changing state too often to be trusted; failover treats it as down.
    case flapping

    /// Whether failover may send traffic here.
    public var isServing: Bool {
        switch self {
        case .up, .degraded: true
        case .unknown, .down, .maintenance, .flapping: false
        }
    }
}

/// The raw verdict of one probe, before any hysteresis.
public enum ProbeOutcome: String, Sendable, Equatable, Codable {
    /// Every condition held.
    case ok
    /// Every hard condition held, a soft one did not.
    case degraded
    /// A hard condition failed, or the probe could not complete.
    case failed
    /// The check could not tell either way (a Nagios plugin's exit 3): says
    /// nothing of the service, so it counts toward neither rise nor fall.
    case unknown
}

/// One probe's result, as probers report it. Probers never count; only
/// `HealthTracker` turns results into states.
public struct ProbeResult: Sendable, Equatable {
    /// When the probe finished.
    public var time: Date
    /// Time from start to finish, when the probe got that far.
    public var latency: Duration?
    public var outcome: ProbeOutcome
    /// Why, in an operator's words: "status 503, expected 200-299". Empty when ok.
    public var reason: String

    public init(time: Date, latency: Duration?, outcome: ProbeOutcome, reason: String = "") {
        self.time = time
        self.latency = latency
        self.outcome = outcome
        self.reason = reason
    }
}
