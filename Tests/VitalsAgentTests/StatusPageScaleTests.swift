import Foundation
import Testing
import VitalsTestKit

/// The status page in a real headless Chromium against an agent with 1,000
/// services: what it costs to draw and refresh, and that it stays usable.
@Suite(.serialized, .enabled(if: Chromium.installed, Chromium.missing))
struct StatusPageScaleTests {
    /// 1,000 services in 100 groups: every row is drawn, the filter box and
    /// collapsing work, refreshes keep up, and nothing errs. Prints what a
    /// render and a refresh cost (figures, not assertions: the machine is shared).
    @Test func statusPageStaysUsableWithAThousandServices() throws {
        let started = Date()
        let deadline = started.addingTimeInterval(45)
        func remaining(_ cap: Double) -> Double { max(0.1, min(cap, deadline.timeIntervalSinceNow)) }

        // 960 services answer; every 25th probes a closed port and is down.
        let backend = try Backend()
        defer { backend.stop() }
        let closed = try LoopbackPort.unused()
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        func name(_ i: Int) -> String { "svc-" + String(format: "%04d", i) }
        var yaml = """
        agent: { listen: 127.0.0.1:0, state_dir: \(dir.path)/state }
        defaults: { interval: 2s, timeout: 2s, rise: 1, fall: 1, jitter: 0ms }
        services:

        """
        for i in 0..<1000 {
            let port = i % 25 == 0 ? closed : backend.port
            yaml += "  \(name(i)): { http: { url: \"http://127.0.0.1:\(port)/health\" } }\n"
        }
        yaml += "groups:\n"
        for g in 0..<100 {
            let members = (0..<10).map { name(g * 10 + $0) }.joined(separator: ", ")
            yaml += "  pool-\(String(format: "%02d", g)): { mode: active-active, members: [\(members)] }\n"
        }
        let config = dir.appendingPathComponent("vitals.yaml")
        try yaml.write(to: config, atomically: true, encoding: .utf8)
        let agent = try AgentProcess(config: config, directory: dir)
        defer { _ = agent.stop() }
        let base = try agent.baseURL()
        let browser = try Chromium(path: Chromium.path, timeout: remaining(10))
        defer { browser.stop() }
        let cdp = try CDPConnection(url: try browser.pageWebSocketURL(timeout: remaining(5)), timeout: remaining(5))
        defer { cdp.close() }
        try cdp.call("Runtime.enable", timeout: remaining(5))
        try cdp.call("Log.enable", timeout: remaining(5))
        try cdp.call("Performance.enable", timeout: remaining(5))
        try cdp.call("Emulation.setDeviceMetricsOverride",
                     ["width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": false], timeout: remaining(5))

        // What the page shows, counted in the page.
        let census = """
        JSON.stringify({
          all: document.querySelectorAll("#services tbody tr").length,
          groups: document.querySelectorAll("#groups details").length,
          groupRows: document.querySelectorAll("#groups tbody tr").length,
          down: document.querySelectorAll("#services tbody .st-down").length,
          up: document.querySelectorAll("#services tbody .st-up").length,
          names: Array.prototype.map.call(document.querySelectorAll("#services td.n"), function (td) {
            return td.firstChild ? td.firstChild.textContent : ""; }).slice(0, 50),
          why: Array.prototype.map.call(document.querySelectorAll("#services td.why"), function (td) {
            return td.textContent; }).slice(0, 50).join(" | "),
          updated: (document.getElementById("updated") || {}).textContent || ""
        })
        """
        struct Census { var all = 0, groups = 0, groupRows = 0, down = 0, up = 0; var names: [String] = []; var updated = "", why = "" }
        func count() throws -> Census {
            guard let json = try cdp.evaluate(census, timeout: remaining(5)) as? String,
                  let o = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any] else { return Census() }
            return Census(all: o["all"] as? Int ?? 0, groups: o["groups"] as? Int ?? 0, groupRows: o["groupRows"] as? Int ?? 0,
                          down: o["down"] as? Int ?? 0, up: o["up"] as? Int ?? 0, names: o["names"] as? [String] ?? [],
                          updated: o["updated"] as? String ?? "", why: o["why"] as? String ?? "")
        }
        func wait(_ what: String, until done: (Census) -> Bool) throws -> Census {
            var last = Census()
            while deadline.timeIntervalSinceNow > 1 {
                last = try count()
                if done(last) { return last }
                try cdp.drain(for: 0.1)
            }
            throw TestFailure("the page did not get to \(what) in time (\(Int(Date().timeIntervalSince(started))) s in); last count: \(last)")
        }

        // Every service is drawn, worst first, once every one has been probed.
        let navigated = Date()
        try cdp.call("Page.navigate", ["url": base + "/"], timeout: remaining(5))
        let first = try wait("1,000 rows") { $0.all == 1000 }
        let firstRender = Date().timeIntervalSince(navigated)
        let settled = try wait("960 up and 40 down") { $0.up == 960 && $0.down == 40 }
        #expect(settled.groups == 100, "one collapsible section per group")
        #expect(settled.names.prefix(40).allSatisfy { name in
            Int(name.dropFirst(4)).map { $0 % 25 == 0 } ?? false
        }, "the down services come first: \(settled.names.prefix(40))")

        // A refresh (every 2 s) redraws 1,000 services and 100 groups; what does it cost?
        func metrics() throws -> [String: Double] {
            let list = try cdp.call("Performance.getMetrics", timeout: remaining(5))["metrics"] as? [[String: Any]] ?? []
            var out: [String: Double] = [:]
            for m in list { if let n = m["name"] as? String, let v = m["value"] as? Double { out[n] = v } }
            return out
        }
        try cdp.evaluate("window.__vitalsMark = 1", timeout: remaining(5))
        let before = try metrics()
        var seen = settled.updated
        for _ in 0..<2 {
            let next = try wait("the next refresh") { $0.updated != seen && !$0.updated.isEmpty }
            seen = next.updated
        }
        let after = try metrics()
        #expect(try cdp.evaluate("window.__vitalsMark === 1", timeout: remaining(5)) as? Bool == true,
                "refreshed in place, without a reload")
        func perRefresh(_ key: String) -> Double { ((after[key] ?? 0) - (before[key] ?? 0)) / 2 * 1000 }

        // Expanding and collapsing everything draws synchronously; time it in the page.
        let timing = """
        (function (id) {
          var t = performance.now();
          document.getElementById(id).click();
          void document.body.offsetHeight;
          return performance.now() - t;
        })
        """
        let expandMs = try cdp.evaluate(timing + "(\"expand\")", timeout: remaining(5)) as? Double ?? -1
        let expanded = try count()
        #expect(expanded.groupRows == 1000, "every group open shows every member")
        let collapseMs = try cdp.evaluate(timing + "(\"collapse\")", timeout: remaining(5)) as? Double ?? -1
        let collapsed = try count()
        #expect(collapsed.groupRows == 0 && collapsed.all == 0, "collapse all closes every section")
        try cdp.evaluate(timing + "(\"expand\")", timeout: remaining(5))

        // The filter box finds one service among 1,000, then only the down ones.
        try cdp.evaluate(#"(function(){var f=document.getElementById("filter");f.value="svc-0421";f.dispatchEvent(new Event("input"));})()"#,
                         timeout: remaining(5))
        let one = try wait("one match for svc-0421") { $0.all == 1 }
        #expect(one.names == ["svc-0421"])
        #expect(one.groupRows == 1 && one.groups == 1, "only pool-42, with only that member")
        try cdp.evaluate(#"(function(){var f=document.getElementById("filter");f.value="state:down";f.dispatchEvent(new Event("input"));})()"#,
                         timeout: remaining(5))
        let down = try wait("the 40 down services") { $0.all == 40 }
        #expect(down.down == 40)

        // A screenshot of the page at 1,000 services, for humans.
        try cdp.evaluate(#"(function(){var f=document.getElementById("filter");f.value="";f.dispatchEvent(new Event("input"));})()"#,
                         timeout: remaining(5))
        _ = try wait("1,000 rows again") { $0.all == 1000 }

        // One service's history among 1,000: the panel opens with its bar of minutes.
        try cdp.evaluate("document.querySelector('button[data-hist=\"svc-0421\"]').click()", timeout: remaining(5))
        var history = ""
        let historyDeadline = Date().addingTimeInterval(remaining(8))
        while Date() < historyDeadline {
            history = try cdp.evaluate("""
                JSON.stringify({ shown: !document.getElementById('hist').classList.contains('hidden'),
                  title: document.getElementById('hist-h').textContent,
                  bars: document.querySelectorAll('#hist .bars i').length })
                """, timeout: remaining(5)) as? String ?? ""
            if history.contains("\"shown\":true"), history.contains("History of svc-0421"), !history.contains("\"bars\":0") { break }
            usleep(100_000)
        }
        #expect(history.contains("\"shown\":true") && history.contains("History of svc-0421"), "\(history)")
        #expect(!history.contains("\"bars\":0"), "the bar of minutes is drawn: \(history)")
        let shot = try cdp.call("Page.captureScreenshot", ["format": "png"], timeout: remaining(8))
        if let png = (shot["data"] as? String).flatMap({ Data(base64Encoded: $0) }) {
            let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            let shots = repoRoot.appendingPathComponent(".build/vitals-screenshots")
            try FileManager.default.createDirectory(at: shots, withIntermediateDirectories: true)
            try png.write(to: shots.appendingPathComponent("status-page-1000.png"))
        }

        try cdp.drain(for: 0.2)
        let errors = cdp.consoleErrors.filter { !$0.lowercased().contains("favicon") }
        #expect(errors.isEmpty, "console errors:\n\(errors.joined(separator: "\n"))")

        print(String(format: "StatusPageScaleTests: 1,000 services: first full render %.2f s after navigating (%d rows); "
                     + "per 2 s refresh: script %.0f ms, layout %.0f ms, style %.0f ms, task %.0f ms; "
                     + "expand all %.0f ms, collapse all %.0f ms; DOM nodes %.0f, JS heap %.1f MB",
                     firstRender, first.all, perRefresh("ScriptDuration"), perRefresh("LayoutDuration"),
                     perRefresh("RecalcStyleDuration"), perRefresh("TaskDuration"), expandMs, collapseMs,
                     after["Nodes"] ?? 0, (after["JSHeapUsedSize"] ?? 0) / 1e6))
    }
}
