import Foundation
import Testing
import VitalsCore
import VitalsHTTP
import VitalsTestKit
@testable import VitalsAgent

/// The status page in a real headless Chromium against a stand-in for the
/// agent's API with fixed answers, served under a path prefix as behind a
/// reverse proxy: what the page draws, what it asks the API for, and what its
/// write controls send.
@Suite(.serialized, .enabled(if: Chromium.installed, Chromium.missing))
struct StatusPageCannedAPITests {
    @Test func drawsEveryServiceGroupAndEventFromTheAPI() throws {
        let page = try PageSession()
        defer { page.stop() }
        try page.waitFor("six service rows", ##"document.querySelectorAll("#services tbody tr").length === 6"##)
        try page.waitFor("a latency trend", ##"document.querySelector("#services polyline") !== null"##)
        try page.waitFor("the event", ##"document.getElementById("events").textContent.indexOf("page-oncall") >= 0"##)

        let pills = try page.json("""
        (function () {
          var out = {};
          document.querySelectorAll("#services tbody tr").forEach(function (tr) {
            out[tr.querySelector("td.n").firstChild.textContent] = tr.querySelector(".st").textContent;
          });
          return JSON.stringify(out);
        })()
        """) as? [String: String]
        #expect(pills == ["web-1": "up", "web-2": "down", "db-main": "maintenance",
                          "cache": "degraded", "queue": "unknown", "jobs": "flapping"])
        let latency = try page.value(##"document.querySelector("#services td[data-l=latency]").textContent"##) as? String
        #expect(latency == "12.5 ms", "the worst service first, with its latency_ms")
        let groups = try page.value(##"document.getElementById("groups").innerText"##) as? String ?? ""
        #expect(groups.contains("web") && groups.contains("degraded"), "the group and its state: \(groups)")
        #expect(groups.contains("held"), "the held group says so")
        let groupPills = try page.json("""
        (function () {
          var out = {};
          document.querySelectorAll("#groups details > summary").forEach(function (s) {
            out[s.querySelector("b").textContent] = s.querySelector(".st").textContent;
          });
          return JSON.stringify(out);
        })()
        """) as? [String: String]
        #expect(groupPills == ["web": "degraded", "db": "down"],
                "a held group whose active member does not serve is shown down (red), whatever still serves")
        #expect(groups.contains("The active member does not serve and the group is held"))
        let events = try page.value(##"document.getElementById("events").innerText"##) as? String ?? ""
        #expect(events.contains("web-2") && events.contains("page-oncall"), "the event with its action: \(events)")
        #expect(try page.value(##"document.querySelectorAll("#groups details").length"##) as? Int == 2,
                "one collapsible section per group")
        #expect(try page.value(##"document.getElementById("filter") !== null"##) as? Bool == true, "the filter box")
        #expect(try page.value(##"document.getElementById("cluster-role").textContent"##) as? String == "b: follower of a",
                "in a cluster, this agent's role and the leader")
        try page.expectNoConsoleErrors()
    }

    @Test func showsTextFromTheAPIAsTextNeverAsMarkup() throws {
        let page = try PageSession()
        defer { page.stop() }
        try page.waitFor("six service rows", ##"document.querySelectorAll("#services tbody tr").length === 6"##)
        try page.waitFor("the group member reasons", ##"document.getElementById("groups").textContent.indexOf("oops") >= 0"##)
        #expect(try page.value("document.querySelectorAll('img').length") as? Int == 0, "no element made from API text")
        let madeFromText = "Array.prototype.some.call(document.querySelectorAll('b'), function (b) { return b.textContent === 'oops'; })"
        #expect(try page.value(madeFromText) as? Bool == false, "no <b> element made from API text")
        #expect(try page.value("window.__pwned === undefined") as? Bool == true, "no script from API text ran")
        let why = try page.value(##"document.getElementById("services").textContent"##) as? String ?? ""
        #expect(why.contains(CannedAPI.hostileReason), "the reason shown as the text it is")
        try page.expectNoConsoleErrors()
    }

    /// Every state's pill has the colour of that state's badge.
    @Test func coloursEachStateAsItsBadgeDoes() throws {
        let page = try PageSession()
        defer { page.stop() }
        try page.waitFor("six service rows", ##"document.querySelectorAll("#services tbody tr").length === 6"##)
        for state in HealthState.allCases {
            let colour = try page.value("""
            getComputedStyle(document.querySelector("#services .st-\(state.rawValue)")).backgroundColor
            """) as? String
            #expect(colour == Self.rgb(Badge.color(state)), "\(state)")
        }
    }

    /// Relative URLs only, so the page works under any prefix, and nothing
    /// from anywhere else: the page is self-contained.
    @Test func asksOnlyItsOwnAPIWithRelativeURLs() throws {
        let page = try PageSession()
        defer { page.stop() }
        try page.waitFor("a latency trend", ##"document.querySelector("#services polyline") !== null"##)
        try page.waitFor("the event", ##"document.getElementById("events").textContent.indexOf("page-oncall") >= 0"##)
        let targets = page.api.requests.map(\.target)
        #expect(targets.allSatisfy { $0.hasPrefix(CannedAPI.prefix) }, "\(targets)")
        #expect(targets.contains(CannedAPI.prefix + "v1/status"))
        #expect(targets.contains { $0.hasPrefix(CannedAPI.prefix + "v1/events?since=") })
        #expect(targets.contains { $0.hasPrefix(CannedAPI.prefix + "v1/services/") && $0.hasSuffix("/explain") })
        let urls = page.cdp.requestedURLs
        #expect(!urls.isEmpty)
        #expect(urls.allSatisfy { $0.hasPrefix(page.api.pageURL) || $0.hasPrefix("data:") }, "\(urls)")
    }

    /// Each control posts to its endpoint with the bearer token; the token is
    /// asked for once and kept for the tab.
    @Test func controlsPostWithTheTokenAskedForOnce() throws {
        let page = try PageSession()
        defer { page.stop() }
        try page.waitFor("six service rows", ##"document.querySelectorAll("#services tbody tr").length === 6"##)
        #expect(try page.value(##"document.getElementById("forget").className"##) as? String == "hidden")

        let controls: [(button: String, path: String, body: String)] = [
            (##"[data-act="hold"][data-g="web"]"##, "v1/groups/web/hold", "held by an operator"),
            (##"[data-act="release"][data-g="db"]"##, "v1/groups/db/release", "{}"),
            (##"[data-act="switchover"][data-g="web"]"##, "v1/groups/web/switchover", #""to":"web-1""#),
            (##"[data-act="maintenance"][data-s="web-1"]"##, "v1/services/web-1/maintenance", "maintenance by an operator"),
            (##"[data-act="ready"][data-s="db-main"]"##, "v1/services/db-main/ready", "{}"),
        ]
        for (index, control) in controls.enumerated() {
            let asked = index == 0
            try page.run(##"document.querySelector('button\##(control.button)').click()"##)
            try page.waitFor("the dialog for \(control.path)", ##"document.getElementById("dlg").open === true"##)
            let tokenShown = try page.value(##"document.getElementById("dlg-token").className !== "hidden""##) as? Bool
            #expect(tokenShown == asked, "\(control.path): the token is asked for the first time only")
            if asked { try page.run(##"document.getElementById("dlg-tok").value = "s3cret""##) }
            // The previous command's answer re-enables OK when it has been handled.
            try page.waitFor("OK enabled for \(control.path)", ##"document.getElementById("dlg-ok").disabled === false"##)
            try page.run(##"document.getElementById("dlg-ok").click()"##)
            try page.waitFor("the dialog to close after \(control.path)", ##"document.getElementById("dlg").open === false"##)
            let post = page.api.requests.last { $0.method == "POST" }
            #expect(post?.target == CannedAPI.prefix + control.path)
            #expect(post?.authorization == "Bearer s3cret", "\(control.path)")
            #expect(post?.body.contains(control.body) == true, "\(control.path) sent \(post?.body ?? "nothing")")
        }
        #expect(try page.value(##"sessionStorage.getItem("vitals-token")"##) as? String == "s3cret")
        #expect(try page.value(##"document.getElementById("forget").className"##) as? String == "", "a way to forget it")
        try page.expectNoConsoleErrors()
    }

    /// `#2e9e44` as getComputedStyle reports it: `rgb(46, 158, 68)`.
    static func rgb(_ hex: String) -> String {
        let value = Int(hex.dropFirst(), radix: 16) ?? 0
        return "rgb(\(value >> 16), \((value >> 8) & 0xFF), \(value & 0xFF))"
    }
}

/// A stand-in for the agent's API under `/ui/`, with fixed answers, that
/// records every request it is sent.
final class CannedAPI: Sendable {
    struct Request: Sendable {
        var method: String
        var target: String
        var authorization: String?
        var body: String
    }

    static let prefix = "/ui/"
    static let hostileReason = "<img src=x onerror=window.__pwned=1><b>oops</b>"

    static let status = #"""
    {"agent":{"version":"1.0.0","started_at":"2026-01-01T00:00:00.000Z","uptime_seconds":60,"config_path":"vitals.conf","ready":true,
    "cluster":{"name":"b","role":"follower","leader":"a","leader_address":"http://10.0.0.1:9310","status":"follower of a"},
    "counts":{"services":6,"groups":2,"up":1,"degraded":1,"down":1,"unknown":1,"maintenance":1,"flapping":1}},
    "services":[
    {"name":"web-1","kind":"http","target":"http://127.0.0.1:1/health","state":"up","since":"2026-01-01T00:00:00.000Z","reason":"ok","rule":"rise 2/2","consecutive_successes":5,"consecutive_failures":0,"last_probe_at":"2026-01-01T00:00:59.000Z","latency_ms":12.5,"depends_on":[]},
    {"name":"web-2","kind":"tcp","target":"127.0.0.1:2","state":"down","since":"2026-01-01T00:00:30.000Z","reason":"REASON","rule":"fall 3/3","consecutive_successes":0,"consecutive_failures":3,"last_probe_at":"2026-01-01T00:00:59.000Z","latency_ms":12.5,"depends_on":[]},
    {"name":"db-main","kind":"tcp","target":"127.0.0.1:3","state":"maintenance","since":"2026-01-01T00:00:10.000Z","reason":"patching","rule":"","consecutive_successes":0,"consecutive_failures":0,"depends_on":[]},
    {"name":"cache","kind":"tcp","target":"127.0.0.1:4","state":"degraded","since":"2026-01-01T00:00:10.000Z","reason":"slow","rule":"","consecutive_successes":0,"consecutive_failures":0,"depends_on":[]},
    {"name":"queue","kind":"tcp","target":"127.0.0.1:5","state":"unknown","since":"2026-01-01T00:00:10.000Z","reason":"not probed yet","rule":"","consecutive_successes":0,"consecutive_failures":0,"depends_on":[]},
    {"name":"jobs","kind":"tcp","target":"127.0.0.1:6","state":"flapping","since":"2026-01-01T00:00:10.000Z","reason":"flapping","rule":"","consecutive_successes":0,"consecutive_failures":0,"depends_on":[]}],
    "groups":[{"name":"web","mode":"active-passive","state":"degraded","condition":"degraded","active":["web-1"],"active_member":"web-1",
    "members":[{"name":"web-1","state":"up","reason":"ok","active":true},{"name":"web-2","state":"down","reason":"REASON","active":false}],
    "serving":["web-1"],"held":false,"isolated":false,"recent_failovers":0,"recent_events":[]},
    {"name":"db","mode":"active-active","state":"maintenance","condition":"down","active":["db-main"],
    "members":[{"name":"db-main","state":"maintenance","reason":"patching","active":true}],
    "serving":["db-main"],"held":true,"hold":{"cause":"operator","since":"2026-01-01T00:00:00.000Z","reason":"patch night"},
    "isolated":false,"recent_failovers":0,"recent_events":[]}]}
    """#.replacingOccurrences(of: "REASON", with: hostileReason)

    static let events = #"""
    {"events":[{"id":1,"time":"2026-01-01T00:00:30.000Z","kind":"state_change","service":"web-2","from":"up","to":"down","reason":"connect refused",
    "actions":[{"action":"page-oncall","kind":"exec","result":{"status":"ok","message":"exit 0"},"attempts":1,"duration_ms":12}]}],"last_id":1}
    """#

    static let explain = #"{"recent":[{"time":"2026-01-01T00:00:57.000Z","outcome":"ok","latency_ms":10,"reason":"ok"},"#
        + #"{"time":"2026-01-01T00:00:58.000Z","outcome":"ok","latency_ms":14,"reason":"ok"}]}"#

    let server: HTTPServer
    private let seen = Locked<[Request]>([])

    init() throws {
        let seen = self.seen
        server = HTTPServer(configuration: HTTPServerConfiguration(listenAddresses: [.loopbackIPv4()]),
                            handler: HTTPClosureHandler { request in
            seen.withLock {
                $0.append(Request(method: request.method.rawValue, target: request.target,
                                  authorization: request.headers["Authorization"],
                                  body: String(decoding: request.body, as: UTF8.self)))
            }
            let prefix = Self.prefix
            switch (request.method, request.path) {
            case (.get, prefix):
                return HTTPResponse(status: .ok, headers: ["Content-Type": "text/html; charset=utf-8"],
                                    body: HTTPBody(string: StatusPage.html))
            case (.get, prefix + "v1/status"):
                return .json(body: Self.status)
            case (.get, prefix + "v1/events"):
                return .json(body: Self.events)
            case (.get, let path) where path.hasPrefix(prefix + "v1/services/") && path.hasSuffix("/explain"):
                return .json(body: Self.explain)
            case (.get, let path) where path.hasPrefix(prefix + "v1/groups/") && path.hasSuffix("/uptime"):
                // The history's group uptime, as the agent answers it.
                return .json(body: #"{"windows":{"24h":{"ratio":0.9995},"7d":{"ratio":1},"30d":{"ratio":null}}}"#)
            case (.post, let path) where path.hasPrefix(prefix + "v1/"):
                return .json(body: #"{"events":[]}"#)
            default:
                return .error(status: .notFound, message: "no such path: \(request.path)")
            }
        })
        try server.start()
    }

    var pageURL: String { "http://127.0.0.1:\(server.ports[0])\(Self.prefix)" }
    var requests: [Request] { seen.withLock { $0 } }
    func stop() { server.stop() }
}

/// A headless Chromium showing the status page from a `CannedAPI`, within 25 s in all.
private struct PageSession {
    let api: CannedAPI
    let browser: Chromium
    let cdp: CDPConnection
    private let deadline = Date().addingTimeInterval(25)

    init() throws {
        api = try CannedAPI()
        do {
            browser = try Chromium(path: Chromium.path, timeout: 10)
        } catch {
            api.stop()
            throw error
        }
        do {
            cdp = try CDPConnection(url: try browser.pageWebSocketURL(timeout: 5), timeout: 5)
            for domain in ["Runtime.enable", "Log.enable", "Network.enable"] {
                try cdp.call(domain, timeout: 5)
            }
            try cdp.call("Page.navigate", ["url": api.pageURL], timeout: 5)
        } catch {
            browser.stop()
            api.stop()
            throw error
        }
    }

    func stop() {
        cdp.close()
        browser.stop()
        api.stop()
    }

    private func remaining(_ cap: Double) -> Double { max(0.1, min(cap, deadline.timeIntervalSinceNow)) }

    /// The value of `expression` in the page.
    func value(_ expression: String) throws -> Any? {
        try cdp.evaluate(expression, timeout: remaining(5))
    }

    /// Runs `statement` in the page.
    func run(_ statement: String) throws {
        _ = try cdp.evaluate("void (" + statement + ")", timeout: remaining(5))
    }

    /// `expression` evaluates to a JSON string: what it decodes to.
    func json(_ expression: String) throws -> Any? {
        guard let text = try value(expression) as? String else { return nil }
        return try JSONSerialization.jsonObject(with: Data(text.utf8))
    }

    /// Waits until `condition` is true in the page, handling events meanwhile.
    func waitFor(_ what: String, _ condition: String) throws {
        while deadline.timeIntervalSinceNow > 0 {
            if try value(condition) as? Bool == true { return }
            try cdp.drain(for: remaining(0.1))
        }
        throw TestFailure("the page did not show \(what) in time; it shows:\n"
                          + ((try? value("document.body.innerText") as? String) ?? "nothing"))
    }

    func expectNoConsoleErrors(sourceLocation: SourceLocation = #_sourceLocation) throws {
        try cdp.drain(for: remaining(0.2))
        let errors = cdp.consoleErrors.filter { !$0.lowercased().contains("favicon") }
        #expect(errors.isEmpty, "console errors:\n\(errors.joined(separator: "\n"))", sourceLocation: sourceLocation)
    }
}
