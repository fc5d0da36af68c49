import Foundation

extension AgentCore {
    // MARK: Operator commands

    /// Maintenance on or off. Turning it on is refused unless `force` when
    /// it would leave a group with no serving member
    /// (`GroupEngine.maintenanceConsequence(on:)`); the refusal names each
    /// such group.
    mutating func setMaintenance(_ on: Bool, for service: String, reason: String, until: Date?, force: Bool,
                                 at now: Date) throws(AgentRefusal) -> [AgentEvent] {
        guard let i = index[service] else { throw .unknownService(service) }
        if on, !force {
            let costs = coordinator.engines.compactMap { engine in
                engine.maintenanceConsequence(on: service).map { "group \(engine.group.name) with \($0)" }
            }
            if !costs.isEmpty {
                throw .refused("maintenance on \(service) would leave \(costs.joined(separator: " and ")); "
                               + Self.forceHint)
            }
        }
        maintenanceUntil[service] = on ? until : nil
        maintenanceReasons[service] = on ? reason : nil
        let change = entries[i].health.setMaintenance(on, reason: reason, at: now)
        stateVersion &+= 1
        var events = decide(after: change.map { [$0] } ?? [], at: now)
        // The journal carries the end of a maintenance, so a restart that
        // replays it ends it on time.
        if on, let until, let own = events.firstIndex(where: { $0.kind == .stateChange && $0.service == service }) {
            events[own].until = until
            recentEvents.update(events[own].id) { $0.until = until }
        }
        return events
    }

    /// A hold, refused unless `force` when it would leave the group with no
    /// serving member (`GroupEngine.holdConsequence`).
    mutating func hold(_ group: String, reason: String, force: Bool,
                       at now: Date) throws(AgentRefusal) -> [AgentEvent] {
        try groupCommand(group, at: now) { engine in
            if !force, let cost = engine.holdConsequence {
                return .failure(.refused("hold on group \(group) would \(cost); " + Self.forceHint))
            }
            return .success(engine.hold(reason: reason, at: now))
        }
    }

    /// How a refusal that `force` overrides ends.
    static let forceHint = #"send "force": true to do it anyway"#

    mutating func groupCommand(_ group: String, at now: Date,
                               _ body: (inout GroupEngine) -> Result<[GroupEvent], AgentRefusal>) throws(AgentRefusal) -> [AgentEvent] {
        guard let outcome = coordinator.withEngine(named: group, body) else { throw .unknownGroup(group) }
        switch outcome {
        case .success(let groupEvents):
            stateVersion &+= 1
            return events(transitions: [], groupEvents: groupEvents)
        case .failure(let refusal):
            throw refusal
        }
    }

    // MARK: Before actions run

    /// The target check of `confirmTarget(eventID:)`: `[]` when the event's
    /// actions may run, the events of a new decision that replaces it, or a
    /// throw saying why they must not run.
    mutating func confirmTarget(of id: UInt64, at now: Date) throws(AgentRefusal) -> [AgentEvent] {
        guard let groupEvent = recentEvents.event(id)?.groupEvent else { return [] }
        let views = self.views
        let check = coordinator.withEngine(named: groupEvent.group) {
            $0.confirmTarget(of: groupEvent, states: views, at: now)
        } ?? .notApplicable
        switch check {
        case .confirmed, .notApplicable:
            return []
        case .superseded:
            throw .actionsNotRun("superseded by a later decision")
        case .cancelled(let reason):
            throw .actionsNotRun("target check: \(reason)")
        case .replaced(let groupEvents):
            return events(transitions: [], groupEvents: groupEvents)
        }
    }

    // MARK: Restart

    /// Records every action of a recovered decision that never reported as
    /// interrupted: the agent stopped while it waited or ran, and it is
    /// reported, not run again. Returns the outcomes so recorded.
    @discardableResult
    mutating func markInterrupted(_ journal: [AgentEvent], at now: Date,
                                  reason: String = interruptedReason) -> [ActionOutcome] {
        var marked: [ActionOutcome] = []
        for event in journal {
            let done = Set(event.actions.map(\.action))
            let missing = config.actions(for: event).filter { !done.contains($0.name) }
            guard !missing.isEmpty else { continue }
            let outcomes = missing.map {
                ActionOutcome.notRun($0, event: event, result: .skipped(reason), at: now)
            }
            recentEvents.update(event.id) { $0.actions += outcomes }
            marked += outcomes
        }
        if !marked.isEmpty { stateVersion &+= 1 }
        version &+= 1
        return marked
    }

    /// The result of an action whose decision was recovered after a restart without it.
    public static let interruptedReason = "interrupted: the agent stopped before it finished; not run again"
}
