import Foundation
import VitalsCore
import VitalsProcess

/// `exec` actions: runs `argv` directly (no shell; nothing is interpolated)
/// under `ChildProcess` supervision.
///
/// - Environment: the agent's environment, then the action's `env`, then the
///   event (so config cannot shadow it): `VITALS_EVENT` (the kind),
///   `VITALS_GROUP`, `VITALS_SERVICE`, `VITALS_FROM`, `VITALS_TO`,
///   `VITALS_REASON`, `VITALS_EVENT_ID`, `VITALS_TIME` (ISO 8601, UTC, with
///   milliseconds), plus `VITALS_ACTION` (the action's name) and
///   `VITALS_ATTEMPT` (1, 2, ...). Missing values are empty strings.
/// - stdin: the event JSON, then end of file.
/// - The program runs in a process group of its own; at `action.timeout` the
///   group gets SIGTERM, then SIGKILL after `killGrace`.
/// - stdout and stderr are each kept up to `maxOutputBytes` (the rest is counted).
/// - Success is exit status 0 within the timeout. Failures are retried per
///   `RetryPolicy`; a program that cannot be started is not.
public struct ExecActionRunner: ActionRunner {
    /// The agent's environment, the base of the child's.
    public var environment: [String: String]
    /// Per stream. Default: 65,536 (64 KiB).
    public var maxOutputBytes: Int
    /// Between SIGTERM and SIGKILL at a timeout. Default: 2s.
    public var killGrace: Duration
    /// Where the program starts (a relative `argv[0]` resolves from here). Default: the agent's.
    public var workingDirectory: String?
    public var retry: RetryPolicy
    public var clock: any VitalsClock

    public init(environment: [String: String] = ProcessInfo.processInfo.environment, maxOutputBytes: Int = 65_536,
                killGrace: Duration = .seconds(2), workingDirectory: String? = nil,
                retry: RetryPolicy = .init(), clock: any VitalsClock = SystemClock()) {
        self.environment = environment
        self.maxOutputBytes = maxOutputBytes
        self.killGrace = killGrace
        self.workingDirectory = workingDirectory
        self.retry = retry
        self.clock = clock
    }

    public func run(_ event: AgentEvent, action: ActionConfig) async -> ActionOutcome {
        let started = clock.now()
        let startedInstant = ContinuousClock.now
        guard case .exec(let argv, let env) = action.kind else {
            return .notRun(action, event: event, result: .error("exec runner cannot run a \(action.kind.name) action"), at: started)
        }
        let (last, attempts) = await retry.perform(retries: action.retries) { number in
            let spec = ChildProcessSpec(
                argv: argv,
                environment: Self.environment(base: environment, action: action.name, env: env, event: event, attempt: number),
                workingDirectory: workingDirectory, stdin: event.json, maxOutputBytes: maxOutputBytes,
                timeout: action.timeout, killGrace: killGrace)
            return Self.attempt(await ChildProcess.run(spec), timeout: action.timeout)
        }
        return ActionOutcome(action: action.name, kind: action.kind.name, eventID: event.id, eventKind: event.kind,
                             group: event.group, result: last.result, attempts: attempts, started: started,
                             finished: clock.now(), duration: ContinuousClock.now - startedInstant, output: last.output)
    }

    /// The child's environment: `base`, then `env`, then the event's `VITALS_*` variables.
    public static func environment(base: [String: String], action: String, env: [String: String],
                                   event: AgentEvent, attempt: Int) -> [String: String] {
        var result = base
        result.merge(env) { _, new in new }
        let vitals: [String: String] = [
            "VITALS_EVENT": event.kind.rawValue,
            "VITALS_GROUP": event.group ?? "",
            "VITALS_SERVICE": event.service ?? "",
            "VITALS_FROM": event.from ?? "",
            "VITALS_TO": event.to ?? "",
            "VITALS_REASON": event.reason,
            "VITALS_EVENT_ID": String(event.id),
            "VITALS_TIME": event.timeText,
            "VITALS_ACTION": action,
            "VITALS_ATTEMPT": String(attempt),
        ]
        result.merge(vitals) { _, new in new }
        return result
    }

    static func attempt(_ run: ChildProcessResult, timeout: Duration) -> ActionAttempt {
        let result: ActionResult
        if run.cancelled {
            result = .cancelled
        } else if run.timedOut {
            result = .timedOut(after: timeout)
        } else {
            switch run.termination {
            case .exited(code: 0): result = .ok
            case .exited(let code): result = .failed(.exitStatus(code))
            case .signaled(let signal): result = .failed(.signal(signal))
            case .spawnFailed(let failure): result = .spawnFailed(failure.message)
            }
        }
        let started = run.pid != nil
        return ActionAttempt(result: result, output: ActionOutput(
            stdout: started ? CapturedText(bytes: run.stdout.bytes, totalBytes: run.stdout.totalBytes) : nil,
            stderr: started ? CapturedText(bytes: run.stderr.bytes, totalBytes: run.stderr.totalBytes) : nil))
    }
}

/// `log` actions: one line through the injected sink,
/// `action <name> event <id>: <event JSON>`. Always succeeds.
public struct LogActionRunner: ActionRunner {
    public var clock: any VitalsClock
    private let write: @Sendable (String) -> Void

    public init(clock: any VitalsClock = SystemClock(), write: @escaping @Sendable (String) -> Void) {
        self.clock = clock
        self.write = write
    }

    public func run(_ event: AgentEvent, action: ActionConfig) async -> ActionOutcome {
        let started = clock.now()
        let startedInstant = ContinuousClock.now
        write("action \(action.name) event \(event.id): \(String(decoding: event.json, as: UTF8.self))")
        return ActionOutcome(action: action.name, kind: action.kind.name, eventID: event.id, eventKind: event.kind,
                             group: event.group, result: .ok, attempts: 1, started: started, finished: clock.now(),
                             duration: ContinuousClock.now - startedInstant)
    }
}
