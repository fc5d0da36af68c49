import Foundation

extension AgentSnapshot {
    /// The snapshot with the journal's later events folded in: the state as
    /// of the last journaled event. An event is journaled (fsync'd) before
    /// its actions start and before a command is answered, while the
    /// snapshot is written after; a crash in between (kill -9, a full disk)
    /// must not lose a maintenance, a hold or a switchover, nor make the
    /// agent repeat a failover it already made.
    ///
    /// Folded in: each group's active member(s), holds and releases, moves
    /// (for the cooldown and the failover budget), maintenance on and off,
    /// and every service's last known state.
    public func replaying(_ journal: [AgentEvent]) -> AgentSnapshot {
        var snapshot = self
        let newer = journal.filter { event in
            if let lastEventID { event.id > lastEventID } else { event.time > savedAt }
        }
        for event in newer {
            switch event.kind {
            case .group(let kind):
                guard let group = event.group else { continue }
                var persisted = snapshot.groups[group] ?? GroupEngine.Persisted(active: [], hasActivated: false)
                persisted.apply(kind, of: event)
                snapshot.groups[group] = persisted
            case .stateChange:
                guard let service = event.service, let to = event.to.flatMap(HealthState.init(rawValue:)) else { continue }
                if to == .maintenance {
                    snapshot.maintenance[service] = Maintenance(reason: event.reason, until: event.until)
                } else {
                    if event.from == HealthState.maintenance.rawValue { snapshot.maintenance[service] = nil }
                    snapshot.lastKnown[service] = ServiceView(state: to, since: event.time, reason: event.reason)
                }
            case .configReloaded, .reloadRefused:
                continue
            }
            snapshot.lastEventID = max(snapshot.lastEventID ?? 0, event.id)
        }
        return snapshot
    }
}

extension GroupEngine.Persisted {
    /// What a journaled group decision changed.
    mutating func apply(_ kind: GroupEventKind, of event: AgentEvent) {
        if let now = event.active, now != active {
            if now.isEmpty, let first = active.first { lastActive = first }
            active = now
            if !now.isEmpty { hasActivated = true }
        }
        switch kind {
        case .held:
            hold = GroupHold(cause: .operatorRequest, reason: event.reason, since: event.time)
        case .released:
            if hold?.cause == .failoverLimit { recentMoves.removeAll() }
            hold = nil
        case .failoverSuppressed:
            hold = GroupHold(cause: .failoverLimit, reason: event.reason, since: event.time)
        case .failover:
            lastMoveAt = event.time
            switchoverPin = nil
            // Only failovers away from a failed member count against the budget.
            if let from = event.from, event.evidence?[from] != .maintenance { recentMoves.append(event.time) }
        case .failback:
            lastMoveAt = event.time
            switchoverPin = nil
        case .switchover:
            lastMoveAt = event.time
            switchoverPin = event.to
        case .activated, .groupRecovered:
            hasActivated = true
        case .groupDown, .groupDegraded, .memberAdded, .memberRemoved, .isolated, .isolationEnded,
             .activeDownWhileHeld, .failoverWithheld:
            break
        }
    }
}
