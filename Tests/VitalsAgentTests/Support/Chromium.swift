#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import Testing
import VitalsProbe
import VitalsTestKit

// MARK: - Chromium

/// A headless Chromium with remote debugging on a port it picks, killed and
/// cleaned up by `stop()`.
final class Chromium {
    static let path = "/usr/bin/chromium"
    /// Whether the browser tests can run; they are skipped, with this reason, when not.
    static let installed = FileManager.default.isExecutableFile(atPath: path)
    static let missing: Comment = "/usr/bin/chromium is not installed (scripts/install-deps.sh test installs it)"

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
            _ = kill(process.processIdentifier, SIGKILL)
            let hard = Date().addingTimeInterval(2)
            while process.isRunning && Date() < hard { Thread.sleep(forTimeInterval: 0.05) }
        }
    }
}

// MARK: - Chrome DevTools Protocol over a minimal WebSocket

/// What the page shows: its whole text, and the state word in the `api` row.
struct PageView {
    var body: String
    var state: String
}

/// One CDP session on a page target: a minimal RFC 6455 client (text frames,
/// masked client frames, bounded reads) that sends commands, waits for their
/// answers and collects console errors from the events in between.
final class CDPConnection {
    private let socket: WebSocket
    private var nextID = 0
    private(set) var consoleErrors: [String] = []
    /// Every URL the page asked for, in order (after `Network.enable`).
    private(set) var requestedURLs: [String] = []

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
        case "Network.requestWillBeSent":
            if let url = (params["request"] as? [String: Any])?["url"] as? String { requestedURLs.append(url) }
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
