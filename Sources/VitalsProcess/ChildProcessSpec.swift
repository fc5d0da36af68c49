import Foundation

/// What to run and how to supervise it. See `ChildProcess` for the contract.
public struct ChildProcessSpec: Sendable, Equatable {
    /// The program and its arguments; no shell is involved. `argv[0]` is a
    /// path, or a bare name looked up in the `PATH` of `environment` (else the
    /// agent's own `PATH`), the way `execvp` does it.
    public var argv: [String]
    /// The child's whole environment. Default: this process's environment.
    public var environment: [String: String]
    /// Where the child starts. A relative `argv[0]` is resolved from here.
    /// Default: this process's working directory.
    public var workingDirectory: String?
    /// Written to the child's stdin, which is then closed. Empty: stdin is `/dev/null`.
    public var stdin: [UInt8]
    /// How much of stdout, and separately of stderr, is kept; the rest is
    /// read, counted and dropped. Default: 65,536 (64 KiB).
    public var maxOutputBytes: Int
    /// Whole-run bound; then the process group gets SIGTERM. nil: no bound. Default: nil.
    public var timeout: Duration?
    /// Time between SIGTERM and SIGKILL to the process group. Default: 2s.
    public var killGrace: Duration
    /// Where the child's stderr goes. Default: `.separate`.
    public var stderr: StderrRouting

    public enum StderrRouting: Sendable, Equatable {
        /// A pipe of its own, captured as `ChildProcessResult.stderr`.
        case separate
        /// The stdout pipe, so both streams are captured as `stdout`, interleaved
        /// as the child wrote them (Nagios plugins mix them freely).
        case mergedIntoStdout
    }

    public init(argv: [String], environment: [String: String] = ProcessInfo.processInfo.environment,
                workingDirectory: String? = nil, stdin: [UInt8] = [], maxOutputBytes: Int = 65_536,
                timeout: Duration? = nil, killGrace: Duration = .seconds(2), stderr: StderrRouting = .separate) {
        self.argv = argv
        self.environment = environment
        self.workingDirectory = workingDirectory
        self.stdin = stdin
        self.maxOutputBytes = maxOutputBytes
        self.timeout = timeout
        self.killGrace = killGrace
        self.stderr = stderr
    }
}
