import Foundation
import Testing
import VitalsProbe
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import VitalsTestKit

private func posixClose(_ fd: Int32) { _ = close(fd) }
private func posixKill(_ pid: Int32) { _ = kill(pid, SIGKILL) }
#if canImport(Glibc)
private let streamSocket = Int32(SOCK_STREAM.rawValue)
private let sendFlags = Int32(MSG_NOSIGNAL)
#else
private let streamSocket = SOCK_STREAM
private let sendFlags: Int32 = 0
#endif

/// The status page in a real headless Chromium, against a running agent, driven
/// over the Chrome DevTools Protocol: it renders the services, follows a state
/// change without reloading, and logs no console errors.
@Suite(.serialized) struct StatusPageBrowserTests {
    static let chromium = "/usr/bin/chromium"

    @Test func statusPageFollowsARunningAgentInChromium() throws {
        guard FileManager.default.isExecutableFile(atPath: Self.chromium) else {
            print("StatusPageBrowserTests: SKIPPED: \(Self.chromium) is not installed (scripts/install-deps.sh test installs it)")
            return
        }
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
        let browser = try Chromium(path: Self.chromium, timeout: remaining(10))
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

    /// 1,000 services in 100 groups: every row is drawn, the filter box and
    /// collapsing work, refreshes keep up, and nothing errs. Prints what a
    /// render and a refresh cost (figures, not assertions: the machine is shared).
    @Test func statusPageStaysUsableWithAThousandServices() throws {
        guard FileManager.default.isExecutableFile(atPath: Self.chromium) else {
            print("StatusPageBrowserTests: SKIPPED: \(Self.chromium) is not installed (scripts/install-deps.sh test installs it)")
            return
        }
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
        let browser = try Chromium(path: Self.chromium, timeout: remaining(10))
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

        print(String(format: "StatusPageBrowserTests: 1,000 services: first full render %.2f s after navigating (%d rows); "
                     + "per 2 s refresh: script %.0f ms, layout %.0f ms, style %.0f ms, task %.0f ms; "
                     + "expand all %.0f ms, collapse all %.0f ms; DOM nodes %.0f, JS heap %.1f MB",
                     firstRender, first.all, perRefresh("ScriptDuration"), perRefresh("LayoutDuration"),
                     perRefresh("RecalcStyleDuration"), perRefresh("TaskDuration"), expandMs, collapseMs,
                     after["Nodes"] ?? 0, (after["JSHeapUsedSize"] ?? 0) / 1e6))
    }
}

// MARK: - Chromium

/// A headless Chromium with remote debugging on a port it picks, killed and
/// cleaned up by `stop()`.
private final class Chromium {
    let process = Process()
    let profile: URL
    let port: Int
    private let stderr = Locked<String>("")

    init(path: String, timeout: Double) throws {
        profile = FileManager.default.temporaryDirectory.appendingPathComponent("vitals-chromium-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: profile, withIntermediateDirectories: true)
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = ["--headless=new", "--disable-gpu", "--no-sandbox", "--remote-debugging-port=0",
                             "--user-data-dir=\(profile.path)", "--no-first-run", "--no-default-browser-check",
                             "about:blank"]
        let err = Pipe()
        process.standardError = err
        process.standardOutput = FileHandle.nullDevice
        let handle = err.fileHandleForReading
        let text = stderr
        let arrived = NSCondition()
        // Drain stderr for the browser's whole life, so it can never block on a full pipe.
        let reader = Thread {
            while true {
                let chunk = handle.availableData
                arrived.lock()
                if !chunk.isEmpty { text.withLock { $0 += String(decoding: chunk, as: UTF8.self) } }
                arrived.broadcast()
                arrived.unlock()
                if chunk.isEmpty { break }
            }
        }
        do {
            try process.run()
        } catch {
            try? FileManager.default.removeItem(at: profile)
            throw error
        }
        reader.start()

        let limit = Date().addingTimeInterval(timeout)
        var found: Int?
        arrived.lock()
        while found == nil {
            let all = text.withLock { $0 }
            if let match = all.firstMatch(of: /DevTools listening on ws:\/\/127\.0\.0\.1:(\d+)\//) {
                found = Int(match.1)
                break
            }
            if !process.isRunning || Date() >= limit { break }
            _ = arrived.wait(until: min(limit, Date().addingTimeInterval(0.2)))
        }
        arrived.unlock()
        guard let found else {
            let all = text.withLock { $0 }
            let running = process.isRunning
            Self.end(process)
            try? FileManager.default.removeItem(at: profile)
            throw TestFailure("chromium \(running ? "printed no DevTools address within \(timeout)s" : "exited"); stderr:\n\(all)")
        }
        port = found
    }

    /// The `webSocketDebuggerUrl` of the first page target.
    func pageWebSocketURL(timeout: Double) throws -> String {
        let limit = Date().addingTimeInterval(timeout)
        var last = ""
        while Date() < limit {
            switch HTTPFetch.request(url: "http://127.0.0.1:\(port)/json/list", timeout: .seconds(2)) {
            case .success(let response):
                last = response.text
                if let targets = try? JSONSerialization.jsonObject(with: Data(response.body)) as? [[String: Any]],
                   let page = targets.first(where: { $0["type"] as? String == "page" }),
                   let url = page["webSocketDebuggerUrl"] as? String {
                    return url
                }
            case .failure(let failure):
                last = failure.description
            }
            Thread.sleep(forTimeInterval: 0.2)
        }
        throw TestFailure("no page target on chromium's DevTools port within \(timeout)s; last answer: \(last)")
    }

    func stop() {
        Self.end(process)
        try? FileManager.default.removeItem(at: profile)
    }

    /// TERM, then KILL if it lingers; bounded.
    private static func end(_ process: Process) {
        guard process.isRunning else { return }
        process.terminate()
        let limit = Date().addingTimeInterval(3)
        while process.isRunning && Date() < limit { Thread.sleep(forTimeInterval: 0.05) }
        if process.isRunning {
            posixKill(process.processIdentifier)
            let hard = Date().addingTimeInterval(2)
            while process.isRunning && Date() < hard { Thread.sleep(forTimeInterval: 0.05) }
        }
    }
}

// MARK: - Chrome DevTools Protocol over a minimal WebSocket

/// What the page shows: its whole text, and the state word in the `api` row.
private struct PageView {
    var body: String
    var state: String
}

/// One CDP session on a page target: a minimal RFC 6455 client (text frames,
/// masked client frames, bounded reads) that sends commands, waits for their
/// answers and collects console errors from the events in between.
private final class CDPConnection {
    private let socket: WebSocket
    private var nextID = 0
    private(set) var consoleErrors: [String] = []

    init(url: String, timeout: Double) throws {
        socket = try WebSocket(url: url, timeout: timeout)
    }

    func close() { socket.close() }

    /// Sends `method` and returns its `result`; a protocol error throws.
    @discardableResult
    func call(_ method: String, _ params: [String: Any] = [:], timeout: Double) throws -> [String: Any] {
        nextID += 1
        let id = nextID
        let message: [String: Any] = ["id": id, "method": method, "params": params]
        let data = try JSONSerialization.data(withJSONObject: message)
        try socket.sendText(String(decoding: data, as: UTF8.self))
        let limit = Date().addingTimeInterval(timeout)
        while true {
            let left = limit.timeIntervalSinceNow
            guard left > 0 else { throw TestFailure("no answer to \(method) within \(timeout)s") }
            guard let text = try socket.receiveText(timeout: left) else { continue }
            guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else { continue }
            if let answer = object["id"] as? Int, answer == id {
                if let error = object["error"] as? [String: Any] {
                    throw TestFailure("\(method) failed: \(error)")
                }
                return object["result"] as? [String: Any] ?? [:]
            }
            handleEvent(object)
        }
    }

    /// Evaluates `expression` in the page and returns its value.
    @discardableResult
    func evaluate(_ expression: String, timeout: Double) throws -> Any? {
        let result = try call("Runtime.evaluate", ["expression": expression, "returnByValue": true], timeout: timeout)
        if let details = result["exceptionDetails"] {
            throw TestFailure("evaluating \(expression) threw: \(details)")
        }
        return (result["result"] as? [String: Any])?["value"]
    }

    /// Reads the page every 200 ms until `done` holds; throws with the last view otherwise.
    func poll(until done: (PageView) -> Bool, deadline timeout: Double) throws -> PageView {
        let script = """
        (function () {
          var body = document.body ? document.body.innerText : "";
          var state = "";
          var cells = document.querySelectorAll("#services td.n");
          for (var i = 0; i < cells.length; i++) {
            var first = cells[i].firstChild;
            if (first && first.nodeType === 3 && first.textContent === "api") {
              var pill = cells[i].parentNode.querySelector(".st");
              state = pill ? pill.textContent : "";
            }
          }
          return JSON.stringify({ body: body, state: state });
        })()
        """
        let limit = Date().addingTimeInterval(timeout)
        var last = PageView(body: "", state: "")
        while true {
            let left = limit.timeIntervalSinceNow
            if left <= 0 { break }
            if let json = try evaluate(script, timeout: min(left, 5)) as? String,
               let object = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any] {
                last = PageView(body: object["body"] as? String ?? "", state: object["state"] as? String ?? "")
                if done(last) { return last }
            }
            try drain(for: min(0.2, max(0, limit.timeIntervalSinceNow)))
        }
        throw TestFailure("the page did not get there within \(timeout)s; api row state \"\(last.state)\", page text:\n\(last.body)")
    }

    /// Handles events for `seconds` (also a bounded sleep).
    func drain(for seconds: Double) throws {
        let limit = Date().addingTimeInterval(seconds)
        while true {
            let left = limit.timeIntervalSinceNow
            if left <= 0 { return }
            if let text = try socket.receiveText(timeout: left),
               let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] {
                handleEvent(object)
            }
        }
    }

    private func handleEvent(_ event: [String: Any]) {
        guard let method = event["method"] as? String, let params = event["params"] as? [String: Any] else { return }
        switch method {
        case "Runtime.exceptionThrown":
            let details = params["exceptionDetails"] as? [String: Any] ?? [:]
            let exception = (details["exception"] as? [String: Any])?["description"] as? String
            consoleErrors.append("exception: \(exception ?? details["text"] as? String ?? "\(details)")")
        case "Runtime.consoleAPICalled" where params["type"] as? String == "error":
            let args = (params["args"] as? [[String: Any]] ?? []).map { arg in
                (arg["value"].map { "\($0)" }) ?? (arg["description"] as? String) ?? "\(arg)"
            }
            consoleErrors.append("console.error: \(args.joined(separator: " "))")
        case "Log.entryAdded":
            let entry = params["entry"] as? [String: Any] ?? [:]
            guard entry["level"] as? String == "error" else { return }
            let url = entry["url"] as? String ?? ""
            consoleErrors.append("log: \(entry["text"] as? String ?? "") \(url)")
        default:
            return
        }
    }
}

/// A minimal WebSocket client (RFC 6455) on a blocking POSIX socket: text
/// frames only, client frames masked, every read bounded by `poll`.
private final class WebSocket {
    private var fd: Int32
    private var buffer: [UInt8] = []

    init(url: String, timeout: Double) throws {
        guard let parsed = URL(string: url), parsed.scheme == "ws", let host = parsed.host, let port = parsed.port else {
            throw TestFailure("not a ws:// URL: \(url)")
        }
        fd = socket(AF_INET, streamSocket, 0)
        guard fd >= 0 else { throw TestFailure("socket: \(String(cString: strerror(errno)))") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        guard inet_pton(AF_INET, host, &address.sin_addr) == 1 else {
            posixClose(fd)
            throw TestFailure("not an IPv4 address: \(host)")
        }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else {
            let message = String(cString: strerror(errno))
            posixClose(fd)
            throw TestFailure("connect to \(host):\(port): \(message)")
        }

        // The opening handshake.
        let key = Data((0..<16).map { _ in UInt8.random(in: 0...255) }).base64EncodedString()
        var path = parsed.path.isEmpty ? "/" : parsed.path
        if let query = parsed.query { path += "?" + query }
        let request = "GET \(path) HTTP/1.1\r\nHost: \(host):\(port)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Key: \(key)\r\nSec-WebSocket-Version: 13\r\n\r\n"
        do {
            try write(Array(request.utf8))
            let limit = Date().addingTimeInterval(timeout)
            let end: [UInt8] = Array("\r\n\r\n".utf8)
            var headerEnd: Int?
            while headerEnd == nil {
                if let range = Self.find(end, in: buffer) { headerEnd = range; break }
                guard buffer.count < 16_384 else { throw TestFailure("WebSocket handshake answer too long") }
                try fill(deadline: limit)
            }
            let head = String(decoding: buffer[0..<headerEnd!], as: UTF8.self)
            buffer.removeFirst(headerEnd! + end.count)
            let lines = head.components(separatedBy: "\r\n")
            guard let status = lines.first, status.hasPrefix("HTTP/1.1 101") else {
                throw TestFailure("WebSocket handshake refused:\n\(head)")
            }
            let expected = Data(SHA1.hash(Array((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").utf8))).base64EncodedString()
            let accept = lines.dropFirst().first { $0.lowercased().hasPrefix("sec-websocket-accept:") }
                .map { $0.dropFirst("sec-websocket-accept:".count).trimmingCharacters(in: .whitespaces) }
            guard accept == expected else {
                throw TestFailure("WebSocket handshake: Sec-WebSocket-Accept \(accept ?? "missing"), expected \(expected)")
            }
        } catch {
            close()
            throw error
        }
    }

    func close() {
        guard fd >= 0 else { return }
        // A close frame, best effort, then the socket.
        try? sendFrame(opcode: 0x8, payload: [0x03, 0xE8])
        posixClose(fd)
        fd = -1
    }

    deinit { close() }

    func sendText(_ text: String) throws {
        try sendFrame(opcode: 0x1, payload: Array(text.utf8))
    }

    /// The next complete text message, or nil if none arrived within `timeout`.
    /// A message cut off by the timeout stays buffered for the next call.
    func receiveText(timeout: Double) throws -> String? {
        let limit = Date().addingTimeInterval(timeout)
        while true {
            if let message = try takeMessage() { return message }
            if Date() >= limit { return nil }
            do {
                try fill(deadline: limit)
            } catch is ReadTimeout {
                return nil
            }
        }
    }

    // MARK: Frames

    private func sendFrame(opcode: UInt8, payload: [UInt8]) throws {
        var frame: [UInt8] = [0x80 | opcode]
        let count = payload.count
        if count < 126 {
            frame.append(0x80 | UInt8(count))
        } else if count <= 0xFFFF {
            frame.append(0x80 | 126)
            frame += [UInt8(count >> 8), UInt8(count & 0xFF)]
        } else {
            frame.append(0x80 | 127)
            frame += (0..<8).reversed().map { UInt8((UInt64(count) >> (UInt64($0) * 8)) & 0xFF) }
        }
        let mask = (0..<4).map { _ in UInt8.random(in: 0...255) }
        frame += mask
        frame += payload.enumerated().map { $0.element ^ mask[$0.offset & 3] }
        try write(frame)
    }

    private var fragments: [UInt8] = []

    /// Parses whole frames from the buffer; returns a text message once one is complete.
    private func takeMessage() throws -> String? {
        while true {
            guard buffer.count >= 2 else { return nil }
            let fin = buffer[0] & 0x80 != 0
            let opcode = buffer[0] & 0x0F
            let masked = buffer[1] & 0x80 != 0
            var length = UInt64(buffer[1] & 0x7F)
            var offset = 2
            if length == 126 {
                guard buffer.count >= 4 else { return nil }
                length = UInt64(buffer[2]) << 8 | UInt64(buffer[3])
                offset = 4
            } else if length == 127 {
                guard buffer.count >= 10 else { return nil }
                length = buffer[2..<10].reduce(0) { $0 << 8 | UInt64($1) }
                offset = 10
            }
            guard length < 64 << 20 else { throw TestFailure("WebSocket frame of \(length) bytes") }
            var mask: [UInt8] = []
            if masked {
                guard buffer.count >= offset + 4 else { return nil }
                mask = Array(buffer[offset..<offset + 4])
                offset += 4
            }
            guard buffer.count >= offset + Int(length) else { return nil }
            var payload = Array(buffer[offset..<offset + Int(length)])
            buffer.removeFirst(offset + Int(length))
            if masked { payload = payload.enumerated().map { $0.element ^ mask[$0.offset & 3] } }
            switch opcode {
            case 0x0, 0x1:  // continuation, text
                fragments += payload
                if fin {
                    defer { fragments = [] }
                    return String(decoding: fragments, as: UTF8.self)
                }
            case 0x8:
                throw TestFailure("the browser closed the DevTools WebSocket")
            case 0x9:
                try sendFrame(opcode: 0xA, payload: payload)  // pong
            case 0xA:
                continue
            default:
                throw TestFailure("unexpected WebSocket opcode \(opcode)")
            }
        }
    }

    // MARK: Socket

    private struct ReadTimeout: Error {}

    /// Reads what is there into the buffer, waiting at most until `deadline`.
    private func fill(deadline: Date) throws {
        let left = deadline.timeIntervalSinceNow
        guard left > 0 else { throw ReadTimeout() }
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let ready = poll(&pfd, 1, Int32(max(1, min(left * 1000, 60_000))))
        if ready < 0 {
            if errno == EINTR { return }
            throw TestFailure("poll: \(String(cString: strerror(errno)))")
        }
        if ready == 0 { throw ReadTimeout() }
        var chunk = [UInt8](repeating: 0, count: 65_536)
        let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if count < 0 {
            if errno == EINTR || errno == EAGAIN { return }
            throw TestFailure("recv: \(String(cString: strerror(errno)))")
        }
        if count == 0 { throw TestFailure("the browser closed the DevTools connection") }
        buffer += chunk[0..<count]
    }

    private func write(_ bytes: [UInt8]) throws {
        var sent = 0
        while sent < bytes.count {
            let n = bytes.withUnsafeBytes { raw in
                send(fd, raw.baseAddress! + sent, raw.count - sent, sendFlags)
            }
            if n < 0 {
                if errno == EINTR { continue }
                throw TestFailure("send: \(String(cString: strerror(errno)))")
            }
            sent += n
        }
    }

    private static func find(_ needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        for start in 0...(haystack.count - needle.count) where haystack[start..<start + needle.count].elementsEqual(needle) {
            return start
        }
        return nil
    }
}

/// SHA-1, only to check the handshake's Sec-WebSocket-Accept.
private enum SHA1 {
    static func hash(_ message: [UInt8]) -> [UInt8] {
        var h: [UInt32] = [0x6745_2301, 0xEFCD_AB89, 0x98BA_DCFE, 0x1032_5476, 0xC3D2_E1F0]
        var data = message
        let bitLength = UInt64(message.count) * 8
        data.append(0x80)
        while data.count % 64 != 56 { data.append(0) }
        data += (0..<8).reversed().map { UInt8((bitLength >> (UInt64($0) * 8)) & 0xFF) }
        for chunk in stride(from: 0, to: data.count, by: 64) {
            var w = [UInt32](repeating: 0, count: 80)
            for i in 0..<16 {
                let j = chunk + i * 4
                w[i] = UInt32(data[j]) << 24 | UInt32(data[j + 1]) << 16 | UInt32(data[j + 2]) << 8 | UInt32(data[j + 3])
            }
            for i in 16..<80 {
                let x = w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]
                w[i] = x << 1 | x >> 31
            }
            var (a, b, c, d, e) = (h[0], h[1], h[2], h[3], h[4])
            for i in 0..<80 {
                let (f, k): (UInt32, UInt32)
                switch i {
                case 0..<20: (f, k) = ((b & c) | (~b & d), 0x5A82_7999)
                case 20..<40: (f, k) = (b ^ c ^ d, 0x6ED9_EBA1)
                case 40..<60: (f, k) = ((b & c) | (b & d) | (c & d), 0x8F1B_BCDC)
                default: (f, k) = (b ^ c ^ d, 0xCA62_C1D6)
                }
                let temp = (a << 5 | a >> 27) &+ f &+ e &+ k &+ w[i]
                (e, d, c, b, a) = (d, c, b << 30 | b >> 2, a, temp)
            }
            h[0] = h[0] &+ a; h[1] = h[1] &+ b; h[2] = h[2] &+ c; h[3] = h[3] &+ d; h[4] = h[4] &+ e
        }
        return h.flatMap { v in (0..<4).reversed().map { UInt8((v >> (UInt32($0) * 8)) & 0xFF) } }
    }
}
