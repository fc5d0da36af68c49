import Foundation
import Testing
import VitalsAgent
import VitalsCore
import VitalsProbe
import VitalsTestKit

/// `history.sqlite` with the real agent binary: history survives a restart,
/// and a damaged file is moved aside while probing goes on.
@Suite(.serialized) struct HistoryEndToEndTests {
    static func config(_ dir: URL, backend: Backend) throws -> URL {
        let config = dir.appendingPathComponent("vitals.yaml")
        try """
        agent: { listen: 127.0.0.1:0, state_dir: \(dir.path)/state }
        defaults: { interval: 200ms, timeout: 500ms, rise: 1, fall: 1, jitter: 0ms }
        services:
          api:
            http: { url: "http://127.0.0.1:\(backend.port)/health", json: { status: UP } }
          gone:
            tcp: { host: 127.0.0.1, port: 1 }
        groups:
          web: { members: [api, gone] }
        """.write(to: config, atomically: true, encoding: .utf8)
        return config
    }

    static func json(_ url: String) throws -> [String: Any] {
        switch HTTPFetch.request(url: url) {
        case .success(let r) where r.status == 200:
            guard let object = try JSONSerialization.jsonObject(with: Data(r.body)) as? [String: Any] else {
                throw TestFailure("\(url): not a JSON object: \(r.text)")
            }
            return object
        case .success(let r): throw TestFailure("\(url) answered \(r.status): \(r.text)")
        case .failure(let f): throw TestFailure("\(url): \(f)")
        }
    }

    @Test func historySurvivesARestart() throws {
        let backend = try Backend()
        defer { backend.stop() }
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let config = try Self.config(dir, backend: backend)

        let first = try AgentProcess(config: config, directory: dir)
        try first.waitForLine(containing: "api: unknown → up")
        try first.waitForLine(containing: "gone: unknown → down")
        // SIGINT: the agent writes the minute in progress before it exits.
        #expect(first.stop() == 0)
        #expect(FileManager.default.fileExists(atPath: dir.path + "/state/history.sqlite"))

        let second = try AgentProcess(config: config, directory: dir)
        defer { _ = second.stop() }
        let base = try second.baseURL()
        let uptime = try Self.json("\(base)/v1/services/api/uptime?from=1h")
        let range = try #require(uptime["range"] as? [String: Any])
        // The first run's minute is there, up; the rest of the hour is no data, not up.
        #expect(range["ratio"] as? Double == 1)
        #expect((range["observed_seconds"] as? Int ?? 0) >= 60)
        #expect((range["no_data_seconds"] as? Int ?? 0) > 0)
        #expect(!((range["gaps"] as? [Any]) ?? []).isEmpty)
        let windows = try #require(uptime["windows"] as? [String: Any])
        #expect(Set(windows.keys) == ["24h", "7d", "30d"])

        // The outage the first run saw begin, ended where its data ended.
        let outages = try #require(try Self.json("\(base)/v1/outages?service=gone&from=1h")["outages"] as? [[String: Any]])
        #expect(outages.count >= 1)
        #expect(outages.last?["reason"] as? String == "connect refused")
        #expect(outages.last?["end"] is String)

        let series = try Self.json("\(base)/v1/services/api/history?from=10m&step=1m")
        let points = try #require(series["points"] as? [[String: Any]])
        #expect(points.count == 10 || points.count == 11)
        #expect(points.contains { $0["state"] as? String == "up" })
        #expect(points.contains { $0["state"] as? String == "no_data" })

        // The first run's events, by group, from the history.
        let events = try VitalsBinary.run(["events", "--url", base, "--since", "1h", "--group", "web"])
        #expect(events.status == 0)
        #expect(events.out.contains("group web"))
        #expect(events.out.contains("none → api"))
        #expect(!events.out.contains("gone: unknown"))

        let history = try VitalsBinary.run(["history", "gone", "--url", base, "--since", "1h"])
        #expect(history.status == 0)
        #expect(history.out.hasPrefix("gone: 0.000% up since 1h"))
        #expect(history.out.contains("connect refused"))
    }

    @Test func aDamagedHistoryIsMovedAsideAndProbingGoesOn() throws {
        let backend = try Backend()
        defer { backend.stop() }
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let config = try Self.config(dir, backend: backend)
        try FileManager.default.createDirectory(atPath: dir.path + "/state", withIntermediateDirectories: true)
        try Data(String(repeating: "garbage, not SQLite\n", count: 500).utf8)
            .write(to: URL(fileURLWithPath: dir.path + "/state/history.sqlite"))

        let agent = try AgentProcess(config: config, directory: dir)
        defer { _ = agent.stop() }
        let base = try agent.baseURL()
        let warning = try agent.waitForLine(containing: "history.sqlite is damaged")
        #expect(warning.contains("probing and failover are not affected"))
        try agent.waitForLine(containing: "api: unknown → up")
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path + "/state")
        #expect(files.contains { $0.hasPrefix("history.sqlite.corrupt-") })
        // The fresh file answers.
        let uptime = try Self.json("\(base)/v1/services/api/uptime")
        #expect(uptime["service"] as? String == "api")
        #expect(try Self.json("\(base)/v1/status")["services"] != nil)
    }
}

/// `vitals_uptime_ratio` comes from the history's cache.
@Suite struct HistoryMetricsTests {
    @Test func uptimeRatiosAreRenderedPerServiceAndWindow() throws {
        let config = try ConfigLoader.load(yaml: """
            services:
              api: { tcp: { host: 127.0.0.1, port: 1 } }
              db: { tcp: { host: 127.0.0.1, port: 2 } }
            """)
        let owner = StateOwner(config: config, configPath: "", clock: ManualClock(), publish: { _ in })
        let text = MetricsRenderer.render(view: owner.view, metrics: ProbeMetrics(),
                                          uptimes: ["api": ["24h": 0.5, "7d": 0.75, "30d": 1]],
                                          scheduler: nil, store: nil, openConnections: nil, now: Date())
        #expect(text.contains("# TYPE vitals_uptime_ratio gauge\n"))
        #expect(text.contains(#"vitals_uptime_ratio{service="api",window="24h"} 0.5"#))
        #expect(text.contains(#"vitals_uptime_ratio{service="api",window="7d"} 0.75"#))
        #expect(text.contains(#"vitals_uptime_ratio{service="api",window="30d"} 1"#))
        #expect(!text.contains(#"vitals_uptime_ratio{service="db""#)) // no data: no sample
    }
}
