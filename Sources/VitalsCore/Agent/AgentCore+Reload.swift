import Foundation

/// What a reload changed: services, groups and actions, each matched by name.
public struct ReloadSummary: Sendable, Equatable, CustomStringConvertible {
    /// One section's names: new, gone, different, and how many are the same.
    public struct Changes: Sendable, Equatable, CustomStringConvertible {
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

        /// Compares two lists of named items, in the new list's order.
        init<Item: Equatable>(from old: [Item], to new: [Item], name: (Item) -> String) {
            let before = Dictionary(old.map { (name($0), $0) }, uniquingKeysWith: { first, _ in first })
            for item in new {
                switch before[name(item)] {
                case nil: added.append(name(item))
                case let previous? where previous == item: kept += 1
                case _?: changed.append(name(item))
                }
            }
            let names = Set(new.map(name))
            removed = old.map(name).filter { !names.contains($0) }
        }

        /// `added web-3, changed web-2, 3 unchanged`.
        public var description: String {
            var parts: [String] = []
            if !added.isEmpty { parts.append("added \(added.joined(separator: ", "))") }
            if !removed.isEmpty { parts.append("removed \(removed.joined(separator: ", "))") }
            if !changed.isEmpty { parts.append("changed \(changed.joined(separator: ", "))") }
            parts.append("\(kept) unchanged")
            return parts.joined(separator: ", ")
        }
    }

    public var services = Changes()
    /// A group whose `failback`, `cooldown`, members or `on:` lists changed
    /// is `changed`; it keeps its active member and holds all the same.
    public var groups = Changes()
    public var actions = Changes()

    public init(services: Changes = .init(), groups: Changes = .init(), actions: Changes = .init()) {
        self.services = services
        self.groups = groups
        self.actions = actions
    }

    /// What reloading `new` over `old` changes.
    public init(from old: VitalsConfig, to new: VitalsConfig) {
        services = Changes(from: old.services, to: new.services, name: \.name)
        groups = Changes(from: old.groups, to: new.groups, name: \.name)
        actions = Changes(from: old.actions, to: new.actions, name: \.name)
    }

    /// `services: changed web-2, 3 unchanged; groups: 1 unchanged; actions: changed promote, 2 unchanged`.
    public var description: String {
        "services: \(services); groups: \(groups); actions: \(actions)"
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
        for name in summary.services.removed {
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

    /// A reload that found the file invalid: one event whose reason lists
    /// every error on one line, so the journal, the log and `/v1/events`
    /// say why the previous configuration is still in force.
    mutating func refusedReload(_ errors: [String], at now: Date) -> [AgentEvent] {
        let event = AgentEvent(id: nextEventID, time: now, kind: .reloadRefused,
                               reason: "\(Self.reloadRefusedReason): \(errors.joined(separator: "; "))")
        nextEventID += 1
        recentEvents.append(contentsOf: [event])
        stateVersion &+= 1
        version &+= 1
        return [event]
    }

    /// How a refused reload's reason begins.
    public static let reloadRefusedReason = "reload refused; still running the previous configuration"
}
