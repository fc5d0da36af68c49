import Foundation

/// A change of the isolation guard's verdict.
public enum IsolationChange: Sendable, Equatable {
    /// The agent now believes it is the one cut off; hold every automatic failover.
    case began(reason: String)
    /// It no longer does; groups resume and re-evaluate.
    case ended(reason: String)
}

/// Decides, across all groups, whether this agent is probably the one cut
/// off (its own network, not the services, failed). Pure: fed the view of
/// every service, it returns a change of verdict for the caller to pass to
/// every `GroupEngine` (`isolate` / `endIsolation`; `FailoverCoordinator`
/// does it in the right order).
///
/// Rules (`IsolationSettings`):
/// - **Failing** means `down` or `flapping`. A service blocked by a failing
///   `depends_on` parent does not count: its failure is explained (db down
///   taking its dependents with it is a root cause, not isolation).
///   Services in `maintenance` are left out of every count.
/// - **Burst.** Isolated when at least `threshold` services went from serving
///   (`up`/`degraded`) to failing within the last `window` and are still
///   failing. `threshold` = max(2, ⌈share × probed⌉), probed = services in the
///   view not in maintenance: one failing service is never isolation. A
///   service seen failing on its first view did not "go" failing. Used only
///   with at least `minimumProbedForShare` (4) probed services: below that
///   only a witness isolates.
/// - **Majority back.** A burst isolation ends when fewer than `threshold`
///   services are failing.
/// - **Witness.** Isolated while the witness is `down` or `flapping`; that
///   cause ends when it is anything else.
/// - **Dismissal.** `dismiss` ends the isolation now; failures seen before it
///   no longer count, and a dismissed witness counts again only after it has
///   recovered and failed anew.
/// - `enabled: false` never isolates.
public struct IsolationGuard: Sendable {
    public let settings: IsolationSettings
    public let dependsOn: [String: [String]]

    /// Why the agent believes it is cut off; nil when it does not.
    public private(set) var isolationReason: String?
    /// When the current isolation began.
    public private(set) var isolatedSince: Date?
    public var isIsolated: Bool { isolationReason != nil }

    private var lastStates: [String: HealthState] = [:]
    /// When each currently failing service went from serving to failing.
    private var failedAt: [String: Date] = [:]
    private var byBurst = false
    private var byWitness = false
    /// Failures at or before this time no longer count toward a burst.
    private var dismissedAt: Date?
    private var witnessDismissed = false

    public init(settings: IsolationSettings = .init(), dependsOn: [String: [String]] = [:]) {
        self.settings = settings
        self.dependsOn = dependsOn
    }

    /// The fewest probed services for which the share rule is used. With
    /// two or three, "the agent is cut off" and "these services are down"
    /// look the same (two members of one group dying together would read as
    /// isolation), so below it only a witness can isolate.
    public static let minimumProbedForShare = 4

    /// Whether the guard can isolate at all with the services last seen:
    /// enabled, and a witness or enough probed services for the share rule.
    public var canIsolate: Bool {
        settings.enabled && (settings.witness != nil || probedCount >= Self.minimumProbedForShare)
    }

    private var probedCount: Int { lastStates.values.count { $0 != .maintenance } }

    /// The fewest failing services that make a burst, out of `probed`.
    public func threshold(probed: Int) -> Int {
        let share = min(max(settings.share, 0), 1)
        return max(2, Int((share * Double(probed)).rounded(.up)))
    }

    /// Records the view of every service at `now`; returns the change of verdict, if any.
    public mutating func update(states: [String: ServiceView], at now: Date) -> IsolationChange? {
        for (name, view) in states {
            if Dependencies.fails(view.state) {
                if failedAt[name] == nil, lastStates[name]?.isServing == true {
                    failedAt[name] = min(view.since, now)
                }
            } else {
                failedAt[name] = nil
            }
        }
        for name in failedAt.keys where states[name] == nil {
            failedAt[name] = nil
        }
        lastStates = states.mapValues(\.state)
        return judge(at: now)
    }

    /// An operator says the agent is not cut off: ends the isolation now (see the rules).
    public mutating func dismiss(reason: String, at now: Date) -> IsolationChange? {
        guard isIsolated else { return nil }
        dismissedAt = now
        byBurst = false
        if byWitness { witnessDismissed = true }
        byWitness = false
        isolationReason = nil
        isolatedSince = nil
        return .ended(reason: "dismissed by operator" + (reason.isEmpty ? "" : ": \(reason)"))
    }

    private func state(_ service: String) -> HealthState { lastStates[service] ?? .unknown }

    private mutating func judge(at now: Date) -> IsolationChange? {
        guard settings.enabled else { return nil }

        let probed = lastStates.filter { $0.value != .maintenance }
        let failing = probed.keys.filter { name in
            Dependencies.fails(state(name))
                && Dependencies.rootCause(of: name, states: lastStates, dependsOn: dependsOn) == nil
        }.sorted()
        let threshold = threshold(probed: probed.count)
        let window = settings.window.seconds
        let burst = failing.filter { name in
            guard let at = failedAt[name] else { return false }
            if let dismissedAt, at <= dismissedAt { return false }
            return now.timeIntervalSince(at) <= window
        }
        let wasBurst = byBurst
        let shareRuleUsed = probed.count >= Self.minimumProbedForShare
        byBurst = shareRuleUsed && (wasBurst ? failing.count >= threshold : burst.count >= threshold)

        var witnessReason: String?
        if let witness = settings.witness {
            let failed = Dependencies.fails(state(witness))
            if !failed { witnessDismissed = false }
            byWitness = failed && !witnessDismissed
            if byWitness {
                witnessReason = "witness \(witness) is \(state(witness).rawValue)"
            }
        } else {
            byWitness = false
        }

        let wasIsolated = isIsolated
        if byBurst || byWitness {
            var causes: [String] = []
            if let witnessReason { causes.append(witnessReason) }
            if byBurst && !wasBurst {
                causes.append("\(burst.count) of \(probed.count) services failed within "
                              + "\(DurationText.format(settings.window)) (isolation at \(threshold)): "
                              + burst.joined(separator: ", "))
            } else if byBurst {
                causes.append("\(failing.count) of \(probed.count) services failing (isolation at \(threshold)): "
                              + failing.joined(separator: ", "))
            }
            let reason = causes.joined(separator: "; ") + "; holding automatic failover"
            isolationReason = reason
            if wasIsolated { return nil }
            isolatedSince = now
            return .began(reason: reason)
        }
        guard wasIsolated else { return nil }
        isolationReason = nil
        isolatedSince = nil
        var back: [String] = []
        if let witness = settings.witness, !Dependencies.fails(state(witness)) {
            back.append("witness \(witness) is \(state(witness).rawValue)")
        }
        back.append("\(failing.count) of \(probed.count) services failing (isolation at \(threshold))")
        return .ended(reason: back.joined(separator: "; "))
    }
}
