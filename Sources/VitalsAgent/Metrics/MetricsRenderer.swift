import Foundation
import VitalsCore
import VitalsProbe

/// `GET /metrics`: the agent in the Prometheus text exposition format
/// (version 0.0.4). Every family has `# HELP` and `# TYPE`; names use base
/// units (`_seconds`) and counters end in `_total`. Families whose source is
/// not given (scheduler, store, connections) are left out.
public enum MetricsRenderer {
    /// The `Content-Type` of the rendered text.
    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    public static func render(snapshot: AgentState.Snapshot, metrics: ProbeMetrics, scheduler: ProbeStatistics?,
                              store: StoreHealth.Report?, openConnections: Int?, now: Date) -> String {
        let values = metrics.values
        var out = Exposition()

        out.family("vitals_build_info", .gauge, "Always 1; the agent's version is a label.")
        out.sample("vitals_build_info", [("version", VitalsVersion.current)], 1)
        out.family("vitals_start_time_seconds", .gauge, "When the agent started, in seconds since the Unix epoch.")
        out.sample("vitals_start_time_seconds", [], snapshot.startedAt.timeIntervalSince1970)
        out.family("vitals_services", .gauge, "Services configured.")
        out.sample("vitals_services", [], Double(snapshot.services.count))

        // Per service.
        let services = snapshot.services
        out.family("vitals_service_up", .gauge, "1 when the service is serving (up or degraded), else 0.")
        for s in services {
            out.sample("vitals_service_up", [("service", s.config.name)], s.health.state.isServing ? 1 : 0)
        }
        out.family("vitals_service_state", .gauge, "1 for the service's current state, 0 for the others.")
        for s in services {
            for state in HealthState.allCases {
                out.sample("vitals_service_state", [("service", s.config.name), ("state", state.rawValue)],
                           s.health.state == state ? 1 : 0)
            }
        }
        let probed = services.filter { if case .probed = $0.health { true } else { false } }.map(\.config.name)
        out.family("vitals_probes_total", .counter, "Probe results recorded.")
        for name in probed {
            out.sample("vitals_probes_total", [("service", name)], Double(values.services[name]?.probes ?? 0))
        }
        out.family("vitals_probes_degraded_total", .counter, "Probe results that broke only a soft condition.")
        for name in probed {
            out.sample("vitals_probes_degraded_total", [("service", name)],
                       Double(values.services[name]?.degraded ?? 0))
        }
        out.family("vitals_probe_failures_total", .counter, "Failed probes, by class of reason.")
        for name in probed {
            let failures = values.services[name]?.failures ?? [:]
            for reason in ProbeFailureClass.allCases {
                out.sample("vitals_probe_failures_total", [("service", name), ("reason", reason.rawValue)],
                           Double(failures[reason] ?? 0))
            }
        }
        out.family("vitals_probe_duration_seconds", .histogram, "Probe duration, from start to result.")
        for name in probed {
            out.histogram("vitals_probe_duration_seconds", [("service", name)],
                          values.services[name]?.duration ?? MetricsHistogram(bounds: MetricsHistogram.probeBounds))
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
        for engine in snapshot.groups {
            for member in engine.group.members {
                out.sample("vitals_group_active_member", [("group", engine.group.name), ("member", member)],
                           engine.active.contains(member) ? 1 : 0)
            }
        }
        out.family("vitals_group_held", .gauge, "1 while an operator holds the group's automatic decisions.")
        for engine in snapshot.groups {
            out.sample("vitals_group_held", [("group", engine.group.name)], engine.isHeld ? 1 : 0)
        }
        out.family("vitals_failovers_total", .counter, "Failovers, failbacks and switchovers since the agent started.")
        for engine in snapshot.groups {
            out.sample("vitals_failovers_total", [("group", engine.group.name)],
                       Double(values.failovers[engine.group.name] ?? 0))
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
        return out.text
    }

    // MARK: Text format

    /// `\` → `\\`, `"` → `\"`, newline → `\n`.
    public static func escapeLabelValue(_ value: String) -> String {
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

/// Builds the exposition text.
private struct Exposition {
    enum Kind: String { case counter, gauge, histogram }

    var text = ""

    mutating func family(_ name: String, _ kind: Kind, _ help: String) {
        text += "# HELP \(name) \(MetricsRenderer.escapeHelp(help))\n# TYPE \(name) \(kind.rawValue)\n"
    }

    mutating func sample(_ name: String, _ labels: [(String, String)], _ value: Double) {
        text += name
        if !labels.isEmpty {
            text += "{"
            text += labels.map { "\($0.0)=\"\(MetricsRenderer.escapeLabelValue($0.1))\"" }.joined(separator: ",")
            text += "}"
        }
        text += " \(MetricsRenderer.formatValue(value))\n"
    }

    mutating func histogram(_ name: String, _ labels: [(String, String)], _ h: MetricsHistogram) {
        let cumulative = h.cumulative
        for (i, bound) in h.bounds.enumerated() {
            sample("\(name)_bucket", labels + [("le", MetricsRenderer.formatValue(bound))], Double(cumulative[i]))
        }
        sample("\(name)_bucket", labels + [("le", "+Inf")], Double(h.count))
        sample("\(name)_sum", labels, h.sum)
        sample("\(name)_count", labels, Double(h.count))
    }
}
