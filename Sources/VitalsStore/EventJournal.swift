import Foundation
import Synchronization
import VitalsCore

/// A record of the event journal. `sequence` is assigned by the caller,
/// one more than the journal's `lastSequence`, so that numbering carries on
/// across restarts and a decision can be matched with its result.
public protocol JournalRecord: Codable, Sendable {
    var sequence: UInt64 { get }
}

/// An append-only journal of records, one JSON object per line, rotated by
/// size: `events.jsonl` is written; when the next write would take it past
/// `maxFileBytes` it becomes `events.jsonl.1`, the `.1` before it `.2`, and
/// so on up to `keepFiles` files in all, the oldest being removed.
///
/// **Durability.** `append` returns `.written` only after the line is
/// `fdatasync`ed, so a record the caller saw written survives `kill -9` and a
/// power cut; this is what lets the agent record a decision before acting.
///
/// **Crash recovery.** Opening reads the active file: a last line cut short
/// by a crash (no newline, or not parseable) is reported and cut off, so
/// later appends start on a clean line; `lastSequence` is recovered from the
/// newest record. A bad line elsewhere is skipped with a warning by
/// `loadTail`, never fatal.
///
/// **A failing disk.** A write refused by the disk (full, read-only,
/// permission) does not throw: the record waits, in order, in a bounded
/// in-memory queue (`maxPendingRecords`; beyond it the oldest are dropped
/// and counted), `append` returns `.deferred`, and `StoreHealth` shows the
/// error. The queue is written, oldest first, before the next record, or by
/// `retryPending()`, which the agent calls on a timer; once it is written the
/// health clears. So the natural use is: append, log a `.deferred` outcome,
/// go on.
///
/// One journal per directory and process: the state directory's lock keeps
/// other processes out. Calls from several threads are serialized.
public final class EventJournal<Record: JournalRecord>: Sendable {
    public struct Options: Equatable, Sendable {
        /// The active file's name in the directory. Default `events.jsonl`.
        public var fileName: String
        /// The size at which the active file is rotated; a single record
        /// larger than this gets a file of its own. Default 4 MiB.
        public var maxFileBytes: Int
        /// How many files are kept, counting the active one (at least 2, so
        /// that the records just before a rotation are still there to be
        /// read). Default 5: with the default size, 20 MiB of history.
        public var keepFiles: Int
        /// How many records are held in memory while the disk refuses
        /// writes (at least 1). Default 10,000.
        public var maxPendingRecords: Int

        public init(fileName: String = "events.jsonl", maxFileBytes: Int = 4 << 20,
                    keepFiles: Int = 5, maxPendingRecords: Int = 10_000) {
            self.fileName = fileName
            self.maxFileBytes = max(1, maxFileBytes)
            self.keepFiles = max(2, keepFiles)
            self.maxPendingRecords = max(1, maxPendingRecords)
        }
    }

    /// The directory holding the journal.
    public let directory: String
    /// The active file, `DIR/events.jsonl`.
    public let path: String
    public let options: Options
    /// What opening found and repaired (a torn last line cut off), one
    /// sentence each, naming file and line. Also returned by `loadTail`.
    public let recoveryWarnings: [String]

    private struct PendingLine {
        var sequence: UInt64
        var bytes: [UInt8]
    }

    private struct Inner {
        /// Bytes of complete records in the active file: where the next write goes.
        var activeSize: Int
        var lastSequence: UInt64?
        var pending: [PendingLine] = []
        var dropped = 0
    }

    private let inner: Mutex<Inner>
    private let health: StoreHealth
    private let clock: any VitalsClock
    private let disk: any StoreDisk
    private let encoder = StoreCoding.encoder()
    private let decoder = StoreCoding.decoder()

    /// Opens the journal in `directory` (which must exist), repairing a torn
    /// last line. Throws `.cannotRead` only when an existing journal file
    /// cannot be read; a failure to cut a torn line is a warning (the next
    /// append cuts it).
    public init(directory: String, options: Options = Options(), health: StoreHealth,
                clock: any VitalsClock, disk: any StoreDisk = PosixStoreDisk()) throws(StoreError) {
        self.directory = directory
        self.options = options
        self.path = directory.hasSuffix("/") ? directory + options.fileName : directory + "/" + options.fileName
        self.health = health
        self.clock = clock
        self.disk = disk

        let decoder = self.decoder
        var warnings: [String] = []
        let bytes: [UInt8]
        do throws(StoreFailure) {
            bytes = try StorePosix.readFile(path) ?? []
        } catch {
            throw .cannotRead(error)
        }
        let active = Self.parse(bytes, path: path, decoder: decoder)
        if let torn = active.torn {
            warnings.append(torn.warning + "; cut off so that appends start on a clean line")
            do throws(StoreFailure) {
                let fd = try StorePosix.open(path, O_WRONLY)
                defer { StorePosix.close(fd) }
                try StorePosix.truncate(fd, to: active.goodLength, path: path)
                try StorePosix.fdatasync(fd, path: path)
            } catch {
                warnings.append("could not cut the torn line off \(path) (\(error)); the next append will")
            }
        }
        var last = active.records.map(\.sequence).max()
        var index = 1
        while last == nil && index < options.keepFiles {
            let older = Self.rotatedPath(path, index)
            if let olderBytes = try? StorePosix.readFile(older) {
                last = Self.parse(olderBytes, path: older, decoder: decoder).records.map(\.sequence).max()
            }
            index += 1
        }
        recoveryWarnings = warnings
        inner = Mutex(Inner(activeSize: active.goodLength, lastSequence: last))
    }

    /// The highest sequence in the journal when it was opened, or appended
    /// since (written or pending); nil for an empty journal.
    public var lastSequence: UInt64? { inner.withLock { $0.lastSequence } }

    /// The sequence for the next record: `lastSequence + 1`, starting at 1.
    public var nextSequence: UInt64 { (lastSequence ?? 0) + 1 }

    /// Records waiting in memory for the disk.
    public var pendingCount: Int { inner.withLock { $0.pending.count } }

    /// Records dropped, oldest first, because the pending queue was full.
    public var droppedCount: Int { inner.withLock { $0.dropped } }

    /// Appends `record` after any pending ones and returns once all are on
    /// disk (`.written`), or keeps them in memory and says why (`.deferred`).
    @discardableResult
    public func append(_ record: Record) -> WriteOutcome {
        let line: [UInt8]
        do {
            line = Array(try encoder.encode(record)) + [UInt8(ascii: "\n")]
        } catch {
            return .rejected("cannot encode journal record \(record.sequence) for \(path): \(error)")
        }
        return inner.withLock { inner in
            inner.lastSequence = max(inner.lastSequence ?? record.sequence, record.sequence)
            inner.pending.append(PendingLine(sequence: record.sequence, bytes: line))
            let excess = inner.pending.count - options.maxPendingRecords
            if excess > 0 {
                inner.pending.removeFirst(excess)
                inner.dropped += excess
            }
            return flush(&inner)
        }
    }

    /// Writes the pending records, oldest first. `.written` when none is
    /// left (or none was pending).
    @discardableResult
    public func retryPending() -> WriteOutcome {
        inner.withLock { flush(&$0) }
    }

    /// The newest `limit` records on disk, oldest first, read from the
    /// active file and as many rotated files as it takes, with a warning
    /// (file and line) for each line skipped, after `recoveryWarnings`.
    /// Pending records, not yet on disk, are not included.
    public func loadTail(limit: Int) -> (records: [Record], warnings: [String]) {
        inner.withLock { _ in
            var warnings = recoveryWarnings
            var files: [[Record]] = []
            var total = 0
            for index in 0..<options.keepFiles where total < limit {
                let file = index == 0 ? path : Self.rotatedPath(path, index)
                let bytes: [UInt8]
                do throws(StoreFailure) {
                    guard let read = try StorePosix.readFile(file) else { continue }
                    bytes = read
                } catch {
                    warnings.append("cannot read \(file): \(error.reason); its records are left out")
                    continue
                }
                let parsed = Self.parse(bytes, path: file, decoder: decoder)
                warnings += parsed.warnings
                if let torn = parsed.torn { warnings.append(torn.warning + "; skipped") }
                files.append(parsed.records)
                total += parsed.records.count
            }
            return (Array(files.reversed().joined().suffix(max(0, limit))), warnings)
        }
    }

    // MARK: - Writing

    private func flush(_ inner: inout Inner) -> WriteOutcome {
        var written = 0
        do throws(StoreFailure) {
            while written < inner.pending.count {
                let first = inner.pending[written].bytes
                if inner.activeSize > 0 && inner.activeSize + first.count > options.maxFileBytes {
                    try rotate()
                    inner.activeSize = 0
                }
                // As many records as fit in the active file go in one write and one sync.
                var chunk = first
                var end = written + 1
                while end < inner.pending.count,
                      inner.activeSize + chunk.count + inner.pending[end].bytes.count <= options.maxFileBytes {
                    chunk += inner.pending[end].bytes
                    end += 1
                }
                inner.activeSize = try disk.append(chunk, to: path, at: inner.activeSize)
                written = end
            }
        } catch {
            inner.pending.removeFirst(written)
            health.recordFailure(error, component: path, at: clock.now())
            health.recordQueue(component: path, pending: inner.pending.count, dropped: inner.dropped)
            return .deferred(error)
        }
        inner.pending.removeAll()
        health.recordSuccess(component: path)
        health.recordQueue(component: path, pending: 0, dropped: inner.dropped)
        return .written
    }

    /// Shifts `.1`… up by one and makes the active file `.1`. Shifting stops
    /// at the first missing number (left by a crash mid-rotation), so no
    /// file is removed while there is room; only when all `keepFiles - 1`
    /// exist is the oldest removed. A crash at any step loses nothing but
    /// that oldest file, and the next rotation carries on.
    ///
    /// The renames are made durable by the append that follows: it creates
    /// the new active file, and the disk syncs the directory for a new file.
    private func rotate() throws(StoreFailure) {
        let last = options.keepFiles - 1
        let gap = (1...last).first { !StorePosix.exists(Self.rotatedPath(path, $0)) } ?? last
        if gap == last {
            try StorePosix.unlinkIfPresent(Self.rotatedPath(path, last))
        }
        for index in stride(from: gap - 1, through: 1, by: -1) {
            try StorePosix.rename(Self.rotatedPath(path, index), Self.rotatedPath(path, index + 1))
        }
        do throws(StoreFailure) {
            try StorePosix.rename(path, Self.rotatedPath(path, 1))
        } catch where error.errno == ENOENT {
            // The active file was removed by hand: nothing to keep.
        }
    }

    static func rotatedPath(_ path: String, _ index: Int) -> String { "\(path).\(index)" }

    // MARK: - Reading

    private struct Parsed {
        var records: [Record] = []
        /// Warnings for bad lines before the last one.
        var warnings: [String] = []
        /// The bad last line, if any.
        var torn: (line: Int, warning: String)?
        /// Where the complete, good lines end: the torn line's start, or the whole file.
        var goodLength: Int
    }

    private static func parse(_ bytes: [UInt8], path: String, decoder: JSONDecoder) -> Parsed {
        var parsed = Parsed(goodLength: bytes.count)
        let newline = UInt8(ascii: "\n")
        var start = 0
        var number = 0
        while start < bytes.count {
            number += 1
            let end = bytes[start...].firstIndex(of: newline) ?? bytes.count
            let terminated = end < bytes.count
            let isLast = !terminated || end + 1 == bytes.count
            let line = bytes[start..<end]
            defer { start = end + 1 }
            if terminated && line.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { continue }
            let problem: String?
            if !terminated {
                problem = "no newline"
            } else {
                do {
                    parsed.records.append(try decoder.decode(Record.self, from: Data(line)))
                    problem = nil
                } catch {
                    problem = StoreCoding.explain(error)
                }
            }
            guard let problem else { continue }
            if isLast {
                // A crash mid-write leaves the last line short, or (power
                // cut) filled with zeros: its record was never acknowledged.
                parsed.torn = (number, "\(path) line \(number): torn last line (\(line.count) bytes, \(problem)), left by a crash mid-write")
                parsed.goodLength = start
            } else {
                parsed.warnings.append("\(path) line \(number): skipped a line that is not a journal record (\(problem))")
            }
        }
        return parsed
    }
}
