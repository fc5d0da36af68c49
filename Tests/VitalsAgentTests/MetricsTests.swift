import Foundation
import Testing
import VitalsActions
import VitalsCore
import VitalsProbe
@testable import VitalsAgent
@testable import VitalsStore
import VitalsTestKit

/// `GET /metrics`: counters, the exposition text, and `promtool check metrics`.
@Suite struct MetricsTests {
    let clock = ManualClock()

    func makeState(_ metrics: ProbeMetrics) -> StateOwner {
        let fast = ProbeTiming(rise: 1, fall: 1, flapping: FlapPolicy(changes: 0))
        let config = VitalsConfig(
            services: [
                ServiceConfig(name: "web-1", check: .tcp(TCPCheck(host: "127.0.0.1", port: 1)), timing: fast),
                ServiceConfig(name: "web-2", check: .tcp(TCPCheck(host: "127.0.0.1", port: 2)), timing: fast),
                ServiceConfig(name: "backup", check: .heartbeat(HeartbeatCheck(every: .seconds(3600), grace: .seconds(600)))),
            ],
            groups: [GroupConfig(name: "web", mode: .activePassive(failback: .manual, failbackDelay: .seconds(10)),
                                 members: ["web-1", "web-2"], cooldown: .zero)])
        // As the agent wires it: every published event reaches the metrics.
        return StateOwner(config: config, configPath: "t.yaml", clock: clock) { events in
            for event in events { metrics.record(event: event) }
        }
    }

    func probe(_ state: StateOwner, _ metrics: ProbeMetrics, _ service: String, _ outcome: ProbeOutcome,
               _ reason: String = "", latency: Duration?) {
        let result = ProbeResult(time: clock.now(), latency: latency, outcome: outcome, reason: reason)
        state.record(result, for: service)
        metrics.record(service: service, result: result)
    }

    func outcome(_ action: String, _ result: ActionResult, seconds: Int64, attempts: Int = 1) -> ActionOutcome {
        ActionOutcome(action: action, kind: "exec", eventID: 5, eventKind: .group(.failover), group: "web",
                      result: result, attempts: attempts, started: clock.now(), finished: clock.now(),
                      duration: .seconds(seconds))
    }

    /// ok, timeout and status failures, a failover, a heartbeat and two actions, rendered.
    func scenario() -> String {
        let metrics = ProbeMetrics()
        let state = makeState(metrics)
        probe(state, metrics, "web-1", .ok, latency: .milliseconds(3))
        probe(state, metrics, "web-2", .ok, latency: .milliseconds(30))
        clock.advance(by: .seconds(1))
        _ = try? state.apply(.heartbeat(.success, service: "backup"))
        probe(state, metrics, "web-1", .failed, "timeout after 2s", latency: .seconds(2))
        probe(state, metrics, "web-1", .failed, "status 503, expected 200-299", latency: .milliseconds(20))
        state.flush()
        metrics.record(outcome: outcome("notify", .ok, seconds: 1))
        metrics.record(outcome: outcome("notify", .failed(.exitStatus(3)), seconds: 3))
        metrics.record(outcome: outcome("page \"ops\"\nnow\\", .skipped("dry run"), seconds: 0, attempts: 0))
        clock.advance(by: .seconds(60))
        var scheduler = ProbeStatistics()
        scheduler.started = 4
        scheduler.completed = 4
        scheduler.inFlight = 1
        scheduler.overruns = 2
        scheduler.lateness = LatenessSummary(samples: 4, p50: .milliseconds(1), p99: .milliseconds(12), max: .milliseconds(40))
        let store = StoreHealth.Report(failing: [], lastError: nil, pendingRecords: 0, droppedRecords: 7, writeErrors: 4)
        return MetricsRenderer.render(view: state.view, metrics: metrics, scheduler: scheduler,
                                      store: store, openConnections: 3, now: clock.now())
    }

    @Test func rendersTheSeries() {
        let text = scenario()
        let lines = Set(text.split(separator: "\n").map(String.init))
        let expected = [
            #"vitals_build_info{version="\#(VitalsVersion.current)"} 1"#,
            #"vitals_start_time_seconds 1800000000"#,
            #"vitals_services 3"#,
            #"vitals_service_up{service="web-1"} 0"#,
            #"vitals_service_up{service="web-2"} 1"#,
            #"vitals_service_state{service="web-1",state="down"} 1"#,
            #"vitals_service_state{service="web-1",state="up"} 0"#,
            #"vitals_service_state{service="web-2",state="up"} 1"#,
            #"vitals_probes_total{service="web-1"} 3"#,
            #"vitals_probes_total{service="web-2"} 1"#,
            #"vitals_probe_failures_total{service="web-1",reason="timeout"} 1"#,
            #"vitals_probe_failures_total{service="web-1",reason="status"} 1"#,
            #"vitals_probe_failures_total{service="web-1",reason="connect"} 0"#,
            #"vitals_probe_duration_seconds_bucket{service="web-1",le="0.005"} 1"#,
            #"vitals_probe_duration_seconds_bucket{service="web-1",le="0.025"} 2"#,
            #"vitals_probe_duration_seconds_bucket{service="web-1",le="1"} 2"#,
            #"vitals_probe_duration_seconds_bucket{service="web-1",le="2.5"} 3"#,
            #"vitals_probe_duration_seconds_bucket{service="web-1",le="+Inf"} 3"#,
            #"vitals_probe_duration_seconds_count{service="web-1"} 3"#,
            #"vitals_heartbeat_age_seconds{service="backup"} 60"#,
            #"vitals_group_active_member{group="web",member="web-1"} 0"#,
            #"vitals_group_active_member{group="web",member="web-2"} 1"#,
            #"vitals_group_held{group="web"} 0"#,
            #"vitals_failovers_total{group="web",kind="failover"} 1"#,
            #"vitals_failovers_total{group="web",kind="failback"} 0"#,
            #"vitals_failovers_total{group="web",kind="switchover"} 0"#,
            #"vitals_group_condition{group="web",condition="ok"} 1"#,
            #"vitals_group_condition{group="web",condition="starting"} 0"#,
            #"vitals_group_condition{group="web",condition="degraded"} 0"#,
            #"vitals_group_condition{group="web",condition="down"} 0"#,
            #"vitals_action_runs_total{action="notify",result="ok"} 1"#,
            #"vitals_action_runs_total{action="notify",result="failed"} 1"#,
            #"vitals_action_runs_total{action="page \"ops\"\nnow\\",result="skipped"} 1"#,
            #"vitals_action_duration_seconds_bucket{action="notify",le="2.5"} 1"#,
            #"vitals_action_duration_seconds_bucket{action="notify",le="5"} 2"#,
            #"vitals_action_duration_seconds_sum{action="notify"} 4"#,
            #"vitals_action_duration_seconds_count{action="page \"ops\"\nnow\\"} 0"#,
            #"vitals_probes_in_flight 1"#,
            #"vitals_scheduler_overruns_total 2"#,
            #"vitals_scheduler_lateness_p99_seconds 0.012"#,
            #"vitals_open_connections 3"#,
            #"vitals_journal_pending_records 0"#,
            #"vitals_journal_dropped_records_total 7"#,
            #"vitals_state_write_failing 0"#,
            #"vitals_state_write_errors_total 4"#,
        ]
        for line in expected {
            #expect(lines.contains(line), "missing: \(line)")
        }
        #expect(!text.contains("vitals_heartbeat_age_seconds{service=\"web-1\"}"), "probed services have no heartbeat age")
        #expect(!text.contains("vitals_probes_total{service=\"backup\"}"), "heartbeat services are not probed")
        #expect(!text.contains(#"vitals_failovers_total{group="web"}"#), "every move has its kind")
        #expect(text.hasSuffix("\n"))
    }

    @Test func everyFamilyHasHelpAndTypeBeforeItsSamples() {
        let text = scenario()
        var typed: [String: String] = [:]
        var helped: Set<String> = []
        for line in text.split(separator: "\n").map(String.init) {
            let words = line.split(separator: " ", maxSplits: 3).map(String.init)
            if line.hasPrefix("# HELP ") { helped.insert(words[2]); continue }
            if line.hasPrefix("# TYPE ") { typed[words[2]] = words[3]; continue }
            let name = String(line.prefix { $0 != "{" && $0 != " " })
            var family = name
            for suffix in ["_bucket", "_sum", "_count"] where name.hasSuffix(suffix) {
                let base = String(name.dropLast(suffix.count))
                if typed[base] == "histogram" { family = base }
            }
            #expect(typed[family] != nil && helped.contains(family), "no HELP/TYPE before \(line)")
            if typed[family] == "counter" { #expect(family.hasSuffix("_total"), "\(family)") }
        }
    }

    @Test func omitsFamiliesWithoutASource() {
        let metrics = ProbeMetrics()
        let state = makeState(metrics)
        let text = MetricsRenderer.render(view: state.view, metrics: metrics, scheduler: nil, store: nil,
                                          openConnections: nil, now: clock.now())
        #expect(!text.contains("vitals_probes_in_flight"))
        #expect(!text.contains("vitals_journal_"))
        #expect(!text.contains("vitals_open_connections"))
        #expect(!text.contains("vitals_heartbeat_age_seconds{"), "no beat yet")
        #expect(text.contains(#"vitals_probes_total{service="web-1"} 0"#))
        #expect(text.contains(#"vitals_service_state{service="web-1",state="unknown"} 1"#))
        #expect(text.contains(#"vitals_group_condition{group="web",condition="starting"} 1"#))
        #expect(text.contains(#"vitals_group_condition{group="web",condition="ok"} 0"#))
    }

    @Test(arguments: [
        ("timeout after 2s", ProbeFailureClass.timeout),
        ("connect refused", .connect),
        ("cannot connect: Network is unreachable", .connect),
        ("cannot resolve host", .connect),
        ("status 503, expected 200-299", .status),
        ("body lacks \"ok\"", .body),
        ("body does not match /ready/", .body),
        ("body is not JSON", .body),
        ("$.status is \"down\", expected \"ok\"", .json),
        ("$.checks.db missing", .json),
        ("latency 1.2s over limit 1s", .latency),
        ("TLS: handshake failed", .tls),
        ("TLS: certificate verify failed", .tls),
        ("certificate expired (minimum 7 days)", .tls),
        ("certificate expires in 3 days, less than cert_min_days 14", .tls),
        ("TLS: certificate verify failed: certificate has expired", .tls),
        (#"expected "+PONG", got "-ERR unknown command""#, .expect),
        (#"expected /^220 /, got "554 TLS required\r\n" before the connection closed"#, .expect),
        (#"receive failed: Connection reset by peer; expected "+PONG", got nothing"#, .expect),
        (#"timeout after 500ms: expected "+PONG", got "+PO""#, .timeout),
        ("exit status 2", .other),
        ("probe failed", .other),
        ("", .other),
    ])
    func classifiesReasons(reason: String, expected: ProbeFailureClass) {
        #expect(ProbeFailureClass.classify(reason) == expected)
    }

    @Test func escapesLabelValues() {
        #expect(MetricsRenderer.escapeLabelValue(#"a\b"#) == #"a\\b"#)
        #expect(MetricsRenderer.escapeLabelValue(#"say "hi""#) == #"say \"hi\""#)
        #expect(MetricsRenderer.escapeLabelValue("two\nlines") == #"two\nlines"#)
        #expect(MetricsRenderer.escapeLabelValue("plain ünïcode") == "plain ünïcode")
    }

    @Test func formatsValues() {
        #expect(MetricsRenderer.formatValue(3) == "3")
        #expect(MetricsRenderer.formatValue(0.25) == "0.25")
        #expect(MetricsRenderer.formatValue(.infinity) == "+Inf")
        #expect(MetricsRenderer.formatValue(-.infinity) == "-Inf")
        #expect(MetricsRenderer.formatValue(.nan) == "NaN")
    }

    /// A plugin's exit 3 is counted apart: it is not a failure of any class.
    @Test func countsUnknownResultsApartFromFailures() {
        let metrics = ProbeMetrics()
        let state = makeState(metrics)
        probe(state, metrics, "web-1", .unknown, "UNKNOWN: ?", latency: .milliseconds(5))
        let counters = metrics.values.services["web-1"]
        #expect(counters?.probes == 1)
        #expect(counters?.unknown == 1)
        #expect(counters?.failures.isEmpty == true)
        let text = MetricsRenderer.render(view: state.view, metrics: metrics, scheduler: nil, store: nil,
                                          openConnections: nil, now: clock.now())
        #expect(text.contains(#"vitals_probes_unknown_total{service="web-1"} 1"#))
        #expect(text.contains(#"vitals_probe_failures_total{service="web-1",reason="other"} 0"#))
    }

    @Test func countsEachEventOnceAndOnlyMoves() {
        let metrics = ProbeMetrics()
        let t = clock.now()
        metrics.record(event: AgentEvent(id: 1, time: t, kind: .group(.activated), group: "web", reason: ""))
        metrics.record(event: AgentEvent(id: 2, time: t, kind: .group(.failover), group: "web", reason: ""))
        metrics.record(event: AgentEvent(id: 2, time: t, kind: .group(.failover), group: "web", reason: ""))
        metrics.record(event: AgentEvent(id: 3, time: t, kind: .group(.switchover), group: "web", reason: ""))
        metrics.record(event: AgentEvent(id: 4, time: t, kind: .group(.failback), group: "db", reason: ""))
        metrics.record(event: AgentEvent(id: 5, time: t, kind: .stateChange, service: "web-1", reason: ""))
        #expect(metrics.values.failovers == ["web": [.failover: 1, .switchover: 1], "db": [.failback: 1]])
    }

    @Test(.enabled(if: Promtool.installed, "/usr/bin/promtool is not installed (apt-get install prometheus)"))
    func passesPromtool() throws {
        let text = scenario()
        let verdict = try Promtool.checkMetrics(text)
        #expect(verdict.status == 0, "promtool: \(verdict.said)\n\(text)")
        #expect(verdict.said.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, "promtool: \(verdict.said)")
    }
}

/// `promtool check metrics` (Debian's `prometheus`), where installed.
enum Promtool {
    static let path = "/usr/bin/promtool"
    static let installed = FileManager.default.isExecutableFile(atPath: path)

    /// The exit status and what promtool said about `text`.
    static func checkMetrics(_ text: String) throws -> (status: Int32, said: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = ["check", "metrics"]
        let input = Pipe(), output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = output
        try process.run()
        input.fileHandleForWriting.write(Data(text.utf8))
        try input.fileHandleForWriting.close()
        let said = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, said)
    }
}
