import Foundation
import VitalsCore
import VitalsProbe
import VitalsSystem

func httpService(_ url: String, name: String = "web", timeout: Duration = .milliseconds(500),
                 _ configure: (inout HTTPCheck) -> Void = { _ in }) -> ServiceConfig {
    var check = HTTPCheck(url: url)
    configure(&check)
    return ServiceConfig(name: name, check: .http(check), timing: ProbeTiming(timeout: timeout))
}

func tcpService(port: UInt16, name: String = "tcp", timeout: Duration = .milliseconds(500)) -> ServiceConfig {
    ServiceConfig(name: name, check: .tcp(TCPCheck(host: "127.0.0.1", port: port)),
                  timing: ProbeTiming(timeout: timeout))
}

/// Probes one service once with a fresh curl prober, on the calling thread
/// (blocking keeps timings free of the test pool's scheduling).
func probe(_ service: ServiceConfig,
           prober: CurlMultiProber = CurlMultiProber()) -> ProbeResult {
    ProbeScheduler.probeOnceBlocking(services: [service], prober: prober)[service.name]!
}

/// Probes one slot repeatedly through the same prober, driving its loop here.
func probeRepeatedly(_ service: ServiceConfig, times: Int, prober: CurlMultiProber) -> [ProbeResult] {
    var results: [ProbeResult] = []
    var finished: [ProbeCompletion] = []
    for _ in 0..<times {
        prober.start(service, slot: 0)
        let deadline = MonotonicInstant.now() + service.timing.timeout + .seconds(2)
        while finished.isEmpty && MonotonicInstant.now() < deadline {
            prober.poll(timeout: .milliseconds(100), into: &finished)
        }
        results.append(contentsOf: finished.map(\.result))
        finished.removeAll()
    }
    return results
}

/// Polls `condition` until it holds or `timeout` passes.
func eventually(timeout: Duration = .seconds(2), _ condition: () -> Bool) -> Bool {
    let deadline = MonotonicInstant.now() + timeout
    while MonotonicInstant.now() < deadline {
        if condition() { return true }
        usleep(5_000)
    }
    return condition()
}

/// `eventually` for async tests: sleeps by suspending, so the tasks it waits
/// for can run on the (small) cooperative pool meanwhile.
func eventuallyAsync(timeout: Duration = .seconds(2), _ condition: () -> Bool) async -> Bool {
    let deadline = MonotonicInstant.now() + timeout
    while MonotonicInstant.now() < deadline {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(5))
    }
    return condition()
}
