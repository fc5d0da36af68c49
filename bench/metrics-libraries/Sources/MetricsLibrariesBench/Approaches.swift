import CoreMetrics
import Foundation
import Metrics
import Prometheus
import VitalsAgent
import VitalsCore

/// One way of keeping and exposing the agent's per-service metrics.
protocol Approach {
    /// One probe result, as the agent records it when it arrives.
    func record(service: String, result: ProbeResult)
    /// A service changed state. The hand-written exposition reads states from
    /// the snapshot at render time, so it has nothing to do here.
    func stateChanged(service: String, to state: HealthState)
    /// One full exposition.
    func render(snapshot: AgentState.Snapshot, now: Date) -> [UInt8]
}

/// The metric names, the same for every approach.
enum Names {
    static let probes = "vitals_probes_total"
    static let degraded = "vitals_probes_degraded_total"
    static let failures = "vitals_probe_failures_total"
    static let duration = "vitals_probe_duration_seconds"
    static let up = "vitals_service_up"
    static let state = "vitals_service_state"
    static let heartbeatAge = "vitals_heartbeat_age_seconds"
    static let buildInfo = "vitals_build_info"
    static let startTime = "vitals_start_time_seconds"
    static let services = "vitals_services"

    static let probeBuckets: [Duration] = MetricsHistogram.probeBounds.map { .nanoseconds(Int64(($0 * 1e9).rounded())) }
}

// MARK: Hand-written

/// What the agent does today: `ProbeMetrics` and `MetricsRenderer`.
struct HandWritten: Approach {
    let metrics = ProbeMetrics()

    func record(service: String, result: ProbeResult) {
        metrics.record(service: service, result: result)
    }

    func stateChanged(service: String, to state: HealthState) {}

    func render(snapshot: AgentState.Snapshot, now: Date) -> [UInt8] {
        Array(MetricsRenderer.render(snapshot: snapshot, metrics: metrics, scheduler: nil, store: nil,
                                     openConnections: nil, now: now).utf8)
    }
}

// MARK: swift-metrics over swift-prometheus

/// The swift-metrics API (`Counter`, `Timer`, `Gauge`) bootstrapped with
/// `PrometheusMetricsFactory`. Handles for every series are made at start
/// and cached per service, as an agent would; with `handlePerRecord` every
/// record makes its handles again instead, as naive code does (the factory
/// finds the existing series by label and dimensions); the bench turns it on
/// after the cached figures are taken.
final class SwiftMetrics: Approach {
    struct ProbeHandles {
        let probes: CoreMetrics.Counter
        let degraded: CoreMetrics.Counter
        let failures: [ProbeFailureClass: CoreMetrics.Counter]
        let duration: CoreMetrics.Timer
    }

    struct StateHandles {
        let up: CoreMetrics.Gauge
        /// One per `HealthState.allCases`, in that order.
        let states: [CoreMetrics.Gauge]
    }

    let registry = PrometheusCollectorRegistry()
    var handlePerRecord = false
    private(set) var probe: [String: ProbeHandles] = [:]
    private(set) var state: [String: StateHandles] = [:]
    private(set) var heartbeatAge: [String: CoreMetrics.Gauge] = [:]

    /// Registers every series of the exposition and sets the gauges from `snapshot`.
    init(snapshot: AgentState.Snapshot) {
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.durationHistogramBuckets[Names.duration] = Names.probeBuckets
        MetricsSystem.bootstrap(factory)

        CoreMetrics.Gauge(label: Names.buildInfo, dimensions: [("version", VitalsVersion.current)]).record(1)
        CoreMetrics.Gauge(label: Names.startTime).record(snapshot.startedAt.timeIntervalSince1970)
        CoreMetrics.Gauge(label: Names.services).record(Double(snapshot.services.count))
        for s in snapshot.services {
            let name = s.config.name
            let dims = [("service", name)]
            state[name] = StateHandles(
                up: CoreMetrics.Gauge(label: Names.up, dimensions: dims),
                states: HealthState.allCases.map {
                    CoreMetrics.Gauge(label: Names.state, dimensions: [("service", name), ("state", $0.rawValue)])
                })
            stateChanged(service: name, to: s.health.state)
            switch s.health {
            case .probed:
                probe[name] = ProbeHandles(
                    probes: CoreMetrics.Counter(label: Names.probes, dimensions: dims),
                    degraded: CoreMetrics.Counter(label: Names.degraded, dimensions: dims),
                    failures: Dictionary(uniqueKeysWithValues: ProbeFailureClass.allCases.map {
                        ($0, CoreMetrics.Counter(label: Names.failures, dimensions: [("service", name), ("reason", $0.rawValue)]))
                    }),
                    duration: CoreMetrics.Timer(label: Names.duration, dimensions: dims))
            case .heartbeat(let tracker):
                if tracker.lastBeat != nil {
                    heartbeatAge[name] = CoreMetrics.Gauge(label: Names.heartbeatAge, dimensions: dims)
                }
            }
        }
    }

    func record(service: String, result: ProbeResult) {
        if handlePerRecord {
            let dims = [("service", service)]
            CoreMetrics.Counter(label: Names.probes, dimensions: dims).increment()
            switch result.outcome {
            case .ok: break
            case .degraded: CoreMetrics.Counter(label: Names.degraded, dimensions: dims).increment()
            case .failed:
                let reason = ProbeFailureClass.classify(result.reason).rawValue
                CoreMetrics.Counter(label: Names.failures, dimensions: [("service", service), ("reason", reason)]).increment()
            }
            if let latency = result.latency {
                CoreMetrics.Timer(label: Names.duration, dimensions: dims).record(duration: latency)
            }
            return
        }
        guard let h = probe[service] else { return }
        h.probes.increment()
        switch result.outcome {
        case .ok: break
        case .degraded: h.degraded.increment()
        case .failed: h.failures[ProbeFailureClass.classify(result.reason)]?.increment()
        }
        if let latency = result.latency { h.duration.record(duration: latency) }
    }

    func stateChanged(service: String, to new: HealthState) {
        if handlePerRecord {
            CoreMetrics.Gauge(label: Names.up, dimensions: [("service", service)]).record(new.isServing ? 1 : 0)
            for s in HealthState.allCases {
                CoreMetrics.Gauge(label: Names.state, dimensions: [("service", service), ("state", s.rawValue)])
                    .record(s == new ? 1 : 0)
            }
            return
        }
        guard let h = state[service] else { return }
        h.up.record(new.isServing ? 1 : 0)
        for (s, gauge) in zip(HealthState.allCases, h.states) { gauge.record(s == new ? 1 : 0) }
    }

    /// Heartbeat ages change with the clock, not on events: set them just before emitting.
    func render(snapshot: AgentState.Snapshot, now: Date) -> [UInt8] {
        for s in snapshot.services {
            if case .heartbeat(let tracker) = s.health, let last = tracker.lastBeat {
                heartbeatAge[s.config.name]?.record(max(0, now.timeIntervalSince(last)))
            }
        }
        var buffer: [UInt8] = []
        registry.emit(into: &buffer)
        return buffer
    }
}

// MARK: swift-prometheus directly

/// The swift-prometheus API without swift-metrics: `MetricNameDescriptor`
/// carries HELP text, which the swift-metrics factory cannot pass on.
/// Handles made at start and cached per service.
final class PrometheusDirect: Approach {
    struct ProbeHandles {
        let probes: Prometheus.Counter
        let degraded: Prometheus.Counter
        let failures: [ProbeFailureClass: Prometheus.Counter]
        let duration: Prometheus.DurationHistogram
    }

    struct StateHandles {
        let up: Prometheus.Gauge
        let states: [Prometheus.Gauge]
    }

    let registry = PrometheusCollectorRegistry()
    private(set) var probe: [String: ProbeHandles] = [:]
    private(set) var state: [String: StateHandles] = [:]
    private(set) var heartbeatAge: [String: Prometheus.Gauge] = [:]

    private static func descriptor(_ name: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "vitals", metricName: name, unitName: unit, helpText: help)
    }

    init(snapshot: AgentState.Snapshot) {
        let up = Self.descriptor("service", "up", "1 when the service is serving (up or degraded), else 0.")
        let stateD = Self.descriptor("service", "state", "1 for the service's current state, 0 for the others.")
        let probes = Self.descriptor("probes", "total", "Probe results recorded.")
        let degraded = Self.descriptor("probes_degraded", "total", "Probe results that broke only a soft condition.")
        let failures = Self.descriptor("probe_failures", "total", "Failed probes, by class of reason.")
        let duration = Self.descriptor("probe_duration", "seconds", "Probe duration, from start to result.")
        let age = Self.descriptor("heartbeat_age", "seconds", "Seconds since the service's last heartbeat.")

        registry.makeGauge(descriptor: Self.descriptor("build", "info", "Always 1; the agent's version is a label."),
                           labels: [("version", VitalsVersion.current)]).set(to: 1)
        registry.makeGauge(descriptor: Self.descriptor("start_time", "seconds",
                                                       "When the agent started, in seconds since the Unix epoch."))
            .set(to: snapshot.startedAt.timeIntervalSince1970)
        registry.makeGauge(descriptor: Self.descriptor("services", "", "Services configured."))
            .set(to: Double(snapshot.services.count))
        for s in snapshot.services {
            let name = s.config.name
            let labels = [("service", name)]
            state[name] = StateHandles(
                up: registry.makeGauge(descriptor: up, labels: labels),
                states: HealthState.allCases.map {
                    registry.makeGauge(descriptor: stateD, labels: [("service", name), ("state", $0.rawValue)])
                })
            stateChanged(service: name, to: s.health.state)
            switch s.health {
            case .probed:
                probe[name] = ProbeHandles(
                    probes: registry.makeCounter(descriptor: probes, labels: labels),
                    degraded: registry.makeCounter(descriptor: degraded, labels: labels),
                    failures: Dictionary(uniqueKeysWithValues: ProbeFailureClass.allCases.map {
                        ($0, registry.makeCounter(descriptor: failures, labels: [("service", name), ("reason", $0.rawValue)]))
                    }),
                    duration: registry.makeDurationHistogram(descriptor: duration, labels: labels,
                                                             buckets: Names.probeBuckets))
            case .heartbeat(let tracker):
                if tracker.lastBeat != nil {
                    heartbeatAge[name] = registry.makeGauge(descriptor: age, labels: labels)
                }
            }
        }
    }

    func record(service: String, result: ProbeResult) {
        guard let h = probe[service] else { return }
        h.probes.increment()
        switch result.outcome {
        case .ok: break
        case .degraded: h.degraded.increment()
        case .failed: h.failures[ProbeFailureClass.classify(result.reason)]?.increment()
        }
        if let latency = result.latency { h.duration.record(latency) }
    }

    func stateChanged(service: String, to new: HealthState) {
        guard let h = state[service] else { return }
        h.up.set(to: new.isServing ? 1 : 0)
        for (s, gauge) in zip(HealthState.allCases, h.states) { gauge.set(to: s == new ? 1 : 0) }
    }

    func render(snapshot: AgentState.Snapshot, now: Date) -> [UInt8] {
        for s in snapshot.services {
            if case .heartbeat(let tracker) = s.health, let last = tracker.lastBeat {
                heartbeatAge[s.config.name]?.set(to: max(0, now.timeIntervalSince(last)))
            }
        }
        var buffer: [UInt8] = []
        registry.emit(into: &buffer)
        return buffer
    }
}
