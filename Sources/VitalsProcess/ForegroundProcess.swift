#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Foundation
import Synchronization
import CSystem
import VitalsSystem

/// Runs a program in the caller's place, the way a shell runs a foreground
/// command: `argv[0]` looked up in `PATH`, stdin, stdout and stderr shared,
/// the caller's process group (so whoever signals the group reaches the
/// program too), an empty signal mask and no timeout.
///
/// With an `OutputTail`, stdout and stderr go through pipes instead: each
/// chunk is passed on at once to the caller's own stdout or stderr, and the
/// last bytes of both are kept in the tail, in the order they were read
/// (the two pipes are read apart, so what was written to both within the
/// same instant may be kept in either order).
public enum ForegroundProcess {
    /// How the program ended.
    public struct Exit: Sendable, Equatable {
        public var termination: ChildProcessResult.Termination
        /// From just before the spawn to the reap.
        public var duration: Duration

        /// The status a shell reports: the exit code, or 128+N for signal N.
        public var shellStatus: Int32 {
            switch termination {
            case .exited(let code): code
            case .signaled(let signal): 128 + signal
            case .spawnFailed: 127
            }
        }
    }

    /// Runs `argv` and waits for it. `signals`, installed before, passes
    /// SIGTERM and SIGINT on to it while it runs.
    public static func run(_ argv: [String], signals: SignalForwarding,
                           environment: [String: String] = ProcessInfo.processInfo.environment,
                           output: OutputTail? = nil) -> Result<Exit, SpawnFailure> {
        guard let program = argv.first, !program.isEmpty else {
            return .failure(SpawnFailure(program: "", errno: ENOENT, message: "cannot run: empty argv"))
        }
        let path: String
        switch Spawner.resolve(program, environment: environment) {
        case .success(let found): path = found
        case .failure(let failure): return .failure(failure)
        }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // The thread we run on may be one of the runtime's, which block
        // SIGTERM and friends; the program must not inherit that mask.
        var mask = sigset_t()
        sigemptyset(&mask)
        posix_spawnattr_setsigmask(&attributes, &mask)
        var flags = Int32(POSIX_SPAWN_SETSIGMASK)
        // Our handlers are reset by exec anyway; SIGPIPE is reset only when it
        // was not ignored when we started (an inherited "ignore" is passed on, as shells do).
        var defaults = sigset_t()
        sigemptyset(&defaults)
        if !signals.sigpipeIgnoredAtStart {
            sigaddset(&defaults, SIGPIPE)
            flags |= Int32(POSIX_SPAWN_SETSIGDEF)
            posix_spawnattr_setsigdefault(&attributes, &defaults)
        }
        posix_spawnattr_setflags(&attributes, Int16(flags))

        var pipes: [(read: Int32, write: Int32)] = []
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if output != nil {
            for target in [Int32(1), 2] {
                var fds: [Int32] = [-1, -1]
                guard pipe2(&fds, O_CLOEXEC) == 0 else {
                    let err = errno
                    for pipe in pipes { Posix.close(pipe.read); Posix.close(pipe.write) }
                    return .failure(SpawnFailure(program: program, errno: err, message: "cannot run \(program): pipe: \(Posix.errorText(err))"))
                }
                pipes.append((fds[0], fds[1]))
                // dup2 clears close-on-exec on the copy: the program gets the write end as 1 or 2.
                posix_spawn_file_actions_adddup2(&actions, fds[1], target)
            }
            // A reader of ours whose stdout is gone must not die of SIGPIPE;
            // the program still gets SIGPIPE's default (set above).
            signal(SIGPIPE, SIG_IGN)
        }

        let clock = ContinuousClock()
        let started = clock.now
        let (pid, rc) = output == nil
            ? Spawner.launch(path: path, argv: argv, environment: environment, actions: nil, attributes: &attributes)
            : Spawner.launch(path: path, argv: argv, environment: environment, actions: &actions, attributes: &attributes)
        for pipe in pipes { Posix.close(pipe.write) }
        var readers: [DispatchSemaphore] = []
        if let output {
            for (pipe, target) in zip(pipes, [Int32(1), 2]) {
                let finished = DispatchSemaphore(value: 0)
                readers.append(finished)
                let fd = pipe.read
                LoopThread.detach(name: "vitals-output") {
                    output.relay(from: fd, to: target)
                    Posix.close(fd)
                    finished.signal()
                }
            }
        }
        guard rc == 0 else {
            return .failure(SpawnFailure(program: program, errno: rc, message: "cannot run \(program): \(Posix.errorText(rc))"))
        }
        signals.forward(to: pid)
        // Our own handlers interrupt the wait; Posix.reap retries EINTR.
        guard let status = Posix.reap(pid) else { preconditionFailure("waitpid(\(pid)) failed: \(Posix.errorText(errno))") }
        signals.stopForwarding()
        // The pipes end when the last writer closes them; a process the job
        // left running may hold them open, so its output is not waited for long.
        let drainBy = DispatchTime.now() + .seconds(2)
        for finished in readers { _ = finished.wait(timeout: drainBy) }
        return .success(Exit(termination: .init(waitStatus: status), duration: clock.now - started))
    }
}

/// The last bytes a foreground program wrote to stdout and stderr together,
/// in the order they came, and how many it wrote.
public final class OutputTail: Sendable {
    private let tail: Mutex<ByteTail>

    /// Keeps at most `limit` bytes.
    public init(limit: Int) {
        tail = Mutex(ByteTail(limit: limit))
    }

    /// The kept bytes, oldest first.
    public var bytes: [UInt8] { tail.withLock { $0.bytes } }
    /// Every byte the program wrote.
    public var totalBytes: Int { tail.withLock { $0.totalBytes } }

    /// Reads `fd` to its end, passing each chunk on to `target` and keeping its tail.
    func relay(from fd: Int32, to target: Int32) {
        var buffer = [UInt8](repeating: 0, count: 16 << 10)
        var passOn = true
        while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                return
            }
            if n == 0 { return }
            let chunk = buffer[..<n]
            tail.withLock { $0.append(chunk) }
            // A closed stdout stops the passing on, never the job nor the tail.
            var offset = 0
            while passOn, offset < n {
                let written = chunk.withUnsafeBytes { Glibc.write(target, $0.baseAddress! + offset, n - offset) }
                if written < 0 {
                    if errno == EINTR { continue }
                    passOn = false
                } else {
                    offset += written
                }
            }
        }
    }
}

/// SIGTERM and SIGINT sent to this process go on to the foreground program.
/// A signal the terminal sent (Ctrl-C) already reached the whole foreground
/// process group, the program included, and is not sent twice. (One that a
/// process sent to the whole group reaches the program twice; a second
/// SIGTERM is harmless to a program that is stopping.) A signal ignored when
/// we started stays ignored, for us and the program.
public struct SignalForwarding: Sendable {
    static let forwarded: [Int32] = [SIGTERM, SIGINT]
    /// SIGPIPE was ignored when the process started: the program inherits that.
    public let sigpipeIgnoredAtStart: Bool

    /// Installs the handlers. Call it early, so that a signal that comes
    /// before the program starts is delivered to it once it does.
    public static func install() -> SignalForwarding {
        _ = SignalTarget.job.load(ordering: .sequentiallyConsistent) // initialise before any handler can run
        _ = SignalTarget.pending.load(ordering: .sequentiallyConsistent)
        for number in forwarded where !isIgnored(number) {
            var action = sigaction()
            action.__sigaction_handler.sa_sigaction = { number, info, _ in
                if let info, info.pointee.si_code == SI_KERNEL { return }
                SignalTarget.deliver(number)
            }
            action.sa_flags = SA_SIGINFO | SA_RESTART
            sigemptyset(&action.sa_mask)
            sigaction(number, &action, nil)
        }
        return SignalForwarding(sigpipeIgnoredAtStart: isIgnored(SIGPIPE))
    }

    func forward(to pid: pid_t) {
        SignalTarget.job.store(pid, ordering: .sequentiallyConsistent)
        // A signal that came before the program existed is delivered now.
        let early = SignalTarget.pending.exchange(0, ordering: .sequentiallyConsistent)
        if early != 0 { kill(pid, early) }
    }

    func stopForwarding() {
        SignalTarget.job.store(0, ordering: .sequentiallyConsistent)
    }

    private static func isIgnored(_ number: Int32) -> Bool {
        var current = sigaction()
        sigaction(number, nil, &current)
        return unsafeBitCast(current.__sigaction_handler.sa_handler, to: Int.self) == 1 // SIG_IGN
    }
}

/// What the signal handler reads: atomics only, which are async-signal-safe.
private enum SignalTarget {
    /// The running program's pid; 0 before it starts and after it is reaped.
    static let job = Atomic<Int32>(0)
    /// A signal that arrived while there was no program yet.
    static let pending = Atomic<Int32>(0)

    /// Called from the handler. The pending signal is set first and taken back
    /// by whoever sees the pid, so a signal racing with the start of the
    /// program is delivered exactly once.
    static func deliver(_ number: Int32) {
        pending.store(number, ordering: .sequentiallyConsistent)
        let pid = job.load(ordering: .sequentiallyConsistent)
        guard pid > 0 else { return }
        let signal = pending.exchange(0, ordering: .sequentiallyConsistent)
        if signal != 0 { kill(pid, signal) }
    }
}
