import Foundation

extension ProbeTiming {
    /// The shortest `interval` and `fast_interval` accepted: 10ms, as
    /// HAProxy's `inter 10ms`. Below it a probe's own round trip and the
    /// loop's wake-ups take a large share of the interval.
    public static let minimumInterval: Duration = .milliseconds(10)

    /// Under this, `vitals validate` says what an interval costs.
    public static let costlyInterval: Duration = .milliseconds(100)
}

/// What `vitals validate` warns about without refusing the file.
public enum ConfigAdvice {
    /// One line per service probed more often than every 100ms, naming
    /// the key and the cost (`services.db: interval 10ms: 100 probes/s for
    /// this service …`), and whether its jitter is too large for it.
    public static func warnings(_ config: VitalsConfig) -> [String] {
        config.services.compactMap { service in
            guard service.isProbed else { return nil }
            let timing = service.timing
            var parts: [String] = []
            if timing.interval < ProbeTiming.costlyInterval {
                parts.append("interval \(DurationText.format(timing.interval)): "
                    + "\(probesPerSecond(timing.interval)) probes/s for this service")
            }
            if let fast = timing.fastInterval, fast < ProbeTiming.costlyInterval, fast != timing.interval {
                parts.append("fast_interval \(DurationText.format(fast)): "
                    + "\(probesPerSecond(fast)) probes/s for this service while a change is confirmed")
            }
            // Jitter is added to each start on the interval's grid: more than
            // half an interval of it and probes come late, or skip a beat.
            let shortest = min(timing.interval, timing.fastInterval ?? timing.interval)
            if shortest < ProbeTiming.costlyInterval, timing.jitter * 2 > shortest {
                parts.append("jitter \(DurationText.format(timing.jitter)) is more than half of "
                    + "\(DurationText.format(shortest)), so probes start late by up to that much; "
                    + "set jitter: 0 or below half the interval")
            }
            guard !parts.isEmpty else { return nil }
            return "services.\(service.name): " + parts.joined(separator: "; ")
                + " (each probe is a connection or request to the target, and CPU in the agent)"
        }
    }

    /// Probes a second at `interval`, rounded: `100`, `33.3`.
    static func probesPerSecond(_ interval: Duration) -> String {
        let seconds = Double(interval.components.seconds) + Double(interval.components.attoseconds) / 1e18
        guard seconds > 0 else { return "∞" }
        let rate = 1 / seconds
        if rate == rate.rounded() { return String(Int(rate)) }
        return String(format: "%.1f", rate)
    }
}
