#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Synchronization
import VitalsSystem

/// Supervises many children at once from one thread of its own, each under
/// the contract of `ChildProcess` (own process group, capped output,
/// SIGTERM then SIGKILL at the timeout, always reaped), for callers that
/// start programs often and must not hold a thread per child.
///
/// `start`, `cancel` and `shutdown` may be called from any thread; each
/// `completion` runs on the supervisor thread and must return promptly.
public final class ProcessSupervisor: Sendable {
    public typealias Completion = @Sendable (ChildProcessResult) -> Void

    private enum Command {
        case start(id: UInt64, ChildProcessSpec, Completion)
        case cancel(id: UInt64)
    }

    private struct Shared {
        var commands: [Command] = []
        var stopping = false
        var thread: LoopThread?
    }

    private let shared = Mutex(Shared())
    private let wakeFD: Int32

    /// Starts the supervisor thread, named `threadName`.
    public init(threadName: String) {
        do { wakeFD = try Posix.eventFD() } catch { fatalError("cannot supervise child processes: \(error)") }
        // The thread keeps the supervisor alive until `shutdown`.
        let thread = LoopThread.run(name: threadName) { [self] in
            var loop = SupervisorLoop(wakeFD: wakeFD)
            loop.run(self)
        }
        shared.withLock { $0.thread = thread }
    }

    /// Spawns `spec`; `completion` gets its result once nothing of it is
    /// left, unless `shutdown` came first. `id` names the run for `cancel`.
    public func start(_ spec: ChildProcessSpec, id: UInt64, completion: @escaping Completion) {
        shared.withLock { $0.commands.append(.start(id: id, spec, completion)) }
        Posix.signalEventFD(wakeFD)
    }

    /// Terminates run `id` like a timeout does; its result says `cancelled`.
    public func cancel(id: UInt64) {
        shared.withLock { $0.commands.append(.cancel(id: id)) }
        Posix.signalEventFD(wakeFD)
    }

    /// Cancels every run, waits until each is reaped (their completions are
    /// not called), and joins the thread. Idempotent.
    public func shutdown() {
        let thread: LoopThread? = shared.withLock { state in
            defer { state.stopping = true; state.thread = nil }
            return state.stopping ? nil : state.thread
        }
        guard let thread else { return }
        Posix.signalEventFD(wakeFD)
        thread.join()
        Posix.close(wakeFD)
    }

    /// What the supervisor thread owns.
    private struct SupervisorLoop {
        struct Run {
            var id: UInt64
            var supervision: Supervision
            var started: ContinuousClock.Instant
            var completion: Completion
        }

        let wakeFD: Int32
        let clock = ContinuousClock()
        var runs: [Run] = []

        mutating func run(_ owner: ProcessSupervisor) {
            // Writes to a child's stdin report EPIPE instead of raising
            // SIGPIPE: blocked on this thread, which is ours for good.
            var sigpipe = sigset_t()
            sigemptyset(&sigpipe)
            sigaddset(&sigpipe, SIGPIPE)
            pthread_sigmask(SIG_BLOCK, &sigpipe, nil)
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 65_536, alignment: 16)
            defer { buffer.deallocate() }
            var fds: [pollfd] = []
            var slots: [Supervision.Slots] = []
            while true {
                let (commands, stopping) = owner.shared.withLock { state in
                    defer { state.commands.removeAll() }
                    return (state.commands, state.stopping)
                }
                var now = clock.now
                for command in commands {
                    switch command {
                    case .start(let id, let spec, let completion):
                        if !stopping { start(id: id, spec, completion, now: now) }
                    case .cancel(let id):
                        for i in runs.indices where runs[i].id == id { runs[i].supervision.cancel(now: now) }
                    }
                }
                if stopping {
                    for i in runs.indices { runs[i].supervision.cancel(now: now) }
                }
                // Walk backwards: a finished run leaves `runs`.
                for i in runs.indices.reversed() where !runs[i].supervision.advance(now: now) {
                    var done = runs.remove(at: i)
                    let result = done.supervision.finish(duration: clock.now - done.started)
                    if !stopping { done.completion(result) }
                }
                if stopping && runs.isEmpty { return }

                fds.removeAll(keepingCapacity: true)
                slots.removeAll(keepingCapacity: true)
                fds.append(pollfd(fd: wakeFD, events: Int16(POLLIN), revents: 0))
                var timeout: Int32 = -1
                for run in runs {
                    slots.append(run.supervision.register(&fds))
                    let next = run.supervision.pollTimeout(now: now)
                    if next >= 0 { timeout = timeout < 0 ? next : min(timeout, next) }
                }
                _ = Posix.poll(&fds, timeoutMilliseconds: timeout)
                if fds[0].revents != 0 { Posix.drainEventFD(wakeFD) }
                now = clock.now
                for i in runs.indices {
                    runs[i].supervision.handle(fds, slots[i], buffer: buffer, now: now)
                }
            }
        }

        private mutating func start(id: UInt64, _ spec: ChildProcessSpec, _ completion: @escaping Completion,
                                    now: ContinuousClock.Instant) {
            switch Spawner.spawn(spec) {
            case .failure(let failure):
                completion(ChildProcessResult(pid: nil, termination: .spawnFailed(failure), duration: clock.now - now))
            case .success(let child):
                runs.append(Run(id: id, supervision: Supervision(child: child, spec: spec, started: now, usePidfd: true),
                                started: now, completion: completion))
            }
        }
    }
}
