#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
import VitalsAgent
@testable import VitalsStore
import VitalsCore
import VitalsTestKit

/// `kill -9` in the middle of a burst of appends: every record the journal
/// acknowledged must be in it afterwards, and the journal must still parse.
///
/// The writer is a real child process running our code: this test binary
/// itself, started with a filter that selects `tortureChild()` and an
/// environment that enables it (it is skipped in every other run). The
/// child runs `JournalTorture.run`, which prints each acknowledged sequence.
@Suite struct StoreTortureTests {
    static let directoryVariable = "VITALS_JOURNAL_TORTURE_DIR"

    @Test(.enabled(if: ProcessInfo.processInfo.environment[directoryVariable] != nil,
                   "the child half of acknowledgedRecordsSurviveKill9; runs only when that test starts it"))
    func tortureChild() throws {
        let directory = try #require(ProcessInfo.processInfo.environment[Self.directoryVariable])
        try JournalTorture.run(directory: directory, count: 1_000_000)
    }

    @Test(.timeLimit(.minutes(1)))
    func acknowledgedRecordsSurviveKill9() throws {
        let scratch = try ScratchDirectory()
        let directory = scratch.file("state")
        let child = try TortureChild(directory: directory, log: scratch.file("child.log"))

        // Wait for a burst to be under way: 300 acknowledgements, or 1.5 s after the first.
        let clock = ContinuousClock()
        var firstAt: ContinuousClock.Instant?
        let deadline = clock.now + .seconds(20)
        while child.acknowledged.count < 300 && clock.now < deadline {
            if let firstAt, clock.now - firstAt > .milliseconds(1500) { break }
            guard child.readMore(until: deadline) else { break }
            if firstAt == nil && !child.acknowledged.isEmpty { firstAt = clock.now }
        }
        guard !child.acknowledged.isEmpty else {
            child.kill()
            Issue.record("the child acknowledged nothing; it logged:\n\((try? scratch.contents("child.log")) ?? "")")
            return
        }

        // The running child holds the state directory: a second agent is told who.
        let inUse = #expect(throws: StoreError.self) { try StateDirectoryLock.acquire(directory: directory) }
        #expect(inUse?.holderPID == child.pid)

        child.kill()
        let acknowledged = child.acknowledged
        let last = try #require(acknowledged.last)
        #expect(acknowledged == Array(1...last), "acknowledged out of order")

        // kill -9 released the lock.
        try StateDirectoryLock.acquire(directory: directory).release()

        let journal = try EventJournal<JournalTorture.Record>(directory: directory, options: JournalTorture.options,
                                                              health: StoreHealth(), clock: SystemClock())
        #expect(journal.recoveryWarnings.count <= 1, "\(journal.recoveryWarnings)")
        #expect(journal.recoveryWarnings.allSatisfy { $0.contains("torn last line") })
        let tail = journal.loadTail(limit: .max)
        #expect(tail.warnings == journal.recoveryWarnings)
        let sequences = tail.records.map(\.sequence)
        // Everything acknowledged, in order, and at most the one record that
        // was on disk when the kill landed before its acknowledgement.
        #expect(sequences == Array(1...last) || sequences == Array(1...last + 1),
                "acknowledged 1...\(last), journal holds \(sequences.first.map(String.init) ?? "nothing")...\(sequences.last.map(String.init) ?? "")")

        // And it carries on cleanly.
        let next = journal.nextSequence
        #expect(journal.append(JournalTorture.Record(sequence: next, note: "after")) == .written)
        let reopened = try EventJournal<JournalTorture.Record>(directory: directory, options: JournalTorture.options,
                                                               health: StoreHealth(), clock: SystemClock())
        #expect(reopened.recoveryWarnings.isEmpty)
        #expect(reopened.lastSequence == next)
    }
}

/// This test binary, run again as a child selecting only `tortureChild()`.
private final class TortureChild {
    let process = Process()
    private let output = Pipe()
    private var pending = [UInt8]()
    private(set) var acknowledged: [UInt64] = []
    private var finished = false

    var pid: Int32 { process.processIdentifier }

    init(directory: String, log: String) throws {
        // /proc/self/exe: the test binary, however swift test named or started it.
        process.executableURL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        process.arguments = ["--testing-library", "swift-testing", "--filter", "StoreTortureTests/tortureChild"]
        var environment = ProcessInfo.processInfo.environment
        environment[StoreTortureTests.directoryVariable] = directory
        process.environment = environment
        process.standardOutput = output
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        process.standardError = FileHandle(forWritingAtPath: log)
        try process.run()
    }

    /// Reads what the child printed so far, waiting until `deadline` for
    /// something; false at end of output or past the deadline.
    func readMore(until deadline: ContinuousClock.Instant) -> Bool {
        if finished { return false }
        let fd = output.fileHandleForReading.fileDescriptor
        let remaining = deadline - ContinuousClock.now
        guard remaining > .zero else { return false }
        var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&poller, 1, Int32(remaining.milliseconds)) > 0 else { return false }
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n <= 0 {
            finished = true
            return false
        }
        pending += buffer[0..<n]
        // Only whole lines that are just a number: the child's test runner
        // prints its own lines too, and a last line without its newline was
        // cut by the kill mid-print.
        while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
            let line = String(decoding: pending[..<newline], as: UTF8.self)
            pending.removeSubrange(...newline)
            if let sequence = UInt64(line) { acknowledged.append(sequence) }
        }
        return true
    }

    /// `kill -9`, then collects everything printed before it.
    func kill() {
        _ = Glibc.kill(pid, SIGKILL)
        process.waitUntilExit()
        let end = ContinuousClock.now + .seconds(10)
        while readMore(until: end) {}
    }
}
