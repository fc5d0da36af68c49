import Foundation
import Synchronization
import VitalsCore

/// Runs the actions of events, one lane per group.
///
/// - Within a lane (one group), events run in the order they were enqueued
///   and each event's actions run in their listed order, one at a time: a
///   failover script never races the previous one.
/// - Lanes run in parallel: a hung action in one group delays no other group.
///   Events without a group share one lane.
/// - `enqueue` never waits: it records the event and returns. Each action's
///   outcome is passed to `deliver`, in order within a lane, from whichever
///   task ran it.
/// - Dry run: nothing runs; every action gets a `skipped("dry run")` outcome, in order.
/// - A kind with no registered runner gets an `.error` outcome; the next action still runs.
/// - `beforeRun`, when set, is asked about each event when it reaches the head
///   of its lane, just before its first action (in dry run too): an event may
///   have gone stale while it waited behind a hung action. `.skip(reason)`
///   gives each of its actions a `skipped(reason)` outcome.
///
/// An action's failure does not stop the event's later actions: each action
/// stands alone, and its outcome says how it went.
public final class ActionQueue: Sendable {
    private struct Job: Sendable {
        var event: AgentEvent
        var actions: [ActionConfig]
    }

    private struct Lane {
        var pending: [Job] = []
        var worker: Task<Void, Never>?
    }

    private struct State {
        var lanes: [String: Lane] = [:]
        var stopping = false
        var idleWaiters: [UInt64: CheckedContinuation<Bool, Never>] = [:]
        var nextWaiter: UInt64 = 0
    }

    private let registry: ActionRunnerRegistry
    private let dryRun: Bool
    private let clock: any VitalsClock
    private let deliver: @Sendable (ActionOutcome) -> Void
    private let onShutdown: (@Sendable () -> Void)?
    private let state = Mutex(State())
    private let hook = Mutex<(@Sendable (AgentEvent) async -> BeforeRunDecision)?>(nil)
    private let afterHook = Mutex<(@Sendable (AgentEvent, ActionOutcome, _ last: Bool) async -> Void)?>(nil)

    /// What `beforeRun` says about an event about to run.
    public enum BeforeRunDecision: Sendable, Equatable {
        case run
        /// Do not run the event's actions; each is recorded as `skipped(reason)`.
        case skip(String)
    }

    /// Asked about each event just before its actions start (on the lane's
    /// task; keep it quick). nil: every event runs. Set it before the first
    /// `enqueue`; a change applies to events that start afterwards.
    public var beforeRun: (@Sendable (AgentEvent) async -> BeforeRunDecision)? {
        get { hook.withLock { $0 } }
        set { hook.withLock { $0 = newValue } }
    }

    /// Awaited after each action that ran for an event, with its outcome
    /// (already delivered) and whether it was the event's last; the lane's
    /// next action waits for it. A cluster leader records there how far the
    /// decision got. nil: nothing.
    public var afterAction: (@Sendable (AgentEvent, ActionOutcome, _ last: Bool) async -> Void)? {
        get { afterHook.withLock { $0 } }
        set { afterHook.withLock { $0 = newValue } }
    }

    /// - Parameters:
    ///   - dryRun: record `skipped("dry run")` outcomes instead of running anything.
    ///   - deliver: receives every outcome; must not block for long (it runs on the lane's task).
    public convenience init(registry: ActionRunnerRegistry, dryRun: Bool = false, clock: any VitalsClock = SystemClock(),
                            deliver: @escaping @Sendable (ActionOutcome) -> Void) {
        self.init(registry: registry, dryRun: dryRun, clock: clock, deliver: deliver, onShutdown: nil)
    }

    private init(registry: ActionRunnerRegistry, dryRun: Bool, clock: any VitalsClock,
                 deliver: @escaping @Sendable (ActionOutcome) -> Void, onShutdown: (@Sendable () -> Void)?) {
        self.registry = registry
        self.dryRun = dryRun
        self.clock = clock
        self.deliver = deliver
        self.onShutdown = onShutdown
    }

    /// A queue whose outcomes arrive on the returned stream (unbounded; it finishes at `shutdown`).
    public static func withOutcomeStream(registry: ActionRunnerRegistry, dryRun: Bool = false,
                                         clock: any VitalsClock = SystemClock()) -> (ActionQueue, AsyncStream<ActionOutcome>) {
        let (stream, continuation) = AsyncStream.makeStream(of: ActionOutcome.self)
        let queue = ActionQueue(registry: registry, dryRun: dryRun, clock: clock,
                                deliver: { continuation.yield($0) }, onShutdown: { continuation.finish() })
        return (queue, stream)
    }

    /// Why every action is skipped under `--dry-run`.
    public static let dryRunReason = "dry run"

    /// The group's lane name: the group, or "" for events without one.
    public static func lane(of event: AgentEvent) -> String { event.group ?? "" }

    /// Queues `actions` to run for `event` after everything already queued for
    /// its group. Returns at once. Once `shutdown` has begun, the actions are
    /// not run: each gets a `skipped("agent shutting down")` outcome at once.
    public func enqueue(_ event: AgentEvent, actions: [ActionConfig]) {
        guard !actions.isEmpty else { return }
        let lane = Self.lane(of: event)
        let accepted = state.withLock { state -> Bool in
            guard !state.stopping else { return false }
            state.lanes[lane, default: Lane()].pending.append(Job(event: event, actions: actions))
            if state.lanes[lane]!.worker == nil {
                // The worker takes the lock before it looks at the lane, so it
                // cannot miss the job just appended.
                state.lanes[lane]!.worker = Task.detached { [self] in await self.work(lane: lane) }
            }
            return true
        }
        if !accepted { skip(Job(event: event, actions: actions), because: "agent shutting down") }
    }

    /// Events queued or running, per lane.
    public var backlog: [String: Int] {
        state.withLock { state in
            state.lanes.mapValues { $0.pending.count + ($0.worker == nil ? 0 : 1) }
        }
    }

    /// Waits until no action is running or queued, at most `timeout`. True when idle.
    public func waitUntilIdle(timeout: Duration) async -> Bool {
        let id = state.withLock { state -> UInt64 in
            state.nextWaiter += 1
            return state.nextWaiter
        }
        return await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
            let idle = state.withLock { state -> Bool in
                if state.lanes.isEmpty { return true }
                state.idleWaiters[id] = continuation
                return false
            }
            if idle {
                continuation.resume(returning: true)
                return
            }
            Task.detached { [self] in
                try? await Task.sleep(for: timeout)
                let waiter = state.withLock { $0.idleWaiters.removeValue(forKey: id) }
                waiter?.resume(returning: false)
            }
        }
    }

    /// Stops taking events and waits up to `grace` for everything already
    /// queued to run. Then cancels what is left: the running action is stopped
    /// (exec: SIGTERM to its group, SIGKILL after its kill grace; webhook:
    /// aborted) and reports `.cancelled`, and every action not yet started
    /// gets `skipped("agent shutting down")`. Returns when every lane has
    /// finished; true when that was within the grace.
    @discardableResult
    public func shutdown(grace: Duration) async -> Bool {
        let workers = state.withLock { state -> [Task<Void, Never>] in
            state.stopping = true
            return state.lanes.values.compactMap(\.worker)
        }
        let inTime = await waitUntilIdle(timeout: grace)
        if !inTime {
            for worker in workers { worker.cancel() }
            for worker in workers { await worker.value }
        }
        onShutdown?()
        return inTime
    }

    /// `shutdown(grace:)` for callers outside async code (the agent's main
    /// thread). Blocks the calling thread; do not call it from a task.
    @discardableResult
    public func shutdownBlocking(grace: Duration) -> Bool {
        let finished = DispatchSemaphore(value: 0)
        let inTime = Atomic<Bool>(false)
        Task.detached { [self] in
            inTime.store(await shutdown(grace: grace), ordering: .releasing)
            finished.signal()
        }
        finished.wait()
        return inTime.load(ordering: .acquiring)
    }

    // MARK: Lanes

    private func work(lane: String) async {
        while let job = next(in: lane) {
            if !Task.isCancelled, let beforeRun, case .skip(let reason) = await beforeRun(job.event) {
                skip(job, because: reason)
                continue
            }
            for (index, action) in job.actions.enumerated() {
                if Task.isCancelled {
                    skip(Job(event: job.event, actions: Array(job.actions[index...])), because: "agent shutting down")
                    break
                }
                let outcome = await run(action, for: job.event)
                deliver(outcome)
                if let afterAction { await afterAction(job.event, outcome, index == job.actions.count - 1) }
            }
        }
    }

    /// The lane's next job, or nil after retiring the lane (and waking idle waiters).
    private func next(in lane: String) -> Job? {
        let (job, waiters) = state.withLock { state -> (Job?, [CheckedContinuation<Bool, Never>]) in
            if let job = state.lanes[lane]?.pending.first {
                state.lanes[lane]!.pending.removeFirst()
                return (job, [])
            }
            state.lanes[lane] = nil
            guard state.lanes.isEmpty else { return (nil, []) }
            let waiters = Array(state.idleWaiters.values)
            state.idleWaiters.removeAll()
            return (nil, waiters)
        }
        for waiter in waiters { waiter.resume(returning: true) }
        return job
    }

    private func run(_ action: ActionConfig, for event: AgentEvent) async -> ActionOutcome {
        if dryRun { return .notRun(action, event: event, result: .skipped(Self.dryRunReason), at: clock.now()) }
        guard let runner = registry.runner(for: action.kind) else {
            return .notRun(action, event: event,
                           result: .error("no runner for action kind '\(action.kind.name)'"), at: clock.now())
        }
        return await runner.run(event, action: action)
    }

    private func skip(_ job: Job, because reason: String) {
        let now = clock.now()
        for action in job.actions {
            deliver(.notRun(action, event: job.event, result: .skipped(reason), at: now))
        }
    }
}
