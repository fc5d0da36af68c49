import Foundation
import Synchronization
import VitalsActions
import VitalsCore

/// Why a probe failed, in the few classes `/metrics` counts by
/// (`vitals_probe_failures_total{reason=...}`). Taken from the reason text
/// the probers write, so a new wording lands in `other` rather than in a
/// label of its own.
public enum ProbeFailureClass: String, CaseIterable, Sendable, Equatable {
    case timeout
    case connect
    case status
    case body
    case json
    case latency
    case tls
    /// A send/expect check's reply was not the expected one (or the
    /// exchange broke off before it came).
    case expect
    /// A dns check's answer: its response code or records were not the
    /// expected ones, or it could not be read.
    case dns
    /// A gRPC health check's answer was not SERVING, or carried a non-zero
    /// grpc-status.
    case grpc
    /// Too many of an icmp check's echo requests went unanswered.
    case loss
    case other

    /// The class of a probe's reason text. Checked in an order that keeps
    /// texts that mention a later class where they belong: `$.status is
    /// "down"` is a JSON failure, `exit status 3` is not an HTTP status.
    public static func classify(_ reason: String) -> ProbeFailureClass {
        // First, and anchored: the reply quoted after "got" may say anything ("TLS", "timeout after").
        if reason.hasPrefix("expected \"") || reason.hasPrefix("expected /")
            || ((reason.hasPrefix("send failed: ") || reason.hasPrefix("receive failed: "))
                && reason.contains("; expected ")) { return .expect }
        // Anchored too: the records quoted may say anything.
        if isDNSAnswerReason(reason) { return .dns }
        // Anchored too: a grpc-message is the server's text.
        if reason.hasPrefix("grpc-status ") || reason.hasPrefix("grpc health") { return .grpc }
        if reason.range(of: #"^[0-9]+ of [0-9]+ lost"#, options: .regularExpression) != nil { return .loss }
        if reason.hasPrefix("rtt "), reason.contains(" > max_rtt ") { return .latency }
        if reason.contains("timeout after") || reason.hasPrefix("timeout") { return .timeout }
        if reason.contains("TLS") || reason.contains("certificate") { return .tls }
        if reason.contains("connect refused") || reason.contains("cannot connect")
            || reason.contains("cannot resolve") { return .connect }
        if reason.hasPrefix("$.") || reason.contains(" $.") { return .json }
        if reason.contains("body lacks") || reason.contains("body does not match")
            || reason.contains("body is not JSON") { return .body }
        if reason.contains("latency") { return .latency }
        if reason.contains("exit status") { return .other }
        if reason.hasPrefix("status ") || reason.contains("(status ") || reason.contains(" status ") { return .status }
        return .other
    }
}

/// A Prometheus histogram: counts per bucket (not cumulative; the renderer
/// accumulates), the sum of observed values and their count.
public struct MetricsHistogram: Sendable, Equatable {
    /// Upper bounds in seconds, ascending; `+Inf` is implied.
    public let bounds: [Double]
    /// One count per bound, plus one for values above the last.
    public private(set) var counts: [UInt64]
    public private(set) var sum: Double = 0
    public private(set) var count: UInt64 = 0

    /// Probe durations: 5 ms to 10 s.
    public static let probeBounds: [Double] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
    /// Action durations: actions retry and wait, so they reach further.
    public static let actionBounds: [Double] = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120]

    public init(bounds: [Double]) {
        self.bounds = bounds
        self.counts = Array(repeating: 0, count: bounds.count + 1)
    }

    public mutating func observe(_ seconds: Double) {
        guard seconds.isFinite else { return }
        let value = max(0, seconds)
        let index = bounds.firstIndex { value <= $0 } ?? bounds.count
        counts[index] += 1
        sum += value
        count += 1
    }

    /// Cumulative counts per bound, then the `+Inf` bucket (== count).
    public var cumulative: [UInt64] {
        var running: UInt64 = 0
        return counts.map { running += $0; return running }
    }
}

/// Counters the agent feeds as results, events and action outcomes arrive,
/// for `GET /metrics`. Everything else `/metrics` shows is read from the
/// state snapshot at render time.
public final class ProbeMetrics: Sendable {
    /// One service's probe counters.
    public struct ServiceCounters: Sendable, Equatable {
        public var probes: UInt64 = 0
        public var degraded: UInt64 = 0
        /// Results that could tell neither way (a plugin's exit 3): not failures.
        public var unknown: UInt64 = 0
        public var failures: [ProbeFailureClass: UInt64] = [:]
        public var duration = MetricsHistogram(bounds: MetricsHistogram.probeBounds)
    }

    /// One action's runs and durations.
    public struct ActionCounters: Sendable, Equatable {
        /// By result label (`ok`, `failed`, `timeout`, …).
        public var runs: [String: UInt64] = [:]
        /// Runs that did something (attempts > 0).
        public var duration = MetricsHistogram(bounds: MetricsHistogram.actionBounds)
    }

    /// Everything at one instant.
    public struct Values: Sendable, Equatable {
        public var services: [String: ServiceCounters] = [:]
        public var actions: [String: ActionCounters] = [:]
        /// Failovers, failbacks and switchovers by group, then by kind.
        public var failovers: [String: [GroupEventKind: UInt64]] = [:]
    }

    /// Group event kinds that move traffic, in the order `/metrics` lists them.
    public static let failoverKinds: [GroupEventKind] = [.failover, .failback, .switchover]

    private struct Inner {
        var values = Values()
        var lastEventID: UInt64 = 0
    }

    private let inner = Mutex(Inner())

    public init() {}

    /// One probe result for `service`.
    public func record(service: String, result: ProbeResult) {
        let seconds = result.latency.map(Self.seconds)
        inner.withLock { inner in
            var counters = inner.values.services[service] ?? ServiceCounters()
            counters.probes += 1
            switch result.outcome {
            case .ok: break
            case .degraded: counters.degraded += 1
            case .unknown: counters.unknown += 1
            case .failed: counters.failures[ProbeFailureClass.classify(result.reason), default: 0] += 1
            }
            if let seconds { counters.duration.observe(seconds) }
            inner.values.services[service] = counters
        }
    }

    /// One finished (or skipped) action.
    public func record(outcome: ActionOutcome) {
        let label = Self.resultLabel(outcome.result)
        let seconds = Self.seconds(outcome.duration)
        inner.withLock { inner in
            var counters = inner.values.actions[outcome.action] ?? ActionCounters()
            counters.runs[label, default: 0] += 1
            if outcome.attempts > 0 { counters.duration.observe(seconds) }
            inner.values.actions[outcome.action] = counters
        }
    }

    /// One published event; counts failovers, failbacks and switchovers.
    /// Events are published in id order; one seen before is ignored.
    public func record(event: AgentEvent) {
        inner.withLock { inner in
            guard event.id > inner.lastEventID else { return }
            inner.lastEventID = event.id
            guard let group = event.group, let kind = event.kind.groupKind, Self.failoverKinds.contains(kind)
            else { return }
            inner.values.failovers[group, default: [:]][kind, default: 0] += 1
        }
    }

    public var values: Values { inner.withLock { $0.values } }

    /// The `result` label of an action run.
    public static func resultLabel(_ result: ActionResult) -> String {
        switch result {
        case .ok: "ok"
        case .failed: "failed"
        case .timedOut: "timeout"
        case .spawnFailed: "spawn_failed"
        case .error: "error"
        case .cancelled: "cancelled"
        case .skipped: "skipped"
        }
    }

    static func seconds(_ duration: Duration) -> Double {
        let (s, atto) = duration.components
        return Double(s) + Double(atto) / 1e18
    }
}
