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
            await LoopThread.value(name: "vitals-child") { runBlocking(spec, cancellation: cancellation) }
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

        var supervision = Supervision(child: child, spec: spec, started: started, usePidfd: usePidfd)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 65_536, alignment: 16)
        defer { buffer.deallocate() }
        let cancelFD = cancellation?.fd ?? -1
        var fds: [pollfd] = []
        while true {
            let now = clock.now
            guard supervision.advance(now: now) else { break }
            fds.removeAll(keepingCapacity: true)
            let slots = supervision.register(&fds)
            let cancelSlot = cancelFD >= 0 && !supervision.cancelled ? fds.count : -1
            if cancelSlot >= 0 { fds.append(pollfd(fd: cancelFD, events: Int16(POLLIN), revents: 0)) }
            _ = Posix.poll(&fds, timeoutMilliseconds: supervision.pollTimeout(now: now))
            let afterPoll = clock.now
            supervision.handle(fds, slots, buffer: buffer, now: afterPoll)
            if cancelSlot >= 0 && fds[cancelSlot].revents != 0 { supervision.cancel(now: afterPoll) }
        }
        return supervision.finish(duration: clock.now - started)
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
