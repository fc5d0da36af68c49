#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
import VitalsAgent
@testable import VitalsStore
import VitalsCore
import VitalsTestKit

@Suite struct StoreJournalTests {
    let clock = ManualClock(storeEpoch)

    func open(_ scratch: borrowing ScratchDirectory, _ options: EventJournal<TestEvent>.Options = .init(),
              health: StoreHealth = StoreHealth(), disk: any StoreDisk = PosixStoreDisk()) throws -> EventJournal<TestEvent> {
        try EventJournal<TestEvent>(directory: scratch.path, options: options, health: health, clock: clock, disk: disk)
    }

    /// Small files: three test records fit in one, a fourth rotates.
    static let small = EventJournal<TestEvent>.Options(maxFileBytes: 200, keepFiles: 10)

    @Test func appendsOneJSONLinePerRecordAndReadsTheTailInOrder() throws {
        let scratch = try ScratchDirectory()
        let journal = try open(scratch)
        #expect(journal.lastSequence == nil)
        #expect(journal.nextSequence == 1)
        for s in 1...10 { #expect(journal.append(event(UInt64(s))) == .written) }
        let lines = try scratch.contents("events.jsonl").split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.count == 11 && lines.last == "")
        #expect(lines[0] == #"{"at":"2027-01-15T08:00:01.000Z","kind":"probe","sequence":1}"#)

        let tail = journal.loadTail(limit: 4)
        #expect(tail.records == (7...10).map { event(UInt64($0)) })
        #expect(tail.warnings.isEmpty)
        #expect(journal.loadTail(limit: 100).records.map(\.sequence) == Array(1...10))
        #expect(journal.loadTail(limit: 0).records.isEmpty)
    }

    @Test func theTailSpansRotatedFiles() throws {
        let scratch = try ScratchDirectory()
        let journal = try open(scratch, Self.small)
        for s in 1...20 { journal.append(event(UInt64(s))) }
        #expect(try scratch.names() == ["events.jsonl"] + (1...6).map { "events.jsonl.\($0)" })
        #expect(journal.loadTail(limit: 7).records.map(\.sequence) == Array(14...20))
        #expect(journal.loadTail(limit: 100).records.map(\.sequence) == Array(1...20))
        // Every file holds whole records and no more than the limit.
        for name in try scratch.names() {
            let size = try FileManager.default.attributesOfItem(atPath: scratch.file(name))[.size] as? Int ?? 0
            #expect(size <= 200, "\(name) is \(size) bytes")
            #expect(try scratch.contents(name).hasSuffix("}\n"))
        }
    }

    @Test func rotationKeepsKFilesAndDropsTheOldest() throws {
        let scratch = try ScratchDirectory()
        let journal = try open(scratch, .init(maxFileBytes: 200, keepFiles: 3))
        for s in 1...30 { journal.append(event(UInt64(s))) }
        #expect(try scratch.names() == ["events.jsonl", "events.jsonl.1", "events.jsonl.2"])
        #expect(journal.loadTail(limit: 100).records.map(\.sequence) == Array(22...30))
    }

    /// Right after a rotation the active file holds one record: the tail
    /// must come from the file before it, whatever the moment.
    @Test func rotationNeverHidesTheRecordsTheTailNeeds() throws {
        let scratch = try ScratchDirectory()
        // keepFiles 1 is raised to 2: the previous file must stay readable.
        let journal = try open(scratch, .init(maxFileBytes: 200, keepFiles: 1))
        #expect(journal.options.keepFiles == 2)
        for s in 1...20 {
            journal.append(event(UInt64(s)))
            let want = (max(1, s - 2)...s).map { UInt64($0) }
            #expect(journal.loadTail(limit: 3).records.map(\.sequence) == want, "after \(s)")
        }
        #expect(try scratch.names() == ["events.jsonl", "events.jsonl.1"])
    }

    @Test func aRotationInterruptedByACrashLosesNothing() throws {
        let scratch = try ScratchDirectory()
        var journal = try open(scratch, Self.small)
        for s in 1...9 { journal.append(event(UInt64(s))) } // events.jsonl.2, .1, active: 1-3, 4-6, 7-9
        // A crash mid-rotation: .2 was renamed to .3, .1 not yet moved.
        try FileManager.default.moveItem(atPath: scratch.file("events.jsonl.2"), toPath: scratch.file("events.jsonl.3"))
        journal = try open(scratch, Self.small)
        #expect(journal.loadTail(limit: 100).records.map(\.sequence) == Array(1...9))
        journal.append(event(10)) // rotates into the gap, removing nothing
        #expect(try scratch.names() == ["events.jsonl", "events.jsonl.1", "events.jsonl.2", "events.jsonl.3"])
        #expect(journal.loadTail(limit: 100).records.map(\.sequence) == Array(1...10))
    }

    @Test func aTornLastLineIsCutOffWithAWarningAndAppendsStartClean() throws {
        let scratch = try ScratchDirectory()
        var journal = try open(scratch)
        for s in 1...3 { journal.append(event(UInt64(s))) }
        let intact = try scratch.contents("events.jsonl")
        // A crash mid-write: part of record 4, no newline.
        try scratch.append(#"{"at":"2027-01-15T08:00:04.000Z","ki"#, to: "events.jsonl")

        journal = try open(scratch)
        let path = scratch.file("events.jsonl")
        let warning = "\(path) line 4: torn last line (36 bytes, no newline), left by a crash mid-write; cut off so that appends start on a clean line"
        #expect(journal.recoveryWarnings == [warning])
        #expect(try scratch.contents("events.jsonl") == intact)
        #expect(journal.lastSequence == 3)
        let tail = journal.loadTail(limit: 10)
        #expect(tail.records.map(\.sequence) == [1, 2, 3])
        #expect(tail.warnings == [warning])

        #expect(journal.append(event(4)) == .written)
        journal = try open(scratch)
        #expect(journal.recoveryWarnings.isEmpty)
        #expect(journal.loadTail(limit: 10) == ((1...4).map { event(UInt64($0)) }, []))
    }

    @Test(arguments: [
        ("garbage\n", "not valid JSON"),
        ("\0\0\0\0\0\0\0\0", "no newline"),                    // a power cut: zeros, no newline
        (#"{"sequence":4}"# + "\n", "missing key \"kind\" at the top level"),
    ])
    func anUnparseableLastLineIsTorn(tail: String, reason: String) throws {
        let scratch = try ScratchDirectory()
        var journal = try open(scratch)
        for s in 1...3 { journal.append(event(UInt64(s))) }
        try scratch.append(tail, to: "events.jsonl")
        journal = try open(scratch)
        #expect(journal.recoveryWarnings.count == 1)
        #expect(journal.recoveryWarnings.first?.contains("line 4: torn last line") == true)
        #expect(journal.recoveryWarnings.first?.contains(reason) == true)
        #expect(journal.append(event(4)) == .written)
        #expect(try open(scratch).loadTail(limit: 10).records.map(\.sequence) == [1, 2, 3, 4])
    }

    @Test func aBadLineInTheMiddleIsSkippedWithAWarning() throws {
        let scratch = try ScratchDirectory()
        let journal = try open(scratch)
        journal.append(event(1))
        let first = try scratch.contents("events.jsonl")
        journal.append(event(2))
        let second = try scratch.contents("events.jsonl").dropFirst(first.count)
        try scratch.write(first + "not json at all\n\n" + #"{"hello":"world"}"# + "\n" + second, to: "events.jsonl")

        let reopened = try open(scratch)
        #expect(reopened.recoveryWarnings.isEmpty)
        #expect(reopened.lastSequence == 2)
        let path = scratch.file("events.jsonl")
        let tail = reopened.loadTail(limit: 10)
        #expect(tail.records.map(\.sequence) == [1, 2])
        #expect(tail.warnings == [
            "\(path) line 2: skipped a line that is not a journal record (not valid JSON)",
            "\(path) line 4: skipped a line that is not a journal record (missing key \"sequence\" at the top level)",
        ])
    }

    @Test func theLastSequenceIsRecoveredOnOpen() throws {
        let scratch = try ScratchDirectory()
        var journal = try open(scratch, Self.small)
        for s in 1...8 { journal.append(event(UInt64(s))) }
        journal = try open(scratch, Self.small)
        #expect(journal.lastSequence == 8)
        #expect(journal.nextSequence == 9)

        // A crash between a rotation and the first append: no active file.
        try FileManager.default.removeItem(atPath: scratch.file("events.jsonl"))
        journal = try open(scratch, Self.small)
        #expect(journal.lastSequence == 6)
    }

    @Test func writesTheDiskRefusesWaitInOrderAndAreRetried() throws {
        let scratch = try ScratchDirectory()
        let disk = FailingDisk()
        let health = StoreHealth()
        let journal = try open(scratch, health: health, disk: disk)
        let path = scratch.file("events.jsonl")
        journal.append(event(1))

        disk.mode = .fails(EROFS)
        clock.advance(by: .seconds(3))
        let refused = WriteOutcome.deferred(StoreFailure(call: "write", path: path, errno: EROFS))
        #expect(journal.append(event(2)) == refused)
        #expect(journal.append(event(3)) == refused)
        #expect(journal.pendingCount == 2)
        #expect(journal.lastSequence == 3)
        #expect(health.isDegraded)
        #expect(health.report == StoreHealth.Report(
            failing: [.init(path: path, message: "write(\(path)) failed: Read-only file system (errno 30)", errno: EROFS, at: storeEpoch.addingTimeInterval(3))],
            lastError: .init(path: path, message: "write(\(path)) failed: Read-only file system (errno 30)", errno: EROFS, at: storeEpoch.addingTimeInterval(3)),
            pendingRecords: 2, droppedRecords: 0, writeErrors: 2))
        #expect(journal.loadTail(limit: 10).records.map(\.sequence) == [1])
        #expect(journal.retryPending() == refused)
        #expect(health.report.writeErrors == 3, "a failed retry counts too")

        disk.mode = .works
        #expect(journal.retryPending() == .written)
        #expect(journal.pendingCount == 0)
        #expect(!health.isDegraded)
        #expect(health.report.pendingRecords == 0)
        #expect(health.report.writeErrors == 3, "the count stays after recovery")
        #expect(journal.loadTail(limit: 10).records.map(\.sequence) == [1, 2, 3])
        #expect(journal.retryPending() == .written) // nothing pending: nothing to do

        // The next append also flushes what waits, before itself.
        disk.mode = .fails(ENOSPC)
        journal.append(event(4))
        disk.mode = .works
        #expect(journal.append(event(5)) == .written)
        #expect(journal.loadTail(limit: 10).records.map(\.sequence) == [1, 2, 3, 4, 5])
    }

    @Test func pendingRecordsBeyondTheBoundDropTheOldestAndAreCounted() throws {
        let scratch = try ScratchDirectory()
        let disk = FailingDisk()
        let health = StoreHealth()
        let journal = try open(scratch, .init(maxPendingRecords: 3), health: health, disk: disk)
        journal.append(event(1))
        disk.mode = .fails(ENOSPC)
        for s in 2...7 { journal.append(event(UInt64(s))) }
        #expect(journal.pendingCount == 3)
        #expect(journal.droppedCount == 3)
        #expect(health.report.droppedRecords == 3)
        #expect(health.report.pendingRecords == 3)
        disk.mode = .works
        #expect(journal.retryPending() == .written)
        #expect(journal.loadTail(limit: 10).records.map(\.sequence) == [1, 5, 6, 7])
        #expect(health.report.droppedRecords == 3) // a count since start, not a state
        #expect(!health.isDegraded)
    }

    /// ENOSPC can strike mid-write: half a line lands on disk. The retry
    /// must not glue its record to that half.
    @Test func aWriteThatFailsPartwayLeavesNoTornLineBehind() throws {
        let scratch = try ScratchDirectory()
        let disk = FailingDisk()
        let journal = try open(scratch, disk: disk)
        journal.append(event(1))
        disk.mode = .failsPartway(ENOSPC)
        journal.append(event(2))
        #expect(try scratch.contents("events.jsonl").count > 62) // the half line is there
        disk.mode = .works
        #expect(journal.append(event(3)) == .written)
        let reopened = try open(scratch)
        #expect(reopened.recoveryWarnings.isEmpty)
        #expect(reopened.loadTail(limit: 10) == ([event(1), event(2), event(3)], []))
    }

    @Test func pendingRecordsAreWrittenInBatchesAcrossRotation() throws {
        let scratch = try ScratchDirectory()
        let disk = FailingDisk()
        let journal = try open(scratch, Self.small, disk: disk)
        disk.mode = .fails(ENOSPC)
        for s in 1...10 { journal.append(event(UInt64(s))) }
        let before = disk.appendCalls
        disk.mode = .works
        #expect(journal.retryPending() == .written)
        #expect(disk.appendCalls - before == 4) // 3 + 3 + 3 + 1: one write and one sync per file
        #expect(journal.loadTail(limit: 100).records.map(\.sequence) == Array(1...10))
    }

    /// The real thing, where permission bits apply: a journal file the
    /// agent may no longer write.
    @Test func aReadOnlyJournalDegradesAndRecovers() throws {
        if permissionBitsIgnored { try Test.cancel("running as root: permission bits do not stop root; FailingDisk covers this") }
        let scratch = try ScratchDirectory()
        let health = StoreHealth()
        let journal = try open(scratch, health: health)
        journal.append(event(1))
        chmod(scratch.file("events.jsonl"), 0o400)
        #expect(journal.append(event(2)) == .deferred(StoreFailure(call: "open", path: scratch.file("events.jsonl"), errno: EACCES)))
        #expect(health.lastError?.message.contains("Permission denied") == true)
        #expect(journal.pendingCount == 1)
        chmod(scratch.file("events.jsonl"), 0o600)
        #expect(journal.retryPending() == .written)
        #expect(!health.isDegraded)
        #expect(journal.loadTail(limit: 10).records.map(\.sequence) == [1, 2])
    }
}
