import Foundation
import Synchronization
import VitalsCore
import VitalsStore
import VitalsSystem

/// The agent's state as readers see it: a copy of the core taken after a
/// change, never modified afterwards. Status documents, `/metrics`, routing
/// answers and systemd's status line are all made from one of these.
public final class AgentView: Sendable {
    public let core: AgentCore
    public let configPath: String
    /// When it was published (the owner's clock).
    public let publishedAt: Date

    init(core: AgentCore, configPath: String, publishedAt: Date) {
        self.core = core
        self.configPath = configPath
        self.publishedAt = publishedAt
    }

    public var config: VitalsConfig { core.config }
    public var startedAt: Date { core.startedAt }
    /// Bumped by every change; equal versions mean equal views.
    public var version: UInt64 { core.version }
    public var firstRoundComplete: Bool { core.firstRoundComplete }
}

/// The one owner of the agent's state.
///
/// Probe results, heartbeats, operator commands, reloads and clock ticks all
/// arrive here as `AgentInput`s and go through `AgentCore.apply(_:at:)` one at
/// a time, so every change has a total order. The events they cause go, in
/// that order, to `publish` on one serial queue (the agent journals, logs and
/// runs actions from there); after each change the owner publishes a new
/// `AgentView` for readers.
///
/// Why a lock rather than an actor or a queue of its own: the probe loop
/// needs the next-probe hint of each result before it schedules the next
/// probe (up to 10,000 results a second), and a thread hop per result would
/// cost more than the decision. The lock is held only while the pure core
/// applies one input: no I/O, no waiting, no callbacks under it. Readers
/// never take it: `view` is a separate slot that holds the last published
/// copy, locked only to swap or copy one reference.
public final class StateOwner: Sendable {
    private let core: Mutex<AgentCore>
    private let slot: Mutex<AgentView>
    private let balancers: Mutex<[String: Balancer]>
    private let clock: any VitalsClock
    private let refreshInterval: Duration
    private let effects = DispatchQueue(label: "vitals.effects")
    private let publish: @Sendable ([AgentEvent]) -> Void
    private let monotonic: @Sendable () -> MonotonicTime
    public let configPath: String

    /// The system's monotonic clock, as the core counts lease deadlines.
    public static let systemMonotonic: @Sendable () -> MonotonicTime = {
        MonotonicTime(.nanoseconds(MonotonicInstant.now().nanoseconds))
    }

    /// - Parameters:
    ///   - restoring: what was saved before a restart.
    ///   - lastEvents: the journal's tail, so ids continue and `/v1/events` keeps history.
    ///   - refreshInterval: how stale a view may be in fields that move with
    ///     every probe (last probe time, latency); a change of state is
    ///     published at once.
    ///   - publish: receives every batch of new events, in order, on one serial queue.
    public init(config: VitalsConfig, configPath: String, clock: any VitalsClock,
                restoring snapshot: AgentSnapshot? = nil, lastEvents: [AgentEvent] = [], firstEventID: UInt64 = 1,
                refreshInterval: Duration = .milliseconds(250), clusterAgent: String? = nil,
                monotonic: @escaping @Sendable () -> MonotonicTime = StateOwner.systemMonotonic,
                publish: @escaping @Sendable ([AgentEvent]) -> Void) {
        let now = clock.now()
        let core = AgentCore(config: config, startedAt: now, restoring: snapshot, recentEvents: lastEvents,
                             firstEventID: firstEventID, clusterAgent: clusterAgent, monotonic: monotonic())
        self.core = Mutex(core)
        self.slot = Mutex(AgentView(core: core, configPath: configPath, publishedAt: now))
        self.balancers = Mutex(Dictionary(uniqueKeysWithValues: config.groups.map { ($0.name, Balancer(group: $0)) }))
        self.clock = clock
        self.refreshInterval = refreshInterval
        self.publish = publish
        self.monotonic = monotonic
        self.configPath = configPath
    }

    // MARK: Inputs

    /// Applies one input now and returns the events it caused itself (all
    /// events are handed to `publish`, in order). Changes the probe loop had
    /// recorded are decided first and published ahead of them, but are not
    /// part of the answer: an operator's command answers with its own events.
    /// A refused input changed nothing.
    @discardableResult
    public func apply(_ input: AgentInput) throws(AgentRefusal) -> [AgentEvent] {
        let now = clock.now()
        let instant = monotonic()
        return try core.withLock { (core) throws(AgentRefusal) -> [AgentEvent] in
            core.advance(to: instant)
            // A round end is never refused; it leaves nothing for the input's own catch-up.
            let earlier = (try? core.apply(.roundEnded, at: now)) ?? []
            do throws(AgentCore.Refused) {
                let events = try core.apply(input, at: now)
                if case .reload(let config) = input { resetBalancers(for: config) }
                finish(core, earlier + events, at: now)
                return events
            } catch {
                finish(core, earlier + error.decided, at: now)
                throw error.refusal
            }
        }
    }

    /// The probe loop's entry: records one result and answers how soon the
    /// service should be probed again. With `deciding: false` a change of
    /// state waits for `.roundEnded` (the loop decides once per round).
    @discardableResult
    public func record(_ result: ProbeResult, for service: String, deciding: Bool = true) -> ProbeDelayHint {
        let now = clock.now()
        return core.withLock { core in
            // Probe results and round ends are never refused.
            var events = (try? core.apply(.probeResult(result, service: service), at: now)) ?? []
            if deciding { events += (try? core.apply(.roundEnded, at: result.time)) ?? [] }
            finish(core, events, at: now)
            guard case .probed(let tracker)? = core.entry(service)?.health else { return .normal }
            return tracker.nextProbeDelayHint
        }
    }

    /// Lets the groups decide on the changes recorded with `deciding: false`.
    public func decidePending() {
        let now = clock.now()
        let instant = monotonic()
        core.withLock { core in
            core.advance(to: instant)
            let events = (try? core.apply(.roundEnded, at: now)) ?? []
            finish(core, events, at: now)
        }
    }

    /// Lets time-driven rules act; also publishes probe-only changes that
    /// waited for the refresh interval.
    public func tick() {
        _ = try? apply(.tick)
    }

    /// Publishes a new view when the state changed (at once) or when only
    /// probe details moved (at most every `refreshInterval`), then hands the
    /// events to the effects queue. In this order, so that an effect always
    /// finds a view at least as new as its event.
    private func finish(_ core: AgentCore, _ events: [AgentEvent], at now: Date) {
        let last = slot.withLock { $0 }
        if core.stateVersion != last.core.stateVersion
            || (core.version != last.core.version && now.duration(since: last.publishedAt) >= refreshInterval) {
            let view = AgentView(core: core, configPath: configPath, publishedAt: now)
            slot.withLock { $0 = view }
        }
        guard !events.isEmpty else { return }
        let publish = self.publish
        effects.async { publish(events) }
    }

    /// Waits until every event published so far has been handed over (tests, shutdown).
    public func flush() {
        effects.sync {}
    }

    /// Calls `body` once every event published so far has been handed over
    /// (journaled, in the agent): an operator's command is answered only
    /// when what it decided is on disk. Never waits itself.
    public func whenRecorded(_ body: @escaping @Sendable () -> Void) {
        effects.async(execute: body)
    }

    // MARK: Cluster

    /// Whether this agent may run actions now: always outside a cluster; in
    /// one, only while it leads and its lease's fencing deadline is ahead
    /// (read under the lock, at this instant: never from a stale view).
    public func mayAct() -> (Bool, why: String) {
        let instant = monotonic()
        return core.withLock { core in
            core.advance(to: instant)
            guard let cluster = core.cluster else { return (true, "") }
            return (cluster.mayAct, cluster.role.description)
        }
    }

    /// The cluster as the core knows it now (nil without `cluster:`).
    public func clusterState() -> ClusterState? {
        let instant = monotonic()
        return core.withLock { core in
            core.advance(to: instant)
            return core.cluster
        }
    }

    // MARK: Reads: never wait for a decision

    /// The last published view.
    public var view: AgentView { slot.withLock { $0 } }

    /// What must survive a restart, as of the last published view.
    public func persistentSnapshot() -> AgentSnapshot {
        view.core.persistentSnapshot(at: clock.now())
    }

    // MARK: Routing

    /// The answer to `/v1/groups/{g}/pick`.
    public enum PickAnswer: Sendable, Equatable {
        case picked(BalancePick, address: ListenAddress?)
        case noneServing(String)
        case unknownGroup
    }

    /// One serving member of `group` for a client, by the group's `balance`
    /// policy, from the published view. The policy's own counters (round-robin
    /// positions) are no decision state: they live beside the core.
    public func pick(group: String, key: String?) -> PickAnswer {
        let core = view.core
        guard let engine = core.coordinator.engine(named: group) else { return .unknownGroup }
        var latencies: [String: Duration] = [:]
        for member in engine.group.members {
            guard case .probed(let tracker)? = core.entry(member)?.health,
                  let latency = Balancer.recentLatency(of: tracker.recentResults) else { continue }
            latencies[member] = latency
        }
        let candidates = engine.balanceCandidates(states: core.views(of: engine.group.members), latencies: latencies)
        let choice = balancers.withLock { balancers -> BalancePick? in
            guard var balancer = balancers[group] else { return nil }
            defer { balancers[group] = balancer }
            return balancer.pick(key: key, candidates: candidates)
        }
        guard let choice else {
            let why = candidates.map { "\($0.name) \($0.state.rawValue)" }.joined(separator: ", ")
            return .noneServing("no serving member in group \(group)" + (why.isEmpty ? "" : ": \(why)"))
        }
        return .picked(choice, address: core.config.service(named: choice.member)?.address)
    }

    /// The active member (active-passive) or set (active-active) with addresses; nil for an unknown group.
    public func active(group: String) -> (mode: String, members: [MemberAddress])? {
        let core = view.core
        guard let engine = core.coordinator.engine(named: group) else { return nil }
        return (engine.group.mode.name, engine.activeAddresses(in: core.config))
    }

    /// A reload keeps the counters of groups whose balancing did not change.
    private func resetBalancers(for config: VitalsConfig) {
        balancers.withLock { balancers in
            balancers = Dictionary(uniqueKeysWithValues: config.groups.map { group in
                if let old = balancers[group.name], old.matches(group) { return (group.name, old) }
                return (group.name, Balancer(group: group))
            })
        }
    }
}
