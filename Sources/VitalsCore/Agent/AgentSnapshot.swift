import Foundation

/// What must survive a restart besides the journal.
public struct AgentSnapshot: Codable, Sendable, Equatable {
    public struct Maintenance: Codable, Sendable, Equatable {
        public var reason: String
        public var until: Date?

        public init(reason: String, until: Date?) {
            self.reason = reason
            self.until = until
        }
    }

    public var savedAt: Date
    /// Each group's engine state: active member, hold, recent moves.
    public var groups: [String: GroupEngine.Persisted]
    /// Services an operator put in maintenance.
    public var maintenance: [String: Maintenance]
    /// The last completed run of each heartbeat service.
    public var lastBeats: [String: Date]
    /// When each heartbeat job still running started (its `start` ping), so
    /// `max_runtime` and a schedule count from it after a restart (nil in
    /// snapshots written before it existed).
    public var runningSince: [String: Date]?
    /// Each service's state when the snapshot was taken.
    public var lastKnown: [String: ServiceView]
    /// The id of the last event the snapshot includes; journaled events after
    /// it are replayed at start (nil in snapshots written before it existed:
    /// then events after `savedAt` are).
    public var lastEventID: UInt64?

    public init(savedAt: Date, groups: [String: GroupEngine.Persisted] = [:], maintenance: [String: Maintenance] = [:],
                lastBeats: [String: Date] = [:], runningSince: [String: Date]? = nil,
                lastKnown: [String: ServiceView] = [:], lastEventID: UInt64? = nil) {
        self.savedAt = savedAt
        self.lastEventID = lastEventID
        self.groups = groups
        self.maintenance = maintenance
        self.lastBeats = lastBeats
        self.runningSince = runningSince
        self.lastKnown = lastKnown
    }
}
