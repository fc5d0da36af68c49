import Foundation
import VitalsCore
import VitalsStore
import VitalsProbe

/// `GET /metrics`: the agent in the Prometheus text exposition format
/// (version 0.0.4). Every family has `# HELP` and `# TYPE`; names use base
/// units (`_seconds`) and counters end in `_total`. Families whose source is
/// not given (scheduler, store, connections) are left out.
public enum MetricsRenderer {
    /// The `Content-Type` of the rendered text.
    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    public static func render(view: AgentView, metrics: ProbeMetrics, uptimes: [String: [String: Double]]? = nil,
                              scheduler: ProbeStatistics?,
                              store: StoreHealth.Report?, openConnections: Int?, now: Date,
                              pingKeyRefusals: UInt64? = nil, cluster: ClusterFigures? = nil) -> String {
        let values = metrics.values
        var out = Exposition()

        out.family("vitals_build_info", .gauge, "Always 1; the agent's version is a label.")
        out.sample("vitals_build_info", [("version", VitalsVersion.current)], 1)
        out.family("vitals_start_time_seconds", .gauge, "When the agent started, in seconds since the Unix epoch.")
        out.sample("vitals_start_time_seconds", [], view.startedAt.timeIntervalSince1970)
        out.family("vitals_services", .gauge, "Services configured.")
        out.sample("vitals_services", [], Double(view.core.entries.count))

        // Per service. Each service's label is escaped once and its counters
        // looked up once, then reused by every family below.
        let services = view.core.entries
        let serviceLabels = services.map { Exposition.label("service", $0.config.name) }
        out.family("vitals_service_up", .gauge, "1 when the service is serving (up or degraded), else 0.")
        for (i, s) in services.enumerated() {
            out.sample("vitals_service_up", label: serviceLabels[i], s.health.state.isServing ? 1 : 0)
        }
        out.family("vitals_service_state", .gauge, "1 for the service's current state, 0 for the others.")
        let stateLabels = HealthState.allCases.map { Exposition.label("state", $0.rawValue) }
        for (i, s) in services.enumerated() {
            for (k, state) in HealthState.allCases.enumerated() {
                out.sample("vitals_service_state", label: serviceLabels[i], and: stateLabels[k], s.health.state == state ? 1 : 0)
            }
        }
        var probed: [(label: String, counters: ProbeMetrics.ServiceCounters?)] = []
        probed.reserveCapacity(services.count)
        for (i, s) in services.enumerated() {
            if case .probed = s.health { probed.append((serviceLabels[i], values.services[s.config.name])) }
        }
        out.family("vitals_probes_total", .counter, "Probe results recorded.")
        for p in probed {
            out.sample("vitals_probes_total", label: p.label, Double(p.counters?.probes ?? 0))
        }
        out.family("vitals_probes_degraded_total", .counter, "Probe results that broke only a soft condition.")
        for p in probed {
            out.sample("vitals_probes_degraded_total", label: p.label, Double(p.counters?.degraded ?? 0))
        }
        out.family("vitals_probes_unknown_total", .counter,
                   "Probe results that could tell neither way (a plugin's exit 3); not failures.")
        for p in probed {
            out.sample("vitals_probes_unknown_total", label: p.label, Double(p.counters?.unknown ?? 0))
        }
        out.family("vitals_probe_failures_total", .counter, "Failed probes, by class of reason.")
        let reasonLabels = ProbeFailureClass.allCases.map { Exposition.label("reason", $0.rawValue) }
        for p in probed {
            let failures = p.counters?.failures ?? [:]
            for (k, reason) in ProbeFailureClass.allCases.enumerated() {
                out.sample("vitals_probe_failures_total", label: p.label, and: reasonLabels[k], Double(failures[reason] ?? 0))
            }
        }
        out.family("vitals_probe_duration_seconds", .histogram, "Probe duration, from start to result.")
        let noProbes = MetricsHistogram(bounds: MetricsHistogram.probeBounds)
        for p in probed {
            out.histogram("vitals_probe_duration_seconds", label: p.label, p.counters?.duration ?? noProbes)
        }
        if let uptimes {
            // From the history store's cache, refreshed by its writer (24h
            // each minute, 7d and 30d less often): a scrape runs no query.
            out.family("vitals_uptime_ratio", .gauge,
                       "Share of minutes with data that the service was serving, over the window; minutes without data are left out.")
            for (i, s) in services.enumerated() {
                guard let ratios = uptimes[s.config.name] else { continue }
                for window in ["24h", "7d", "30d"] {
                    if let ratio = ratios[window] {
                        out.sample("vitals_uptime_ratio", label: serviceLabels[i], and: Exposition.label("window", window), ratio)
                    }
                }
            }
        }
        var beats: [(String, Double)] = []
        for s in services {
            if case .heartbeat(let tracker) = s.health, let last = tracker.lastBeat {
                beats.append((s.config.name, max(0, now.timeIntervalSince(last))))
            }
        }
        out.family("vitals_heartbeat_age_seconds", .gauge, "Seconds since the service's last heartbeat.")
        for (name, age) in beats {
            out.sample("vitals_heartbeat_age_seconds", [("service", name)], age)
        }

        // Per group.
        out.family("vitals_group_active_member", .gauge, "1 for each member the group sends traffic to, else 0.")
        for engine in view.core.coordinator.engines {
            for member in engine.group.members {
                out.sample("vitals_group_active_member", [("group", engine.group.name), ("member", member)],
                           engine.active.contains(member) ? 1 : 0)
            }
        }
        out.family("vitals_group_held", .gauge, "1 while an operator holds the group's automatic decisions.")
        for engine in view.core.coordinator.engines {
            out.sample("vitals_group_held", [("group", engine.group.name)], engine.isHeld ? 1 : 0)
        }
        out.family("vitals_group_condition", .gauge,
                   "1 for the group's current condition (starting, ok, degraded, down), 0 for the others.")
        for engine in view.core.coordinator.engines {
            for condition in groupConditions {
                out.sample("vitals_group_condition", [("group", engine.group.name), ("condition", condition.rawValue)],
                           engine.condition == condition ? 1 : 0)
            }
        }
        out.family("vitals_failovers_total", .counter,
                   "Moves of a group's traffic since the agent started, by kind: failover, failback, switchover.")
        for engine in view.core.coordinator.engines {
            let counts = values.failovers[engine.group.name] ?? [:]
            for kind in ProbeMetrics.failoverKinds {
                out.sample("vitals_failovers_total", [("group", engine.group.name), ("kind", kind.rawValue)],
                           Double(counts[kind] ?? 0))
            }
        }

        // Per action.
        let actions = values.actions.keys.sorted()
        out.family("vitals_action_runs_total", .counter, "Action runs, by result.")
        for action in actions {
            for (result, count) in values.actions[action]!.runs.sorted(by: { $0.key < $1.key }) {
                out.sample("vitals_action_runs_total", [("action", action), ("result", result)], Double(count))
            }
        }
        out.family("vitals_action_duration_seconds", .histogram, "Action duration, retries and backoff included.")
        for action in actions {
            out.histogram("vitals_action_duration_seconds", [("action", action)], values.actions[action]!.duration)
        }

        // The agent.
        if let scheduler {
            out.family("vitals_probes_in_flight", .gauge, "Probes running now.")
            out.sample("vitals_probes_in_flight", [], Double(scheduler.inFlight))
            out.family("vitals_scheduler_probes_started_total", .counter, "Probes the scheduler started.")
            out.sample("vitals_scheduler_probes_started_total", [], Double(scheduler.started))
            out.family("vitals_scheduler_overruns_total", .counter,
                       "Probes still running when their next one fell due.")
            out.sample("vitals_scheduler_overruns_total", [], Double(scheduler.overruns))
            let lateness = scheduler.lateness
            out.family("vitals_scheduler_lateness_p50_seconds", .gauge,
                       "Median of actual minus planned probe start, over recent probes.")
            out.sample("vitals_scheduler_lateness_p50_seconds", [], ProbeMetrics.seconds(lateness.p50))
            out.family("vitals_scheduler_lateness_p99_seconds", .gauge,
                       "99th percentile of actual minus planned probe start, over recent probes.")
            out.sample("vitals_scheduler_lateness_p99_seconds", [], ProbeMetrics.seconds(lateness.p99))
            out.family("vitals_scheduler_lateness_max_seconds", .gauge,
                       "Largest lateness of a probe start since the agent started.")
            out.sample("vitals_scheduler_lateness_max_seconds", [], ProbeMetrics.seconds(lateness.max))
        }
        if let pingKeyRefusals {
            out.family("vitals_ping_key_refusals_total", .counter, "Pings to /v1/ping/{key} refused for a wrong key.")
            out.sample("vitals_ping_key_refusals_total", [], Double(pingKeyRefusals))
        }
        if let openConnections {
            out.family("vitals_open_connections", .gauge, "Connections open to the status API.")
            out.sample("vitals_open_connections", [], Double(openConnections))
        }
        if let store {
            out.family("vitals_journal_pending_records", .gauge, "Journal records held in memory, waiting for the disk.")
            out.sample("vitals_journal_pending_records", [], Double(store.pendingRecords))
            out.family("vitals_journal_dropped_records_total", .counter,
                       "Journal records dropped because the pending queue was full.")
            out.sample("vitals_journal_dropped_records_total", [], Double(store.droppedRecords))
            out.family("vitals_state_write_failing", .gauge, "1 while at least one state file fails to be written.")
            out.sample("vitals_state_write_failing", [], store.isDegraded ? 1 : 0)
            out.family("vitals_state_write_errors_total", .counter,
                       "Failed writes to the state directory (journal and snapshots, retries included).")
            out.sample("vitals_state_write_errors_total", [], Double(store.writeErrors))
        }
        if let cluster {
            out.family("vitals_cluster_leader", .gauge, "1 while this agent leads the cluster and may act, else 0.")
            out.sample("vitals_cluster_leader", [("agent", cluster.agent)], cluster.isLeader ? 1 : 0)
            out.family("vitals_cluster_has_leader", .gauge, "1 while some agent leads the cluster, as this agent sees it.")
            out.sample("vitals_cluster_has_leader", [], cluster.hasLeader ? 1 : 0)
            out.family("vitals_cluster_leader_changes_total", .counter, "Times the leader changed, as seen by this agent.")
            out.sample("vitals_cluster_leader_changes_total", [], Double(cluster.leaderChanges))
            out.family("vitals_cluster_leadership_acquired_total", .counter, "Times this agent became the leader.")
            out.sample("vitals_cluster_leadership_acquired_total", [], Double(cluster.acquired))
            out.family("vitals_etcd_requests_total", .counter, "Requests to etcd (watches not counted).")
            out.sample("vitals_etcd_requests_total", [], Double(cluster.requests))
            out.family("vitals_etcd_request_errors_total", .counter, "Requests to etcd that failed or went unanswered.")
            out.sample("vitals_etcd_request_errors_total", [], Double(cluster.errors))
            out.family("vitals_etcd_request_seconds_total", .counter,
                       "Time spent in requests to etcd; divided by vitals_etcd_requests_total, the mean latency.")
            out.sample("vitals_etcd_request_seconds_total", [], cluster.seconds)
        }
        return out.text
    }

    /// The cluster's figures for `/metrics`.
    public struct ClusterFigures: Sendable {
        public var agent: String
        public var isLeader: Bool
        public var hasLeader: Bool
        public var leaderChanges: UInt64
        public var acquired: UInt64
        public var requests: UInt64
        public var errors: UInt64
        public var seconds: Double
    }

    /// Every group condition, each listed by the switch below so that a new
    /// one cannot be left out of `vitals_group_condition` unnoticed.
    static let groupConditions: [GroupCondition] = {
        let all: [GroupCondition] = [.starting, .ok, .degraded, .down]
        for condition in all {
            switch condition {
            case .starting, .ok, .degraded, .down: continue
            }
        }
        return all
    }()

    // MARK: Text format

    /// `\` → `\\`, `"` → `\"`, newline → `\n`.
    public static func escapeLabelValue(_ value: String) -> String {
        guard value.utf8.contains(where: { $0 == UInt8(ascii: "\\") || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\n") })
        else { return value }
        var out = ""
        out.reserveCapacity(value.utf8.count)
        for c in value.unicodeScalars {
            switch c {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }

    /// `\` → `\\`, newline → `\n` (HELP text).
    static func escapeHelp(_ text: String) -> String {
        text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\n", with: "\\n")
    }

    /// A sample value as Prometheus parses it: integers without a fraction,
    /// `+Inf`, `-Inf`, `NaN`.
    public static func formatValue(_ value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value > 0 ? "+Inf" : "-Inf" }
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        return "\(value)"
    }
}

/// Builds the exposition text, as bytes: label pairs are escaped once
/// (`label(_:_:)`) and reused, integers are written digit by digit.
private struct Exposition {
    enum Kind: String { case counter, gauge, histogram }

    private var bytes: [UInt8] = []
    /// `le` label texts per list of bucket bounds.
    private var bucketLabels: [[Double]: [String]] = [:]

    init() {
        bytes.reserveCapacity(64 * 1024)
    }

    var text: String { String(decoding: bytes, as: UTF8.self) }

    /// `name="value"`, the value escaped.
    static func label(_ name: String, _ value: String) -> String {
        "\(name)=\"\(MetricsRenderer.escapeLabelValue(value))\""
    }

    mutating func family(_ name: String, _ kind: Kind, _ help: String) {
        append("# HELP \(name) \(MetricsRenderer.escapeHelp(help))\n# TYPE \(name) \(kind.rawValue)\n")
    }

    mutating func sample(_ name: String, _ labels: [(String, String)], _ value: Double) {
        append(name)
        if !labels.isEmpty {
            bytes.append(UInt8(ascii: "{"))
            for (i, pair) in labels.enumerated() {
                if i > 0 { bytes.append(UInt8(ascii: ",")) }
                append(Self.label(pair.0, pair.1))
            }
            bytes.append(UInt8(ascii: "}"))
        }
        appendValue(value)
    }

    /// One sample with one or two labels made by `label(_:_:)`.
    mutating func sample(_ name: String, label: String, _ value: Double) {
        sample(name, label: label, and: nil, value)
    }

    mutating func sample(_ name: String, label: String, and second: String?, _ value: Double) {
        append(name)
        bytes.append(UInt8(ascii: "{"))
        append(label)
        if let second {
            bytes.append(UInt8(ascii: ","))
            append(second)
        }
        bytes.append(UInt8(ascii: "}"))
        appendValue(value)
    }

    mutating func histogram(_ name: String, _ labels: [(String, String)], _ h: MetricsHistogram) {
        histogram(name, label: labels.map { Self.label($0.0, $0.1) }.joined(separator: ","), h)
    }

    /// `label` is the series' labels, made by `label(_:_:)` and joined by commas.
    mutating func histogram(_ name: String, label: String, _ h: MetricsHistogram) {
        let les: [String]
        if let known = bucketLabels[h.bounds] {
            les = known
        } else {
            les = h.bounds.map { Self.label("le", MetricsRenderer.formatValue($0)) } + [Self.label("le", "+Inf")]
            bucketLabels[h.bounds] = les
        }
        var running: UInt64 = 0
        for (i, count) in h.counts.enumerated() {
            running += count
            append(name)
            append("_bucket{")
            append(label)
            bytes.append(UInt8(ascii: ","))
            append(les[i])
            bytes.append(UInt8(ascii: "}"))
            appendValue(Double(running))
        }
        for (suffix, value) in [("_sum", h.sum), ("_count", Double(h.count))] {
            append(name)
            append(suffix)
            bytes.append(UInt8(ascii: "{"))
            append(label)
            bytes.append(UInt8(ascii: "}"))
            appendValue(value)
        }
    }

    private mutating func append(_ text: String) {
        var text = text
        text.withUTF8 { bytes.append(contentsOf: $0) }
    }

    /// ` value\n`, as `MetricsRenderer.formatValue` writes it.
    private mutating func appendValue(_ value: Double) {
        bytes.append(UInt8(ascii: " "))
        if value == value.rounded(), abs(value) < 1e15, !value.isNaN {
            var n = Int64(value)
            if n < 0 {
                bytes.append(UInt8(ascii: "-"))
                n = -n
            }
            if n == 0 {
                bytes.append(UInt8(ascii: "0"))
            } else {
                var digits: (UInt64, UInt64) = (0, 0) // up to 16 digits, as ASCII, from the end
                var count = 0
                withUnsafeMutableBytes(of: &digits) { buffer in
                    while n > 0 {
                        count += 1
                        buffer[16 - count] = UInt8(ascii: "0") + UInt8(n % 10)
                        n /= 10
                    }
                    bytes.append(contentsOf: buffer[(16 - count)...])
                }
            }
        } else {
            append(MetricsRenderer.formatValue(value))
        }
        bytes.append(UInt8(ascii: "\n"))
    }
}
