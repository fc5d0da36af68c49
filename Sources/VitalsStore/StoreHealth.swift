import Foundation
import Synchronization

/// What a durable write came to. The store never throws a disk failure at
/// the agent: it reports it here (and in `StoreHealth`) and keeps going.
public enum WriteOutcome: Equatable, Sendable {
    /// On disk (`fsync`ed), together with any record that was pending before it.
    case written
    /// The disk refused (full, read-only, permission). The journal keeps the
    /// record in memory and retries it, in order, before the next append or
    /// on `retryPending()`; a snapshot is retried by its next `write`.
    case deferred(StoreFailure)
    /// The value could not be encoded as JSON (a non-finite `Double`, for
    /// instance); it will never be written. The text says why.
    case rejected(String)

    public var isWritten: Bool {
        if case .written = self { return true }
        return false
    }
}

/// The store's health, for `/v1/status` and `/healthz`: whether any file is
/// failing to be written now, the last write error with its time, and how
/// many journal records wait in memory or were dropped.
///
/// Every writer (each journal, each snapshot file) reports under its own
/// path: the store is degraded while at least one of them is failing, and
/// heals by itself when each has written successfully again.
public final class StoreHealth: Sendable {
    /// A write error, as the operator sees it.
    public struct Problem: Equatable, Sendable {
        /// The file that could not be written.
        public var path: String
        /// `"write(/var/lib/vitals/events.jsonl) failed: No space left on device (errno 28)"`.
        public var message: String
        public var errno: Int32
        public var at: Date

        public init(path: String, message: String, errno: Int32, at: Date) {
            self.path = path
            self.message = message
            self.errno = errno
            self.at = at
        }
    }

    /// Everything at one instant.
    public struct Report: Equatable, Sendable {
        /// True while at least one file is failing to be written.
        public var isDegraded: Bool { !failing.isEmpty }
        /// The files failing now, with their latest error, ordered by path.
        public var failing: [Problem]
        /// The most recent write error, kept after recovery so the operator
        /// can see what happened; nil if there never was one.
        public var lastError: Problem?
        /// Journal records held in memory, waiting for the disk.
        public var pendingRecords: Int
        /// Journal records dropped because the pending queue was full (oldest first), since start.
        public var droppedRecords: Int
        /// Failed writes (journal appends and snapshot writes, retries included), since start.
        public var writeErrors: Int

        public init(failing: [Problem], lastError: Problem?, pendingRecords: Int, droppedRecords: Int,
                    writeErrors: Int = 0) {
            self.failing = failing
            self.lastError = lastError
            self.pendingRecords = pendingRecords
            self.droppedRecords = droppedRecords
            self.writeErrors = writeErrors
        }
    }

    private struct Inner {
        var failing: [String: Problem] = [:]
        var lastError: Problem?
        var pending: [String: Int] = [:]
        var dropped: [String: Int] = [:]
        var writeErrors = 0
    }

    private let inner = Mutex(Inner())

    public init() {}

    public var report: Report {
        inner.withLock { inner in
            Report(failing: inner.failing.values.sorted { $0.path < $1.path },
                   lastError: inner.lastError,
                   pendingRecords: inner.pending.values.reduce(0, +),
                   droppedRecords: inner.dropped.values.reduce(0, +),
                   writeErrors: inner.writeErrors)
        }
    }

    public var isDegraded: Bool { inner.withLock { !$0.failing.isEmpty } }

    public var lastError: Problem? { inner.withLock { $0.lastError } }

    /// Records that the writer of `component` failed.
    func recordFailure(_ failure: StoreFailure, component: String, at time: Date) {
        let problem = Problem(path: component, message: failure.description, errno: failure.errno, at: time)
        inner.withLock {
            $0.failing[component] = problem
            $0.lastError = problem
            $0.writeErrors += 1
        }
    }

    /// Records that the writer of `component` wrote successfully.
    func recordSuccess(component: String) {
        inner.withLock { _ = $0.failing.removeValue(forKey: component) }
    }

    /// The journal at `component` reports its queue.
    func recordQueue(component: String, pending: Int, dropped: Int) {
        inner.withLock {
            $0.pending[component] = pending
            $0.dropped[component] = dropped
        }
    }
}
