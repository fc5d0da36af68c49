import Foundation

/// What the failover side needs to know of one service: its reported state,
/// since when, and why. The agent builds one per service from its tracker
/// (`HealthTracker` or `HeartbeatTracker`) and hands the whole map to
/// `GroupEngine.update(states:at:)` and `IsolationGuard.update(states:at:)`.
///
/// A service missing from a map is taken as `unknown`.
public struct ServiceView: Sendable, Equatable, Codable {
    public var state: HealthState
    /// When `state` last changed.
    public var since: Date
    /// Why the service is in `state`, in an operator's words.
    public var reason: String

    public init(state: HealthState, since: Date, reason: String = "") {
        self.state = state
        self.since = since
        self.reason = reason
    }

    public init(_ tracker: HealthTracker) {
        self.init(state: tracker.state, since: tracker.since, reason: tracker.reason)
    }

    public init(_ tracker: HeartbeatTracker) {
        self.init(state: tracker.state, since: tracker.since, reason: tracker.reason)
    }
}

/// Dependency rules shared by the group engine and the isolation guard.
///
/// A service *fails* for its dependents when it is `down` or `flapping`.
/// `maintenance` is not a failure here (an operator's planned work must not
/// take every dependent out of rotation; the dependents' own probes decide),
/// and `unknown` says nothing yet.
///
/// A service is *blocked* when a `depends_on` parent fails or is itself
/// blocked; its root cause is the deepest such ancestor. A blocked member is
/// never a failover target and loses its place if active, even while its own
/// probe still answers: the operator declared it cannot work without the
/// parent.
public enum Dependencies {
    /// Whether `state` counts as a failure for dependents: `down` or `flapping`.
    public static func fails(_ state: HealthState) -> Bool {
        switch state {
        case .down, .flapping: true
        case .unknown, .up, .degraded, .maintenance: false
        }
    }

    /// The service that explains why `service` cannot work, or nil when none
    /// of its ancestors fails. Parents are tried in `depends_on` order; for each,
    /// a failing ancestor further up wins over the parent itself (web -> app -> db
    /// with app and db down gives db). `service`'s own state is not consulted.
    /// Cycles are cut (a service on the current path is not visited again).
    public static func rootCause(of service: String, states: [String: HealthState],
                                 dependsOn: [String: [String]]) -> String? {
        rootCause(of: service, dependsOn: dependsOn) { states[$0] ?? .unknown }
    }

    /// `rootCause(of:states:dependsOn:)` over service views.
    public static func rootCause(of service: String, states: [String: ServiceView],
                                 dependsOn: [String: [String]]) -> String? {
        rootCause(of: service, dependsOn: dependsOn) { states[$0]?.state ?? .unknown }
    }

    /// `rootCause(of:states:dependsOn:)` with the states looked up as needed:
    /// only `service`'s ancestors are consulted, so the cost does not grow
    /// with the number of services.
    public static func rootCause(of service: String, dependsOn: [String: [String]],
                                 state: (String) -> HealthState) -> String? {
        guard dependsOn[service] != nil else { return nil }
        var path: Set<String> = [service]
        return rootCause(of: service, dependsOn: dependsOn, state: state, path: &path)
    }

    private static func rootCause(of service: String, dependsOn: [String: [String]],
                                  state: (String) -> HealthState, path: inout Set<String>) -> String? {
        for parent in dependsOn[service] ?? [] where !path.contains(parent) {
            path.insert(parent)
            defer { path.remove(parent) }
            if let deeper = rootCause(of: parent, dependsOn: dependsOn, state: state, path: &path) {
                return deeper
            }
            if fails(state(parent)) {
                return parent
            }
        }
        return nil
    }
}

/// The service that explains why `service` cannot work: see
/// `Dependencies.rootCause(of:states:dependsOn:)`.
public func rootCause(of service: String, states: [String: ServiceView],
                      dependsOn: [String: [String]]) -> String? {
    Dependencies.rootCause(of: service, states: states, dependsOn: dependsOn)
}
