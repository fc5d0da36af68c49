import Foundation
import Synchronization
import Testing
import VitalsCore
import VitalsProbe
import VitalsSystem
import VitalsTestKit

/// A 10ms interval through the real scheduler, curl prober and health
/// tracker. The long measurement (60 s, beside HAProxy) is `make bench`,
/// part 4; this short run checks the same path end to end.
@Suite("10ms intervals")
struct FastIntervalTests {
    @Test func aHealthyBackendProbedEvery10msNeverGoesDown() throws {
        // A listener that never accepts: the kernel completes each connect
        // into a 4,096-deep queue, so the backend is healthy however busy
        // the machine is, with no thread of ours in the way.
        let (fd, port) = try LoopbackPort.bound()
        defer { Posix.close(fd) }
        try Posix.listen(fd, backlog: 4096)

        let timing = ProbeTiming(interval: .milliseconds(10), timeout: .milliseconds(250), rise: 2, fall: 2,
                                 jitter: .zero, fastInterval: .milliseconds(10), flapping: FlapPolicy(changes: 0))
        let service = ServiceConfig(name: "fast", check: .tcp(TCPCheck(host: "127.0.0.1", port: port)), timing: timing)
        struct Tally {
            var tracker: HealthTracker
            var probes = 0
            var failures: [String] = []
            var downs = 0
        }
        let tally = Mutex(Tally(tracker: HealthTracker(service: "fast", timing: timing, startedAt: Date())))
        let enough = DispatchSemaphore(value: 0)
        let wanted = 200
        let scheduler = ProbeScheduler(services: [service], prober: CurlMultiProber(),
                                       sink: ProbeResultHandler { result, _ in
            let count = tally.withLock { tally -> Int in
                tally.probes += 1
                if result.outcome == .failed { tally.failures.append(result.reason) }
                if tally.tracker.record(result)?.to == .down { tally.downs += 1 }
                return tally.probes
            }
            if count == wanted { enough.signal() }
        })
        scheduler.start()
        // 200 probes take 2 s at 10ms; the bound is for a machine busy with other work.
        let finished = enough.wait(timeout: .now() + 30)
        scheduler.stop()
        let result = tally.withLock { $0 }
        #expect(finished == .success, "only \(result.probes) probes")
        #expect(result.downs == 0, "failures: \(result.failures.prefix(5))")
        #expect(result.tracker.state == .up)
    }
}
