#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
@testable import VitalsProcess
import VitalsTestKit

@Suite("ChildProcess: timeouts, process groups, reaping")
struct SupervisionTests {
    @Test("a timeout kills the child and its grandchild")
    func timeoutKillsGroup() async throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let pidFile = scratch.file("grandchild.pid")
        let script = try scratch.script("hang.sh", "sleep 60 &\necho $! > \"$1\"\nsleep 60")
        let result = await ChildProcess.run(ChildProcessSpec(argv: [script, pidFile], timeout: .milliseconds(800),
                                                             killGrace: .seconds(2)))
        #expect(result.timedOut)
        #expect(result.termination == .signaled(signal: SIGTERM))
        #expect(result.duration < .seconds(20))
        let child = try #require(result.pid)
        #expect(isReaped(child))
        let grandchild = try #require(await readPid(pidFile))
        #expect(await waitUntilGone(grandchild))
    }

    @Test("a group that ignores SIGTERM gets SIGKILL after the grace")
    func killAfterGrace() async throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let pidFile = scratch.file("grandchild.pid")
        let script = try scratch.script("stubborn.sh", "trap '' TERM\nsleep 60 &\necho $! > \"$1\"\nsleep 60")
        let result = await ChildProcess.run(ChildProcessSpec(argv: [script, pidFile], timeout: .milliseconds(500),
                                                             killGrace: .milliseconds(300)))
        #expect(result.timedOut)
        #expect(result.termination == .signaled(signal: SIGKILL))
        #expect(result.duration >= .milliseconds(800))
        #expect(result.duration < .seconds(20))
        let grandchild = try #require(await readPid(pidFile))
        #expect(await waitUntilGone(grandchild))
    }

    @Test("a grandchild left holding the pipes does not hold up the run, and is killed")
    func leftoverGrandchild() async throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let pidFile = scratch.file("grandchild.pid")
        let script = try scratch.script("leave.sh", "sleep 60 &\necho $! > \"$1\"\necho bye\nexit 5")
        let result = await ChildProcess.run(ChildProcessSpec(argv: [script, pidFile], timeout: .seconds(30),
                                                             killGrace: .seconds(1)))
        #expect(result.termination == .exited(code: 5))
        #expect(!result.timedOut)
        #expect(result.stdout.text == "bye\n")
        #expect(result.duration < .seconds(20))
        let grandchild = try #require(await readPid(pidFile))
        #expect(await waitUntilGone(grandchild))
    }

    @Test("a leftover that ignores SIGTERM and holds the pipes is killed after the grace")
    func stubbornLeftover() async throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let pidFile = scratch.file("grandchild.pid")
        let script = try scratch.script("leave.sh", "trap '' TERM\nsleep 60 &\necho $! > \"$1\"\nexit 0")
        let result = await ChildProcess.run(ChildProcessSpec(argv: [script, pidFile], killGrace: .milliseconds(300)))
        #expect(result.termination == .exited(code: 0))
        #expect(result.duration >= .milliseconds(300))
        #expect(result.duration < .seconds(20))
        let grandchild = try #require(await readPid(pidFile))
        #expect(await waitUntilGone(grandchild))
    }

    @Test("a child that never reads stdin while we write 1 MB does not deadlock")
    func unreadStdin() async {
        let input = [UInt8](repeating: 0x41, count: 1 << 20)
        // Writes more than a pipe holds and never reads: both sides would block without poll.
        let spec = ChildProcessSpec(argv: ["/bin/sh", "-c", "head -c 300000 /dev/zero; exit 7"], stdin: input,
                                    timeout: .seconds(30))
        let result = await ChildProcess.run(spec)
        #expect(result.termination == .exited(code: 7))
        #expect(!result.timedOut)
        #expect(result.stdout.totalBytes == 300_000)
        #expect(result.stdinBytesWritten < input.count)
    }

    @Test("a child that never reads stdin nor exits is ended by the timeout")
    func unreadStdinHang() async {
        let input = [UInt8](repeating: 0x41, count: 1 << 20)
        let result = await ChildProcess.run(ChildProcessSpec(argv: ["/bin/sleep", "60"], stdin: input,
                                                             timeout: .milliseconds(300), killGrace: .milliseconds(500)))
        #expect(result.timedOut)
        #expect(result.termination == .signaled(signal: SIGTERM))
        #expect(result.duration < .seconds(20))
    }

    @Test("a child that exits at once while we write stdin: EPIPE, not SIGPIPE")
    func earlyExitWhileWriting() async {
        let input = [UInt8](repeating: 0x42, count: 4 << 20)
        for _ in 0..<5 {
            let result = await ChildProcess.run(ChildProcessSpec(argv: ["/bin/sh", "-c", "exit 0"], stdin: input))
            #expect(result.termination == .exited(code: 0))
        }
        // Still alive: a SIGPIPE would have ended the test process.
    }

    @Test("no zombie is left behind")
    func noZombies() async throws {
        var pids: [pid_t] = []
        for code in 0..<5 {
            let result = await ChildProcess.run(ChildProcessSpec(argv: ["/bin/sh", "-c", "exit \(code)"]))
            pids.append(try #require(result.pid))
        }
        let timedOut = await ChildProcess.run(ChildProcessSpec(argv: ["/bin/sleep", "60"], timeout: .milliseconds(100)))
        pids.append(try #require(timedOut.pid))
        for pid in pids { #expect(isReaped(pid), "pid \(pid) was not reaped") }
        let zombies = Set(zombieChildren())
        #expect(zombies.isDisjoint(with: pids))
    }

    @Test("cancelling the task terminates the group")
    func cancellation() async throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let pidFile = scratch.file("child.pid")
        let task = Task {
            await ChildProcess.run(ChildProcessSpec(argv: ["/bin/sh", "-c", "echo $$ > \"$0\"; exec sleep 60", pidFile],
                                                    killGrace: .milliseconds(500)))
        }
        let pid = try #require(await readPid(pidFile))
        task.cancel()
        let result = await task.value
        #expect(result.cancelled)
        #expect(!result.timedOut)
        #expect(result.pid == pid)
        #expect(result.termination == .signaled(signal: SIGTERM))
        #expect(isReaped(pid))
    }

    @Test("a cancellation before the run spawns nothing")
    func cancelledBeforeStart() {
        let cancellation = ChildProcessCancellation()
        cancellation.cancel()
        let result = ChildProcess.runBlocking(ChildProcessSpec(argv: ["/bin/true"]), cancellation: cancellation)
        #expect(result.cancelled)
        #expect(result.pid == nil)
    }

    @Test("the child starts with an empty signal mask even when ours blocks signals")
    func signalMaskReset() async {
        let result = await onOwnThread {
            var set = sigset_t()
            sigemptyset(&set)
            sigaddset(&set, SIGUSR1)
            var old = sigset_t()
            pthread_sigmask(SIG_BLOCK, &set, &old)
            defer { pthread_sigmask(SIG_SETMASK, &old, nil) }
            return ChildProcess.runBlocking(ChildProcessSpec(argv: ["/bin/sh", "-c", "kill -USR1 $$; exit 0"]))
        }
        #expect(result.termination == .signaled(signal: SIGUSR1))
    }

    @Test("the child runs in a process group of its own")
    func ownProcessGroup() async {
        let result = await ChildProcess.run(ChildProcessSpec(argv: ["/bin/sh", "-c", "ps -o pgid= -p $$ 2>/dev/null || cut -d' ' -f5 /proc/$$/stat"]))
        let pgid = result.stdout.text.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(pgid == result.pid.map { String($0) })
    }

    @Test("only stdin, stdout and stderr are open in the child")
    func noInheritedDescriptors() async throws {
        // An fd of ours without close-on-exec must not reach the child either.
        let leaked = open("/dev/null", O_RDONLY)
        #expect(leaked > 2)
        defer { close(leaked) }
        let result = await ChildProcess.run(ChildProcessSpec(argv: ["/bin/ls", "/proc/self/fd"], stdin: [1]))
        let fds = Set(result.stdout.text.split(separator: "\n").map(String.init))
        // ls itself opens one descriptor to read the directory.
        #expect(fds.isSubset(of: ["0", "1", "2", "3"]))
        #expect(!fds.contains(String(leaked)) || leaked == 3)
    }

    @Test("many runs at once each get their own output")
    func concurrentRuns() async {
        let results = await withTaskGroup(of: (Int, ChildProcessResult).self) { group in
            for i in 0..<24 {
                group.addTask {
                    (i, await ChildProcess.run(ChildProcessSpec(argv: ["/bin/sh", "-c", "echo \(i); exit \(i % 4)"],
                                                                timeout: .seconds(30))))
                }
            }
            var all: [(Int, ChildProcessResult)] = []
            for await result in group { all.append(result) }
            return all
        }
        #expect(results.count == 24)
        for (i, result) in results {
            #expect(result.stdout.text == "\(i)\n")
            #expect(result.termination == .exited(code: Int32(i % 4)))
        }
    }

    @Test("without pidfd (kernels before 5.3) exits and timeouts are still seen")
    func withoutPidfd() async throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let quick = await onOwnThread {
            ChildProcess.runBlocking(ChildProcessSpec(argv: ["/bin/sh", "-c", "echo hi; exit 6"]), cancellation: nil, usePidfd: false)
        }
        #expect(quick.termination == .exited(code: 6))
        #expect(quick.stdout.text == "hi\n")
        let pidFile = scratch.file("grandchild.pid")
        let script = try scratch.script("hang.sh", "sleep 60 &\necho $! > \"$1\"\nsleep 60")
        let slow = await onOwnThread {
            ChildProcess.runBlocking(ChildProcessSpec(argv: [script, pidFile], timeout: .milliseconds(300),
                                                      killGrace: .milliseconds(300)), cancellation: nil, usePidfd: false)
        }
        #expect(slow.timedOut)
        #expect(slow.termination == .signaled(signal: SIGTERM))
        #expect(isReaped(try #require(slow.pid)))
        let grandchild = try #require(await readPid(pidFile))
        #expect(await waitUntilGone(grandchild))
    }
}
