import Foundation
import Synchronization
import VitalsCore
import VitalsSystem

/// Probes every service at its interval, from one loop thread that is also
/// the prober's I/O thread: the loop starts the probes that are due, then
/// lets the prober wait for I/O until the next one is (for curl, the
/// `curl_multi_poll` timeout is the time to the next due probe).
///
/// - Each service's probes keep a stable phase within the interval (FNV-1a
///   of its name) plus random jitter up to `timing.jitter`; deadlines use a
///   monotonic clock.
/// - A probe still in flight when its next one is due is not doubled: the
///   overrun is counted (per service and in total) and the next probe starts
///   right after it ends.
/// - After each result, `next` says whether the following probe comes after
///   the normal or the fast interval.
/// - Results go to the sink on the loop thread, one call per probe, then one
///   `roundEnded()` per poll that returned any: the only thread hop a result
///   makes is whatever the sink does with it.
///
/// Heartbeat services are not probed and are ignored here.
public final class ProbeScheduler: Sendable {
    struct Shared {
        enum Phase { case idle, running, stopped }
        var phase: Phase = .idle
        var stopRequested = false
        var pendingServices: [ServiceConfig]?
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    /// How early a probe may start to share a wakeup with others (1ms).
    static let coalescingWindow: Int64 = 1_000_000

    /// The prober's wake-up, shared with the loop thread, which owns the prober.
    private let waker: any ProberWaker
    let shared = Mutex(Shared())
    let recorder = Mutex(StatisticsRecorder())
    private let exited = DispatchSemaphore(value: 0)
    /// The loop with the prober and the schedule, until `start` hands it to its thread.
    private let unstarted: Mutex<ProbeLoop?>

    /// - Parameters:
    ///   - services: what to probe; heartbeat services are skipped.
    ///   - prober: runs the probes; owned by this scheduler's loop while it runs.
    ///   - sink: receives each result, on the loop thread.
    ///   - next: after each result, whether the next probe is `.normal` or
    ///     `.fast`; called on the loop thread, must not block.
    ///   - seed: seeds the jitter; nil picks one at random.
    ///   - maxInFlight: probes running at once, at most. Past it, due probes
    ///     wait here (and show as lateness) instead of piling into curl: a
    ///     backlog of thousands of transfers, each on a connection of its
    ///     own, costs more per probe than it clears and never drains.
    public init(services: [ServiceConfig], prober: sending any Prober, sink: any ProbeResultSink,
                next: @escaping @Sendable (_ service: String, _ result: ProbeResult) -> NextProbe = { _, _ in .normal },
                seed: UInt64? = nil, maxInFlight: Int = ProbeScheduler.defaultMaxInFlight) {
        waker = prober.waker
        unstarted = Mutex(ProbeLoop(services: services, prober: prober, sink: sink, next: next,
                                    book: ScheduleBook(seed: seed ?? UInt64.random(in: .min ... .max)),
                                    maxInFlight: max(1, maxInFlight)))
    }

    /// Starts the loop thread. A second call does nothing.
    public func start() {
        guard let loop = unstarted.withLock({ $0.take() }) else { return }
        shared.withLock { $0.phase = .running }
        LoopThread.detach(name: "vitals-probe") { [self] in
            loop.run(self)
            let waiters = shared.withLock { state in
                state.phase = .stopped
                defer { state.waiters.removeAll() }
                return state.waiters
            }
            for waiter in waiters { waiter.resume() }
            exited.signal()
        }
    }

    /// Stops promptly: abandons probes in flight (their transfers removed,
    /// plugins killed) and joins the loop thread. Blocks until it has exited;
    /// do not call it from the sink or the `next` closure.
    public func stop() {
        guard requestStop() else { return }
        exited.wait()
        exited.signal() // let any other `stop` caller through too
    }

    /// Runs until the task is cancelled, then stops.
    public func run() async {
        start()
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let alreadyStopped = shared.withLock { state in
                    if state.phase == .stopped { return true }
                    state.waiters.append(continuation)
                    return false
                }
                if alreadyStopped { continuation.resume() }
            }
        } onCancel: {
            // Must not block: the loop thread resumes the continuation above
            // on its way out, and that needs the task this handler runs in.
            requestStop()
        }
        stop()
    }

    /// Asks the loop to stop without waiting. Returns whether it was running.
    @discardableResult
    private func requestStop() -> Bool {
        let wasRunning = shared.withLock { state in
            state.stopRequested = true
            return state.phase == .running
        }
        if wasRunning { waker.wake() }
        return wasRunning
    }

    /// Replaces the services, matched by name: a service whose check and
    /// timing are unchanged keeps its schedule and any probe in flight; a
    /// changed one is cancelled and planned afresh; a removed one is
    /// cancelled; a new one is added. Any thread.
    public func update(services: [ServiceConfig]) {
        shared.withLock { $0.pendingServices = services }
        waker.wake()
    }

    /// The counters now. Any thread.
    public var statistics: ProbeStatistics {
        let (recorder, samples) = self.recorder.withLock { ($0, $0.rawSamples) }
        return recorder.snapshot(sorted: samples.sorted())
    }

    /// The default bound on probes running at once.
    public static let defaultMaxInFlight = 1_000

    static func isProbed(_ service: ServiceConfig) -> Bool {
        switch service.check {
        case .http, .tcp, .exec, .dns, .grpc, .icmp: true
        case .heartbeat: false
        }
    }
}

extension ProbeScheduler {
    /// Probes every service once, all at the same time, and returns each
    /// result by service name (for `vitals check`). Heartbeat services are
    /// skipped. Runs `prober` on a thread of its own: do not pass a prober a
    /// running scheduler owns.
    public static func probeOnce(services: [ServiceConfig],
                                 prober: sending any Prober = CurlMultiProber()) async -> [String: ProbeResult] {
        let probed = services.filter(isProbed)
        guard !probed.isEmpty else { return [:] }
        return await LoopThread.value(name: "vitals-probe-once") { runOnce(probed, prober: prober) }
    }

    /// The blocking form of `probeOnce`, on the calling thread.
    public static func probeOnceBlocking(services: [ServiceConfig],
                                         prober: any Prober = CurlMultiProber()) -> [String: ProbeResult] {
        runOnce(services.filter(isProbed), prober: prober)
    }

    private static func runOnce(_ services: [ServiceConfig], prober: any Prober) -> [String: ProbeResult] {
        for (slot, service) in services.enumerated() { prober.start(service, slot: slot) }
        // Every probe is bounded by its timeout; exec adds the kill grace.
        // The margin only guards against a prober that never answers.
        let longest = services.map(\.timing.timeout).max() ?? .zero
        let deadline = MonotonicInstant.now() + longest + .seconds(5)
        var results: [String: ProbeResult] = [:]
        var finished: [ProbeCompletion] = []
        while results.count < services.count {
            let now = MonotonicInstant.now()
            guard now < deadline else { break }
            prober.poll(timeout: deadline - now, into: &finished)
            for completion in finished where services.indices.contains(completion.slot) {
                results[services[completion.slot].name] = completion.result
            }
            finished.removeAll(keepingCapacity: true)
        }
        for (slot, service) in services.enumerated() where results[service.name] == nil {
            prober.cancel(slot: slot, forget: false)
            results[service.name] = ProbeResult(time: Date(), latency: nil, outcome: .failed,
                                                reason: "no result within \(DurationText.format(longest + .seconds(5)))")
        }
        return results
    }
}
