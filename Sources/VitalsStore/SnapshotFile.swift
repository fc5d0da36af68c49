import Foundation
import Synchronization
import VitalsCore

/// One value kept in one file, replaced whole on every write.
///
/// `write` is atomic and durable: the JSON goes to `PATH.tmp`, which is
/// `fsync`ed and renamed over `PATH`, and the directory is `fsync`ed; a
/// crash at any instant leaves the old value or the new one. A `.tmp` left
/// by a crash is never read, and is removed by the next `read` or `write`.
///
/// A failed write (full or read-only disk) is reported, not thrown: it is
/// recorded in `StoreHealth` and returned as `.deferred`; the next `write`
/// simply tries again with the newer value, and a success clears the health.
///
/// Reads and writes from several threads are serialized.
public final class SnapshotFile<Value: Codable & Sendable>: Sendable {
    /// The file, e.g. `/var/lib/vitals/state.json`.
    public let path: String
    private let health: StoreHealth
    private let clock: any VitalsClock
    private let disk: any StoreDisk
    private let encoder = StoreCoding.encoder()
    private let decoder = StoreCoding.decoder()
    /// One writer of `PATH.tmp` at a time.
    private let serial = Mutex(())

    /// - Parameters:
    ///   - path: the file; its directory must exist (see `StateDirectory.create`).
    ///   - clock: names a corrupt file moved aside and stamps write errors.
    public init(path: String, health: StoreHealth, clock: any VitalsClock, disk: any StoreDisk = PosixStoreDisk()) {
        self.path = path
        self.health = health
        self.clock = clock
        self.disk = disk
    }

    /// Replaces the stored value with `value`; returns once it is on disk,
    /// or tells why it is not.
    @discardableResult
    public func write(_ value: Value) -> WriteOutcome {
        let bytes: [UInt8]
        do {
            bytes = Array(try encoder.encode(value))
        } catch {
            return .rejected("cannot encode the snapshot for \(path): \(error)")
        }
        return serial.withLock { _ in
            do throws(StoreFailure) {
                try disk.replace(path, with: bytes)
            } catch {
                health.recordFailure(error, component: path, at: clock.now())
                return .deferred(error)
            }
            health.recordSuccess(component: path)
            return .written
        }
    }

    /// The stored value, or nil when there is none yet.
    ///
    /// A file that does not decode is moved aside to
    /// `PATH.corrupt-<UTC time>` (nothing is lost; the operator can look at
    /// it) and `.corruptSnapshot` is thrown naming both; the caller logs it
    /// as a warning and starts from defaults. A file that cannot be read at
    /// all throws `.cannotRead`, and is left where it is.
    public func read() throws(StoreError) -> Value? {
        try serial.withLock { _ throws(StoreError) in try readLocked() }
    }

    private func readLocked() throws(StoreError) -> Value? {
        // A .tmp is a write that never reached its rename: `path` holds the
        // value from before it, which is the one to use.
        _ = try? StorePosix.unlinkIfPresent(path + ".tmp")
        let bytes: [UInt8]
        do throws(StoreFailure) {
            guard let read = try StorePosix.readFile(path) else { return nil }
            bytes = read
        } catch {
            throw .cannotRead(error)
        }
        do {
            return try decoder.decode(Value.self, from: Data(bytes))
        } catch {
            let detail = bytes.isEmpty ? "empty file" : StoreCoding.explain(error)
            let aside = Self.asideName(for: path, at: clock.now())
            var moveFailure: StoreFailure?
            do throws(StoreFailure) {
                try StorePosix.rename(path, aside)
            } catch {
                moveFailure = error
            }
            throw .corruptSnapshot(path, detail: detail, movedTo: moveFailure == nil ? aside : nil, moveFailure: moveFailure)
        }
    }

    /// `PATH.corrupt-20260301T120000Z`, with `-2`, `-3`… when one exists already.
    static func asideName(for path: String, at time: Date) -> String {
        let stamp = time.formatted(.iso8601.year().month().day().dateSeparator(.omitted)
            .time(includingFractionalSeconds: false).timeSeparator(.omitted).timeZone(separator: .omitted))
        let base = "\(path).corrupt-\(stamp)"
        var candidate = base
        var n = 1
        while StorePosix.exists(candidate) {
            n += 1
            candidate = "\(base)-\(n)"
        }
        return candidate
    }
}
