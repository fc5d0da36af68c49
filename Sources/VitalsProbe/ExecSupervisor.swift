#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CSystem
import Foundation
import Synchronization
import VitalsCore
import VitalsSystem

/// Runs exec checks (Nagios plugins) on one supervisor thread.
///
/// Each plugin is spawned directly from its argv (no shell) in its own
/// process group, with default signal dispositions, an empty signal mask,
/// stdin from `/dev/null`, and stdout and stderr sharing one pipe of which
/// at most `maxOutputBytes` are kept (the rest is read and dropped, so a
/// chatty plugin never blocks). At the timeout the whole group gets SIGTERM,
/// then SIGKILL after `killGrace`. The thread waits on each child's pidfd, so
/// it reaps exactly its own children and never calls `waitpid(-1)`.
final class ExecSupervisor: @unchecked Sendable {
    // @unchecked: `commands` is behind a Mutex; everything else is touched
    // only by the supervisor thread.

    struct Job: Sendable {
        var slot: Int
        /// Tells this run's result from an earlier run's in the same slot.
        var ticket: UInt64
        var argv: [String]
        var env: [String: String]
        var timeout: Duration
    }

    private enum Command {
        case start(Job)
        case cancel(slot: Int)
    }

    private struct Running {
        var slot: Int
        var ticket: UInt64
        var pid: pid_t
        var pidfd: Int32
        var output: Int32
        var captured: [UInt8]
        var started: MonotonicInstant
        var deadline: MonotonicInstant
        var killAt: MonotonicInstant?
        var timeout: Duration
        var timedOut = false
        var cancelled = false
    }

    private struct Shared {
        var commands: [Command] = []
        var stopping = false
    }

    private let maxOutputBytes: Int
    private let killGrace: Duration
    private let clock: any VitalsClock
    private let deliver: @Sendable (_ slot: Int, _ ticket: UInt64, ProbeResult) -> Void
    private let shared = Mutex(Shared())
    private let wakeFD: Int32
    private let finished = DispatchSemaphore(value: 0)
    private var running: [Running] = []
    private var readBuffer = [UInt8](repeating: 0, count: 4096)

    /// `deliver` is called on the supervisor thread with each result.
    init(maxOutputBytes: Int, killGrace: Duration, clock: any VitalsClock,
         deliver: @escaping @Sendable (_ slot: Int, _ ticket: UInt64, ProbeResult) -> Void) {
        self.maxOutputBytes = maxOutputBytes
        self.killGrace = killGrace
        self.clock = clock
        self.deliver = deliver
        wakeFD = eventfd(0, Int32(EFD_CLOEXEC) | Int32(EFD_NONBLOCK))
        precondition(wakeFD >= 0, "eventfd failed: \(Posix.errorText(errno))")
        let thread = Thread { [self] in
            loop()
            finished.signal()
        }
        thread.name = "vitals-exec"
        thread.start()
    }

    /// Starts a plugin. Any thread.
    func start(_ job: Job) {
        shared.withLock { $0.commands.append(.start(job)) }
        wake()
    }

    /// Kills the plugin running for `slot`, if any; its result is dropped. Any thread.
    func cancel(slot: Int) {
        shared.withLock { $0.commands.append(.cancel(slot: slot)) }
        wake()
    }

    /// Kills every running plugin, reaps it, and joins the thread.
    func shutdown() {
        let already = shared.withLock { state in
            defer { state.stopping = true }
            return state.stopping
        }
        guard !already else { return }
        wake()
        finished.wait()
        Posix.close(wakeFD)
    }

    private func wake() {
        var one: UInt64 = 1
        _ = write(wakeFD, &one, 8)
    }

    // MARK: The supervisor thread

    private func loop() {
        var fds: [pollfd] = []
        while true {
            let (commands, stopping) = shared.withLock { state in
                defer { state.commands.removeAll() }
                return (state.commands, state.stopping)
            }
            if stopping {
                for i in running.indices { markCancelled(i) }
                if running.isEmpty { return }
            } else {
                for command in commands {
                    switch command {
                    case .start(let job): spawn(job)
                    case .cancel(let slot):
                        if let i = running.firstIndex(where: { $0.slot == slot }) { markCancelled(i) }
                    }
                }
            }

            let now = MonotonicInstant.now()
            enforceDeadlines(now: now)
            var wait = Duration.seconds(1)
            for child in running {
                if child.pidfd < 0 { wait = min(wait, .milliseconds(20)) }
                if let killAt = child.killAt { wait = min(wait, killAt - now) }
                else if !child.timedOut { wait = min(wait, child.deadline - now) }
            }

            fds.removeAll(keepingCapacity: true)
            fds.append(pollfd(fd: wakeFD, events: Int16(POLLIN), revents: 0))
            for child in running {
                fds.append(pollfd(fd: child.pidfd, events: Int16(POLLIN), revents: 0))
                fds.append(pollfd(fd: child.output, events: Int16(POLLIN), revents: 0))
            }
            let n = poll(&fds, nfds_t(fds.count), Int32(wait.millisecondsRoundedUp))
            if n < 0 && errno != EINTR { preconditionFailure("poll failed: \(Posix.errorText(errno))") }

            if fds[0].revents != 0 {
                var value: UInt64 = 0
                _ = read(wakeFD, &value, 8)
            }
            // Walk backwards: finishing a child removes it from `running`.
            for i in running.indices.reversed() {
                let pidEvents = fds[1 + 2 * i].revents
                let outEvents = fds[2 + 2 * i].revents
                if outEvents != 0 { drain(i) }
                if pidEvents != 0 || running[i].pidfd < 0 {
                    if let status = exitStatus(of: i) { finish(i, waitStatus: status) }
                }
            }
        }
    }

    private func spawn(_ job: Job) {
        let started = MonotonicInstant.now()
        switch Self.spawnPlugin(argv: job.argv, env: job.env) {
        case .failure(let error):
            deliver(job.slot, job.ticket, ProbeResult(time: clock.now(), latency: nil, outcome: .failed, reason: error.reason))
        case .success(let (pid, output)):
            let pidfd = vitals_pidfd_open(pid)
            running.append(Running(slot: job.slot, ticket: job.ticket, pid: pid, pidfd: pidfd, output: output, captured: [],
                                   started: started, deadline: started + job.timeout,
                                   timeout: job.timeout))
        }
    }

    private func markCancelled(_ i: Int) {
        guard !running[i].cancelled else { return }
        running[i].cancelled = true
        kill(-running[i].pid, SIGKILL)
    }

    private func enforceDeadlines(now: MonotonicInstant) {
        for i in running.indices {
            if !running[i].timedOut && now >= running[i].deadline {
                running[i].timedOut = true
                running[i].killAt = now + killGrace
                kill(-running[i].pid, SIGTERM)
            } else if let killAt = running[i].killAt, now >= killAt {
                running[i].killAt = nil
                kill(-running[i].pid, SIGKILL)
            }
        }
    }

    /// The wait status once the child has exited. Before reaping a child that
    /// was timed out or cancelled, SIGKILL its group: while the zombie leader
    /// is unreaped its pid, and so the group id, cannot be reused.
    private func exitStatus(of i: Int) -> Int32? {
        let child = running[i]
        if child.pidfd >= 0 {
            // The pidfd is readable once the child has exited.
            var check = pollfd(fd: child.pidfd, events: Int16(POLLIN), revents: 0)
            guard poll(&check, 1, 0) == 1 else { return nil }
        } else {
            // No pidfd (kernel before 5.3): look without reaping.
            var info = siginfo_t()
            guard waitid(P_PID, id_t(child.pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0,
                  info.si_signo == SIGCHLD else { return nil }
        }
        if child.timedOut || child.cancelled { kill(-child.pid, SIGKILL) }
        return Posix.reap(child.pid) ?? Self.lostStatus
    }

    /// Stands for a wait status someone else took: not a value `waitpid`
    /// ever reports (a stopped child, 0x7f, is never waited for here).
    private static let lostStatus: Int32 = -1

    /// Reads what the pipe holds now, keeping up to `maxOutputBytes`.
    private func drain(_ i: Int) {
        guard running[i].output >= 0 else { return }
        while true {
            let fd = running[i].output
            let count: Int? = readBuffer.withUnsafeMutableBytes { buffer in
                do { return try Posix.read(fd, into: buffer) } catch { return 0 } // an error ends the output like EOF
            }
            guard let count else { return } // would block
            if count == 0 { // end of file: every writer is gone
                Posix.close(running[i].output)
                running[i].output = -1
                return
            }
            let room = maxOutputBytes - running[i].captured.count
            if room > 0 { running[i].captured.append(contentsOf: readBuffer[0..<min(room, count)]) }
        }
    }

    private func finish(_ i: Int, waitStatus: Int32) {
        drain(i) // what the plugin wrote before exiting; a lingering grandchild is not waited for
        let child = running.remove(at: i)
        if child.output >= 0 { Posix.close(child.output) }
        if child.pidfd >= 0 { Posix.close(child.pidfd) }
        guard !child.cancelled else { return }
        let elapsed = MonotonicInstant.now() - child.started
        let result: ProbeResult
        if child.timedOut {
            result = ProbeResult(time: clock.now(), latency: nil, outcome: .failed,
                                 reason: "timeout after \(DurationText.format(child.timeout))")
        } else if waitStatus == Self.lostStatus {
            result = ProbeResult(time: clock.now(), latency: nil, outcome: .failed,
                                 reason: "exit status lost: the plugin was reaped elsewhere in the agent")
        } else {
            let verdict = ExecVerdict.verdict(waitStatus: waitStatus, output: child.captured)
            result = ProbeResult(time: clock.now(), latency: elapsed, outcome: verdict.outcome, reason: verdict.reason)
        }
        deliver(child.slot, child.ticket, result)
    }

    /// Spawns `argv` in a new process group with stdout and stderr on a pipe.
    /// Returns the pid and the pipe's read end, or the reason it could not run.
    static func spawnPlugin(argv: [String], env: [String: String]) -> Result<(pid_t, Int32), SpawnFailure> {
        guard let program = argv.first, !program.isEmpty else { return .failure(SpawnFailure("cannot run: empty argv")) }
        let pipe: (read: Int32, write: Int32)
        do { pipe = try Posix.pipe(nonBlocking: .read) } catch {
            return .failure(SpawnFailure("cannot run \(program): \(Posix.errorText(error.errno))"))
        }
        defer { Posix.close(pipe.write) }

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))
        posix_spawnattr_setpgroup(&attributes, 0)
        var defaults = sigset_t()
        sigfillset(&defaults)
        sigdelset(&defaults, SIGKILL)
        sigdelset(&defaults, SIGSTOP)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        var mask = sigset_t()
        sigemptyset(&mask)
        posix_spawnattr_setsigmask(&attributes, &mask)

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, pipe.write, 1)
        posix_spawn_file_actions_adddup2(&actions, pipe.write, 2)
        posix_spawn_file_actions_addclosefrom_np(&actions, 3)

        var environment = ProcessInfo.processInfo.environment
        for (key, value) in env { environment[key] = value }
        let cArgs = argv.map { strdup($0) } + [nil]
        let cEnv = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for p in cArgs { free(p) }
            for p in cEnv { free(p) }
        }

        var pid: pid_t = 0
        let rc: Int32 = cArgs.withUnsafeBufferPointer { args in
            cEnv.withUnsafeBufferPointer { envp in
                let argvPointer = UnsafeMutablePointer(mutating: args.baseAddress!)
                let envPointer = UnsafeMutablePointer(mutating: envp.baseAddress!)
                // A bare name is looked up in PATH, like a shell would.
                return program.contains("/")
                    ? posix_spawn(&pid, program, &actions, &attributes, argvPointer, envPointer)
                    : posix_spawnp(&pid, program, &actions, &attributes, argvPointer, envPointer)
            }
        }
        guard rc == 0 else {
            Posix.close(pipe.read)
            return .failure(SpawnFailure("cannot run \(program): \(Posix.errorText(rc))"))
        }
        return .success((pid, pipe.read))
    }

    struct SpawnFailure: Error {
        var reason: String
        init(_ reason: String) { self.reason = reason }
    }
}
