#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Synchronization
import Testing
import VitalsProcess
import VitalsTestKit

/// Many children on one supervisor thread, each under the `ChildProcess` contract.
@Suite("ProcessSupervisor: many children, one thread", .serialized)
struct ProcessSupervisorTests {
    /// Collects results by run id.
    final class Results: Sendable {
        private let byID = Mutex<[UInt64: ChildProcessResult]>([:])
        func record(_ id: UInt64) -> ProcessSupervisor.Completion {
            { result in self.byID.withLock { $0[id] = result } }
        }
        func wait(for count: Int, within limit: Duration = .seconds(5)) -> [UInt64: ChildProcessResult] {
            let deadline = ContinuousClock.now + limit
            while ContinuousClock.now < deadline {
                let now = byID.withLock { $0 }
                if now.count >= count { return now }
                usleep(10_000)
            }
            return byID.withLock { $0 }
        }
    }

    @Test("children run at once and each result is its own")
    func manyAtOnce() {
        let supervisor = ProcessSupervisor(threadName: "test-children")
        defer { supervisor.shutdown() }
        let results = Results()
        let started = ContinuousClock.now
        for id in 0..<8 as Range<UInt64> {
            supervisor.start(ChildProcessSpec(argv: ["/bin/sh", "-c", "sleep 0.3; echo child \(id); exit \(id)"]),
                             id: id, completion: results.record(id))
        }
        let all = results.wait(for: 8)
        #expect(all.count == 8)
        #expect(ContinuousClock.now - started < .seconds(2), "the children ran one after another")
        for (id, result) in all {
            #expect(result.termination == .exited(code: Int32(id)))
            #expect(result.stdout.text == "child \(id)\n")
        }
    }

    @Test("stderr merged into stdout keeps the order the child wrote")
    func mergedStderr() {
        let supervisor = ProcessSupervisor(threadName: "test-children")
        defer { supervisor.shutdown() }
        let results = Results()
        supervisor.start(ChildProcessSpec(argv: ["/bin/sh", "-c", "echo one; echo two >&2; echo three"],
                                          stderr: .mergedIntoStdout),
                         id: 1, completion: results.record(1))
        let result = results.wait(for: 1)[1]
        #expect(result?.stdout.text == "one\ntwo\nthree\n")
        #expect(result?.stderr.totalBytes == 0)
    }

    @Test("a cancelled run is terminated and says so; the others go on")
    func cancel() {
        let supervisor = ProcessSupervisor(threadName: "test-children")
        defer { supervisor.shutdown() }
        let results = Results()
        supervisor.start(ChildProcessSpec(argv: ["/bin/sh", "-c", "exec sleep 30"]), id: 1, completion: results.record(1))
        supervisor.start(ChildProcessSpec(argv: ["/bin/sh", "-c", "sleep 0.2; exit 4"]), id: 2, completion: results.record(2))
        supervisor.cancel(id: 1)
        let all = results.wait(for: 2)
        #expect(all[1]?.cancelled == true)
        #expect(all[1]?.termination == .signaled(signal: SIGTERM))
        #expect(all[2]?.termination == .exited(code: 4))
        #expect(all[2]?.cancelled == false)
    }

    @Test("shutdown ends every child and reaps it")
    func shutdownReaps() async throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let pidFile = scratch.file("pid")
        let supervisor = ProcessSupervisor(threadName: "test-children")
        supervisor.start(ChildProcessSpec(argv: ["/bin/sh", "-c", "echo $$ > \(pidFile); exec sleep 30"]),
                         id: 1, completion: { _ in })
        var pid: pid_t?
        let deadline = ContinuousClock.now + .seconds(5)
        while pid == nil && ContinuousClock.now < deadline {
            pid = (try? String(contentsOfFile: pidFile, encoding: .utf8))
                .flatMap { pid_t($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
            usleep(10_000)
        }
        let child = try #require(pid)
        supervisor.shutdown()
        #expect(await waitUntilGone(child))
    }
}
