#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// How a supervised run ended.
public struct ChildProcessResult: Sendable, Equatable {
    /// The child's pid, nil when it never started. It has been reaped when
    /// `run` returns; it is given for logs and for tests.
    public var pid: Int32?
    public var termination: Termination
    /// The timeout passed and the process group was sent SIGTERM (and
    /// SIGKILL after the grace, if still needed).
    public var timedOut: Bool
    /// The run was cancelled and the process group terminated like at a timeout.
    public var cancelled: Bool
    public var stdout: CapturedOutput
    public var stderr: CapturedOutput
    /// How many stdin bytes the child accepted before it exited or closed its stdin.
    public var stdinBytesWritten: Int
    /// From just before the spawn to the reap.
    public var duration: Duration
    /// Something else in the process reaped the child (a `waitpid(-1)`), so
    /// its exit status is unknown; `termination` then says exit status 0.
    public var statusLost: Bool

    public init(pid: Int32?, termination: Termination, timedOut: Bool = false, cancelled: Bool = false,
                stdout: CapturedOutput = .init(), stderr: CapturedOutput = .init(),
                stdinBytesWritten: Int = 0, duration: Duration = .zero, statusLost: Bool = false) {
        self.pid = pid
        self.termination = termination
        self.timedOut = timedOut
        self.cancelled = cancelled
        self.stdout = stdout
        self.stderr = stderr
        self.stdinBytesWritten = stdinBytesWritten
        self.duration = duration
        self.statusLost = statusLost
    }

    /// Exit status 0, within the timeout, not cancelled.
    public var succeeded: Bool { termination == .exited(code: 0) && !timedOut && !cancelled }

    public enum Termination: Sendable, Equatable, CustomStringConvertible {
        /// The child called `exit(code)`.
        case exited(code: Int32)
        /// The child was ended by `signal`.
        case signaled(signal: Int32)
        /// The child never ran.
        case spawnFailed(SpawnFailure)

        /// "exit status 3", "killed by signal 15 (SIGTERM)", "cannot run ./x.sh: Permission denied".
        public var description: String {
            switch self {
            case .exited(let code): "exit status \(code)"
            case .signaled(let signal): "killed by signal \(signal)\(SignalName.suffix(signal))"
            case .spawnFailed(let failure): failure.message
            }
        }

        init(waitStatus status: Int32) {
            // WIFEXITED / WEXITSTATUS / WTERMSIG are macros Swift cannot import.
            let low = status & 0x7f
            if low == 0 {
                self = .exited(code: (status >> 8) & 0xff)
            } else {
                self = .signaled(signal: low)
            }
        }
    }
}

/// Why a program could not be started: `cannot run ./x.sh: No such file or directory`.
public struct SpawnFailure: Error, Sendable, Equatable, CustomStringConvertible {
    /// `argv[0]` as given.
    public var program: String
    /// The error number from `posix_spawn` (or the PATH search), 0 when none applies.
    public var errno: Int32
    /// The whole sentence, naming the program (and the directory, when that is at fault).
    public var message: String

    public init(program: String, errno: Int32, message: String) {
        self.program = program
        self.errno = errno
        self.message = message
    }

    public var description: String { message }
}

/// The first bytes of one output stream, and how many there were in all.
public struct CapturedOutput: Sendable, Equatable {
    /// At most `maxOutputBytes`, from the start of the stream.
    public var bytes: [UInt8]
    /// Every byte the stream carried, kept or not.
    public var totalBytes: Int

    public init(bytes: [UInt8] = [], totalBytes: Int = 0) {
        self.bytes = bytes
        self.totalBytes = totalBytes
    }

    /// Some bytes were dropped.
    public var truncated: Bool { totalBytes > bytes.count }
    /// The kept bytes as UTF-8, invalid sequences replaced.
    public var text: String { String(decoding: bytes, as: UTF8.self) }
    /// "Captured 65536 of 5000000 bytes".
    public var summary: String { "Captured \(bytes.count) of \(totalBytes) bytes" }
}

/// Short names for the signals an operator meets.
enum SignalName {
    static func suffix(_ signal: Int32) -> String {
        name(signal).map { " (\($0))" } ?? ""
    }

    static func name(_ signal: Int32) -> String? {
        switch signal {
        case SIGHUP: "SIGHUP"
        case SIGINT: "SIGINT"
        case SIGQUIT: "SIGQUIT"
        case SIGILL: "SIGILL"
        case SIGTRAP: "SIGTRAP"
        case SIGABRT: "SIGABRT"
        case SIGBUS: "SIGBUS"
        case SIGFPE: "SIGFPE"
        case SIGKILL: "SIGKILL"
        case SIGUSR1: "SIGUSR1"
        case SIGSEGV: "SIGSEGV"
        case SIGUSR2: "SIGUSR2"
        case SIGPIPE: "SIGPIPE"
        case SIGALRM: "SIGALRM"
        case SIGTERM: "SIGTERM"
        default: nil
        }
    }
}
