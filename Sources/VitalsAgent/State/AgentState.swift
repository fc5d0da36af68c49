import Foundation
import Synchronization
import VitalsActions
import VitalsCore
import VitalsStore

/// The one owner of the agent's state: service health and group decisions.
///
/// Probe results, heartbeats, operator commands and clock ticks all arrive
/// here and are applied one at a time under a single lock, so every change
/// has a total order. What they cause — state changes and group decisions —
/// becomes `AgentEvent`s with increasing ids, handed to `publish` on one
/// serial queue in exactly that order (the agent journals, logs and runs
/// actions from there). Nothing else mutates state.
public final class AgentState: Sendable {
    /// A copy of everything the status view shows, taken at one instant.
    public struct Snapshot: Sendable {
        public var config: VitalsConfig
        public var configPath: String
        public var startedAt: Date
        public var services: [(config: ServiceConfig, health: ServiceHealth, lastProbe: ProbeResult?)]
        public var groups: [GroupEngine]
        public var isolation: IsolationGuard
        public var maintenanceUntil: [String: Date]
        public var blockedBy: [String: String]
        public var recentEvents: [AgentEvent]
        /// Bumped by every change; equal versions mean equal snapshots.
        public var version: UInt64
        /// True once every probed service has reported at least one result.
        public var firstRoundComplete: Bool
    }

    /// Where a heartbeat stands after it was recorded.
    public struct HeartbeatReceipt: Sendable, Equatable {
        public var service: String
        public var kind: BeatKind
        public var state: HealthState
        public var deadline: Date
    }

    public enum HeartbeatRejection: Error, Equatable {
        case unknownService(String)
        case notAHeartbeatService(String, kind: String)
    }

    /// Why an operator command was refused: each has an HTTP status and a sentence.
    public enum CommandRefusal: Error, Equatable, CustomStringConvertible {
        case unknownGroup(String)
        case unknownService(String)
        case refused(String)

        public var description: String {
            switch self {
            case .unknownGroup(let name): "no such group: \(name)"
            case .unknownService(let name): "no such service: \(name)"
            case .refused(let why): why
            }
        }
    }

    private struct Entry {
        var config: ServiceConfig
        var health: ServiceHealth
        var lastProbe: ProbeResult?

        /// What the groups see of this service.
        var view: ServiceView { ServiceView(state: health.state, since: health.since, reason: health.reason) }
    }

    private struct Inner {
        var config: VitalsConfig
        var entries: [Entry]
        var index: [String: Int]
        var coordinator: FailoverCoordinator
        var dependsOn: [String: [String]]
        var maintenanceUntil: [String: Date] = [:]
        var version: UInt64 = 0
        var stateVersion: UInt64 = 0
        var unprobed: Set<String>
        var nextEventID: UInt64
        var recentEvents: RecentEvents
        /// States saved before a restart, until each service's first decision.
        var lastKnown: [String: ServiceView] = [:]
        var maintenanceReasons: [String: String] = [:]
        /// One balancer per group, for `/pick` (round-robin counters live here).
        var balancers: [String: Balancer] = [:]
        /// State changes recorded but not yet decided on (see `record(_:for:deciding:)`).
        var undecided: [HealthTransition] = []

        var views: [String: ServiceView] {
            var views: [String: ServiceView] = [:]
            for entry in entries { views[entry.config.name] = entry.view }
            return views
        }

        /// The views of `names` only: for answers about one group, so their
        /// cost does not grow with the number of services.
        func views(of names: [String]) -> [String: ServiceView] {
            var views: [String: ServiceView] = [:]
            for name in names {
                if let i = index[name] { views[name] = entries[i].view }
            }
            return views
        }

        /// Turns transitions and group decisions into numbered events.
        mutating func events(transitions: [HealthTransition], groupEvents: [GroupEvent]) -> [AgentEvent] {
            var out: [AgentEvent] = []
            for t in transitions {
                var event = AgentEvent.stateChange(t, id: nextEventID)
                if t.from == .unknown, let before = lastKnown.removeValue(forKey: t.service), before.state != .unknown {
                    if before.state == t.to {
                        event.reason = "\(t.reason) (as before the restart)"
                    } else {
                        // The first decision after a restart: report the change
                        // from what was last known, so a recovery while the agent
                        // was down is an event of its own.
                        event.from = before.state.rawValue
                        event.reason = "\(t.reason) (changed while the agent was not running: \(before.state.rawValue) since \(JSONTime.string(before.since)))"
                    }
                }
                out.append(event)
                nextEventID += 1
            }
            for e in groupEvents {
                out.append(.group(e, id: nextEventID))
                nextEventID += 1
            }
            if !out.isEmpty {
                recentEvents.append(contentsOf: out)
                stateVersion &+= 1
            }
            version &+= 1
            return out
        }

        /// Decides the changes the probe loop recorded without deciding, so an
        /// input from elsewhere (a command, a heartbeat, a reload) acts on
        /// current states and is numbered after those changes.
        mutating func catchUp(at now: Date) -> [AgentEvent] {
            undecided.isEmpty ? [] : decide(after: [], at: now)
        }

        /// After health changed: let the groups decide. Changes recorded
        /// without deciding come first, in the order they happened.
        mutating func decide(after new: [HealthTransition], at now: Date) -> [AgentEvent] {
            let transitions = undecided.isEmpty ? new : undecided + new
            undecided.removeAll()
            let groupEvents = transitions.isEmpty ? coordinator.tick(at: now) : coordinator.update(states: views, at: now)
            return events(transitions: transitions, groupEvents: groupEvents)
        }
    }

    private let inner: Mutex<Inner>
    private let clock: any VitalsClock
    private let effects = DispatchQueue(label: "vitals.effects")
    private let publish: @Sendable ([AgentEvent]) -> Void
    public let startedAt: Date
    public let configPath: String

    /// - Parameters:
    ///   - restoring: group state saved before a restart, by group name.
    ///   - lastEvents: the journal's tail, so ids continue and `/v1/events` keeps history.
    ///   - publish: receives every batch of new events, in order, on one serial queue.
    public init(config: VitalsConfig, configPath: String, clock: any VitalsClock,
                restoring snapshot: AgentSnapshot? = nil, lastEvents: [AgentEvent] = [], firstEventID: UInt64 = 1,
                publish: @escaping @Sendable ([AgentEvent]) -> Void) {
        let now = clock.now()
        self.clock = clock
        self.startedAt = now
        self.configPath = configPath
        self.publish = publish
        var entries = config.services.map {
            Entry(config: $0, health: ServiceHealth(service: $0, startedAt: now, lastBeat: snapshot?.lastBeats[$0.name]))
        }
        var maintenanceUntil: [String: Date] = [:]
        var maintenanceReasons: [String: String] = [:]
        for i in entries.indices {
            let name = entries[i].config.name
            guard let maintenance = snapshot?.maintenance[name] else { continue }
            if let until = maintenance.until, until <= now { continue }
            _ = entries[i].health.setMaintenance(true, reason: maintenance.reason, at: now)
            maintenanceUntil[name] = maintenance.until
            maintenanceReasons[name] = maintenance.reason
        }
        var index: [String: Int] = [:]
        for (i, entry) in entries.enumerated() { index[entry.config.name] = i }
        var dependsOn: [String: [String]] = [:]
        for service in config.services where !service.dependsOn.isEmpty { dependsOn[service.name] = service.dependsOn }
        let probed = config.services.filter { if case .heartbeat = $0.check { false } else { true } }.map(\.name)
        var recent = RecentEvents(capacity: 1000)
        recent.append(contentsOf: lastEvents)
        var state = Inner(config: config, entries: entries, index: index,
                          coordinator: FailoverCoordinator(config: config, startedAt: now,
                                                           restoring: snapshot?.groups ?? [:]),
                          dependsOn: dependsOn, unprobed: Set(probed),
                          nextEventID: max(firstEventID, (lastEvents.map(\.id).max() ?? 0) + 1),
                          recentEvents: recent)
        state.maintenanceUntil = maintenanceUntil
        state.maintenanceReasons = maintenanceReasons
        state.lastKnown = snapshot?.lastKnown ?? [:]
        state.balancers = Dictionary(uniqueKeysWithValues: config.groups.map { ($0.name, Balancer(group: $0)) })
        inner = Mutex(state)
    }

    /// What must survive a restart, as of now.
    public func persistentSnapshot() -> AgentSnapshot {
        let now = clock.now()
        return inner.withLock { state in
            var maintenance: [String: AgentSnapshot.Maintenance] = [:]
            var lastBeats: [String: Date] = [:]
            var lastKnown = state.lastKnown
            for entry in state.entries {
                let name = entry.config.name
                switch entry.health {
                case .probed(let t):
                    if t.isInMaintenance {
                        maintenance[name] = .init(reason: state.maintenanceReasons[name] ?? t.reason,
                                                  until: state.maintenanceUntil[name])
                    }
                case .heartbeat(let t):
                    if t.isInMaintenance {
                        maintenance[name] = .init(reason: state.maintenanceReasons[name] ?? t.reason,
                                                  until: state.maintenanceUntil[name])
                    }
                    lastBeats[name] = t.lastBeat
                }
                if entry.health.state != .unknown && entry.health.state != .maintenance {
                    lastKnown[name] = entry.view
                }
            }
            return AgentSnapshot(savedAt: now, groups: state.coordinator.persisted, maintenance: maintenance,
                                 lastBeats: lastBeats, lastKnown: lastKnown)
        }
    }

    /// Hands events to `publish` in order. Called with the lock held, so the
    /// queue receives batches in the order the state changed.
    private func emit(_ events: [AgentEvent]) {
        guard !events.isEmpty else { return }
        let publish = self.publish
        effects.async { publish(events) }
    }

    /// Waits until every event published so far has been handed over (tests, shutdown).
    public func flush() {
        effects.sync {}
    }

    // MARK: Inputs

    /// Applies one probe result; answers how soon the service should be probed again.
    /// With `deciding: false` a state change waits for `decidePending()` (or the
    /// next input that decides) before the groups see it and its event is
    /// published: the probe loop records a round of results, then decides once.
    @discardableResult
    public func record(_ result: ProbeResult, for service: String, deciding: Bool = true) -> ProbeDelayHint {
        inner.withLock { state in
            guard let i = state.index[service], case .probed(var tracker) = state.entries[i].health else {
                return .normal
            }
            let transition = tracker.record(result)
            state.entries[i].health = .probed(tracker)
            state.entries[i].lastProbe = result
            // The first result of a service can complete the first round:
            // views that cache readiness by state version must see it.
            if state.unprobed.remove(service) != nil { state.stateVersion &+= 1 }
            if let transition {
                if deciding {
                    emit(state.decide(after: [transition], at: result.time))
                } else {
                    state.undecided.append(transition)
                    state.version &+= 1
                }
            } else {
                state.version &+= 1
            }
            return tracker.nextProbeDelayHint
        }
    }

    /// Lets the groups decide on the state changes recorded with
    /// `deciding: false`, all at once, and publishes their events in order.
    public func decidePending() {
        inner.withLock { state in
            guard let last = state.undecided.last else { return }
            emit(state.decide(after: [], at: last.at))
        }
    }

    /// Applies one pushed heartbeat.
    public func beat(_ kind: BeatKind, for service: String, duration: Duration? = nil,
                     exitStatus: Int? = nil) -> Result<HeartbeatReceipt, HeartbeatRejection> {
        let now = clock.now()
        return inner.withLock { state in
            guard let i = state.index[service] else { return .failure(.unknownService(service)) }
            guard case .heartbeat(var tracker) = state.entries[i].health else {
                return .failure(.notAHeartbeatService(service, kind: state.entries[i].config.check.kind))
            }
            let earlier = state.catchUp(at: now)
            let transition = tracker.beat(kind, at: now, duration: duration, exitStatus: exitStatus)
            state.entries[i].health = .heartbeat(tracker)
            state.stateVersion &+= 1
            emit(earlier + state.decide(after: transition.map { [$0] } ?? [], at: now))
            return .success(HeartbeatReceipt(service: service, kind: kind, state: tracker.state,
                                             deadline: tracker.deadline))
        }
    }

    /// Lets time-driven rules act: heartbeat deadlines, flapping settling,
    /// maintenance expiry, deferred failovers.
    public func tick() {
        let now = clock.now()
        inner.withLock { state in
            var transitions: [HealthTransition] = []
            for (service, until) in state.maintenanceUntil where until <= now {
                state.maintenanceUntil[service] = nil
                state.maintenanceReasons[service] = nil
                if let i = state.index[service],
                   let change = state.entries[i].health.setMaintenance(false, reason: "maintenance expired", at: now) {
                    transitions.append(change)
                }
            }
            for i in state.entries.indices {
                if let change = state.entries[i].health.tick(at: now) { transitions.append(change) }
            }
            if transitions.isEmpty, (state.coordinator.nextWakeup.map { $0 > now } ?? true) { return }
            emit(state.decide(after: transitions, at: now))
        }
    }

    // MARK: Reload

    /// What a reload changed.
    public struct ReloadSummary: Sendable, Equatable, CustomStringConvertible {
        public var added: [String] = []
        public var removed: [String] = []
        public var changed: [String] = []
        public var kept: Int = 0

        public var description: String {
            var parts: [String] = []
            if !added.isEmpty { parts.append("added \(added.joined(separator: ", "))") }
            if !removed.isEmpty { parts.append("removed \(removed.joined(separator: ", "))") }
            if !changed.isEmpty { parts.append("changed \(changed.joined(separator: ", "))") }
            parts.append("\(kept) unchanged")
            return parts.joined(separator: "; ")
        }
    }

    /// Applies a new, already validated configuration. Services whose
    /// configuration did not change keep their state and counters; changed
    /// ones start afresh (a heartbeat service keeps its last beat); groups
    /// keep their active member, holds and recent moves.
    @discardableResult
    public func reload(_ config: VitalsConfig) -> ReloadSummary {
        let now = clock.now()
        return inner.withLock { state in
            // Changes the probe loop recorded before the reload are decided
            // (and numbered) before it, under the configuration they happened in.
            let earlier = state.catchUp(at: now)
            var summary = ReloadSummary()
            var entries: [Entry] = []
            var probed: Set<String> = []
            for service in config.services {
                let old = state.index[service.name].map { state.entries[$0] }
                if case .heartbeat = service.check {} else { probed.insert(service.name) }
                if let old, old.config == service {
                    entries.append(old)
                    summary.kept += 1
                    continue
                }
                var lastBeat: Date?
                if case .heartbeat(let t)? = old?.health { lastBeat = t.lastBeat }
                entries.append(Entry(config: service, health: ServiceHealth(service: service, startedAt: now, lastBeat: lastBeat)))
                if old == nil { summary.added.append(service.name) } else { summary.changed.append(service.name) }
            }
            let names = Set(config.services.map(\.name))
            summary.removed = state.entries.map(\.config.name).filter { !names.contains($0) }
            for name in summary.removed {
                state.maintenanceUntil[name] = nil
                state.maintenanceReasons[name] = nil
            }
            state.entries = entries
            state.index = Dictionary(uniqueKeysWithValues: entries.enumerated().map { ($1.config.name, $0) })
            state.dependsOn = config.services.reduce(into: [:]) { map, service in
                if !service.dependsOn.isEmpty { map[service.name] = service.dependsOn }
            }
            state.unprobed = state.unprobed.intersection(probed).union(summary.added.filter(probed.contains))
                .union(summary.changed.filter(probed.contains))
            state.coordinator = FailoverCoordinator(config: config, startedAt: startedAt,
                                                    restoring: state.coordinator.persisted)
            state.balancers = Dictionary(uniqueKeysWithValues: config.groups.map { group in
                if let old = state.balancers[group.name], old.matches(group) { return (group.name, old) }
                return (group.name, Balancer(group: group))
            })
            state.config = config
            let reload = AgentEvent(id: state.nextEventID, time: now, kind: .configReloaded,
                                    reason: "configuration reloaded: \(summary)")
            state.nextEventID += 1
            state.recentEvents.append(contentsOf: [reload])
            let decisions = state.coordinator.update(states: state.views, at: now)
            emit(earlier + [reload] + state.events(transitions: [], groupEvents: decisions))
            return summary
        }
    }

    /// The configuration in force.
    public var config: VitalsConfig { inner.withLock { $0.config } }

    // MARK: Operator commands

    /// Puts a service in maintenance, optionally until `until`; or takes it out (`on == false`).
    public func setMaintenance(_ on: Bool, for service: String, reason: String,
                               until: Date? = nil) -> Result<AgentEvent?, CommandRefusal> {
        let now = clock.now()
        return inner.withLock { state in
            guard let i = state.index[service] else { return .failure(.unknownService(service)) }
            let earlier = state.catchUp(at: now)
            state.maintenanceUntil[service] = on ? until : nil
            state.maintenanceReasons[service] = on ? reason : nil
            let change = state.entries[i].health.setMaintenance(on, reason: reason, at: now)
            state.stateVersion &+= 1
            let events = state.decide(after: change.map { [$0] } ?? [], at: now)
            emit(earlier + events)
            return .success(events.first)
        }
    }

    /// Moves an active-passive group to `member` now, if it serves.
    public func switchover(group: String, to member: String) -> Result<[AgentEvent], CommandRefusal> {
        let now = clock.now()
        return inner.withLock { state in
            // The group judges the target on every change recorded so far.
            let earlier = state.catchUp(at: now)
            emit(earlier)
            let outcome = state.coordinator.withEngine(named: group) { $0.switchover(to: member, at: now) }
            switch outcome {
            case nil:
                return .failure(.unknownGroup(group))
            case .failure(let refusal)?:
                return .failure(.refused(refusal.description))
            case .success(let groupEvents)?:
                let events = state.events(transitions: [], groupEvents: groupEvents)
                emit(events)
                return .success(events)
            }
        }
    }

    /// Pauses (`hold`) or resumes (`release`) automatic decisions for a group.
    public func hold(group: String, reason: String) -> Result<[AgentEvent], CommandRefusal> {
        groupCommand(group) { engine, now in engine.hold(reason: reason, at: now) }
    }

    public func release(group: String) -> Result<[AgentEvent], CommandRefusal> {
        groupCommand(group) { engine, now in engine.release(at: now) }
    }

    private func groupCommand(_ group: String,
                              _ body: (inout GroupEngine, Date) -> [GroupEvent]) -> Result<[AgentEvent], CommandRefusal> {
        let now = clock.now()
        return inner.withLock { state in
            emit(state.catchUp(at: now))
            guard let groupEvents = state.coordinator.withEngine(named: group, { body(&$0, now) }) else {
                return .failure(.unknownGroup(group))
            }
            let events = state.events(transitions: [], groupEvents: groupEvents)
            emit(events)
            return .success(events)
        }
    }

    /// Right before a decision's actions run: is its target still up? When it
    /// is not, the engine chooses again; the new decision is published as
    /// events of its own and returned so the caller runs its actions instead.
    public func confirmTarget(of event: AgentEvent) -> TargetCheck {
        guard let groupEvent = event.groupEvent else { return .notApplicable }
        let now = clock.now()
        return inner.withLock { state in
            emit(state.catchUp(at: now))
            let views = state.views
            let check = state.coordinator.withEngine(named: groupEvent.group) {
                $0.confirmTarget(of: groupEvent, states: views, at: now)
            } ?? .notApplicable
            if case .replaced(let groupEvents) = check {
                let events = state.events(transitions: [], groupEvents: groupEvents)
                emit(events)
                return .replaced(by: events.compactMap(\.groupEvent))
            }
            return check
        }
    }

    /// Records what an event's actions did, for `/v1/events` and the group's status.
    public func recordActions(_ records: [ActionOutcome], forEvent id: UInt64) {
        inner.withLock { state in
            state.recentEvents.update(id) { $0.actions += records }
            state.version &+= 1
            state.stateVersion &+= 1
        }
    }

    // MARK: Routing

    /// The answer to `/v1/groups/{g}/pick`.
    public enum PickAnswer: Sendable, Equatable {
        case picked(BalancePick, address: ListenAddress?)
        case noneServing(String)
        case unknownGroup
    }

    /// One serving member of `group` for a client, by the group's `balance` policy.
    public func pick(group: String, key: String?) -> PickAnswer {
        inner.withLock { state in
            guard let engine = state.coordinator.engine(named: group), var balancer = state.balancers[group] else {
                return .unknownGroup
            }
            var latencies: [String: Duration] = [:]
            for member in engine.group.members {
                guard let i = state.index[member], case .probed(let tracker) = state.entries[i].health,
                      let latency = Balancer.recentLatency(of: tracker.recentResults) else { continue }
                latencies[member] = latency
            }
            let candidates = engine.balanceCandidates(states: state.views(of: engine.group.members),
                                                      latencies: latencies)
            let choice = balancer.pick(key: key, candidates: candidates)
            state.balancers[group] = balancer
            guard let choice else {
                let why = candidates.map { "\($0.name) \($0.state.rawValue)" }.joined(separator: ", ")
                return .noneServing("no serving member in group \(group)" + (why.isEmpty ? "" : ": \(why)"))
            }
            return .picked(choice, address: state.config.service(named: choice.member)?.address)
        }
    }

    /// The active member (active-passive) or set (active-active) with addresses; nil for an unknown group.
    public func active(group: String) -> (mode: String, members: [MemberAddress])? {
        inner.withLock { state in
            guard let engine = state.coordinator.engine(named: group) else { return nil }
            return (engine.group.mode.name, engine.activeAddresses(in: state.config))
        }
    }

    // MARK: Reads

    /// Bumped by every input; cheap, for deciding whether a rendered view is stale.
    public var version: UInt64 { inner.withLock { $0.version } }

    /// Bumped only when a state changes or an operator or heartbeat input lands:
    /// views re-render at once for these.
    public var stateVersion: UInt64 { inner.withLock { $0.stateVersion } }

    public func snapshot() -> Snapshot {
        inner.withLock { state in
            var blocked: [String: String] = [:]
            let states = state.entries.reduce(into: [String: HealthState]()) { $0[$1.config.name] = $1.health.state }
            for service in state.dependsOn.keys {
                if let root = Dependencies.rootCause(of: service, states: states, dependsOn: state.dependsOn) {
                    blocked[service] = root
                }
            }
            return Snapshot(config: state.config, configPath: configPath, startedAt: startedAt,
                            services: state.entries.map { ($0.config, $0.health, $0.lastProbe) },
                            groups: state.coordinator.engines, isolation: state.coordinator.isolation,
                            maintenanceUntil: state.maintenanceUntil, blockedBy: blocked,
                            recentEvents: state.recentEvents.all,
                            version: state.version, firstRoundComplete: state.unprobed.isEmpty)
        }
    }

    /// One recent event by id.
    public func recentEvent(_ id: UInt64) -> AgentEvent? {
        inner.withLock { $0.recentEvents.event(id) }
    }

    /// Events with an id above `since`, oldest first, at most `limit`.
    public func events(since: UInt64, limit: Int) -> [AgentEvent] {
        inner.withLock { $0.recentEvents.after(since, limit: limit) }
    }

    /// The health of one service, if it exists.
    public func health(of service: String) -> ServiceHealth? {
        inner.withLock { state in state.index[service].map { state.entries[$0].health } }
    }

    /// What must survive a restart: each group's engine state.
    public var persistedGroups: [String: GroupEngine.Persisted] {
        inner.withLock { $0.coordinator.persisted }
    }
}

/// The last N events in memory, for `/v1/events` and the status page.
struct RecentEvents {
    private var items: [AgentEvent] = []
    let capacity: Int

    init(capacity: Int) { self.capacity = capacity }

    mutating func append(contentsOf events: [AgentEvent]) {
        items.append(contentsOf: events)
        if items.count > capacity { items.removeFirst(items.count - capacity) }
    }

    mutating func update(_ id: UInt64, _ body: (inout AgentEvent) -> Void) {
        // Ids increase, so search from the newest.
        if let i = items.lastIndex(where: { $0.id == id }) { body(&items[i]) }
    }

    func event(_ id: UInt64) -> AgentEvent? {
        items.last { $0.id == id }
    }

    func after(_ id: UInt64, limit: Int) -> [AgentEvent] {
        let start = items.firstIndex { $0.id > id } ?? items.endIndex
        return Array(items[start...].prefix(limit))
    }

    var all: [AgentEvent] { items }
}
