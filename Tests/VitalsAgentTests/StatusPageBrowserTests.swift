import Foundation
import Testing
import VitalsProbe
import VitalsTestKit

/// The status page in a real headless Chromium, against a running agent, driven
/// over the Chrome DevTools Protocol: it renders the services, follows a state
/// change without reloading, and logs no console errors.
@Suite(.serialized, .enabled(if: Chromium.installed, Chromium.missing))
struct StatusPageBrowserTests {
    @Test func statusPageFollowsARunningAgentInChromium() throws {
        let started = Date()
        // The whole test is bounded: every wait below takes its time from this one deadline.
        let deadline = started.addingTimeInterval(28)
        func remaining(_ cap: Double) -> Double { max(0.1, min(cap, deadline.timeIntervalSinceNow)) }

        // A real backend and a real agent probing it.
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
        """.write(to: config, atomically: true, encoding: .utf8)
        let agent = try AgentProcess(config: config, directory: dir)
        defer { _ = agent.stop() }
        let base = try agent.baseURL()
        try agent.waitForLine(containing: "api: unknown → up", timeout: remaining(10))

        // Chromium with a DevTools port of its own choosing.
        let browser = try Chromium(path: Chromium.path, timeout: remaining(10))
        defer { browser.stop() }
        let pageURL = try browser.pageWebSocketURL(timeout: remaining(5))
        let cdp = try CDPConnection(url: pageURL, timeout: remaining(5))
        defer { cdp.close() }

        // Listen for errors before the page loads.
        try cdp.call("Runtime.enable", timeout: remaining(5))
        try cdp.call("Log.enable", timeout: remaining(5))

        // Load the page and wait for the first render.
        try cdp.call("Page.navigate", ["url": base + "/"], timeout: remaining(5))
        let firstRender = try cdp.poll(until: { $0.body.contains("api") && $0.state == "up" }, deadline: remaining(8))
        #expect(firstRender.body.contains("api"), "the service is on the page")
        #expect(firstRender.body.contains("up"), "its state word is on the page")
        #expect(firstRender.state == "up", "the api row shows up")

        // Mark the page: a reload would lose the mark.
        try cdp.evaluate("window.__vitalsMark = 1", timeout: remaining(5))

        // Change the state behind the page.
        let mark = agent.output.count
        backend.answer(503)
        try agent.waitForLine(containing: "api: up → down", after: mark, timeout: remaining(8))

        // The page follows by itself (it polls every 2 s).
        let update = try cdp.poll(until: { $0.body.contains("down") && $0.state == "down" }, deadline: remaining(8))
        #expect(update.state == "down", "the api row shows down")
        #expect(update.body.contains("down"))
        let markStill = try cdp.evaluate("window.__vitalsMark === 1", timeout: remaining(5))
        #expect(markStill as? Bool == true, "the page updated in place, without a reload")

        // A screenshot for humans, under the build folder.
        let shot = try cdp.call("Page.captureScreenshot", ["format": "png"], timeout: remaining(8))
        let png = try #require((shot["data"] as? String).flatMap { Data(base64Encoded: $0) }, "a base64 PNG")
        #expect(png.starts(with: [0x89, 0x50, 0x4E, 0x47]), "PNG signature")
        let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let shots = repoRoot.appendingPathComponent(".build/vitals-screenshots")
        try FileManager.default.createDirectory(at: shots, withIntermediateDirectories: true)
        let file = shots.appendingPathComponent("status-page.png")
        try png.write(to: file)
        print("StatusPageBrowserTests: screenshot at \(file.path)")

        // Nothing went wrong in the page along the way.
        try cdp.drain(for: 0.2)
        let errors = cdp.consoleErrors.filter { !$0.lowercased().contains("favicon") }
        #expect(errors.isEmpty, "console errors:\n\(errors.joined(separator: "\n"))")

        #expect(Date().timeIntervalSince(started) < 30, "the browser test stays under 30 s")
    }
}
