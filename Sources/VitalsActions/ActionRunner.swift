import Foundation
import VitalsCore

/// Runs one configured action for one event. The one seam between the queue
/// and the ways of acting: a new kind is a new conforming type registered in
/// an `ActionRunnerRegistry`, and neither the queue nor the engine changes.
///
/// The contract:
/// - `run` never throws: every way of failing is an `ActionResult`.
/// - It returns within about `(1 + action.retries) × action.timeout` plus the
///   backoff, and it does not block a cooperative-pool thread while waiting
///   (blocking work goes to a thread of its own).
/// - It does its own retries (use `RetryPolicy.perform` so every kind counts
///   them the same way) and reports the attempts made.
/// - When its task is cancelled it stops promptly (killing what it started)
///   and reports `.cancelled`.
public protocol ActionRunner: Sendable {
    func run(_ event: AgentEvent, action: ActionConfig) async -> ActionOutcome
}

/// Which runner serves which `ActionKind`, by the kind's name (`exec`,
/// `webhook`, `email`, `log`). The queue asks it for every action; a new kind plugs in
/// with `register`.
public struct ActionRunnerRegistry: Sendable {
    private var runners: [String: any ActionRunner]

    public init(_ runners: [String: any ActionRunner] = [:]) {
        self.runners = runners
    }

    /// Serves every action whose `kind.name` is `kind`, replacing any runner registered before.
    public mutating func register(_ runner: any ActionRunner, for kind: String) {
        runners[kind] = runner
    }

    public func runner(for kind: ActionKind) -> (any ActionRunner)? {
        runners[kind.name]
    }

    /// The kinds with a runner, sorted.
    public var kinds: [String] { runners.keys.sorted() }

    /// The exec, webhook, email and log runners.
    /// - Parameters:
    ///   - environment: the agent's environment, the base of every exec action's.
    ///   - log: where `log` actions write their line.
    public static func standard(environment: [String: String] = ProcessInfo.processInfo.environment,
                                retry: RetryPolicy = .init(), clock: any VitalsClock = SystemClock(),
                                log: @escaping @Sendable (String) -> Void) -> ActionRunnerRegistry {
        ActionRunnerRegistry([
            "exec": ExecActionRunner(environment: environment, retry: retry, clock: clock),
            "webhook": WebhookActionRunner(retry: retry, clock: clock, secrets: SecretResolver(environment: environment)),
            "email": EmailActionRunner(retry: retry, clock: clock, secrets: SecretResolver(environment: environment)),
            "log": LogActionRunner(clock: clock, write: log),
        ])
    }
}

/// One attempt of an action: its result and what it printed or answered.
public struct ActionAttempt: Sendable, Equatable {
    public var result: ActionResult
    public var output: ActionOutput

    public init(result: ActionResult, output: ActionOutput = .init()) {
        self.result = result
        self.output = output
    }
}

/// Retries with exponential backoff, counted in this one place for every
/// runner: attempt 1 at once; after a retryable failure (`ActionResult.isRetryable`)
/// wait `base`, then `2 × base`, `4 × base`, ... never more than `cap`, for at
/// most `retries` more attempts. Cancellation stops the retries; the last
/// attempt's result stands.
public struct RetryPolicy: Sendable {
    /// The first wait. Default: 1s.
    public var base: Duration
    /// The longest wait. Default: 30s.
    public var cap: Duration
    /// How a wait is done; throws when the task is cancelled. Tests may record
    /// the waits here. Default: `Task.sleep(for:)`.
    public var sleep: @Sendable (Duration) async throws -> Void

    public init(base: Duration = .seconds(1), cap: Duration = .seconds(30),
                sleep: @escaping @Sendable (Duration) async throws -> Void = { try await Task.sleep(for: $0) }) {
        self.base = base
        self.cap = cap
        self.sleep = sleep
    }

    /// The wait before retry number `retry` (1-based): `base × 2^(retry-1)`, at most `cap`.
    public func delay(beforeRetry retry: Int) -> Duration {
        var delay = base
        for _ in 1..<max(1, retry) {
            delay = delay * 2
            if delay >= cap { return cap }
        }
        return min(delay, cap)
    }

    /// Runs `attempt` (given the 1-based attempt number) until it succeeds,
    /// fails in a way no retry helps, or `1 + retries` attempts are made.
    /// Returns the last attempt and how many were made.
    public func perform(retries: Int,
                        _ attempt: (_ number: Int) async -> ActionAttempt) async -> (last: ActionAttempt, attempts: Int) {
        var number = 1
        var last = await attempt(number)
        while number <= max(0, retries), last.result.isRetryable, !Task.isCancelled {
            do { try await sleep(delay(beforeRetry: number)) } catch { break }
            if Task.isCancelled { break }
            number += 1
            last = await attempt(number)
        }
        return (last, number)
    }
}
