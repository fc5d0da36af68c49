import Foundation
import Testing
import VitalsHTTP
import VitalsProbe
import VitalsTestKit

/// A real HAProxy (Debian's `haproxy`) in front of two local backends, each
/// server's health check asking Vitals whether that server is the group's
/// active member (docs/haproxy.cfg.example). Kill the primary: Vitals fails
/// over, HAProxy follows, and the client requests lost during the switch are
/// reported.
@Suite(.serialized) struct HAProxyEndToEndTests {
    static let haproxyPath = "/usr/sbin/haproxy"

    /// Whether HAProxy is installed; the test is skipped, with the reason, when not.
    static let haproxyInstalled = FileManager.default.isExecutableFile(atPath: haproxyPath)

    @Test(.enabled(if: haproxyInstalled, "/usr/sbin/haproxy is not installed (scripts/install-deps.sh test installs it)"))
    func haproxyFollowsAFailoverThroughTheMemberActiveEndpoint() throws {
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let primary = try NamedBackend(name: "web-1")
        defer { primary.stop() }
        let backup = try NamedBackend(name: "web-2")
        defer { backup.stop() }

        let config = dir.appendingPathComponent("vitals.yaml")
        try """
        agent: { listen: 127.0.0.1:0, state_dir: \(dir.path)/state }
        defaults: { interval: 200ms, timeout: 300ms, rise: 2, fall: 2, jitter: 0ms, fast_interval: 100ms }
        services:
          web-1: { http: { url: "http://127.0.0.1:\(primary.port)/health" } }
          web-2: { http: { url: "http://127.0.0.1:\(backup.port)/health" } }
        groups:
          web:
            members: [web-1, web-2]
            failback: manual
            cooldown: 0s
        """.write(to: config, atomically: true, encoding: .utf8)
        let agent = try AgentProcess(config: config, directory: dir)
        defer { _ = agent.stop() }
        let base = try agent.baseURL()
        try agent.waitForLine(containing: "group web: activated")
        guard let vitalsPort = base.split(separator: ":").last.flatMap({ UInt16($0) }) else {
            throw TestFailure("no port in \(base)")
        }

        let frontPort = try LoopbackPort.unused()
        let haproxy = try HAProxyProcess(directory: dir, config: Self.haproxyConfig(
            frontPort: frontPort, vitalsPort: vitalsPort, web1: primary.port, web2: backup.port))
        defer { haproxy.stop() }
        // Servers start UP in HAProxy; the first check marks the standby down.
        try haproxy.waitForOutput(containing: "Server web/web-2 is DOWN")

        let client = ClientLoop(url: "http://127.0.0.1:\(frontPort)/", limit: 10)
        client.start()
        defer { client.stop() }
        try client.waitFor(answer: "web-1", timeout: 5)
        usleep(1_000_000)

        let killedAt = Date()
        primary.stop()
        let primaryGone = Date()
        try agent.waitForLine(containing: "group web: failover web-1 → web-2")
        let switched = try client.waitFor(answer: "web-2", after: killedAt, timeout: 5)
        usleep(1_500_000)
        client.stop()
        let results = client.results

        // A request in flight while the primary was being stopped may be
        // answered by either member: it counts toward the failures of the
        // switch, but not as "before" nor as "after the primary was gone".
        let before = results.filter { $0.at.addingTimeInterval($0.seconds) < killedAt }
        let window = results.filter { $0.at.addingTimeInterval($0.seconds) >= killedAt }
        let afterGone = results.filter { $0.at >= primaryGone }
        let settled = results.filter { $0.at > switched.addingTimeInterval(0.5) }
        let failedInWindow = window.filter { $0.answer == nil }.count
        let switchMS = Int(switched.timeIntervalSince(killedAt) * 1000)
        let slowestMS = Int((window.map(\.seconds).max() ?? 0) * 1000)
        print("haproxy: \(results.count) requests, \(failedInWindow) failed during the switch, switch took \(switchMS) ms"
              + " (\(before.count) before the kill, \(window.count) after it; slowest request after the kill \(slowestMS) ms,"
              + " client timeout 500 ms)")

        let said = "\nhaproxy said:\n\(haproxy.output)"
        #expect(!before.isEmpty)
        #expect(before.allSatisfy { $0.answer == "web-1" }, "before the kill: \(Self.tally(before))\(said)")
        #expect(!settled.isEmpty)
        #expect(settled.allSatisfy { $0.answer == "web-2" }, "after the switch: \(Self.tally(settled))\(said)")
        #expect(!afterGone.isEmpty)
        #expect(!afterGone.contains { $0.answer == "web-1" }, "nothing answers from the dead primary")
        #expect(failedInWindow * 2 < window.count, "failures after the kill: \(Self.tally(window))\(said)")
        #expect(agent.stop() == 0)
    }

    /// The configuration of docs/haproxy.cfg.example with test ports.
    static func haproxyConfig(frontPort: UInt16, vitalsPort: UInt16, web1: UInt16, web2: UInt16) -> String {
        """
        global
            maxconn 256

        defaults
            mode http
            timeout connect 500ms
            timeout client 5s
            timeout server 5s
            retries 2
            option redispatch

        frontend www
            bind 127.0.0.1:\(frontPort)
            default_backend web

        backend web
            balance roundrobin
            option httpchk
            http-check send meth GET uri-lf /v1/groups/web/members/%[srv_name]/active
            http-check expect status 200
            default-server check addr 127.0.0.1 port \(vitalsPort) inter 200ms fall 1 rise 1 on-marked-down shutdown-sessions
            server web-1 127.0.0.1:\(web1)
            server web-2 127.0.0.1:\(web2)

        """
    }

    static func tally(_ results: [ClientLoop.Result]) -> String {
        let counts = Dictionary(grouping: results, by: { $0.answer ?? "failed" }).mapValues(\.count)
        return counts.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: ", ")
    }
}

extension HAProxyEndToEndTests {
    /// A backend on loopback that answers every request with its own name.
    final class NamedBackend: Sendable {
        let server: HTTPServer

        init(name: String) throws {
            server = HTTPServer(handler: HTTPClosureHandler { _ in .text(status: .ok, body: name + "\n") })
            try server.start()
        }

        var port: UInt16 { server.ports[0] }
        func stop() { server.stop() }
    }

    /// `haproxy -f CFG -db` as a child process; its output goes to a file.
    final class HAProxyProcess: @unchecked Sendable {
        let process = Process()
        let log: URL

        init(directory: URL, config text: String) throws {
            let config = directory.appendingPathComponent("haproxy.cfg")
            try text.write(to: config, atomically: true, encoding: .utf8)
            log = directory.appendingPathComponent("haproxy.log")
            FileManager.default.createFile(atPath: log.path, contents: nil)
            let handle = try FileHandle(forWritingTo: log)
            process.executableURL = URL(fileURLWithPath: HAProxyEndToEndTests.haproxyPath)
            process.arguments = ["-f", config.path, "-db"]
            process.standardOutput = handle
            process.standardError = handle
            process.standardInput = FileHandle.nullDevice
            try process.run()
            try? handle.close()
        }

        var output: String { (try? String(contentsOf: log, encoding: .utf8)) ?? "" }

        func waitForOutput(containing text: String, timeout: Double = 10) throws {
            let deadline = Date().addingTimeInterval(timeout)
            while !output.contains(text) {
                if !process.isRunning {
                    throw TestFailure("haproxy exited (\(process.terminationStatus)) before printing \"\(text)\":\n\(output)")
                }
                if Date() >= deadline { throw TestFailure("haproxy did not print \"\(text)\" within \(timeout)s:\n\(output)") }
                usleep(20_000)
            }
        }

        func stop() {
            if process.isRunning { process.terminate() }
            process.waitUntilExit()
        }

        deinit {
            if process.isRunning { process.terminate() }
        }
    }

    /// Sequential GETs on a thread, each on a new connection with a short
    /// timeout, recording who answered (nil: the request failed). Ends by
    /// itself after `limit` seconds.
    final class ClientLoop: @unchecked Sendable {
        struct Result { var at: Date; var answer: String?; var seconds: Double }

        private let url: String
        private let limit: Double
        private let state = Locked<(results: [Result], stopped: Bool)>(([], false))
        private let done = DispatchSemaphore(value: 0)
        private let started = Locked(false)

        init(url: String, limit: Double) {
            self.url = url
            self.limit = limit
        }

        func start() {
            started.withLock { $0 = true }
            let url = url, state = state, done = done
            let end = Date().addingTimeInterval(limit)
            Thread {
                while Date() < end && !state.withLock({ $0.stopped }) {
                    let at = Date()
                    var answer: String?
                    if case .success(let response) = HTTPFetch.request(url: url, timeout: .milliseconds(500)),
                       response.status == 200 {
                        answer = response.text.trimmingCharacters(in: .whitespacesAndNewlines)
                    }
                    let seconds = Date().timeIntervalSince(at)
                    state.withLock { $0.results.append(Result(at: at, answer: answer, seconds: seconds)) }
                    usleep(10_000)
                }
                done.signal()
            }.start()
        }

        /// Stops the loop and waits for its last request. Idempotent.
        func stop() {
            let wait = state.withLock { state -> Bool in
                defer { state.stopped = true }
                return !state.stopped
            }
            if wait && started.withLock({ $0 }) { done.wait() }
        }

        var results: [Result] { state.withLock { $0.results } }

        /// Waits for the first request sent after `after` that `name` answered; returns when it was sent.
        @discardableResult
        func waitFor(answer name: String, after: Date = .distantPast, timeout: Double) throws -> Date {
            let deadline = Date().addingTimeInterval(timeout)
            while Date() < deadline {
                if let hit = results.first(where: { $0.at >= after && $0.answer == name }) { return hit.at }
                usleep(10_000)
            }
            throw TestFailure("no answer from \(name) through haproxy within \(timeout)s: \(HAProxyEndToEndTests.tally(results))")
        }
    }

}
