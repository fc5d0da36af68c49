import Foundation

/// The agent's whole decision state as one value: every service's health,
/// every group's engine, maintenance, and the numbering of events.
///
/// `apply(_:at:)` is the one entry. Every input (a probe result, a
/// heartbeat, an operator command, a tick, a reload, a restart) goes through
/// it, in the order the owner received it, and every change it causes comes
/// back as numbered `AgentEvent`s in the order they happened. Changes the
/// probe loop recorded without deciding are caught up inside `apply`, before
/// any other input acts, so a command always sees current states and its
/// events are numbered after theirs.
///
/// No locks, threads, clocks or I/O: the caller passes the time and performs
/// the effects (journal, actions, status). Tests drive it with scripted
/// inputs and dates.
public struct AgentCore: Sendable {
    /// One service as the core holds it.
    public struct Entry: Sendable {
        public var config: ServiceConfig
        public var health: ServiceHealth
        public var lastProbe: ProbeResult?
        /// False for a probed service until its first result.
        public var reported: Bool
        /// After a reload changed what this service's check looks at: what the
        /// groups saw before, until its first decision under the new check. A
        /// reload alone never moves a group or takes it down.
        public var carried: ServiceView?

        /// What the groups see of this service.
        public var view: ServiceView {
            carried ?? ServiceView(state: health.state, since: health.since, reason: health.reason)
        }
    }

    public internal(set) var config: VitalsConfig
    public let startedAt: Date
    /// Services in config order; `index` finds one by name.
    public internal(set) var entries: ChunkedArray<Entry>
    public internal(set) var index: [String: Int]
    public internal(set) var coordinator: FailoverCoordinator
    public internal(set) var dependsOn: [String: [String]]
    public internal(set) var maintenanceUntil: [String: Date] = [:]
    var maintenanceReasons: [String: String] = [:]
    /// Bumped by every input that changed anything.
    public internal(set) var version: UInt64 = 0
    /// Bumped only when a state changes, an event is made or an operator or
    /// heartbeat input lands: what readers must see at once.
    public internal(set) var stateVersion: UInt64 = 0
    /// Probed services that have not reported yet (kept as a count, so that a
    /// first result changes one entry, not a shared set).
    var unprobed: Int
    public internal(set) var nextEventID: UInt64
    public internal(set) var recentEvents: RecentEvents
    /// States saved before a restart, until each service's first decision.
    var lastKnown: [String: ServiceView] = [:]
    /// State changes recorded but not yet decided on (`.probeResult`).
    var undecided: [HealthTransition] = []
    /// This agent's place in a cluster (`cluster:`); nil when it decides alone.
    public internal(set) var cluster: ClusterState?

    /// - Parameters:
    ///   - restoring: what was saved before a restart: group engines,
    ///     maintenance, last heartbeats, last known states.
    ///   - recentEvents: the journal's tail, so `/v1/events` keeps history.
    ///   - firstEventID: the id the next event gets at the earliest (the
    ///     journal's last sequence + 1); ids never go back.
    public init(config: VitalsConfig, startedAt: Date, restoring snapshot: AgentSnapshot? = nil,
                recentEvents: [AgentEvent] = [], firstEventID: UInt64 = 1, recentCapacity: Int = 1000,
                clusterAgent: String? = nil, monotonic: MonotonicTime = .seconds(0)) {
        self.config = config
        self.startedAt = startedAt
        // What the journal recorded after the snapshot was written counts too:
        // a decision or a command acknowledged just before a crash is not lost.
        let snapshot = snapshot.map { $0.replaying(recentEvents) }
            ?? (recentEvents.isEmpty ? nil : AgentSnapshot(savedAt: .distantPast).replaying(recentEvents))
        var lastKnown = snapshot?.lastKnown ?? [:]
        entries = ChunkedArray(config.services.map { service in
            let lastBeat = snapshot?.lastBeats[service.name]
            // A heartbeat service is what it was: its state is restored with its last beat.
            let restored = service.isProbed || lastBeat == nil ? nil : lastKnown.removeValue(forKey: service.name)
            return Entry(config: service, health: ServiceHealth(service: service, startedAt: startedAt,
                                                                lastBeat: lastBeat, restoring: restored,
                                                                runningSince: snapshot?.runningSince?[service.name]),
                         reported: !service.isProbed, carried: nil)
        })
        for i in entries.indices {
            let name = entries[i].config.name
            guard let maintenance = snapshot?.maintenance[name] else { continue }
            if let until = maintenance.until, until <= startedAt { continue }
            _ = entries[i].health.setMaintenance(true, reason: maintenance.reason, at: startedAt)
            maintenanceUntil[name] = maintenance.until
            maintenanceReasons[name] = maintenance.reason
        }
        index = Self.index(of: entries)
        dependsOn = Self.dependencies(in: config)
        coordinator = FailoverCoordinator(config: config, startedAt: startedAt, restoring: snapshot?.groups ?? [:])
        unprobed = config.services.filter(\.isProbed).count
        nextEventID = max(firstEventID, (recentEvents.map(\.id).max() ?? 0) + 1)
        self.recentEvents = RecentEvents(capacity: recentCapacity)
        self.recentEvents.append(contentsOf: recentEvents)
        self.lastKnown = lastKnown
        if let settings = config.cluster {
            cluster = ClusterState(settings: settings, agent: clusterAgent ?? settings.name ?? "vitals", now: monotonic)
        }
    }

    // MARK: The one entry

    /// Applies one input at `now` and returns the events it caused, numbered
    /// and in order. Every input but a probe result first decides the changes
    /// the probe loop recorded without deciding (once, here), so it acts on
    /// current states and its events are numbered after theirs.
    ///
    /// Throws `Refused` when an operator input names something that does not
    /// exist or cannot be done now; the input then changed nothing, and the
    /// error carries the events decided on the way, to publish like any others.
    public mutating func apply(_ input: AgentInput, at now: Date) throws(Refused) -> [AgentEvent] {
        if case .probeResult(let result, let service) = input {
            record(result, for: service)
            return []
        }
        // A round is decided at the time of its last change, like the change itself.
        let earlier = catchUp(at: input.isRoundEnd ? (undecided.last?.at ?? now) : now)
        do {
            return earlier + (try act(on: input, at: now))
        } catch {
            throw Refused(refusal: error, decided: earlier)
        }
    }

    /// An input that changed nothing, why, and what was decided before it.
    public struct Refused: Error, Equatable {
        public var refusal: AgentRefusal
        public var decided: [AgentEvent]
    }

    private mutating func act(on input: AgentInput, at now: Date) throws(AgentRefusal) -> [AgentEvent] {
        switch input {
        case .probeResult, .roundEnded:
            return []
        case .heartbeat(let kind, let service, let duration, let exitStatus, let body):
            return try beat(kind, for: service, duration: duration, exitStatus: exitStatus, body: body, at: now)
        case .tick:
            return tick(at: now)
        case .reload(let config):
            return reload(config, at: now)
        case .reloadRefused(let errors):
            return refusedReload(errors, at: now)
        case .maintenance(let service, let on, let reason, let until, let force):
            return try setMaintenance(on, for: service, reason: reason, until: until, force: force, at: now)
        case .switchover(let group, let member):
            return try groupCommand(group, at: now) { engine in
                switch engine.switchover(to: member, at: now) {
                case .success(let events): .success(events)
                case .failure(let refusal): .failure(.refused(refusal.description))
                }
            }
        case .hold(let group, let reason, let force):
            return try hold(group, reason: reason, force: force, at: now)
        case .release(let group):
            return try groupCommand(group, at: now) { .success($0.release(at: now)) }
        case .confirmTarget(let id):
            return try confirmTarget(of: id, at: now)
        case .actionsFinished(let outcomes):
            for outcome in outcomes {
                recentEvents.update(outcome.eventID) { $0.actions.append(outcome) }
            }
            version &+= 1
            stateVersion &+= 1
            return []
        case .restarted(let journal):
            markInterrupted(journal, at: now)
            return []
        case .cluster(let input):
            return try apply(cluster: input, at: now)
        }
    }

    // MARK: Probes and time

    mutating func record(_ result: ProbeResult, for service: String) {
        guard let i = index[service], case .probed(var tracker) = entries[i].health else { return }
        let transition = tracker.record(result)
        entries[i].health = .probed(tracker)
        entries[i].lastProbe = result
        version &+= 1
        // The first result of a service can complete the first round: views
        // that cache readiness by state version must see it.
        if !entries[i].reported {
            entries[i].reported = true
            unprobed -= 1
            stateVersion &+= 1
        }
        if let transition {
            // The service's own state is current at once; the groups see it when the round is decided.
            undecided.append(transition)
            stateVersion &+= 1
        }
    }

    mutating func tick(at now: Date) -> [AgentEvent] {
        var transitions: [HealthTransition] = []
        for (service, until) in maintenanceUntil where until <= now {
            maintenanceUntil[service] = nil
            maintenanceReasons[service] = nil
            if let i = index[service],
               let change = entries[i].health.setMaintenance(false, reason: "maintenance expired", at: now) {
                transitions.append(change)
            }
        }
        for i in entries.indices {
            if let change = entries[i].health.tick(at: now) { transitions.append(change) }
        }
        if transitions.isEmpty, cluster != nil, !coordinator.withheld.isEmpty {
            // A withheld failover is judged again as agents' reports age out
            // (a dead agent's view stops counting) or arrive.
            let groupEvents = coordinator.update(states: views, at: now, gate: quorumGate(at: now))
            return events(transitions: [], groupEvents: groupEvents)
        }
        if transitions.isEmpty, (coordinator.nextWakeup.map { $0 > now } ?? true) { return [] }
        return decide(after: transitions, at: now)
    }

    mutating func beat(_ kind: BeatKind, for service: String, duration: Duration?, exitStatus: Int?,
                       body: PingBody? = nil, at now: Date) throws(AgentRefusal) -> [AgentEvent] {
        guard let i = index[service] else { throw .unknownService(service) }
        guard case .heartbeat(var tracker) = entries[i].health else {
            throw .notAHeartbeatService(service, kind: entries[i].config.check.kind)
        }
        let transition = tracker.beat(kind, at: now, duration: duration, exitStatus: exitStatus, body: body)
        entries[i].health = .heartbeat(tracker)
        stateVersion &+= 1
        var events = decide(after: transition.map { [$0] } ?? [], at: now)
        guard let body, transition != nil else { return events }
        // The ping's body goes with what it caused: the service's change and
        // the group decisions that change made.
        for j in events.indices where events[j].service == service {
            events[j].pingBody = body
            recentEvents.update(events[j].id) { $0.pingBody = body }
        }
        return events
    }

    // MARK: Deciding

    /// Decides the changes the probe loop recorded without deciding, so an
    /// input from elsewhere acts on current states and is numbered after them.
    mutating func catchUp(at now: Date) -> [AgentEvent] {
        undecided.isEmpty ? [] : decide(after: [], at: now)
    }

    /// After health changed: let the groups decide. Changes recorded without
    /// deciding come first, in the order they happened.
    mutating func decide(after new: [HealthTransition], at now: Date) -> [AgentEvent] {
        let transitions = undecided.isEmpty ? new : undecided + new
        undecided.removeAll()
        for t in transitions {
            if let i = index[t.service], entries[i].carried != nil { entries[i].carried = nil }
        }
        let gate = quorumGate(at: now)
        let groupEvents = transitions.isEmpty ? coordinator.tick(at: now, gate: gate)
            : coordinator.update(states: views, at: now, gate: gate)
        return events(transitions: transitions, groupEvents: groupEvents)
    }

    /// Turns transitions and group decisions into numbered events.
    mutating func events(transitions: [HealthTransition], groupEvents: [GroupEvent]) -> [AgentEvent] {
        var out: [AgentEvent] = []
        for t in transitions {
            out.append(reconciled(.stateChange(t, id: nextEventID), transition: t))
            nextEventID += 1
        }
        for e in groupEvents {
            out.append(.group(e, id: nextEventID))
            nextEventID += 1
        }
        version &+= 1
        if !out.isEmpty {
            recentEvents.append(contentsOf: out)
            stateVersion &+= 1
        }
        return out
    }

    /// The first decision after a restart reports the change from what was
    /// last known, so a recovery while the agent was down is an event of its own.
    mutating func reconciled(_ event: AgentEvent, transition t: HealthTransition) -> AgentEvent {
        guard t.from == .unknown, let before = lastKnown.removeValue(forKey: t.service), before.state != .unknown else {
            return event
        }
        var event = event
        if before.state == t.to {
            event.reason = "\(t.reason) (as before the restart)"
        } else {
            event.from = before.state.rawValue
            event.reason = "\(t.reason) (changed while the agent was not running: \(before.state.rawValue) since \(ISOTime.format(before.since)))"
        }
        return event
    }

    /// Every service's view, for the groups and the isolation guard.
    public var views: [String: ServiceView] {
        var views: [String: ServiceView] = [:]
        views.reserveCapacity(entries.count)
        for entry in entries { views[entry.config.name] = entry.view }
        return views
    }

    static func index(of entries: ChunkedArray<Entry>) -> [String: Int] {
        Dictionary(uniqueKeysWithValues: entries.enumerated().map { ($1.config.name, $0) })
    }

    static func dependencies(in config: VitalsConfig) -> [String: [String]] {
        config.services.reduce(into: [:]) { map, service in
            if !service.dependsOn.isEmpty { map[service.name] = service.dependsOn }
        }
    }
}

extension ServiceConfig {
    /// Whether the agent probes this service (every check but `heartbeat`).
    public var isProbed: Bool {
        if case .heartbeat = check { false } else { true }
    }
}
