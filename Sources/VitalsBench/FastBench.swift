import Foundation
import Synchronization
import VitalsCore
import VitalsProbe

/// `vitals-bench fast`: one service probed at a short interval (10ms by
/// default) through the real scheduler and curl prober, its results fed to
/// the real `HealthTracker` (rise/fall as configured). Prints every state
/// change as it happens (`change <unix-ms> <from> <to> <reason>`, for the
/// detection comparison in scripts/bench.sh), then a summary: probes, probes
/// a second, failures by reason, downs, CPU per probe, scheduling lateness.
/// Run against a healthy backend, every down is a false one.
struct FastBench {
    struct Options {
        /// `http://…` for an http check, or `host:port` for a tcp check.
        var target = "127.0.0.1:8080"
        var intervalMilliseconds = 10
        var timeoutMilliseconds = 100
        var rise = 2
        var fall = 2
        var seconds = 60.0
    }

    let options: Options

    init(_ options: Options) { self.options = options }

    func service() throws -> ServiceConfig {
        let check: Check
        if options.target.hasPrefix("http://") || options.target.hasPrefix("https://") {
            check = .http(HTTPCheck(url: options.target))
        } else if let address = ListenAddress.parse(options.target), address.port > 0 {
            check = .tcp(TCPCheck(host: address.host, port: address.port))
        } else {
            throw UsageError("--target must be an http:// URL or host:port, got \(options.target)")
        }
        let interval = Duration.milliseconds(options.intervalMilliseconds)
        return ServiceConfig(name: "fast", check: check,
                             timing: ProbeTiming(interval: interval, timeout: .milliseconds(options.timeoutMilliseconds),
                                                 rise: options.rise, fall: options.fall, jitter: .zero,
                                                 fastInterval: interval, flapping: FlapPolicy(changes: 0)))
    }

    final class Tally: ProbeResultSink, @unchecked Sendable {
        struct Counts {
            var tracker: HealthTracker
            var probes = 0
            var failures: [String: Int] = [:]
            var downs = 0
            var changes: [String] = []
        }
        let counts: Mutex<Counts>

        init(_ service: ServiceConfig) {
            counts = Mutex(Counts(tracker: HealthTracker(service: service.name, timing: service.timing,
                                                         startedAt: Date())))
        }

        func deliver(_ result: ProbeResult, service: String) {
            let change = counts.withLock { counts -> HealthTransition? in
                counts.probes += 1
                if result.outcome == .failed { counts.failures[result.reason, default: 0] += 1 }
                let change = counts.tracker.record(result)
                if change?.to == .down { counts.downs += 1 }
                return change
            }
            if let change {
                let ms = Int64((change.at.timeIntervalSince1970 * 1000).rounded())
                standardOutput("change \(ms) \(change.from.rawValue) \(change.to.rawValue) \(change.reason)\n")
            }
        }
    }

    func run() throws {
        let service = try service()
        let tally = Tally(service)
        let scheduler = ProbeScheduler(services: [service], prober: CurlMultiProber(), sink: tally,
                                       next: { _, _ in .normal })
        let before = ProcessUsage.now()
        let started = monotonicNanoseconds()
        scheduler.start()
        sleep(seconds: options.seconds)
        scheduler.stop()
        let elapsed = Double(monotonicNanoseconds() - started) / 1e9
        let after = ProcessUsage.now()
        let cpu = after.cpuSeconds - before.cpuSeconds
        let counts = tally.counts.withLock { $0 }
        let statistics = scheduler.statistics
        standardOutput("target \(options.target) interval \(options.intervalMilliseconds)ms timeout "
            + "\(options.timeoutMilliseconds)ms rise \(options.rise) fall \(options.fall)\n")
        standardOutput("probes \(counts.probes) in \(fixed(elapsed, 1)) s (\(fixed(Double(counts.probes) / elapsed, 1))/s)\n")
        standardOutput("failures \(counts.failures.values.reduce(0, +))"
            + counts.failures.sorted { $0.value > $1.value }.map { " [\($0.value)× \($0.key)]" }.joined() + "\n")
        standardOutput("downs \(counts.downs)\n")
        standardOutput("cpu \(fixed(cpu, 3)) s, \(fixed(cpu * 1e6 / Double(max(1, counts.probes)), 1)) µs per probe, "
            + "\(fixed(cpu / elapsed * 100, 1))% of a core\n")
        standardOutput("lateness p50 \(milliseconds(nanoseconds(statistics.lateness.p50))) "
            + "p99 \(milliseconds(nanoseconds(statistics.lateness.p99))) "
            + "max \(milliseconds(nanoseconds(statistics.lateness.max)))\n")
    }
}

/// Writes to standard output at once (unbuffered), so a reader sees each line as it happens.
func standardOutput(_ text: String) {
    var text = text
    text.withUTF8 { bytes in _ = Glibc.write(1, bytes.baseAddress, bytes.count) }
}
