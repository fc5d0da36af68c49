import Foundation
import VitalsCore

/// What the journal holds: a decision (an event), or the outcome of one of
/// its actions, under the event's id. Results come after their decision.
public struct JournalEntry: JournalRecord, Equatable {
    public var sequence: UInt64
    public var event: AgentEvent?
    public var action: ActionOutcome?

    public static func decision(_ event: AgentEvent) -> JournalEntry {
        JournalEntry(sequence: event.id, event: event, action: nil)
    }

    public static func result(_ outcome: ActionOutcome, event id: UInt64) -> JournalEntry {
        JournalEntry(sequence: id, event: nil, action: outcome)
    }
}

/// The agent's state directory: the lock, the event journal and the snapshot.
///
/// Opening it takes the lock (a second agent on the same directory is
/// refused), recovers the journal's tail and reads the snapshot. Writing
/// never throws: a failing disk marks `health` degraded and the agent goes on.
public final class AgentStore: Sendable {
    public let directory: String
    public let health: StoreHealth
    private let lock: StateDirectoryLock
    private let journal: EventJournal<JournalEntry>
    private let snapshotFile: SnapshotFile<AgentSnapshot>

    /// What was found on disk at open.
    public struct Recovered: Sendable {
        public var events: [AgentEvent]
        public var snapshot: AgentSnapshot?
        /// Torn lines, corrupt files moved aside: each worth a warning.
        public var warnings: [String]
    }

    public init(directory: String, clock: any VitalsClock) throws(StoreError) {
        try StateDirectory.create(directory)
        self.directory = directory
        lock = try StateDirectoryLock.acquire(directory: directory)
        health = StoreHealth()
        journal = try EventJournal(directory: directory, health: health, clock: clock)
        snapshotFile = SnapshotFile(path: (directory as NSString).appendingPathComponent("state.json"),
                                    health: health, clock: clock)
    }

    /// Reads the journal's tail (folding action results into their events)
    /// and the snapshot.
    public func recover(limit: Int = 1000) -> Recovered {
        let (records, warnings) = journal.loadTail(limit: limit * 4)
        var events: [AgentEvent] = []
        var index: [UInt64: Int] = [:]
        for record in records {
            if let event = record.event {
                if let i = index[event.id] {
                    events[i] = event
                } else {
                    index[event.id] = events.count
                    events.append(event)
                }
            } else if let outcome = record.action, let i = index[record.sequence] {
                events[i].actions.append(outcome)
            }
        }
        var allWarnings = warnings
        var snapshot: AgentSnapshot?
        do {
            snapshot = try snapshotFile.read()
        } catch {
            allWarnings.append("\(error); starting without it")
        }
        return Recovered(events: Array(events.suffix(limit)), snapshot: snapshot, warnings: allWarnings)
    }

    /// Appends a decision; returns once it is on disk (or queued, when the disk fails).
    @discardableResult
    public func record(_ event: AgentEvent) -> WriteOutcome {
        journal.append(.decision(event))
    }

    /// Appends what an action did for event `id`.
    @discardableResult
    public func record(_ outcome: ActionOutcome, forEvent id: UInt64) -> WriteOutcome {
        journal.append(.result(outcome, event: id))
    }

    @discardableResult
    public func save(_ snapshot: AgentSnapshot) -> WriteOutcome {
        snapshotFile.write(snapshot)
    }

    /// Writes what waited for the disk to come back, if anything.
    public func retryPending() {
        if journal.pendingCount > 0 { journal.retryPending() }
    }

    /// The highest event id on disk.
    public var lastSequence: UInt64 { journal.lastSequence ?? 0 }
}
