import Foundation

extension AgentCore {
    /// The entry of `service`, if it exists.
    public func entry(_ service: String) -> Entry? {
        index[service].map { entries[$0] }
    }

    /// True once every probed service has reported at least one result.
    public var firstRoundComplete: Bool { unprobed == 0 }

    /// The views of `names` only: for answers about one group, so their
    /// cost does not grow with the number of services.
    public func views(of names: [String]) -> [String: ServiceView] {
        var views: [String: ServiceView] = [:]
        for name in names {
            if let entry = entry(name) { views[name] = entry.view }
        }
        return views
    }

    /// For each service blocked by a failed `depends_on` ancestor: that root cause.
    public var blockedBy: [String: String] {
        var blocked: [String: String] = [:]
        for service in dependsOn.keys {
            if let root = Dependencies.rootCause(of: service, dependsOn: dependsOn,
                                                 state: { self.entry($0)?.health.state ?? .unknown }) {
                blocked[service] = root
            }
        }
        return blocked
    }

    /// What must survive a restart, as of `now`.
    /// Services in maintenance, with reason and end: what a snapshot and a
    /// cluster's decision state record.
    public var maintenanceRecords: [String: AgentSnapshot.Maintenance] {
        var records: [String: AgentSnapshot.Maintenance] = [:]
        for entry in entries where entry.health.isInMaintenance {
            let name = entry.config.name
            records[name] = .init(reason: maintenanceReasons[name] ?? entry.health.reason, until: maintenanceUntil[name])
        }
        return records
    }

    public func persistentSnapshot(at now: Date) -> AgentSnapshot {
        var lastBeats: [String: Date] = [:]
        var runningSince: [String: Date] = [:]
        var lastKnown = self.lastKnown
        for entry in entries {
            let name = entry.config.name
            if case .heartbeat(let t) = entry.health {
                lastBeats[name] = t.lastBeat
                runningSince[name] = t.runningSince
            }
            if entry.health.state != .unknown && entry.health.state != .maintenance {
                lastKnown[name] = entry.view
            }
        }
        return AgentSnapshot(savedAt: now, groups: coordinator.persisted, maintenance: maintenanceRecords,
                             lastBeats: lastBeats, runningSince: runningSince.isEmpty ? nil : runningSince,
                             lastKnown: lastKnown, lastEventID: nextEventID - 1)
    }
}
