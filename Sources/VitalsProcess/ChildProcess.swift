#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CSystem
import Foundation
import Synchronization
import VitalsSystem

/// Runs one program under supervision, the way keepalived's `check_misc.c`
/// runs scripts, and returns once nothing of it is left.
///
/// The contract:
/// - `argv` is executed directly (no shell), in a new process group whose id
///   is the child's pid, with default signal dispositions, an empty signal
///   mask, and only stdin, stdout and stderr open.
/// - `stdin` is written while stdout and stderr are read, all non-blocking
///   under one `poll`, so a child that never reads its stdin, or writes
///   megabytes, cannot deadlock the run. When the child stops reading
///   (closes stdin or exits), the rest of the input is dropped.
/// - stdout and stderr are each kept up to `maxOutputBytes`; the rest is read,
///   counted and dropped, so the child never blocks on a full pipe.
/// - At the timeout (or on cancellation) the whole group gets SIGTERM, then
///   SIGKILL after `killGrace`.
/// - When the child exits, whatever it left behind in its group gets SIGTERM;
///   the run keeps reading the pipes until they close, for at most
///   `killGrace`, then SIGKILLs the group and stops reading within
///   `Self.drainAfterKill` even if a process that escaped the group
///   (`setsid`) still holds them. A grandchild that wants to outlive its
///   parent must leave the group: when `run` returns, every process in the
///   group has been sent SIGKILL.
/// - The child is always reaped (`waitpid` on its pid only, never `-1`, so
///   other supervisors in the process keep their children's statuses).
/// - Every system call retries `EINTR`. SIGPIPE is blocked on the calling
///   thread while it writes stdin, so a child that exits early yields `EPIPE`
///   rather than killing the agent; the process-wide disposition is untouched.
///
/// `runBlocking` may be called from any thread, by many threads at once; it
/// blocks its caller for the whole run. `run` does the same on a thread of its
/// own, so the cooperative pool is never blocked.
public enum ChildProcess {
    /// After the final SIGKILL, how long the pipes are still read for output
    /// that is already in them. Bounded because a process that left the group
    /// may hold them open forever. 250ms.
    public static let drainAfterKill: Duration = .milliseconds(250)

    /// Runs `spec` on a new thread and returns its result. Cancelling the
    /// task terminates the process group like a timeout does.
    public static func run(_ spec: ChildProcessSpec) async -> ChildProcessResult {
        let cancellation = ChildProcessCancellation()
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<ChildProcessResult, Never>) in
                LoopThread.detach(name: "vitals-child") {
                    continuation.resume(returning: runBlocking(spec, cancellation: cancellation))
                }
            }
        } onCancel: {
            cancellation.cancel()
        }
    }

    /// Runs `spec` on the calling thread. `cancellation`, when given and
    /// cancelled (before or during the run), terminates the process group like a timeout.
    public static func runBlocking(_ spec: ChildProcessSpec,
                                   cancellation: ChildProcessCancellation? = nil) -> ChildProcessResult {
        runBlocking(spec, cancellation: cancellation, usePidfd: true)
    }

    /// `usePidfd: false` takes the path of kernels before 5.3 (no `pidfd_open`):
    /// exit is noticed by polling `waitid(WNOWAIT)` every 10ms. For tests.
    static func runBlocking(_ spec: ChildProcessSpec, cancellation: ChildProcessCancellation?,
                            usePidfd: Bool) -> ChildProcessResult {
        let clock = ContinuousClock()
        let started = clock.now
        if let cancellation, cancellation.isCancelled {
            return ChildProcessResult(pid: nil, termination: .spawnFailed(SpawnFailure(
                program: spec.argv.first ?? "", errno: ECANCELED,
                message: "cannot run \(spec.argv.first ?? ""): cancelled before it started")), cancelled: true)
        }

        // SIGPIPE from our stdin writes goes to this thread; block it here so
        // it stays pending and the write reports EPIPE instead.
        var sigpipe = sigset_t()
        sigemptyset(&sigpipe)
        sigaddset(&sigpipe, SIGPIPE)
        var previousMask = sigset_t()
        pthread_sigmask(SIG_BLOCK, &sigpipe, &previousMask)
        defer {
            var pending = sigset_t()
            if sigismember(&previousMask, SIGPIPE) == 0, sigpending(&pending) == 0, sigismember(&pending, SIGPIPE) == 1 {
                var zero = timespec(tv_sec: 0, tv_nsec: 0)
                while sigtimedwait(&sigpipe, nil, &zero) < 0 && errno == EINTR {}
            }
            pthread_sigmask(SIG_SETMASK, &previousMask, nil)
        }

        let child: SpawnedChild
        switch Spawner.spawn(spec) {
        case .failure(let failure):
            return ChildProcessResult(pid: nil, termination: .spawnFailed(failure), duration: clock.now - started)
        case .success(let spawned):
            child = spawned
        }

        var supervision = Supervision(child: child, spec: spec, started: started,
                                      cancelFD: cancellation?.fd ?? -1, usePidfd: usePidfd)
        supervision.loop(clock: clock)
        // Whatever is left of the group dies now. The leader is still an
        // unreaped zombie, so the group id cannot have been reused yet.
        Posix.signalGroup(child.pid, SIGKILL)
        let status = Posix.reap(child.pid) ?? 0 // ECHILD: reaped elsewhere (a waitpid(-1))
        supervision.closeAll()
        return ChildProcessResult(pid: child.pid, termination: .init(waitStatus: status),
                                  timedOut: supervision.timedOut, cancelled: supervision.cancelled,
                                  stdout: supervision.stdout.output, stderr: supervision.stderr.output,
                                  stdinBytesWritten: supervision.stdinOffset, duration: clock.now - started)
    }
}

/// Cancels a `runBlocking` from another thread. Cancelling before the run
/// starts makes the run return at once without spawning.
public final class ChildProcessCancellation: Sendable {
    /// An eventfd the supervising `poll` watches; readable once cancelled.
    let fd: Int32
    private let flag = Atomic<Bool>(false)

    public init() {
        do { fd = try Posix.eventFD() } catch { fatalError("cannot cancel child processes: \(error)") }
    }

    deinit { Posix.close(fd) }

    public var isCancelled: Bool { flag.load(ordering: .acquiring) }

    /// Terminates the supervised process group (SIGTERM, then SIGKILL after the grace). Any thread.
    public func cancel() {
        guard !flag.exchange(true, ordering: .acquiringAndReleasing) else { return }
        Posix.signalEventFD(fd)
    }
}

/// One stream being read: the first `limit` bytes are kept, all are counted.
struct Capture {
    var fd: Int32
    let limit: Int
    var output = CapturedOutput()

    var isOpen: Bool { fd >= 0 }

    /// Reads what the pipe holds now (at most `maxReads` chunks, so one
    /// chatty stream cannot starve the others or the deadlines).
    mutating func drain(_ buffer: UnsafeMutableRawBufferPointer, maxReads: Int = 16) {
        for _ in 0..<maxReads {
            guard fd >= 0 else { return }
            let count: Int?
            do { count = try Posix.read(fd, into: buffer) } catch { count = 0 } // an error ends the stream like EOF
            guard let count else { return } // would block
            if count == 0 {
                Posix.close(fd)
                fd = -1
                return
            }
            output.totalBytes += count
            let room = limit - output.bytes.count
            if room > 0 {
                output.bytes.append(contentsOf: UnsafeRawBufferPointer(rebasing: buffer[0..<min(room, count)]))
            }
        }
    }

    mutating func close() {
        if fd >= 0 { Posix.close(fd) }
        fd = -1
    }
}

/// The state of one supervised run: a small loop around `poll`.
struct Supervision {
    let pid: pid_t
    let pidfd: Int32
    let cancelFD: Int32
    let input: [UInt8]
    let killGrace: Duration
    let deadline: ContinuousClock.Instant?
    var stdinFD: Int32
    var stdinOffset = 0
    var stdout: Capture
    var stderr: Capture
    var exited = false
    var timedOut = false
    var cancelled = false
    /// When SIGTERM went to the group; SIGKILL follows `killGrace` later.
    var killAt: ContinuousClock.Instant?
    var killSent = false
    var stopReadingAt: ContinuousClock.Instant?

    init(child: SpawnedChild, spec: ChildProcessSpec, started: ContinuousClock.Instant, cancelFD: Int32, usePidfd: Bool) {
        pid = child.pid
        // -1 before Linux 5.3: fall back to polling waitid.
        pidfd = usePidfd ? vitals_pidfd_open(child.pid) : -1
        self.cancelFD = cancelFD
        input = spec.stdin
        killGrace = spec.killGrace
        deadline = spec.timeout.map { started + $0 }
        stdinFD = child.stdin
        stdout = Capture(fd: child.stdout, limit: max(0, spec.maxOutputBytes))
        stderr = Capture(fd: child.stderr, limit: max(0, spec.maxOutputBytes))
    }

    mutating func loop(clock: ContinuousClock) {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 65_536, alignment: 16)
        defer { buffer.deallocate() }
        var fds: [pollfd] = []
        while true {
            let now = clock.now
            if !exited, !timedOut, !cancelled, let deadline, now >= deadline {
                timedOut = true
                terminate(now: now)
            }
            if let killAt, !killSent, now >= killAt {
                Posix.signalGroup(pid, SIGKILL)
                killSent = true
                stopReadingAt = now + ChildProcess.drainAfterKill
            }
            if exited {
                if !stdout.isOpen && !stderr.isOpen { return }
                if let stopReadingAt, now >= stopReadingAt { return }
            }

            // Sleep until the next deadline, or an event.
            var wakeAt: ContinuousClock.Instant?
            func earliest(_ instant: ContinuousClock.Instant?) {
                guard let instant else { return }
                wakeAt = wakeAt.map { min($0, instant) } ?? instant
            }
            if !exited && !timedOut && !cancelled { earliest(deadline) }
            if !killSent { earliest(killAt) }
            earliest(stopReadingAt)
            var timeout: Int32 = wakeAt.map { ($0 - now).millisecondsRoundedUp } ?? -1
            if !exited && pidfd < 0 { timeout = timeout < 0 ? 10 : min(timeout, 10) }

            fds.removeAll(keepingCapacity: true)
            let stdinSlot = stdinFD >= 0 ? add(&fds, stdinFD, POLLOUT) : -1
            let stdoutSlot = stdout.isOpen ? add(&fds, stdout.fd, POLLIN) : -1
            let stderrSlot = stderr.isOpen ? add(&fds, stderr.fd, POLLIN) : -1
            let pidSlot = !exited && pidfd >= 0 ? add(&fds, pidfd, POLLIN) : -1
            let cancelSlot = cancelFD >= 0 && !cancelled ? add(&fds, cancelFD, POLLIN) : -1
            _ = Posix.poll(&fds, timeoutMilliseconds: timeout)

            let afterPoll = clock.now
            if stdoutSlot >= 0 && fds[stdoutSlot].revents != 0 { stdout.drain(buffer) }
            if stderrSlot >= 0 && fds[stderrSlot].revents != 0 { stderr.drain(buffer) }
            if stdinSlot >= 0 && fds[stdinSlot].revents != 0 { feedStdin() }
            if cancelSlot >= 0 && fds[cancelSlot].revents != 0 {
                cancelled = true
                if !exited && !timedOut { terminate(now: afterPoll) }
            }
            if !exited {
                let gone = pidSlot >= 0 ? fds[pidSlot].revents != 0 : Posix.hasExited(pid)
                if gone {
                    exited = true
                    closeStdin() // nobody is left to read it
                    // Leftovers in the group get the same treatment as a timed-out child.
                    if killAt == nil { terminate(now: afterPoll) }
                }
            }
        }
    }

    /// SIGTERM to the group; SIGKILL follows after the grace.
    private mutating func terminate(now: ContinuousClock.Instant) {
        Posix.signalGroup(pid, SIGTERM)
        if killAt == nil { killAt = now + killGrace }
    }

    private mutating func feedStdin() {
        while stdinFD >= 0 && stdinOffset < input.count {
            let written: Int?
            do {
                written = try input.withUnsafeBytes { all in
                    try Posix.write(stdinFD, from: UnsafeRawBufferPointer(rebasing: all[stdinOffset...]))
                }
            } catch {
                closeStdin() // EPIPE: the child closed its stdin or exited
                return
            }
            guard let written else { return } // the pipe is full
            stdinOffset += written
        }
        closeStdin() // all written: the child sees end of file
    }

    private mutating func closeStdin() {
        if stdinFD >= 0 { Posix.close(stdinFD) }
        stdinFD = -1
    }

    private func add(_ fds: inout [pollfd], _ fd: Int32, _ events: Int32) -> Int {
        fds.append(pollfd(fd: fd, events: Int16(events), revents: 0))
        return fds.count - 1
    }

    mutating func closeAll() {
        closeStdin()
        stdout.close()
        stderr.close()
        if pidfd >= 0 { Posix.close(pidfd) }
    }
}
