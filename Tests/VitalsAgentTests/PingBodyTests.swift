import Foundation
import Testing
import VitalsProbe
import VitalsTestKit

/// Ping bodies over real sockets: a real agent keeps the tail of what a ping
/// carried, with the beat and its event, and `vitals exec` sends the tail of
/// its job's output with the final ping.
@Suite struct PingBodyTests {
    static let token = "s3cret-token"

    /// An agent with one heartbeat, `ping_body_limit: 64`, and an exec action
    /// that copies the event JSON it gets on stdin to a file.
    static func startAgent(in dir: URL) throws -> (AgentProcess, String, String) {
        let config = dir.appendingPathComponent("vitals.yaml")
        let received = dir.appendingPathComponent("event.json").path
        try """
        agent:
          listen: 127.0.0.1:0
          state_dir: \(dir.appendingPathComponent("state").path)
          ping_body_limit: 64
        services:
          nightly: { heartbeat: { every: 24h }, on: { failed: [record] } }
        actions:
          record: { exec: [/bin/sh, -c, 'cat > "$0"', \(received)] }
        """.write(to: config, atomically: true, encoding: .utf8)
        let agent = try AgentProcess(config: config, directory: dir)
        return (agent, try agent.baseURL(), received)
    }

    static func json(_ url: String) throws -> [String: Any] {
        let data = try Data(HTTPFetch.request(url: url).get().body)
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    @Test("the tail of a ping's body is kept with the beat, served, and handed to the actions in the event")
    func theAgentKeepsTheTail() throws {
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let (agent, url, received) = try Self.startAgent(in: dir)
        defer { _ = agent.stop() }
        let token = try String(contentsOfFile: dir.appendingPathComponent("state/token").path, encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let lines = (1...20).map { "line \($0)\n" }.joined() // 191 bytes
        let answer = try HTTPFetch.request("POST", url: "\(url)/v1/heartbeat/nightly/fail",
                                           headers: ["Authorization": "Bearer \(token)"], body: Array(lines.utf8)).get()
        #expect(answer.status == 200)
        _ = try HTTPFetch.request("POST", url: "\(url)/v1/heartbeat/nightly/start",
                                  headers: ["Authorization": "Bearer \(token)"]).get()

        let tail = String(lines.suffix(64))
        let service = try Self.json("\(url)/v1/services/nightly")
        let beats = try #require((service["heartbeat"] as? [String: Any])?["recent_beats"] as? [[String: Any]])
        #expect(beats.map { $0["kind"] as? String } == ["start", "fail"]) // newest first
        #expect(beats[0]["body"] == nil)
        let body = try #require(beats[1]["body"] as? [String: Any])
        #expect(body["text"] as? String == tail)
        #expect(body["total_bytes"] as? Int == lines.utf8.count)
        #expect(body["kept_bytes"] as? Int == 64)
        #expect(body["truncated"] as? Bool == true)

        // Not in the status of every service: only in the service's own document.
        let status = try Self.json("\(url)/v1/status")
        let listed = (status["services"] as? [[String: Any]])?.first { $0["name"] as? String == "nightly" }
        #expect((listed?["heartbeat"] as? [String: Any])?["recent_beats"] == nil)

        // The event the fail beat caused carries it, in /v1/events and on the action's stdin.
        let events = try #require(try Self.json("\(url)/v1/events")["events"] as? [[String: Any]])
        let failed = try #require(events.last { $0["service"] as? String == "nightly" && $0["to"] as? String == "down" })
        #expect((failed["ping_body"] as? [String: Any])?["text"] as? String == tail)
        try waitUntil(timeout: 10) { FileManager.default.fileExists(atPath: received) && !((try? Data(contentsOf: URL(fileURLWithPath: received)))?.isEmpty ?? true) }
        let stdin = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: received))) as? [String: Any])
        #expect((stdin["ping_body"] as? [String: Any])?["text"] as? String == tail)
    }

    @Test("vitals exec sends the tail of the job's output with its final ping, and still passes it on")
    func execSendsTheOutputTail() throws {
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let agent = try FakeAgent()
        defer { agent.stop() }
        let config = dir.appendingPathComponent("vitals.yaml")
        try """
        agent: { listen: 127.0.0.1:\(agent.port), ping_body_limit: 16 }
        services:
          nightly: { heartbeat: { every: 24h } }
        """.write(to: config, atomically: true, encoding: .utf8)
        let job = ["/bin/sh", "-c", "for i in 1 2 3 4 5 6 7 8; do echo line-$i; done; exit 4"]
        let result = try ExecRun(["--heartbeat", "nightly", "-c", config.path, "--"] + job,
                                 environment: ["VITALS_TOKEN": Self.token]).wait()
        #expect(result.status == 4)
        #expect(result.out == (1...8).map { "line-\($0)\n" }.joined())
        #expect(result.err == "")
        let pings = agent.requests
        #expect(pings.map(\.path) == ["/v1/heartbeat/nightly/start", "/v1/heartbeat/nightly/4"])
        #expect(pings.first?.body == [])
        // The config's limit: the last 16 bytes.
        #expect(String(decoding: pings.last?.body ?? [], as: UTF8.self) == "6\nline-7\nline-8\n")
    }

    @Test("vitals exec with a real agent: the output reaches the service's recent beats")
    func execWithARealAgent() throws {
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let (agent, url, _) = try Self.startAgent(in: dir)
        defer { _ = agent.stop() }
        let tokenFile = dir.appendingPathComponent("state/token").path
        let result = try ExecRun(["--heartbeat", "nightly", "--url", url, "--token-file", tokenFile, "--",
                                  "/bin/sh", "-c", "echo backup done: 42 files; echo 1 warning >&2"]).wait()
        #expect(result.status == 0)
        #expect(result.out == "backup done: 42 files\n")
        #expect(result.err == "1 warning\n")
        let service = try Self.json("\(url)/v1/services/nightly")
        let beats = try #require((service["heartbeat"] as? [String: Any])?["recent_beats"] as? [[String: Any]])
        #expect(beats.first?["kind"] as? String == "success")
        let text = try #require((beats.first?["body"] as? [String: Any])?["text"] as? String)
        #expect(Set(text.split(separator: "\n")) == ["backup done: 42 files", "1 warning"], "\(text)")
    }

    @Test("--no-output sends no body and leaves the job the terminal's stdout")
    func noOutput() throws {
        let agent = try FakeAgent()
        defer { agent.stop() }
        let result = try ExecRun(["--heartbeat", "nightly", "--url", agent.url, "--no-output", "--",
                                  "/bin/sh", "-c", "echo hello"], environment: ["VITALS_TOKEN": Self.token]).wait()
        #expect(result.status == 0)
        #expect(result.out == "hello\n")
        #expect(agent.requests.last?.body == [])
    }
}

/// A webhook whose URL holds a token from the agent's environment: the token
/// reaches the receiver and nothing else (events, status, the agent's log).
@Suite struct NotifierSecretTests {
    @Test func aSecretFromTheEnvironmentStaysOutOfEventsStatusAndLog() throws {
        let secret = "T0KEN-\(UInt32.random(in: 100_000...999_999))"
        let receiver = try FakeAgent(answer: .error(status: .internalServerError, message: "bad hook /hooks/\(secret)"))
        defer { receiver.stop() }
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let config = dir.appendingPathComponent("vitals.yaml")
        try """
        agent: { listen: 127.0.0.1:0, state_dir: \(dir.appendingPathComponent("state").path) }
        services:
          nightly: { heartbeat: { every: 24h }, on: { failed: [chat] } }
        actions:
          chat: { webhook: { preset: slack, url: "http://127.0.0.1:\(receiver.port)/hooks/${HOOK_TOKEN}" } }
        """.write(to: config, atomically: true, encoding: .utf8)
        let agent = try AgentProcess(config: config, directory: dir, environment: ["HOOK_TOKEN": secret])
        defer { _ = agent.stop() }
        let url = try agent.baseURL()
        let token = try String(contentsOfFile: dir.appendingPathComponent("state/token").path, encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        _ = try HTTPFetch.request("POST", url: "\(url)/v1/heartbeat/nightly/fail",
                                  headers: ["Authorization": "Bearer \(token)"], body: Array("disk full\n".utf8)).get()
        var events = ""
        try waitUntil(timeout: 15) {
            events = (try? HTTPFetch.request(url: "\(url)/v1/events").get()).map { String(decoding: $0.body, as: UTF8.self) } ?? ""
            return events.contains("\"http_status\":500")
        }
        #expect(receiver.requests.map(\.path) == ["/hooks/\(secret)"])
        #expect(String(decoding: receiver.requests.first?.body ?? [], as: UTF8.self)
            == #"{"text":"[vitals] nightly is down (was unknown): job reported failure"}"#)
        #expect(events.contains("[redacted]"), "\(events)")
        #expect(!events.contains(secret), "\(events)")
        let status = try HTTPFetch.request(url: "\(url)/v1/status").get()
        #expect(!String(decoding: status.body, as: UTF8.self).contains(secret))
        _ = try agent.waitForLine(containing: "action chat")
        #expect(!agent.output.joined(separator: "\n").contains(secret))
    }
}
