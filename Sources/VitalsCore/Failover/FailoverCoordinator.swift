import Foundation

/// Every group engine of a config plus the isolation guard, fed in the order
/// that keeps them consistent. Pure, like its parts: the agent's state owner
/// holds one and hands its events to the journal and the action queues.
///
/// On each `update(states:at:)`: every engine records the states; the guard
/// judges; a new isolation reaches every engine before it could decide (so the
/// failures that caused it trigger no failover); an ended isolation lets every
/// engine re-evaluate at once; otherwise every engine decides as usual.
/// Events come back in config group order.
///
/// **Settle.** The failures of a round that cuts the agent off arrive one
/// by one, so the first of them cannot tell. A decision caused by a member's
/// failure therefore waits `settle` (`agent.isolation.settle`) as a pending
/// decision (`GroupEngine.pending`, `nextWakeup`); when it wakes, an
/// isolation that began meanwhile has paused the engine and the decision is
/// dropped, otherwise it is made from the states of that moment. The end of
/// an isolation waits the same before failing over members still down. An
/// operator's dismissal acts at once.
public struct FailoverCoordinator: Sendable {
    /// One engine per group, in config order.
    public private(set) var engines: [GroupEngine]
    public private(set) var isolation: IsolationGuard

    /// Engines for `config.groups`; a group found in `restoring` (by name)
    /// resumes from it.
    public init(config: VitalsConfig, startedAt: Date, startupGrace: Duration = .seconds(30),
                restoring: [String: GroupEngine.Persisted] = [:]) {
        var dependsOn: [String: [String]] = [:]
        for service in config.services where !service.dependsOn.isEmpty {
            dependsOn[service.name] = service.dependsOn
        }
        engines = config.groups.map {
            GroupEngine(group: $0, dependsOn: dependsOn, startedAt: startedAt, startupGrace: startupGrace,
                        restoring: restoring[$0.name])
        }
        isolation = IsolationGuard(settings: config.agent.isolation, dependsOn: dependsOn)
        settle = Self.settle(for: config)
        for index in engines.indices {
            engines[index].settle = settle
        }
    }

    /// How long failure-caused decisions wait for the rest of their round.
    public let settle: Duration

    /// `agent.isolation.settle`, else the longest `interval` + `jitter` among
    /// the probed services (the spread of one probe round); zero when the
    /// guard cannot isolate (disabled, or too few probed services for the
    /// share rule and no witness): there is then nothing to wait for.
    public static func settle(for config: VitalsConfig) -> Duration {
        let settings = config.agent.isolation
        let probed = config.services.filter(\.isProbed)
        guard settings.enabled,
              settings.witness != nil || probed.count >= IsolationGuard.minimumProbedForShare else { return .zero }
        if let settle = settings.settle { return settle }
        return probed.map { $0.timing.interval + $0.timing.jitter }.max() ?? .zero
    }

    /// What to save so a restart resumes here, by group name.
    public var persisted: [String: GroupEngine.Persisted] {
        Dictionary(uniqueKeysWithValues: engines.map { ($0.group.name, $0.persisted) })
    }

    /// The earliest `nextWakeup` of any engine.
    public var nextWakeup: Date? {
        engines.compactMap(\.nextWakeup).min()
    }

    public func engine(named name: String) -> GroupEngine? {
        engines.first { $0.group.name == name }
    }

    /// Runs `body` on the engine of group `name` (operator inputs, target
    /// checks); nil when there is no such group.
    public mutating func withEngine<R>(named name: String, _ body: (inout GroupEngine) -> R) -> R? {
        guard let index = engines.firstIndex(where: { $0.group.name == name }) else { return nil }
        return body(&engines[index])
    }

    /// Asked about each decision before it is made, with the group's active
    /// member(s) before it: in a cluster, the observer quorum
    /// (`ClusterViews.judge`). Nil: every decision is made.
    public typealias Gate = (GroupEvent, _ activeBefore: [String]) -> QuorumVerdict

    /// Records the view of every service at `now`; returns every group's decisions.
    public mutating func update(states: [String: ServiceView], at now: Date, gate: Gate? = nil) -> [GroupEvent] {
        let change = isolation.update(states: states, at: now)
        var events: [GroupEvent] = []
        for index in engines.indices {
            engines[index].record(states, at: now)
            events += decided(index, gate: gate) { engine in
                switch change {
                case .began(let reason):
                    engine.isolate(reason: reason, at: now) + engine.tick(at: now) // paused: records only
                case .ended(let reason):
                    engine.endIsolation(reason: reason, at: now)
                case nil:
                    engine.tick(at: now)
                }
            }
        }
        return events
    }

    /// Lets every engine's time-driven rules act.
    public mutating func tick(at now: Date, gate: Gate? = nil) -> [GroupEvent] {
        var events: [GroupEvent] = []
        for index in engines.indices {
            events += decided(index, gate: gate) { $0.tick(at: now) }
        }
        return events
    }

    /// The `failover_withheld` last reported per group, so a decision withheld
    /// again on every round is reported once, and again only when the count
    /// of agreeing agents changes.
    public private(set) var withheld: [String: String] = [:]

    /// Runs one engine's decision; with a `gate`, a decision it withholds is
    /// not made: the engine goes back to where it was (it decides again on
    /// the next round, when more agents may agree), and the group's events
    /// are replaced by the `failover_withheld` event.
    private mutating func decided(_ index: Int, gate: Gate?, _ body: (inout GroupEngine) -> [GroupEvent]) -> [GroupEvent] {
        guard let gate else { return body(&engines[index]) }
        let before = engines[index]
        let events = body(&engines[index])
        let name = before.group.name
        for event in events {
            guard case .withheld(let withheldEvent) = gate(event, before.active) else { continue }
            engines[index] = before
            let key = "\(event.kind.rawValue) \(withheldEvent.reason.prefix { $0 != ";" })"
            if withheld[name] == key { return [] }
            withheld[name] = key
            return [withheldEvent]
        }
        if !events.isEmpty { withheld[name] = nil }
        return events
    }

    /// A new leader continues from the decision state the previous one
    /// stored: the group's engine is rebuilt from it (the agent's start
    /// time still counts for the startup grace) and sees `states` at once.
    public mutating func adopt(_ persisted: GroupEngine.Persisted, group name: String, startedAt: Date,
                               states: [String: ServiceView], at now: Date) {
        guard let index = engines.firstIndex(where: { $0.group.name == name }) else { return }
        let old = engines[index]
        var engine = GroupEngine(group: old.group, dependsOn: old.dependsOn, startedAt: startedAt,
                                 startupGrace: old.startupGrace, restoring: persisted)
        engine.settle = settle
        engine.record(states, at: now)
        if let reason = isolation.isolationReason { _ = engine.isolate(reason: reason, at: now) }
        engines[index] = engine
        withheld[name] = nil
    }

    /// An operator says the agent is not cut off: every group resumes at once.
    public mutating func dismissIsolation(reason: String, at now: Date) -> [GroupEvent] {
        guard case .ended(let text)? = isolation.dismiss(reason: reason, at: now) else { return [] }
        var events: [GroupEvent] = []
        for index in engines.indices {
            events += engines[index].endIsolation(reason: text, settling: false, at: now)
        }
        return events
    }
}
