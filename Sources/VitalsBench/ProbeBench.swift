import Foundation
import Synchronization
import VitalsCore
import VitalsProbe

/// Drives N HTTP endpoints at a 1 s interval through the production
/// `ProbeScheduler` + `CurlMultiProber`, warms up, then measures a window.
struct ProbeBench {
    struct Options {
        var endpoints = 1000
        var seconds = 10.0
        var warmup = 3.0
        var host = "127.0.0.1"
        var basePort = 20000
        var ports = 50
        var timeoutMilliseconds = 1000
        var jsonCondition = false
        /// CurlMultiProber's connection cache size; nil: its default (one per HTTP service).
        var maxCachedConnections: Int?
        /// Backend processes (nginx master; its children are included) whose CPU is reported.
        var watchPids: [Int32] = []
    }

    static let interval = Duration.seconds(1)

    let options: Options
    init(_ options: Options) { self.options = options }

    /// Endpoint K is `http://HOST:(basePort + K % ports)/health?i=K`: distinct
    /// URLs, spread evenly over the ports.
    func services() -> [ServiceConfig] {
        let timing = ProbeTiming(interval: Self.interval, timeout: .milliseconds(options.timeoutMilliseconds),
                                 rise: 1, fall: 1, jitter: .zero)
        let width = String(options.endpoints - 1).count
        return (0..<options.endpoints).map { index in
            let port = options.basePort + index % options.ports
            var check = HTTPCheck(url: "http://\(options.host):\(port)/health?i=\(index)", tlsVerify: false)
            if options.jsonCondition { check.json = [JSONExpectation(path: "status", expected: .string("UP"))] }
            let digits = String(index)
            let name = "ep-" + String(repeating: "0", count: width - digits.count) + digits
            return ServiceConfig(name: name, check: .http(check), timing: timing)
        }
    }

    func run() {
        let services = services()
        let sink = CountingSink()
        let prober = TimingProber(inner: CurlMultiProber(configuration: .init(maxCachedConnections: options.maxCachedConnections)), interval: nanoseconds(Self.interval))
        // Started empty, then given the services: the loop applies them right
        // after the wakeup that `update` causes, which the prober sees, so
        // the schedule's origin is known to within microseconds.
        let scheduler = ProbeScheduler(services: [], prober: prober, sink: sink, seed: 1)
        let rssBeforeStart = currentRSSKiB() ?? 0

        print("probe bench: \(options.endpoints) endpoints on \(options.host):\(options.basePort)-\(options.basePort + options.ports - 1)"
              + ", interval 1s, timeout \(options.timeoutMilliseconds)ms, jitter 0"
              + (options.jsonCondition ? ", json condition status=UP" : ", status condition only")
              + (options.maxCachedConnections.map { ", connection cache \($0)" } ?? ", connection cache: prober default")
              + "; warm-up \(fixed(options.warmup, 1))s, measured \(fixed(options.seconds, 1))s")
        print("  load average at start: \(loadAverage())")

        scheduler.start()
        sleep(seconds: 0.05)  // the loop is now idle in poll
        prober.expectOrigin()
        scheduler.update(services: services)
        sleep(seconds: options.warmup)

        // The measured window.
        let before = sink.counts
        let usageBefore = ProcessUsage.now()
        let backendBefore = options.watchPids.map(processTreeCPUSeconds)
        let startedBefore = scheduler.statistics
        sink.measuring.store(true, ordering: .releasing)
        prober.measuring.store(true, ordering: .releasing)
        let windowStart = monotonicNanoseconds()
        // Every 100 ms: the most probes in flight; every second: completions.
        var maxInFlight = 0
        var perSecond: [UInt64] = []
        var lastSecondCount = before.total
        var nextSecond = windowStart + 1_000_000_000
        let windowNanoseconds = Int64(options.seconds * 1e9)
        while true {
            let now = monotonicNanoseconds()
            if now >= windowStart + windowNanoseconds { break }
            sleep(seconds: min(0.1, Double(windowStart + windowNanoseconds - now) / 1e9))
            maxInFlight = max(maxInFlight, scheduler.statistics.inFlight)
            if monotonicNanoseconds() >= nextSecond {
                let total = sink.counts.total
                perSecond.append(total - lastSecondCount)
                lastSecondCount = total
                nextSecond += 1_000_000_000
            }
        }
        prober.measuring.store(false, ordering: .releasing)
        sink.measuring.store(false, ordering: .releasing)
        let windowEnd = monotonicNanoseconds()
        let usageAfter = ProcessUsage.now()
        let backendAfter = options.watchPids.map(processTreeCPUSeconds)
        let after = sink.counts
        let statistics = scheduler.statistics
        let rssAtEnd = currentRSSKiB() ?? 0
        let loadAtEnd = loadAverage()
        let sockets = openSocketCount()

        scheduler.stop()

        let wall = Double(windowEnd - windowStart) / 1e9
        let ok = after.ok - before.ok
        let degraded = after.degraded - before.degraded
        let failed = after.failed - before.failed
        let completed = ok + degraded + failed
        let cpu = usageAfter.cpuSeconds - usageBefore.cpuSeconds
        let user = usageAfter.userSeconds - usageBefore.userSeconds
        let system = usageAfter.systemSeconds - usageBefore.systemSeconds
        let perThousand = completed > 0 ? cpu / Double(completed) * 1000 : 0
        let lateness = prober.samples.sorted()
        let latencies = sink.latencies.sorted()
        let overruns = statistics.overruns - startedBefore.overruns
        let peakRSS = Double(usageAfter.maxRSSKiB) / 1024
        var backendCPU: Double?
        if !options.watchPids.isEmpty {
            var total = 0.0
            for (b, a) in zip(backendBefore, backendAfter) {
                if let b, let a { total += a - b }
            }
            backendCPU = total / wall * 100
        }

        print("  load average at end:   \(loadAtEnd)")
        print("  window                         \(fixed(wall, 2)) s")
        print("  probes completed/s             \(fixed(Double(completed) / wall, 1))  (ok \(ok), degraded \(degraded), failed \(failed))")
        if failed > 0 || degraded > 0 {
            print("  !! failures invalidate the figures; first reasons:")
            for (reason, count) in sink.reasons.sorted(by: { $0.value > $1.value }).prefix(5) {
                print("     \(count)× \(reason)")
            }
        }
        print("  CPU s per 1,000 probes         \(fixed(perThousand, 4))  (\(fixed(perThousand * 1000, 1)) µs per probe; user \(fixed(user, 2)) s, sys \(fixed(system, 2)) s)")
        print("  CPU % of one core              \(fixed(cpu / wall * 100, 1))")
        let ownBuffers = Double((prober.samples.capacity + sink.latencies.capacity) * 8) / 1_048_576
        print("  peak RSS (ru_maxrss)           \(fixed(peakRSS, 1)) MB  (RSS now \(fixed(Double(rssAtEnd) / 1024, 1)) MB; before start, configs built: \(fixed(Double(rssBeforeStart) / 1024, 1)) MB; the bench's own sample buffers: \(fixed(ownBuffers, 1)) MB)")
        let early = lateness.prefix { $0 < 0 }.count
        print("  lateness p50/p99/max           \(milliseconds(percentile(lateness, 0.5))) / \(milliseconds(percentile(lateness, 0.99))) / \(milliseconds(lateness.last ?? 0)) ms  over \(lateness.count) probe starts")
        print("    started early               \(fixed(Double(early) / Double(max(1, lateness.count)) * 100, 1)) % (earliest \(milliseconds(lateness.first ?? 0)) ms: the scheduler starts probes due within its coalescing window together)")
        print("    scheduler's own figures      p50 \(milliseconds(nanoseconds(statistics.lateness.p50))) ms, p99 \(milliseconds(nanoseconds(statistics.lateness.p99))) ms over its last \(statistics.lateness.samples) samples (early counts as 0); max since start, warm-up included: \(milliseconds(nanoseconds(statistics.lateness.max))) ms")
        print("  probe latency p50/p99          \(milliseconds(percentile(latencies, 0.5))) / \(milliseconds(percentile(latencies, 0.99))) ms  (curl total time)")
        print("  overruns                       \(overruns)  (probes in flight: at most \(maxInFlight) in 100 ms samples, \(statistics.inFlight) at end)")
        print("  completions in each second     " + perSecond.map(String.init).joined(separator: " "))
        print("  open sockets at end            \(sockets)  (before stop: curl's connections to the fleet)")
        if let backendCPU {
            print("  backend (nginx) CPU            \(fixed(backendCPU, 1)) % of one core")
        }
        var fields: [(String, String)] = [
            ("endpoints", "\(options.endpoints)"),
            ("seconds", fixed(wall, 2)),
            ("rate", fixed(Double(completed) / wall, 1)),
            ("failed", "\(failed + degraded)"),
            ("cpu_per_1000", fixed(perThousand, 4)),
            ("us_per_probe", fixed(perThousand * 1000, 1)),
            ("cpu_pct", fixed(cpu / wall * 100, 1)),
            ("rss_mb", fixed(peakRSS, 1)),
            ("late_p50", milliseconds(percentile(lateness, 0.5))),
            ("late_p99", milliseconds(percentile(lateness, 0.99))),
            ("late_max", milliseconds(lateness.last ?? 0)),
            ("late_min", milliseconds(lateness.first ?? 0)),
            ("overruns", "\(overruns)"),
            ("max_inflight", "\(maxInFlight)"),
            ("sockets", "\(sockets)"),
            ("lat_p99", milliseconds(percentile(latencies, 0.99))),
        ]
        if let backendCPU { fields.append(("backend_pct", fixed(backendCPU, 1))) }
        print("RESULT probe " + fields.map { "\($0.0)=\($0.1)" }.joined(separator: " "))
    }
}

/// Counts results; during the measured window also keeps each probe's latency.
/// `deliver` runs on the scheduler's loop thread only; `latencies` and
/// `reasons` are read after `stop()` has joined that thread.
// @unchecked: the counters are touched by the loop thread only, the rest after stop() joined it.
final class CountingSink: ProbeResultSink, @unchecked Sendable {
    struct Counts {
        var ok: UInt64
        var degraded: UInt64
        var failed: UInt64
        var total: UInt64 { ok + degraded + failed }
    }

    let measuring = Atomic<Bool>(false)
    private let ok = Atomic<UInt64>(0)
    private let degraded = Atomic<UInt64>(0)
    private let failed = Atomic<UInt64>(0)
    private(set) var latencies: [Int64] = []
    private(set) var reasons: [String: Int] = [:]

    init() { latencies.reserveCapacity(1 << 16) }

    var counts: Counts {
        Counts(ok: ok.load(ordering: .acquiring), degraded: degraded.load(ordering: .acquiring),
               failed: failed.load(ordering: .acquiring))
    }

    func deliver(_ result: ProbeResult, service: String) {
        switch result.outcome {
        case .ok: ok.add(1, ordering: .releasing)
        case .degraded: degraded.add(1, ordering: .releasing)
        case .failed, .unknown: failed.add(1, ordering: .releasing)
        }
        if result.outcome != .ok, reasons.count < 20 || reasons[result.reason] != nil {
            reasons[result.reason, default: 0] += 1
        }
        if measuring.load(ordering: .relaxed), let latency = result.latency {
            latencies.append(nanoseconds(latency))
        }
    }
}

/// Forwards to the real prober and measures scheduling lateness (actual start
/// minus planned start) for every probe of the measured window: the
/// scheduler's own statistics keep only a ring of the last 4,096 samples and
/// count early starts as 0.
///
/// The plan mirrors `ScheduleBook` with jitter 0 and the normal interval
/// only: a service's first probe is planned at `origin + phase(name)`, each
/// next one an interval after the previous planned start, and after an
/// overrun (the next planned start passed before the probe ended) at the
/// moment the probe ended. `origin` is when the scheduler applied the
/// services: the bench starts it empty and hands them over with `update`,
/// whose wakeup ends the loop's idle poll; the loop applies them right after
/// (within microseconds), so `origin` is when that poll returned. The start
/// time is read when the scheduler hands the probe over, so it also counts
/// the time spent starting the probes just before it in the same batch.
final class TimingProber: Prober, @unchecked Sendable {
    // @unchecked: all but the atomics is touched only by the scheduler's loop
    // thread (the `Prober` contract), and `samples` by the caller after stop.

    let measuring = Atomic<Bool>(false)
    /// Signed: negative when a probe started before its planned time.
    private(set) var samples: [Int64] = []

    private let inner: CurlMultiProber
    private let interval: Int64
    private let originExpected = Atomic<Bool>(false)
    private var origin: Int64?
    private var offset: [Int64] = []
    /// Set after an overrun: the grid restarts there.
    private var anchor: [Int64?] = []
    private var steps: [Int64] = []
    private var known: [Bool] = []

    init(inner: CurlMultiProber, interval: Int64) {
        self.inner = inner
        self.interval = interval
        samples.reserveCapacity(1 << 17)
    }

    /// Call right before `update(services:)` on an idle scheduler: the next
    /// return from `poll` marks the origin of the schedule.
    func expectOrigin() {
        originExpected.store(true, ordering: .releasing)
    }

    private func planned(_ slot: Int) -> Int64 {
        (anchor[slot] ?? ((origin ?? 0) + offset[slot])) + steps[slot] * interval
    }

    func start(_ service: ServiceConfig, slot: Int) {
        let now = monotonicNanoseconds()
        if slot >= known.count {
            let grow = slot + 1 - known.count
            offset.append(contentsOf: repeatElement(0, count: grow))
            anchor.append(contentsOf: repeatElement(nil, count: grow))
            steps.append(contentsOf: repeatElement(0, count: grow))
            known.append(contentsOf: repeatElement(false, count: grow))
        }
        if !known[slot] {
            known[slot] = true
            offset[slot] = nanoseconds(ProbePhase.offset(for: service.name, interval: service.timing.interval))
        }
        if measuring.load(ordering: .relaxed) {
            samples.append(now - planned(slot))
        }
        inner.start(service, slot: slot)
    }

    func poll(timeout: Duration, into finished: inout [ProbeCompletion]) {
        let before = finished.count
        inner.poll(timeout: timeout, into: &finished)
        let now = monotonicNanoseconds()
        if origin == nil, originExpected.load(ordering: .acquiring) { origin = now }
        for completion in finished[before...] where completion.slot < known.count && known[completion.slot] {
            let slot = completion.slot
            let next = planned(slot) + interval
            if next <= now {
                anchor[slot] = now
                steps[slot] = 0
            } else {
                steps[slot] += 1
            }
        }
    }

    var waker: any ProberWaker { inner.waker }

    func cancel(slot: Int, forget: Bool) { inner.cancel(slot: slot, forget: forget) }
}
