import Foundation

/// What a reload changed.
public struct ReloadSummary: Sendable, Equatable, CustomStringConvertible {
    public var added: [String] = []
    public var removed: [String] = []
    public var changed: [String] = []
    public var kept: Int = 0

    public init(added: [String] = [], removed: [String] = [], changed: [String] = [], kept: Int = 0) {
        self.added = added
        self.removed = removed
        self.changed = changed
        self.kept = kept
    }

    /// What reloading `new` over `old` changes, by service name.
    public init(from old: VitalsConfig, to new: VitalsConfig) {
        let before = Dictionary(old.services.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        for service in new.services {
            switch before[service.name] {
            case nil: added.append(service.name)
            case let old? where old == service: kept += 1
            case _?: changed.append(service.name)
            }
        }
        let names = Set(new.services.map(\.name))
        removed = old.services.map(\.name).filter { !names.contains($0) }
    }

    public var description: String {
        var parts: [String] = []
        if !added.isEmpty { parts.append("added \(added.joined(separator: ", "))") }
        if !removed.isEmpty { parts.append("removed \(removed.joined(separator: ", "))") }
        if !changed.isEmpty { parts.append("changed \(changed.joined(separator: ", "))") }
        parts.append("\(kept) unchanged")
        return parts.joined(separator: "; ")
    }
}

extension AgentCore {
    /// Applies a new, already validated configuration. A service whose check
    /// still looks at the same target keeps its state, counters and history
    /// whatever timing or condition keys changed (the new rules apply from
    /// its next result); one whose target changed starts `unknown`, but the
    /// groups go on seeing what they saw until its first decision, so a
    /// reload alone never moves a group or takes it down. Groups keep their
    /// active member, holds and recent moves. The reload is an event of its
    /// own, numbered after the changes decided before it.
    mutating func reload(_ new: VitalsConfig, at now: Date) -> [AgentEvent] {
        let summary = ReloadSummary(from: config, to: new)
        var reloaded = ChunkedArray<Entry>()
        for service in new.services {
            guard let old = index[service.name].map({ entries[$0] }) else {
                reloaded.append(Entry(config: service, health: ServiceHealth(service: service, startedAt: now),
                                      reported: !service.isProbed, carried: nil))
                continue
            }
            if old.config.check.probeTarget == service.check.probeTarget {
                var kept = old
                kept.config = service
                kept.health.adopt(service)
                reloaded.append(kept)
                continue
            }
            var lastBeat: Date?
            if case .heartbeat(let t) = old.health { lastBeat = t.lastBeat }
            reloaded.append(Entry(config: service, health: ServiceHealth(service: service, startedAt: now, lastBeat: lastBeat),
                                  reported: !service.isProbed, carried: old.view))
        }
        for name in summary.removed {
            maintenanceUntil[name] = nil
            maintenanceReasons[name] = nil
        }
        entries = reloaded
        index = Self.index(of: reloaded)
        dependsOn = Self.dependencies(in: new)
        unprobed = reloaded.count { !$0.reported }
        coordinator = FailoverCoordinator(config: new, startedAt: startedAt, restoring: coordinator.persisted)
        config = new
        let event = AgentEvent(id: nextEventID, time: now, kind: .configReloaded,
                               reason: "configuration reloaded: \(summary)")
        nextEventID += 1
        recentEvents.append(contentsOf: [event])
        stateVersion &+= 1
        return [event] + events(transitions: [], groupEvents: coordinator.update(states: views, at: now))
    }
}
