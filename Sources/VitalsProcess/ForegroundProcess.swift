#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Foundation
import Synchronization
import VitalsSystem

/// Runs a program in the caller's place, the way a shell runs a foreground
/// command: `argv[0]` looked up in `PATH`, stdin, stdout and stderr shared,
/// the caller's process group (so whoever signals the group reaches the
/// program too), an empty signal mask, no timeout and no output capture.
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
                           environment: [String: String] = ProcessInfo.processInfo.environment) -> Result<Exit, SpawnFailure> {
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

        let clock = ContinuousClock()
        let started = clock.now
        let (pid, rc) = Spawner.launch(path: path, argv: argv, environment: environment,
                                       actions: nil, attributes: &attributes)
        guard rc == 0 else {
            return .failure(SpawnFailure(program: program, errno: rc, message: "cannot run \(program): \(Posix.errorText(rc))"))
        }
        signals.forward(to: pid)
        // Our own handlers interrupt the wait; Posix.reap retries EINTR.
        guard let status = Posix.reap(pid) else { preconditionFailure("waitpid(\(pid)) failed: \(Posix.errorText(errno))") }
        signals.stopForwarding()
        return .success(Exit(termination: .init(waitStatus: status), duration: clock.now - started))
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
