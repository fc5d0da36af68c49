import Foundation
import Testing
import VitalsTestKit

/// The status page's history in a real headless Chromium: a service's
/// uptime, its bar of minutes, its latency chart and outages, and a group's
/// uptime, drawn from the agent's history.sqlite.
@Suite(.serialized, .enabled(if: Chromium.installed, Chromium.missing))
struct HistoryPageBrowserTests {
    @Test func historyPanelShowsUptimeBarsLatencyAndOutages() throws {
        let started = Date()
        let deadline = started.addingTimeInterval(40)
        func remaining(_ cap: Double) -> Double { max(0.1, min(cap, deadline.timeIntervalSinceNow)) }

        let backend = try Backend()
        defer { backend.stop() }
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
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
        // A first run records a minute of history (written at its stop).
        let first = try AgentProcess(config: config, directory: dir)
        try first.waitForLine(containing: "gone: unknown → down", timeout: remaining(10))
        try first.waitForLine(containing: "api: unknown → up", timeout: remaining(10))
        #expect(first.stop() == 0)

        let agent = try AgentProcess(config: config, directory: dir)
        defer { _ = agent.stop() }
        let base = try agent.baseURL()

        let browser = try Chromium(path: Chromium.path, timeout: remaining(10))
        defer { browser.stop() }
        let cdp = try CDPConnection(url: try browser.pageWebSocketURL(timeout: remaining(5)), timeout: remaining(5))
        defer { cdp.close() }
        try cdp.call("Runtime.enable", timeout: remaining(5))
        try cdp.call("Log.enable", timeout: remaining(5))
        try cdp.call("Page.navigate", ["url": base + "/"], timeout: remaining(5))
        _ = try cdp.poll(until: { $0.state == "up" }, deadline: remaining(8))

        // The group card shows the group's own uptime.
        let groupUptime = try waitFor("document.querySelector('[data-g-up=\"web\"]')?.textContent", cdp: cdp, deadline: remaining(8)) {
            ($0 as? String)?.contains("uptime 24h 100.000%") == true
        }
        #expect((groupUptime as? String)?.contains("30d 100.000%") == true)

        // Open api's history.
        try cdp.evaluate("document.querySelector('button[data-hist=\"api\"]').click()", timeout: remaining(5))
        let panel = try waitFor("""
            JSON.stringify({
              shown: !document.getElementById('hist').classList.contains('hidden'),
              title: document.getElementById('hist-h').textContent,
              day: (document.querySelector('#hist [data-window="24h"] b') || {}).textContent,
              bars: document.querySelectorAll('#hist .bars i').length,
              upBars: document.querySelectorAll('#hist .bars i.b-up').length,
              p50: (document.querySelector('#hist polyline.p50') || { getAttribute: function () { return '' } }).getAttribute('points'),
              p99: !!document.querySelector('#hist polyline.p99')
            })
            """, cdp: cdp, deadline: remaining(8)) { ($0 as? String)?.contains("\"upBars\":0") == false }
        let view = try #require(try JSONSerialization.jsonObject(with: Data(((panel as? String) ?? "{}").utf8)) as? [String: Any])
        #expect(view["shown"] as? Bool == true)
        #expect(view["title"] as? String == "History of api")
        #expect(view["day"] as? String == "100.000%")
        #expect((view["bars"] as? Int ?? 0) >= 90)
        #expect((view["upBars"] as? Int ?? 0) >= 1)
        #expect(!((view["p50"] as? String) ?? "").isEmpty)
        #expect(view["p99"] as? Bool == true)

        // A screenshot for humans, under the build folder.
        let shot = try cdp.call("Page.captureScreenshot", ["format": "png"], timeout: remaining(8))
        if let png = (shot["data"] as? String).flatMap({ Data(base64Encoded: $0) }) {
            let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            let shots = repoRoot.appendingPathComponent(".build/vitals-screenshots")
            try FileManager.default.createDirectory(at: shots, withIntermediateDirectories: true)
            try png.write(to: shots.appendingPathComponent("history-panel.png"))
        }

        // And gone's: down since the first run, with its outage listed.
        try cdp.evaluate("document.querySelector('button[data-hist=\"gone\"]').click()", timeout: remaining(5))
        let outages = try waitFor("document.getElementById('hist').innerText", cdp: cdp, deadline: remaining(8)) {
            ($0 as? String)?.contains("connect refused") == true
        }
        #expect((outages as? String)?.contains("History of gone") == true)
        #expect((outages as? String)?.contains("0.000%") == true)

        try cdp.drain(for: 0.2)
        let errors = cdp.consoleErrors.filter { !$0.lowercased().contains("favicon") }
        #expect(errors.isEmpty, "console errors:\n\(errors.joined(separator: "\n"))")
    }

    /// Evaluates `expression` every 200 ms until `done` holds for its value.
    private func waitFor(_ expression: String, cdp: CDPConnection, deadline timeout: Double,
                         _ done: (Any?) -> Bool) throws -> Any? {
        let limit = Date().addingTimeInterval(timeout)
        var last: Any?
        while limit.timeIntervalSinceNow > 0 {
            last = try cdp.evaluate(expression, timeout: max(0.1, min(5, limit.timeIntervalSinceNow)))
            if done(last) { return last }
            try cdp.drain(for: min(0.2, max(0, limit.timeIntervalSinceNow)))
        }
        throw TestFailure("\(expression) did not get there within \(timeout)s; last value: \(String(describing: last))")
    }
}
