#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
import VitalsAgent
@testable import VitalsStore
import VitalsCore
import VitalsTestKit

@Suite struct StoreSnapshotTests {
    struct Saved: Codable, Equatable, Sendable {
        var version: Int
        var maintenance: [String]
        var since: Date
    }

    let clock = ManualClock(storeEpoch)
    let value = Saved(version: 3, maintenance: ["db", "web/api"], since: storeEpoch.addingTimeInterval(0.25))

    @Test func roundTripsAtomically() throws {
        let scratch = try ScratchDirectory()
        let health = StoreHealth()
        let file = SnapshotFile<Saved>(path: scratch.file("state.json"), health: health, clock: clock)
        #expect(try file.read() == nil)
        #expect(file.write(value) == .written)
        #expect(try file.read() == value)
        // Sorted keys, readable dates, nothing left behind.
        #expect(try scratch.contents("state.json") == #"{"maintenance":["db","web/api"],"since":"2027-01-15T08:00:00.250Z","version":3}"#)
        #expect(try scratch.names() == ["state.json"])
        #expect(!health.isDegraded)

        var next = value
        next.version = 4
        #expect(file.write(next) == .written)
        #expect(try file.read() == next)
    }

    /// Dates are written for people ("…T08:00:00.123Z"): they come back to the millisecond.
    @Test func datesComeBackToTheMillisecond() throws {
        let scratch = try ScratchDirectory()
        let file = SnapshotFile<Saved>(path: scratch.file("state.json"), health: StoreHealth(), clock: clock)
        let precise = Saved(version: 1, maintenance: [], since: storeEpoch.addingTimeInterval(0.123_456))
        file.write(precise)
        #expect(try scratch.contents("state.json").contains(#""since":"2027-01-15T08:00:00.123Z""#))
        let since = try #require(try file.read()?.since)
        #expect(abs(since.timeIntervalSince(precise.since)) < 0.001)
    }

    @Test func aTemporaryFileLeftByACrashIsIgnoredAndRemoved() throws {
        let scratch = try ScratchDirectory()
        let file = SnapshotFile<Saved>(path: scratch.file("state.json"), health: StoreHealth(), clock: clock)
        file.write(value)
        // A crash after writing the .tmp, before the rename: half a document.
        try scratch.write(#"{"maintenance":["db"],"vers"#, to: "state.json.tmp")
        #expect(try file.read() == value)
        #expect(try scratch.names() == ["state.json"])
    }

    @Test func aCrashBeforeTheFirstRenameLeavesNoSnapshot() throws {
        let scratch = try ScratchDirectory()
        let file = SnapshotFile<Saved>(path: scratch.file("state.json"), health: StoreHealth(), clock: clock)
        try scratch.write(#"{"version":1"#, to: "state.json.tmp")
        #expect(try file.read() == nil)
        #expect(try scratch.names() == [])
    }

    @Test(arguments: [
        ("{\"version\":1,", "not valid JSON"),
        ("", "empty file"),
        (#"{"version":1,"maintenance":[]}"#, "missing key \"since\" at the top level"),
        (#"{"version":"one","maintenance":[],"since":"2027-01-15T08:00:00Z"}"#, "wrong type at version"),
    ])
    func aCorruptSnapshotIsMovedAsideAndNamed(content: String, reason: String) throws {
        let scratch = try ScratchDirectory()
        let path = scratch.file("state.json")
        try scratch.write(content, to: "state.json")
        let file = SnapshotFile<Saved>(path: path, health: StoreHealth(), clock: clock)
        let error = #expect(throws: StoreError.self) { try file.read() }
        let aside = path + ".corrupt-20270115T080000Z"
        #expect(error?.code == .corruptSnapshot)
        #expect(error?.movedTo == aside)
        #expect(error?.description.hasPrefix("state snapshot \(path) is corrupt (\(reason)") == true)
        #expect(error?.description.hasSuffix("; moved it aside to \(aside)") == true)
        // Nothing is lost, and the caller starts afresh.
        #expect(try scratch.contents("state.json.corrupt-20270115T080000Z") == content)
        #expect(try file.read() == nil)
        #expect(file.write(value) == .written)
        #expect(try file.read() == value)
    }

    @Test func twoCorruptFilesInOneSecondKeepBoth() throws {
        let scratch = try ScratchDirectory()
        let file = SnapshotFile<Saved>(path: scratch.file("state.json"), health: StoreHealth(), clock: clock)
        try scratch.write("first", to: "state.json")
        _ = try? file.read()
        try scratch.write("second", to: "state.json")
        let error = #expect(throws: StoreError.self) { try file.read() }
        #expect(error?.movedTo == scratch.file("state.json.corrupt-20270115T080000Z-2"))
        #expect(try scratch.names() == ["state.json.corrupt-20270115T080000Z", "state.json.corrupt-20270115T080000Z-2"])
    }

    @Test func aFailedWriteIsReportedKeepsTheOldValueAndHealsOnTheNextWrite() throws {
        let scratch = try ScratchDirectory()
        let disk = FailingDisk()
        let health = StoreHealth()
        let path = scratch.file("state.json")
        let file = SnapshotFile<Saved>(path: path, health: health, clock: clock, disk: disk)
        file.write(value)

        disk.mode = .fails(ENOSPC)
        clock.advance(by: .seconds(5))
        var next = value
        next.version = 4
        let failure = StoreFailure(call: "write", path: path + ".tmp", errno: ENOSPC)
        #expect(file.write(next) == .deferred(failure))
        #expect(try file.read() == value)
        #expect(health.isDegraded)
        #expect(health.lastError?.message == "write(\(path).tmp) failed: No space left on device (errno 28)")
        #expect(health.lastError?.at == storeEpoch.addingTimeInterval(5))
        #expect(health.report.failing.map(\.path) == [path])

        disk.mode = .works
        next.version = 5
        #expect(file.write(next) == .written)
        #expect(try file.read() == next)
        #expect(!health.isDegraded)
        #expect(health.lastError?.errno == ENOSPC) // kept, for the operator to see what happened
    }

    @Test func aValueThatCannotBeJSONIsRejectedNotWritten() throws {
        struct Odd: Codable, Sendable { var ratio: Double }
        let scratch = try ScratchDirectory()
        let file = SnapshotFile<Odd>(path: scratch.file("odd.json"), health: StoreHealth(), clock: clock)
        guard case .rejected(let reason) = file.write(Odd(ratio: .nan)) else {
            Issue.record("a NaN was written")
            return
        }
        #expect(reason.contains(scratch.file("odd.json")))
        #expect(try scratch.names() == [])
    }

    /// The real thing, where permission bits apply: a read-only directory.
    @Test func aReadOnlyDirectoryDegradesAndRecovers() throws {
        if permissionBitsIgnored { try Test.cancel("running as root: a read-only directory does not stop root; FailingDisk covers this") }
        let scratch = try ScratchDirectory()
        let health = StoreHealth()
        let path = scratch.file("state.json")
        let file = SnapshotFile<Saved>(path: path, health: health, clock: clock)
        chmod(scratch.path, 0o500)
        #expect(file.write(value) == .deferred(StoreFailure(call: "open", path: path + ".tmp", errno: EACCES)))
        #expect(health.lastError?.message.contains("Permission denied") == true)
        chmod(scratch.path, 0o700)
        #expect(file.write(value) == .written)
        #expect(!health.isDegraded)
    }
}
