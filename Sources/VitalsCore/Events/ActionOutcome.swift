import Foundation

/// What one action did for one event: the last attempt's result, how many
/// attempts it took, and what it printed or answered. Journaled and served
/// as JSON (camelCase keys here; the agent's encoder may convert them).
public struct ActionOutcome: Sendable, Equatable, Codable, CustomStringConvertible {
    /// The action's name from `actions:`.
    public var action: String
    /// The runner kind: "exec", "webhook", "email", "log".
    public var kind: String
    /// `AgentEvent.id` of the event the action ran for.
    public var eventID: UInt64
    /// `AgentEvent.kind`.
    public var eventKind: EventKind
    public var group: String?
    public var result: ActionResult
    /// 1 + the retries used; 0 when nothing ran (skipped).
    public var attempts: Int
    public var started: Date
    public var finished: Date
    /// From the first attempt's start to the last one's end, backoff included.
    public var duration: Duration
    /// Of the last attempt.
    public var output: ActionOutput

    public init(action: String, kind: String, eventID: UInt64, eventKind: EventKind, group: String?,
                result: ActionResult, attempts: Int, started: Date, finished: Date, duration: Duration,
                output: ActionOutput = .init()) {
        self.action = action
        self.kind = kind
        self.eventID = eventID
        self.eventKind = eventKind
        self.group = group
        self.result = result
        self.attempts = attempts
        self.started = started
        self.finished = finished
        self.duration = duration
        self.output = output
    }

    /// An outcome for an action that did not run: dry run, shutdown, no runner.
    public static func notRun(_ action: ActionConfig, event: AgentEvent, result: ActionResult, at time: Date) -> ActionOutcome {
        ActionOutcome(action: action.name, kind: action.kind.name, eventID: event.id, eventKind: event.kind,
                      group: event.group, result: result, attempts: 0, started: time, finished: time, duration: .zero)
    }

    /// `failover-script: exit status 3 (3 attempts)`.
    public var description: String {
        "\(action): \(result)" + (attempts > 1 ? " (\(attempts) attempts)" : "")
    }

    private enum CodingKeys: String, CodingKey {
        case action, kind, eventID = "eventId", eventKind, group, result, attempts, started, finished, durationMs, output
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        action = try c.decode(String.self, forKey: .action)
        kind = try c.decode(String.self, forKey: .kind)
        // Journals written before ids were numbers everywhere hold them as text.
        if let number = try? c.decode(UInt64.self, forKey: .eventID) {
            eventID = number
        } else if let number = UInt64(try c.decode(String.self, forKey: .eventID)) {
            eventID = number
        } else {
            throw DecodingError.dataCorruptedError(forKey: .eventID, in: c, debugDescription: "event id is not a number")
        }
        eventKind = try c.decode(EventKind.self, forKey: .eventKind)
        group = try c.decodeIfPresent(String.self, forKey: .group)
        result = try c.decode(ActionResult.self, forKey: .result)
        attempts = try c.decode(Int.self, forKey: .attempts)
        started = try c.decode(Date.self, forKey: .started)
        finished = try c.decode(Date.self, forKey: .finished)
        duration = .milliseconds(try c.decode(Double.self, forKey: .durationMs))
        output = try c.decodeIfPresent(ActionOutput.self, forKey: .output) ?? ActionOutput()
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(action, forKey: .action)
        try c.encode(kind, forKey: .kind)
        try c.encode(eventID, forKey: .eventID)
        try c.encode(eventKind, forKey: .eventKind)
        try c.encodeIfPresent(group, forKey: .group)
        try c.encode(result, forKey: .result)
        try c.encode(attempts, forKey: .attempts)
        try c.encode(started, forKey: .started)
        try c.encode(finished, forKey: .finished)
        try c.encode(duration.millisecondsDouble, forKey: .durationMs)
        try c.encode(output, forKey: .output)
    }
}

/// How an action ended.
///
/// Encoded as an object whose `status` is one of `ok`, `failed`, `timed_out`,
/// `spawn_failed`, `error`, `cancelled`, `skipped`, with `message` (the
/// description) and, where they apply, `exitStatus`, `signal`, `httpStatus`, `timeoutMs`.
public enum ActionResult: Sendable, Equatable, Codable, CustomStringConvertible {
    /// Exit status 0, or a 2xx answer.
    case ok
    /// The program or the server said no.
    case failed(ActionFailure)
    /// The action's `timeout` passed: the process group was killed, or the request abandoned.
    case timedOut(after: Duration)
    /// The program could not be started: "cannot run ./x.sh: Permission denied".
    case spawnFailed(String)
    /// Anything else, in words: "connect refused (http://127.0.0.1:9)".
    case error(String)
    /// Stopped by the agent (shutdown) while running.
    case cancelled
    /// Not run, and why: "dry run", "agent shutting down".
    case skipped(String)

    public var isSuccess: Bool {
        switch self {
        case .ok: true
        case .failed, .timedOut, .spawnFailed, .error, .cancelled, .skipped: false
        }
    }

    /// Whether another attempt may help. A program that cannot be started
    /// (missing, not executable) will not start a second later either, and a
    /// cancelled or skipped action must not run again.
    public var isRetryable: Bool {
        switch self {
        case .failed, .timedOut, .error: true
        case .ok, .spawnFailed, .cancelled, .skipped: false
        }
    }

    /// "ok", "exit status 3", "HTTP 500", "timeout after 5s", "skipped (dry run)".
    public var description: String {
        switch self {
        case .ok: "ok"
        case .failed(let failure): failure.description
        case .timedOut(let after): "timeout after \(DurationText.format(after))"
        case .spawnFailed(let message): message
        case .error(let message): message
        case .cancelled: "cancelled"
        case .skipped(let why): "skipped (\(why))"
        }
    }

    private enum CodingKeys: String, CodingKey {
        case status, message, exitStatus, signal, httpStatus, timeoutMs
    }

    private var status: String {
        switch self {
        case .ok: "ok"
        case .failed: "failed"
        case .timedOut: "timed_out"
        case .spawnFailed: "spawn_failed"
        case .error: "error"
        case .cancelled: "cancelled"
        case .skipped: "skipped"
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(status, forKey: .status)
        try c.encode(description, forKey: .message)
        switch self {
        case .failed(.exitStatus(let code)): try c.encode(code, forKey: .exitStatus)
        case .failed(.signal(let signal)): try c.encode(signal, forKey: .signal)
        case .failed(.httpStatus(let status)): try c.encode(status, forKey: .httpStatus)
        case .timedOut(let after): try c.encode(after.millisecondsDouble, forKey: .timeoutMs)
        case .ok, .spawnFailed, .error, .cancelled, .skipped: break
        }
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let status = try c.decode(String.self, forKey: .status)
        let message = try c.decodeIfPresent(String.self, forKey: .message) ?? ""
        switch status {
        case "ok": self = .ok
        case "failed":
            if let code = try c.decodeIfPresent(Int32.self, forKey: .exitStatus) {
                self = .failed(.exitStatus(code))
            } else if let signal = try c.decodeIfPresent(Int32.self, forKey: .signal) {
                self = .failed(.signal(signal))
            } else if let http = try c.decodeIfPresent(Int.self, forKey: .httpStatus) {
                self = .failed(.httpStatus(http))
            } else {
                throw DecodingError.dataCorruptedError(forKey: .status, in: c,
                                                       debugDescription: "failed result without exitStatus, signal or httpStatus")
            }
        case "timed_out": self = .timedOut(after: .milliseconds(try c.decode(Double.self, forKey: .timeoutMs)))
        case "spawn_failed": self = .spawnFailed(message)
        case "error": self = .error(message)
        case "cancelled": self = .cancelled
        case "skipped":
            // "skipped (dry run)" -> "dry run"
            let why = message.hasPrefix("skipped (") && message.hasSuffix(")")
                ? String(message.dropFirst("skipped (".count).dropLast()) : message
            self = .skipped(why)
        default:
            throw DecodingError.dataCorruptedError(forKey: .status, in: c, debugDescription: "unknown action status '\(status)'")
        }
    }
}

/// Why a run that completed counts as failed.
public enum ActionFailure: Sendable, Equatable, CustomStringConvertible {
    /// The program exited with a status other than 0.
    case exitStatus(Int32)
    /// The program was killed by a signal it did not get from us.
    case signal(Int32)
    /// The server answered outside 200-299.
    case httpStatus(Int)

    /// "exit status 3", "killed by signal 9 (SIGKILL)", "HTTP 500".
    public var description: String {
        switch self {
        case .exitStatus(let code): "exit status \(code)"
        case .signal(let signal): "killed by signal \(signal)" + (Self.signalNames[signal].map { " (\($0))" } ?? "")
        case .httpStatus(let status): "HTTP \(status)"
        }
    }

    /// Linux's numbers for the signals an operator meets, as a process
    /// supervisor words them ("killed by signal 9 (SIGKILL)").
    private static let signalNames: [Int32: String] = [
        1: "SIGHUP", 2: "SIGINT", 3: "SIGQUIT", 4: "SIGILL", 5: "SIGTRAP", 6: "SIGABRT", 7: "SIGBUS", 8: "SIGFPE",
        9: "SIGKILL", 10: "SIGUSR1", 11: "SIGSEGV", 12: "SIGUSR2", 13: "SIGPIPE", 14: "SIGALRM", 15: "SIGTERM",
    ]
}

/// What the last attempt printed (exec) or answered (webhook).
public struct ActionOutput: Sendable, Equatable, Codable {
    public var stdout: CapturedText?
    public var stderr: CapturedText?
    /// The start of the response body of a webhook that was not answered with 2xx.
    public var responseBody: CapturedText?

    public init(stdout: CapturedText? = nil, stderr: CapturedText? = nil, responseBody: CapturedText? = nil) {
        self.stdout = stdout
        self.stderr = stderr
        self.responseBody = responseBody
    }
}

/// The first bytes of a stream as text, and how many bytes there were.
public struct CapturedText: Sendable, Equatable, Codable, CustomStringConvertible {
    /// The kept bytes as UTF-8 (invalid sequences replaced).
    public var text: String
    public var capturedBytes: Int
    public var totalBytes: Int
    public var truncated: Bool

    public init(bytes: [UInt8], totalBytes: Int) {
        text = String(decoding: bytes, as: UTF8.self)
        capturedBytes = bytes.count
        self.totalBytes = totalBytes
        truncated = totalBytes > bytes.count
    }

    /// "captured 65536 of 5000000 bytes".
    public var summary: String { "captured \(capturedBytes) of \(totalBytes) bytes" }
    public var description: String { summary }
}

extension Duration {
    public var millisecondsDouble: Double {
        let (s, atto) = components
        return Double(s) * 1000 + Double(atto) / 1e15
    }
}
