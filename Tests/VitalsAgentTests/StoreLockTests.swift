#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
import VitalsAgent
@testable import VitalsStore

@Suite struct StoreLockTests {
    @Test func theLockCreatesTheDirectoryAndHoldsOurPID() throws {
        let scratch = try ScratchDirectory()
        let directory = scratch.file("state")
        let lock = try StateDirectoryLock.acquire(directory: directory)
        defer { lock.release() }
        #expect(lock.path == directory + "/lock")
        #expect(try String(contentsOfFile: lock.path, encoding: .utf8) == "\(getpid())\n")
        var info = stat()
        #expect(stat(directory, &info) == 0 && info.st_mode & 0o777 == 0o700)
    }

    /// flock locks belong to the open file description: a second acquire in
    /// the same process opens the file anew and is refused like another process.
    @Test func aSecondAcquireIsRefusedWithAClearMessage() throws {
        let scratch = try ScratchDirectory()
        let directory = scratch.file("state")
        let first = try StateDirectoryLock.acquire(directory: directory)
        let error = #expect(throws: StoreError.self) { try StateDirectoryLock.acquire(directory: directory) }
        #expect(error?.code == .directoryInUse)
        #expect(error?.holderPID == getpid())
        #expect(error?.description == "state directory \(directory) is in use by another vitals (pid \(getpid())); stop it or use another agent.state_dir")
        // The refused attempt did not disturb the holder's pid.
        #expect(try String(contentsOfFile: first.path, encoding: .utf8) == "\(getpid())\n")

        first.release()
        let second = try StateDirectoryLock.acquire(directory: directory)
        second.release()
    }

    /// The operator recognizes `agent.state_dir` as written in the config.
    @Test func theMessageUsesThePathAsConfigured() throws {
        let scratch = try ScratchDirectory()
        let lock = try StateDirectoryLock.acquire(directory: scratch.file(".vitals"))
        defer { lock.release() }
        try "1234\n".write(toFile: lock.path, atomically: false, encoding: .utf8)
        let asWritten = scratch.path + "/./.vitals/"
        let error = #expect(throws: StoreError.self) { try StateDirectoryLock.acquire(directory: asWritten) }
        #expect(error?.description == "state directory \(asWritten) is in use by another vitals (pid 1234); stop it or use another agent.state_dir")
    }

    /// Another process holding the lock, here util-linux flock(1) (a real
    /// foreign process; the journal test below uses a vitals child).
    @Test func aLockHeldByAnotherProcessIsRefused() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/flock") else {
            try Test.cancel("/usr/bin/flock is not installed")
        }
        let scratch = try ScratchDirectory()
        let directory = scratch.file("state")
        try StateDirectory.create(directory)
        let holder = Process()
        holder.executableURL = URL(fileURLWithPath: "/usr/bin/flock")
        // flock(1) holds the lock while its command runs; the command says when.
        holder.arguments = ["--exclusive", directory + "/lock", "/bin/sh", "-c", "echo 4242 > '\(directory)/lock'; echo locked; exec cat"]
        let out = Pipe(), input = Pipe()
        holder.standardOutput = out
        holder.standardInput = input
        try holder.run()
        defer {
            try? input.fileHandleForWriting.close() // cat ends, flock ends
            holder.waitUntilExit()
        }
        #expect(String(decoding: out.fileHandleForReading.availableData, as: UTF8.self) == "locked\n")

        let error = #expect(throws: StoreError.self) { try StateDirectoryLock.acquire(directory: directory) }
        #expect(error?.description == "state directory \(directory) is in use by another vitals (pid 4242); stop it or use another agent.state_dir")
    }
}
