import Foundation
import Synchronization
import Testing
import VitalsCore
@testable import VitalsProbe
import VitalsTestKit
import VitalsSystem

/// Records every delivered result, with the time it arrived.
final class RecordingSink: ProbeResultSink {
    struct Entry: Sendable {
        var service: String
        var result: ProbeResult
        var at: MonotonicInstant
    }

    private let entries = Mutex<[Entry]>([])
    /// How many results each `roundEnded()` closed.
    private let roundSizes = Mutex<[Int]>([])
    private let sinceRound = Mutex(0)

    func deliver(_ result: ProbeResult, service: String) {
        let at = MonotonicInstant.now()
        entries.withLock { $0.append(Entry(service: service, result: result, at: at)) }
        sinceRound.withLock { $0 += 1 }
    }

    func roundEnded() {
        let size = sinceRound.withLock { n in defer { n = 0 }; return n }
        roundSizes.withLock { $0.append(size) }
    }

    var rounds: [Int] { roundSizes.withLock { $0 } }

    var all: [Entry] { entries.withLock { $0 } }
    func count(_ service: String) -> Int { entries.withLock { $0.filter { $0.service == service }.count } }
}

/// A fake prober that answers after `delay` on a global queue, and records how
/// many probes of each service (and of all) were ever in flight at once.
final class DelayedFakeProber: Sendable {
    let prober: ClosureProber
    private let inFlight = Locked<(current: [String: Int], peak: [String: Int])>(([:], [:]))
    private let total = Locked<(current: Int, peak: Int)>((0, 0))

    init(delay: Duration, outcome: ProbeOutcome = .ok) {
        let inFlight = self.inFlight
        let total = self.total
        prober = ClosureProber { service, complete in
            inFlight.withLock { state in
                state.current[service.name, default: 0] += 1
                state.peak[service.name] = max(state.peak[service.name] ?? 0, state.current[service.name]!)
            }
            total.withLock { t in
                t.current += 1
                t.peak = max(t.peak, t.current)
            }
            let finish: @Sendable () -> Void = {
                inFlight.withLock { $0.current[service.name, default: 0] -= 1 }
                total.withLock { $0.current -= 1 }
                complete(ProbeResult(time: Date(), latency: delay, outcome: outcome))
            }
            // Zero delay answers at once, independent of dispatch's thread pool.
            if delay == .zero { finish() } else {
                DispatchQueue.global().asyncAfter(deadline: .now() + delay.seconds, execute: finish)
            }
        }
    }

    var peakInFlight: [String: Int] { inFlight.withLock { $0.peak } }
    var peakTotalInFlight: Int { total.withLock { $0.peak } }
}

func service(_ name: String, interval: Duration, fast: Duration? = nil, jitter: Duration = .zero,
             timeout: Duration = .milliseconds(500)) -> ServiceConfig {
    ServiceConfig(name: name, check: .tcp(TCPCheck(host: "127.0.0.1", port: 1)),
                  timing: ProbeTiming(interval: interval, timeout: timeout, jitter: jitter, fastInterval: fast))
}

@Suite("Probe scheduler with real threads")
struct ProbeSchedulerTests {
    @Test func anOverrunningProbeIsNeverDoubled() throws {
        let fake = DelayedFakeProber(delay: .milliseconds(120))
        let sink = RecordingSink()
        let names = ["a", "b", "c"]
        let scheduler = ProbeScheduler(services: names.map { service($0, interval: .milliseconds(50)) },
                                       prober: fake.prober, sink: sink, seed: 1)
        scheduler.start()
        #expect(eventually(timeout: .seconds(5)) { names.allSatisfy { sink.count($0) >= 4 } })
        scheduler.stop()

        let stats = scheduler.statistics
        #expect(fake.peakInFlight.values.allSatisfy { $0 == 1 }, "\(fake.peakInFlight)")
        #expect(stats.overruns >= 9)
        #expect(Set(stats.overrunsByService.keys) == Set(names))
        #expect(stats.overrunsByService.values.reduce(0, +) == stats.overruns)
        #expect(stats.inFlight == 0)
        // Back to back, never overlapping: each gap is at least the probe's duration.
        for name in names {
            let times = sink.all.filter { $0.service == name }.map(\.at)
            for (earlier, later) in zip(times, times.dropFirst()) {
                #expect(later - earlier >= .milliseconds(110))
            }
        }
    }

    /// Every delivered result is followed, within its poll, by one
    /// `roundEnded()`; results that finish together share a round.
    @Test func eachRoundOfResultsEndsOnce() throws {
        let fake = DelayedFakeProber(delay: .milliseconds(20))
        let sink = RecordingSink()
        let names = (0..<8).map { "r\($0)" }
        let scheduler = ProbeScheduler(services: names.map { service($0, interval: .milliseconds(100)) },
                                       prober: fake.prober, sink: sink, seed: 5)
        scheduler.start()
        #expect(eventually(timeout: .seconds(5)) { names.allSatisfy { sink.count($0) >= 3 } })
        scheduler.stop()
        let rounds = sink.rounds
        #expect(rounds.allSatisfy { $0 > 0 }, "no empty rounds: \(rounds)")
        #expect(rounds.reduce(0, +) == sink.all.count, "every result closed by a round")
    }

    /// Past the bound, due probes wait in the scheduler instead of piling up
    /// in the prober; they run as others finish, and the wait shows as lateness.
    @Test func probesInFlightStayWithinTheBound() throws {
        let fake = DelayedFakeProber(delay: .milliseconds(100))
        let sink = RecordingSink()
        let names = (0..<12).map { "s\($0)" }
        let scheduler = ProbeScheduler(services: names.map { service($0, interval: .milliseconds(200)) },
                                       prober: fake.prober, sink: sink, seed: 3, maxInFlight: 3)
        scheduler.start()
        #expect(eventually(timeout: .seconds(10)) { names.allSatisfy { sink.count($0) >= 2 } })
        scheduler.stop()
        #expect(fake.peakTotalInFlight == 3, "at most 3 at once, and the bound was reached")
        #expect(scheduler.statistics.lateness.max >= .milliseconds(50), "waiting probes were late")
    }

    @Test func theFastIntervalFollowsAFastAnswer() throws {
        // A name whose phase comes early in a 10s interval, so the test need not wait for it.
        let name = try #require((0..<10_000).lazy.map { "svc-\($0)" }.first {
            ProbePhase.offset(for: $0, interval: .seconds(10)) < .milliseconds(100)
        })
        let fake = DelayedFakeProber(delay: .zero)
        let sink = RecordingSink()
        let asked = Locked(0)
        let scheduler = ProbeScheduler(
            services: [service(name, interval: .seconds(10), fast: .milliseconds(20))],
            prober: fake.prober, sink: sink,
            next: { _, _ in
                // Fast for the first five answers, then normal.
                asked.withLock { $0 += 1; return $0 <= 5 ? .fast : .normal }
            }, seed: 1)
        scheduler.start()
        defer { scheduler.stop() }
        #expect(eventually(timeout: .seconds(2)) { sink.count(name) >= 6 })
        let entries = sink.all
        // Six probes within well under the 10s interval: the fast interval was used.
        #expect(entries[5].at - entries[0].at < .seconds(2))
        // After the normal answer, nothing for a while.
        usleep(200_000)
        #expect(sink.count(name) == 6)
    }

    @Test func stopIsPromptWithProbesInFlight() throws {
        let never = ClosureProber { _, _ in } // never completes
        let sink = RecordingSink()
        let services = (0..<20).map { service("s\($0)", interval: .milliseconds(20)) }
        let scheduler = ProbeScheduler(services: services, prober: never, sink: sink, seed: 1)
        scheduler.start()
        #expect(eventually { scheduler.statistics.started == 20 })
        #expect(scheduler.statistics.inFlight == 20)
        let before = MonotonicInstant.now()
        scheduler.stop()
        #expect(MonotonicInstant.now() - before < .milliseconds(500))
        #expect(scheduler.statistics.inFlight == 0)
        #expect(scheduler.statistics.started == 20) // nothing was doubled while hanging
        #expect(sink.all.isEmpty)
    }

    @Test func latenessIsMeasured() throws {
        let fake = DelayedFakeProber(delay: .zero)
        let sink = RecordingSink()
        let services = (0..<200).map { service("s\($0)", interval: .milliseconds(100), jitter: .milliseconds(10)) }
        let scheduler = ProbeScheduler(services: services, prober: fake.prober, sink: sink, seed: 7)
        scheduler.start()
        #expect(eventually(timeout: .seconds(5)) { scheduler.statistics.completed >= 800 })
        scheduler.stop()
        let stats = scheduler.statistics
        #expect(stats.lateness.samples > 0)
        #expect(stats.lateness.p50 <= stats.lateness.p99)
        #expect(stats.lateness.p99 <= stats.lateness.max)
        // Generous: the loop wakes for each due probe, even on a busy machine.
        #expect(stats.lateness.p50 < .milliseconds(50), "\(stats.lateness)")
        #expect(stats.overruns == 0)
    }

    @Test func updateKeepsAddsAndRemoves() throws {
        let fake = DelayedFakeProber(delay: .zero)
        let sink = RecordingSink()
        let scheduler = ProbeScheduler(services: [service("keep", interval: .milliseconds(20)),
                                                  service("drop", interval: .milliseconds(20))],
                                       prober: fake.prober, sink: sink, seed: 1)
        scheduler.start()
        defer { scheduler.stop() }
        #expect(eventually { sink.count("keep") >= 2 && sink.count("drop") >= 2 })
        scheduler.update(services: [service("keep", interval: .milliseconds(20)),
                                    service("new", interval: .milliseconds(20))])
        #expect(eventually { sink.count("new") >= 2 })
        let dropped = sink.count("drop")
        let kept = sink.count("keep")
        usleep(100_000)
        #expect(sink.count("drop") == dropped)
        #expect(sink.count("keep") > kept)
    }

    @Test func heartbeatServicesAreNotProbed() throws {
        let fake = DelayedFakeProber(delay: .zero)
        let sink = RecordingSink()
        let beat = ServiceConfig(name: "beat", check: .heartbeat(HeartbeatCheck(every: .seconds(1))),
                                 timing: ProbeTiming(interval: .milliseconds(10)))
        let scheduler = ProbeScheduler(services: [beat, service("tcp", interval: .milliseconds(10))],
                                       prober: fake.prober, sink: sink, seed: 1)
        scheduler.start()
        defer { scheduler.stop() }
        #expect(eventually { sink.count("tcp") >= 3 })
        #expect(sink.count("beat") == 0)
    }

    @Test func runStopsOnCancellation() async throws {
        let fake = DelayedFakeProber(delay: .zero)
        let sink = RecordingSink()
        let scheduler = ProbeScheduler(services: [service("a", interval: .milliseconds(10))],
                                       prober: fake.prober, sink: sink, seed: 1)
        let task = Task { await scheduler.run() }
        // Generous: the task needs a thread of the small cooperative pool that
        // the blocking tests running alongside may be holding.
        #expect(await eventuallyAsync(timeout: .seconds(10)) { sink.count("a") >= 2 })
        task.cancel()
        await task.value
        let count = sink.count("a")
        try await Task.sleep(for: .milliseconds(50))
        #expect(sink.count("a") == count)
    }

    @Test func curlProbesOnTheSchedulerThread() throws {
        let server = try TestHTTPServer()
        defer { server.stop() }
        let sink = RecordingSink()
        let services = (0..<30).map {
            ServiceConfig(name: "web-\($0)", check: .http(HTTPCheck(url: server.url("/ok"), bodyContains: "ok")),
                          timing: ProbeTiming(interval: .milliseconds(100), timeout: .seconds(1), jitter: .milliseconds(10)))
        }
        let scheduler = ProbeScheduler(services: services, prober: CurlMultiProber(), sink: sink, seed: 3)
        scheduler.start()
        #expect(eventually(timeout: .seconds(5)) { services.allSatisfy { sink.count($0.name) >= 3 } })
        scheduler.stop()
        #expect(sink.all.allSatisfy { $0.result.outcome == .ok })
        // One kept-alive connection per service, not one per probe.
        #expect(server.acceptedConnections <= 30)
        #expect(server.requestCount >= 90)
        let stats = scheduler.statistics
        #expect(stats.completed == UInt64(sink.all.count))
        #expect(stats.inFlight == 0)
    }
}
