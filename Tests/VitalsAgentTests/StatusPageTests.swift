import Foundation
import Testing
import VitalsCore
import VitalsHTTP
@testable import VitalsAgent

/// The status page (`GET /`) and the service badge (`GET /v1/services/{name}/badge.svg`).
@Suite struct StatusPageTests {
    let page = StatusPage.html

    @Test func pageIsOneSelfContainedDocument() {
        #expect(page.hasPrefix("<!doctype html>"))
        #expect(page.contains(#"<meta name="viewport" content="width=device-width, initial-scale=1">"#))
        #expect(page.contains(#"<meta charset="utf-8">"#))
        #expect(page.hasSuffix("</html>"))
        // No external assets: no absolute URLs at all, no external scripts
        // or stylesheets, no frameworks.
        #expect(!page.contains("http://"))
        #expect(!page.contains("https://"))
        #expect(!page.contains("<script src"))
        #expect(!page.contains("<link rel=\"stylesheet\""))
        #expect(!page.contains("@import"))
        // Inline CSS and JS, each once.
        #expect(page.components(separatedBy: "<style>").count == 2)
        #expect(page.components(separatedBy: "<script>").count == 2)
        #expect(page.components(separatedBy: "</script>").count == 2)
    }

    @Test func pageUsesTheJSONAPIWithRelativeURLs() {
        #expect(page.contains(#""v1/status""#))
        #expect(page.contains(#""v1/events?since=""#))
        #expect(page.contains(#""/explain""#))
        #expect(page.contains(#""v1/groups/""#))
        #expect(page.contains(#""v1/services/""#))
        for control in ["hold", "release", "switchover", "maintenance", "ready"] {
            #expect(page.contains(#"data-act="\#(control)""#) || page.contains("\(control): {"), "control \(control)")
        }
        #expect(page.contains(#""Authorization": "Bearer " + token"#))
        #expect(page.contains("sessionStorage"))
        #expect(page.contains("latency_ms"))
        #expect(page.contains("<details"))
        #expect(page.contains(#"id="filter""#))
        #expect(page.contains("polyline"))
    }

    @Test func pageColoursEveryStateAndEscapesText() {
        for state in HealthState.allCases {
            #expect(page.contains(".st-\(state.rawValue){background:var(--\(state.rawValue))}"), "\(state)")
            #expect(page.contains("--\(state.rawValue):\(Badge.color(state))"), "\(state) colour matches the badge")
        }
        #expect(page.contains("function esc("))
        #expect(page.contains(#""&": "&amp;", "<": "&lt;""#))
    }

    @Test func badgeHasTheStateWordAndColour() {
        for state in HealthState.allCases {
            let svg = Badge.svg(label: "vitals", state: state)
            #expect(svg.hasPrefix("<svg xmlns=\"http://www.w3.org/2000/svg\""))
            #expect(svg.contains(">\(state.rawValue)</text>"))
            #expect(svg.contains("fill=\"\(Badge.color(state))\""))
            #expect(svg.contains("<title>vitals: \(state.rawValue)</title>"))
            #expect(svg.hasSuffix("</svg>\n"))
        }
        #expect(Badge.color(.up) != Badge.color(.down))
        #expect(Set(HealthState.allCases.map(Badge.color)).count == HealthState.allCases.count)
    }

    @Test func badgeEscapesTheLabel() {
        let svg = Badge.svg(label: #"a<b&c"d'e>"#, state: .down)
        #expect(svg.contains("a&lt;b&amp;c&quot;d&apos;e&gt;"))
        #expect(!svg.contains("a<b"))
        #expect(!svg.contains("b&c"))
        #expect(!svg.contains(#"c"d"#))
        // Every ampersand starts an entity, and no text contains a bare "<".
        #expect(svg.matches(of: /&(?!amp;|lt;|gt;|quot;|apos;)/).isEmpty)
        #expect(svg.matches(of: />[^<]*"[^<]*</).isEmpty)
    }

    @Test func badgeWidthFollowsTheText() throws {
        func width(_ svg: String) throws -> Int {
            let match = try #require(svg.firstMatch(of: /width="(\d+)" height="20"/))
            return try #require(Int(match.1))
        }
        let short = try width(Badge.svg(label: "db", state: .up))
        let long = try width(Badge.svg(label: "payments-api-eu-west-1", state: .up))
        #expect(long > short + 80)
        #expect(try width(Badge.svg(label: "x", state: .maintenance)) > width(Badge.svg(label: "x", state: .up)))
    }

    // MARK: In a real browser, when there is one

    static let chromium = "/usr/bin/chromium"

    static let cannedStatus = #"""
    {"agent":{"version":"1.0.0","started_at":"2026-01-01T00:00:00.000Z","uptime_seconds":60,"config_path":"vitals.conf","ready":true,
    "counts":{"services":3,"groups":1,"up":1,"degraded":0,"down":1,"unknown":0,"maintenance":1,"flapping":0}},
    "services":[
    {"name":"web-1","kind":"http","target":"http://127.0.0.1:1/health","state":"up","since":"2026-01-01T00:00:00.000Z","reason":"ok","rule":"rise 2/2","consecutive_successes":5,"consecutive_failures":0,"last_probe_at":"2026-01-01T00:00:59.000Z","latency_ms":12.5,"depends_on":[]},
    {"name":"web-2","kind":"tcp","target":"127.0.0.1:2","state":"down","since":"2026-01-01T00:00:30.000Z","reason":"connect refused <b>oops</b>","rule":"fall 3/3","consecutive_successes":0,"consecutive_failures":3,"last_probe_at":"2026-01-01T00:00:59.000Z","depends_on":[]},
    {"name":"db-main","kind":"tcp","target":"127.0.0.1:3","state":"maintenance","since":"2026-01-01T00:00:10.000Z","reason":"patching","rule":"","consecutive_successes":0,"consecutive_failures":0,"depends_on":[]}],
    "groups":[{"name":"web","mode":"active-passive","state":"degraded","condition":"degraded","active":["web-1"],"active_member":"web-1",
    "members":[{"name":"web-1","state":"up","reason":"ok","active":true},{"name":"web-2","state":"down","reason":"connect refused <b>oops</b>","active":false}],
    "serving":["web-1"],"held":false,"isolated":false,"recent_failovers":0,"recent_events":[]}]}
    """#

    static let cannedEvents = #"""
    {"events":[{"id":1,"time":"2026-01-01T00:00:30.000Z","kind":"state_change","service":"web-2","from":"up","to":"down","reason":"connect refused",
    "actions":[{"action":"page-oncall","kind":"exec","result":{"status":"ok","message":"exit 0"},"attempts":1,"duration_ms":12}]}],"last_id":1}
    """#

    @Test func headlessChromiumRendersTheServices() throws {
        guard FileManager.default.isExecutableFile(atPath: Self.chromium) else {
            print("StatusPageTests: SKIPPED the headless browser test: \(Self.chromium) is not installed")
            return
        }
        let server = HTTPServer(configuration: HTTPServerConfiguration(listenAddresses: [.loopbackIPv4()]),
                                handler: HTTPClosureHandler { request in
            switch request.path {
            case "/":
                return HTTPResponse(status: .ok, headers: ["Content-Type": "text/html; charset=utf-8"],
                                    body: HTTPBody(string: StatusPage.html))
            case "/v1/status":
                return .json(body: Self.cannedStatus)
            case "/v1/events":
                return .json(body: Self.cannedEvents)
            default:
                if request.path.hasSuffix("/explain") {
                    return .json(body: #"{"recent":[{"time":"2026-01-01T00:00:57.000Z","outcome":"ok","latency_ms":10,"reason":"ok"},"#
                                 + #"{"time":"2026-01-01T00:00:58.000Z","outcome":"ok","latency_ms":14,"reason":"ok"}]}"#)
                }
                return .error(status: .notFound, message: "no such path: \(request.path)")
            }
        })
        try server.start()
        defer { server.stop() }
        let port = server.ports[0]

        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.chromium)
        let profile = FileManager.default.temporaryDirectory.appendingPathComponent("vitals-chromium-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: profile) }
        process.arguments = ["--headless", "--disable-gpu", "--no-sandbox", "--user-data-dir=\(profile.path)",
                             "--virtual-time-budget=3000", "--dump-dom", "http://127.0.0.1:\(port)/"]
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let dom = String(decoding: data, as: UTF8.self)

        #expect(process.terminationStatus == 0)
        for name in ["web-1", "web-2", "db-main"] {
            #expect(dom.contains(name), "service \(name) in the DOM")
        }
        #expect(dom.contains(#"<span class="st st-up">up</span>"#))
        #expect(dom.contains(#"<span class="st st-down">down</span>"#))
        #expect(dom.contains(#"<span class="st st-maintenance">maintenance</span>"#))
        #expect(dom.contains(#"<span class="st st-degraded">degraded</span>"#), "the group's state")
        // The reason is text, not markup.
        #expect(dom.contains("connect refused &lt;b&gt;oops&lt;/b&gt;"))
        #expect(!dom.contains("<b>oops</b>"))
        // Events with their action results.
        #expect(dom.contains("page-oncall"))
        #expect(dom.contains("<polyline"))
        #expect(dom.contains("Switchover…"))
    }
}
