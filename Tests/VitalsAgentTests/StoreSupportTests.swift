#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Synchronization
import Testing
import VitalsAgent
@testable import VitalsStore
import VitalsCore

/// A disk that fails the way a full or read-only file system does, on
/// demand, and otherwise writes for real. Root ignores permission bits, so
/// this is how write failures are tested whoever runs the tests.
final class FailingDisk: StoreDisk {
    enum Mode: Equatable {
        case works
        /// Every write fails with this errno, touching nothing.
        case fails(Int32)
        /// Appends write half their bytes (a torn line), then fail with this errno.
        case failsPartway(Int32)
    }

    private let state = Mutex<(mode: Mode, appends: Int, replaces: Int)>((.works, 0, 0))
    private let real = PosixStoreDisk()

    var mode: Mode {
        get { state.withLock { $0.mode } }
        set { state.withLock { $0.mode = newValue } }
    }

    /// Calls that reached the disk (successful or not).
    var appendCalls: Int { state.withLock { $0.appends } }

    func append(_ bytes: [UInt8], to path: String, at offset: Int) throws(StoreFailure) -> Int {
        let mode = state.withLock { $0.appends += 1; return $0.mode }
        switch mode {
        case .works:
            return try real.append(bytes, to: path, at: offset)
        case .fails(let err):
            throw StoreFailure(call: "write", path: path, errno: err)
        case .failsPartway(let err):
            let handle = FileHandle(forUpdatingAtPath: path) ?? {
                _ = FileManager.default.createFile(atPath: path, contents: nil)
                return FileHandle(forUpdatingAtPath: path)!
            }()
            handle.seek(toFileOffset: UInt64(offset))
            handle.write(Data(bytes.prefix(bytes.count / 2)))
            handle.closeFile()
            throw StoreFailure(call: "write", path: path, errno: err)
        }
    }

    func replace(_ path: String, with bytes: [UInt8]) throws(StoreFailure) {
        let mode = state.withLock { $0.replaces += 1; return $0.mode }
        switch mode {
        case .works:
            try real.replace(path, with: bytes)
        case .fails(let err), .failsPartway(let err):
            throw StoreFailure(call: "write", path: path + ".tmp", errno: err)
        }
    }
}

/// The journal record the tests write.
struct TestEvent: JournalRecord, Equatable {
    var sequence: UInt64
    var kind: String
    var at: Date
}

/// A scratch state directory, removed at the end of the test.
struct ScratchDirectory: ~Copyable {
    let url: URL
    var path: String { url.path }

    init() throws {
        url = try makeTemporaryDirectory()
    }

    func file(_ name: String) -> String { url.appendingPathComponent(name).path }

    func contents(_ name: String) throws -> String {
        try String(contentsOfFile: file(name), encoding: .utf8)
    }

    func write(_ text: String, to name: String) throws {
        try Data(text.utf8).write(to: url.appendingPathComponent(name))
    }

    func append(_ text: String, to name: String) throws {
        let handle = try FileHandle(forWritingTo: url.appendingPathComponent(name))
        defer { try? handle.close() }
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(text.utf8))
    }

    /// Names in the directory, sorted.
    func names() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: path).sorted()
    }

    deinit {
        // A test may have made it read-only.
        chmod(url.path, 0o700)
        try? FileManager.default.removeItem(at: url)
    }
}

let storeEpoch = Date(timeIntervalSince1970: 1_800_000_000)

/// Test record `sequence`, stamped `sequence` seconds after the epoch
/// (the store keeps dates to the millisecond).
func event(_ sequence: UInt64, _ kind: String = "probe") -> TestEvent {
    TestEvent(sequence: sequence, kind: kind, at: storeEpoch.addingTimeInterval(Double(sequence)))
}

/// True when permission bits do not stop this process (root, CAP_DAC_OVERRIDE).
var permissionBitsIgnored: Bool { geteuid() == 0 }

@Suite struct StoreSupportTests {
    @Test func createsTheStateDirectoryWithMode0700() throws {
        let scratch = try ScratchDirectory()
        let path = scratch.file("a/b/state")
        try StateDirectory.create(path)
        var info = stat()
        #expect(stat(path, &info) == 0)
        #expect(info.st_mode & 0o777 == 0o700)
        try StateDirectory.create(path) // again: already there, fine
    }

    @Test func aStateDirectoryThatIsAFileIsNamed() throws {
        let scratch = try ScratchDirectory()
        try scratch.write("x", to: "state")
        let error = #expect(throws: StoreError.self) { try StateDirectory.create(scratch.file("state")) }
        #expect(error?.code == .notADirectory)
        #expect(error?.description == "state directory \(scratch.file("state")) exists but is not a directory; move it away or set agent.state_dir to another path")
    }

    @Test func aStateDirectoryThatCannotBeCreatedIsNamed() throws {
        let scratch = try ScratchDirectory()
        try scratch.write("x", to: "file")
        let path = scratch.file("file/state")
        let error = #expect(throws: StoreError.self) { try StateDirectory.create(path) }
        #expect(error?.code == .cannotCreateDirectory)
        #expect(error?.description.hasPrefix("cannot create state directory \(path): Not a directory") == true)
    }

    @Test func aStateDirectoryWithoutPermissionIsNamed() throws {
        if permissionBitsIgnored { try Test.cancel("running as root: permission bits do not stop mkdir") }
        let scratch = try ScratchDirectory()
        chmod(scratch.path, 0o500)
        let path = scratch.file("state")
        let error = #expect(throws: StoreError.self) { try StateDirectory.create(path) }
        #expect(error?.description.hasPrefix("cannot create state directory \(path): Permission denied") == true)
    }

    @Test func errorsNameTheCallThePathAndTheReason() {
        let failure = StoreFailure(call: "write", path: "/s/events.jsonl", errno: ENOSPC)
        #expect(failure.description == "write(/s/events.jsonl) failed: No space left on device (errno 28)")
    }
}
