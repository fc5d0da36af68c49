#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Foundation
import VitalsStore
import VitalsCore

/// A crash test for the journal, run as a child process by the tests
/// (StoreTortureTests starts its own test binary again to run it): appends
/// records as fast as it can and prints each acknowledged sequence on its
/// own line, unbuffered, so that whatever the test saw printed before it
/// sent `kill -9` must be found in the journal afterwards.
public enum JournalTorture {
    /// The record written: the sequence and some padding, so that files rotate quickly.
    public struct Record: JournalRecord, Equatable {
        public var sequence: UInt64
        public var note: String

        public init(sequence: UInt64, note: String) {
            self.sequence = sequence
            self.note = note
        }
    }

    /// The options used, so the test reads the journal the way it was written:
    /// small files, so that the kill is likely to land near a rotation, and
    /// enough of them to keep every acknowledged record.
    public static let options = EventJournal<Record>.Options(maxFileBytes: 16 * 1024, keepFiles: 1000)

    /// Locks `directory` (creating it), then appends `count` records numbered
    /// on from the journal's last sequence, writing `"<sequence>\n"` to
    /// stdout after each one is on disk. Throws when the directory cannot be
    /// locked or opened, or when a write is refused.
    public static func run(directory: String, count: Int) throws {
        let lock = try StateDirectoryLock.acquire(directory: directory)
        defer { lock.release() }
        let journal = try EventJournal<Record>(directory: directory, options: options,
                                               health: StoreHealth(), clock: SystemClock())
        let padding = String(repeating: "x", count: 64)
        for _ in 0..<count {
            let sequence = journal.nextSequence
            let outcome = journal.append(Record(sequence: sequence, note: padding))
            guard outcome.isWritten else { throw TortureFailure(description: "append \(sequence): \(outcome)") }
            // write(2), not print: stdout buffering would hold back acknowledgements.
            let line = Array("\(sequence)\n".utf8)
            var done = 0
            while done < line.count {
                let n = line.withUnsafeBytes { Glibc.write(1, $0.baseAddress! + done, $0.count - done) }
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { throw TortureFailure(description: "stdout closed") }
                done += n
            }
        }
    }

    struct TortureFailure: Error, CustomStringConvertible {
        var description: String
    }
}
