#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
import VitalsProbe

/// The real binary, a real backend, real sockets and real libcurl.
@Suite(.serialized) struct AgentEndToEndTests {
    @Test func probesLogTransitionsAndServeStatus() throws {
        let backend = try Backend()
        defer { backend.stop() }
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let config = dir.appendingPathComponent("vitals.yaml")
        try """
        agent: { listen: 127.0.0.1:0, state_dir: \(dir.path)/state }
        defaults: { interval: 200ms, timeout: 500ms, rise: 2, fall: 2, jitter: 0ms }
        services:
          api:
            http: { url: "http://127.0.0.1:\(backend.port)/health", json: { status: UP } }
          job: { heartbeat: { every: 1h, grace: 1m } }
        """.write(to: config, atomically: true, encoding: .utf8)

        let agent = try AgentProcess(config: config, directory: dir)
        let base = try agent.baseURL()
        try agent.waitForLine(containing: "api: unknown → up")

        let status = try fetch(base + "/v1/services/api")
        #expect(status.contains(#""state":"up""#))
        #expect(try fetch(base + "/healthz").contains(#""status":"ok""#))

        let mark = agent.output.count
        backend.answer(503)
        let line = try agent.waitForLine(containing: "api: up → down", after: mark)
        #expect(line.contains("status 503, expected 200-299"))
        #expect(line.contains("service=api"))
        let up = HTTPFetch.request(url: base + "/v1/services/api/up")
        #expect((try? up.get().status) == 503)

        // /metrics from the running agent: the down service, the failure by
        // class, the scrape's own connection; and it passes promtool.
        let metrics = try fetch(base + "/metrics")
        #expect(metrics.contains("vitals_service_up{service=\"api\"} 0\n"))
        #expect(metrics.contains("vitals_service_state{service=\"api\",state=\"down\"} 1\n"))
        let statusFailures = sampleValue(metrics, "vitals_probe_failures_total{service=\"api\",reason=\"status\"}")
        #expect((statusFailures ?? 0) >= 2, "fall: 2 took two failed probes")
        #expect((sampleValue(metrics, "vitals_open_connections") ?? 0) >= 1, "the scrape's own connection")
        #expect(sampleValue(metrics, "vitals_probes_in_flight") != nil)
        // Where promtool is missing, MetricsTests.passesPromtool reports the skip.
        if Promtool.installed {
            let verdict = try Promtool.checkMetrics(metrics)
            #expect(verdict.status == 0, "promtool: \(verdict.said)")
        }

        // The token was created with mode 0600, and a heartbeat with it is accepted.
        let tokenPath = dir.path + "/state/token"
        let mode = try FileManager.default.attributesOfItem(atPath: tokenPath)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        let token = try String(contentsOfFile: tokenPath, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        let beat = HTTPFetch.request("POST", url: base + "/v1/heartbeat/job", headers: ["Authorization": "Bearer \(token)"])
        #expect((try? beat.get().status) == 200)
        try agent.waitForLine(containing: "job: unknown → up")

        // The command-line clients of the same API.
        let events = try VitalsBinary.run(["events", "--url", base])
        #expect(events.status == 0)
        let lines = events.out.split(separator: "\n").map(String.init)
        #expect(lines.contains { $0.contains("state_change  api  unknown → up") })
        #expect(lines.contains { $0.contains("state_change  api  up → down  status 503, expected 200-299") })
        let later = try VitalsBinary.run(["events", "--url", base, "--since", "1", "--json"])
        let ids = later.out.split(separator: "\n").compactMap {
            (try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])?["id"] as? Int
        }
        #expect(!ids.isEmpty && ids.allSatisfy { $0 > 1 })
        let table = try VitalsBinary.run(["status", "--url", base])
        #expect(table.status == 2, "api is down: critical")
        #expect(table.out.contains("api") && !table.out.contains("\u{1B}"), "no colour when piped")

        #expect(agent.stop() == 0)
        #expect(agent.output.contains { $0.contains("stopped") })
    }

    /// Under systemd (Type=notify): READY=1 only once every probed service
    /// has reported, with a one-line STATUS; STATUS again when a state
    /// changes; STOPPING=1 on SIGTERM/SIGINT.
    @Test func tellsSystemdWhenReadyAndWhatChanged() throws {
        let backend = try Backend()
        defer { backend.stop() }
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let notify = try DatagramSocket(name: dir.path + "/notify")
        let config = dir.appendingPathComponent("vitals.yaml")
        try """
        agent: { listen: 127.0.0.1:0, state_dir: \(dir.path)/state }
        defaults: { interval: 200ms, timeout: 500ms, rise: 2, fall: 2, jitter: 0ms }
        services:
          api: { http: { url: "http://127.0.0.1:\(backend.port)/health" } }
        """.write(to: config, atomically: true, encoding: .utf8)

        let agent = try AgentProcess(config: config, directory: dir, environment: ["NOTIFY_SOCKET": notify.name])
        let ready = try notify.receive()
        #expect(ready.hasPrefix("READY=1\nSTATUS=1 service: "), "\(ready)")
        try agent.waitForLine(containing: "api: unknown → up")
        backend.answer(503)
        // Every datagram until then is a STATUS line; the one after the change says so.
        var status = ""
        while !status.contains("1 down") {
            status = try notify.receive()
            #expect(status.hasPrefix("STATUS=1 service: "), "\(status)")
        }

        #expect(agent.stop() == 0)
        var last = ""
        while last != "STOPPING=1" { last = try notify.receive() }
    }

    @Test func refusesToStartOnAnInvalidConfig() throws {
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let config = dir.appendingPathComponent("bad.yaml")
        try "services:\n  a: { tcp: { host: 127.0.0.1, port: 99999 } }\n".write(to: config, atomically: true, encoding: .utf8)
        let result = try VitalsBinary.run(["run", "-c", config.path])
        #expect(result.status == 1)
        #expect(result.err.contains("services.a.tcp.port"))
        #expect(result.err.contains("line 2"))
    }

    /// Started with `nice -n 5`, the agent's own loops run at nice 5: the
    /// status server and the probe loop are started from worker threads that
    /// the thread pool gives a priority of its own.
    @Test(.enabled(if: getpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0) <= 14,
                   "the tests run at nice 15 or more: no room to start the agent 5 lower"))
    func theLoopsRunAtThePriorityTheAgentWasStartedWith() throws {
        let backend = try Backend()
        defer { backend.stop() }
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let config = dir.appendingPathComponent("vitals.yaml")
        try """
        agent: { listen: 127.0.0.1:0, state_dir: \(dir.path)/state }
        services:
          api: { http: { url: "http://127.0.0.1:\(backend.port)/health" }, interval: 200ms, rise: 1 }
        """.write(to: config, atomically: true, encoding: .utf8)
        let base = getpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0)
        let agent = try AgentProcess(config: config, directory: dir, launcher: ["/usr/bin/nice", "-n", "5"])
        defer { _ = agent.stop() }
        _ = try agent.baseURL()
        try agent.waitForLine(containing: "api: unknown → up")
        let nice = threadNice(of: agent.process.processIdentifier)
        #expect(nice["vitals-http"] == [base + 5], "threads: \(nice)")
        #expect(nice["vitals-probe"] == [base + 5], "threads: \(nice)")
    }

    /// The usual systemd set-up, `User=` with a negative `Nice=` and no
    /// `LimitNICE=`: the loops cannot take the agent's priority, and the agent
    /// says so once, with the fix.
    @Test(.enabled(if: NegativeNice.rootWithSetpriv, "needs root and /usr/bin/setpriv to start the agent as nobody at nice -5"),
          .enabled(if: NegativeNice.nobodyCanRunVitals, "user nobody cannot run the built vitals (the build folder is out of its reach)"),
          .enabled(if: NegativeNice.canStartBelow, "this machine does not let root start a process at nice -5 below the tests"))
    func warnsWhenTheLoopsCannotTakeANegativeNice() throws {
        let setpriv = NegativeNice.setpriv
        // In /tmp, whatever TMPDIR says: nobody must reach the state directory.
        let dir = URL(fileURLWithPath: "/tmp/vitals-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.setAttributes([.posixPermissions: 0o777], ofItemAtPath: dir.path)
        let config = dir.appendingPathComponent("vitals.yaml")
        try """
        agent: { listen: 127.0.0.1:0, state_dir: \(dir.path)/state }
        services:
          job: { heartbeat: { every: 1h } }
        """.write(to: config, atomically: true, encoding: .utf8)
        let base = getpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0)
        let agent = try AgentProcess(config: config, directory: dir, launcher: [
            "/usr/bin/nice", "-n", "-5", setpriv, "--reuid=nobody", "--regid=nogroup", "--clear-groups",
        ])
        defer { _ = agent.stop() }
        _ = try agent.baseURL()
        try #require(processNice(of: agent.process.processIdentifier) == base - 5, "the agent started at nice \(base - 5)")
        let line = try agent.waitForLine(containing: "LimitNICE=", timeout: 10)
        #expect(line.contains("warning"))
        #expect(line.contains("started at nice \(base - 5)"))
        #expect(line.contains("vitals-http runs at nice") && line.contains("vitals-probe runs at nice"))
    }

    /// What starting the agent as nobody at nice -5 needs, found out before the test runs.
    enum NegativeNice {
        static let setpriv = "/usr/bin/setpriv"
        static let rootWithSetpriv = geteuid() == 0 && FileManager.default.isExecutableFile(atPath: setpriv)
        /// The build folder may sit where nobody cannot reach (a home directory).
        static let nobodyCanRunVitals = rootWithSetpriv
            && run(setpriv, ["--reuid=nobody", "--regid=nogroup", "--clear-groups", VitalsBinary.url.path, "version"]).status == 0
        /// Root in a container may lack CAP_SYS_NICE: ask nice(1) what it got.
        static let canStartBelow: Bool = {
            let base = getpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0)
            let answer = run("/usr/bin/nice", ["-n", "-5", "/usr/bin/nice"])
            return answer.status == 0 && Int32(answer.out.trimmingCharacters(in: .whitespacesAndNewlines)) == base - 5
        }()

        private static func run(_ path: String, _ args: [String]) -> (status: Int32, out: String) {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: path)
            process.arguments = args
            let out = Pipe()
            process.standardOutput = out
            process.standardError = FileHandle.nullDevice
            guard (try? process.run()) != nil else { return (-1, "") }
            let data = out.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            return (process.terminationStatus, String(decoding: data, as: UTF8.self))
        }
    }

    /// The value of the sample line that starts with `series` (name and labels).
    func sampleValue(_ text: String, _ series: String) -> Double? {
        for line in text.split(separator: "\n") where line.hasPrefix(series + " ") {
            return Double(line.dropFirst(series.count + 1))
        }
        return nil
    }

    func fetch(_ url: String) throws -> String {
        switch HTTPFetch.request(url: url) {
        case .success(let response): return response.text
        case .failure(let failure): throw failure
        }
    }
}
