#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
import VitalsHTTP
import VitalsProbe
import VitalsTestKit

/// `vitals exec`, the cron wrapper, run as cron runs it: the real binary, a
/// real job, and an agent on loopback that records the pings (or a real agent).
@Suite struct CronExecTests {
    static let token = "s3cret-token"

    @Test(arguments: [
        (["/bin/sh", "-c", "exit 0"], Int32(0)),
        (["/bin/sh", "-c", "exit 3"], 3),
        (["sh", "-c", "exit 255"], 255),                   // a bare name is looked up in PATH
        (["/bin/sh", "-c", "kill -TERM $$"], 128 + SIGTERM),
        (["/bin/sh", "-c", "kill -KILL $$"], 128 + SIGKILL),
    ] as [([String], Int32)])
    func passesTheExitStatusThroughAndReportsIt(job: [String], status: Int32) throws {
        let agent = try FakeAgent()
        defer { agent.stop() }
        let result = try ExecRun(["--heartbeat", "nightly", "--url", agent.url] + ["--"] + job,
                                 environment: ["VITALS_TOKEN": Self.token]).wait()
        #expect(result.status == status)
        #expect(result.err == "")
        let pings = agent.requests
        #expect(pings.count == 2)
        #expect(pings.map(\.method) == ["POST", "POST"])
        #expect(pings.first?.path == "/v1/heartbeat/nightly/start")
        #expect(pings.last?.path == "/v1/heartbeat/nightly/\(status)")
        #expect(pings.allSatisfy { $0.authorization == "Bearer \(Self.token)" })
        let duration = pings.last?.query ?? ""
        #expect(duration.wholeMatch(of: /duration=[0-9]+\.[0-9]{3}s/) != nil, "query: \(duration)")
    }

    @Test func theDurationIsTheJobs() throws {
        let agent = try FakeAgent()
        defer { agent.stop() }
        let result = try ExecRun(["--heartbeat", "nightly", "--url", agent.url, "--", "sleep", "0.3"],
                                 environment: ["VITALS_TOKEN": Self.token]).wait()
        #expect(result.status == 0)
        let query = agent.requests.last?.query ?? ""
        let seconds = Double(query.dropFirst("duration=".count).dropLast()) ?? -1
        #expect(seconds >= 0.3 && seconds < 5, "query: \(query)")
    }

    @Test func theJobKeepsStdinStdoutAndStderr() throws {
        let agent = try FakeAgent()
        defer { agent.stop() }
        let result = try ExecRun(["--heartbeat", "nightly", "--url", agent.url, "--",
                                  "/bin/sh", "-c", "echo out; echo err >&2; cat; echo \"$0 $1\"", "a b", "c"],
                                 environment: ["VITALS_TOKEN": Self.token], stdin: "from cron\n").wait()
        #expect(result.status == 0)
        #expect(result.out == "out\nfrom cron\na b c\n")
        #expect(result.err == "err\n")
    }

    @Test func sigtermReachesTheJob() throws {
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let agent = try FakeAgent()
        defer { agent.stop() }
        let marker = dir.appendingPathComponent("started").path
        let run = try ExecRun(["--heartbeat", "nightly", "--url", agent.url, "--",
                               "/bin/sh", "-c", "touch \"$0\"; exec sleep 30", marker],
                              environment: ["VITALS_TOKEN": Self.token])
        try waitUntil(timeout: 10) { FileManager.default.fileExists(atPath: marker) }
        kill(run.pid, SIGTERM)
        let result = try run.wait(timeout: 10)
        #expect(result.status == 128 + SIGTERM)
        #expect(agent.requests.last?.path == "/v1/heartbeat/nightly/\(128 + SIGTERM)")
    }

    @Test func anUnreachableAgentOnlyWarns() throws {
        // A port that was just open and is now closed: connections are refused at once.
        let closed = try FakeAgent()
        let url = closed.url
        closed.stop()
        let result = try ExecRun(["--heartbeat", "nightly", "--url", url, "--", "/bin/sh", "-c", "echo done; exit 4"],
                                 environment: ["VITALS_TOKEN": Self.token]).wait()
        #expect(result.status == 4)
        #expect(result.out == "done\n")
        let lines = result.err.split(separator: "\n", omittingEmptySubsequences: false).dropLast().map(String.init)
        #expect(lines.count == 2, "stderr: \(result.err)")
        #expect(lines.first?.hasPrefix("vitals exec: could not report to the agent at \(url)/v1/heartbeat/nightly/start: ") == true)
        #expect(lines.last?.hasPrefix("vitals exec: could not report to the agent at \(url)/v1/heartbeat/nightly/4?duration=") == true)
    }

    @Test(arguments: [
        (401, #"{"error":{"message":"wrong token"}}"#, "answered 401: wrong token"),
        (404, #"{"error":{"message":"no such service: nightly"}}"#, "answered 404: no such service: nightly"),
        (500, "boom\nmore", "answered 500: boom"),
    ])
    func aRefusedPingOnlyWarns(code: Int, body: String, why: String) throws {
        let agent = try FakeAgent(answer: .text(status: HTTPStatus(code: code), body: body))
        defer { agent.stop() }
        let result = try ExecRun(["--heartbeat", "nightly", "--url", agent.url, "--", "/bin/sh", "-c", "exit 0"],
                                 environment: ["VITALS_TOKEN": Self.token]).wait()
        #expect(result.status == 0)
        #expect(result.err == """
            vitals exec: could not report to the agent at \(agent.url)/v1/heartbeat/nightly/start: \(why)
            vitals exec: could not report to the agent at \(agent.url)/v1/heartbeat/nightly/0?\(agent.requests.last?.query ?? ""): \(why)

            """)
    }

    @Test func aMissingTokenIsNamedWhenTheAgentRefuses() throws {
        let agent = try FakeAgent(answer: .error(status: .unauthorized, message: "missing Authorization: Bearer token"))
        defer { agent.stop() }
        let result = try ExecRun(["--heartbeat", "nightly", "--url", agent.url, "--token-file", "/nonexistent/token",
                                  "--", "/bin/sh", "-c", "exit 0"]).wait()
        #expect(result.status == 0)
        #expect(agent.requests.allSatisfy { $0.authorization == nil })
        #expect(result.err.contains("answered 401: missing Authorization: Bearer token (no token: set VITALS_TOKEN or make /nonexistent/token readable)"))
    }

    @Test(arguments: [
        ("/nonexistent/backup.sh", Int32(127), "No such file or directory"),
        ("no-such-command-anywhere", 127, "No such file or directory"),
        ("NOT-EXECUTABLE", 126, "Permission denied"),
    ])
    func aJobThatCannotStartIsAFailure(program: String, status: Int32, why: String) throws {
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let agent = try FakeAgent()
        defer { agent.stop() }
        var program = program
        if program == "NOT-EXECUTABLE" {
            // Found, but without an execute bit: even root may not run it.
            program = dir.appendingPathComponent("backup.sh").path
            try "#!/bin/sh\nexit 0\n".write(toFile: program, atomically: true, encoding: .utf8)
            try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: program)
        }
        let result = try ExecRun(["--heartbeat", "nightly", "--url", agent.url, "--", program, "arg"],
                                 environment: ["VITALS_TOKEN": Self.token]).wait()
        #expect(result.status == status)
        #expect(result.err == "vitals exec: cannot run \(program): \(why)\n")
        #expect(agent.requests.map(\.path) == ["/v1/heartbeat/nightly/start", "/v1/heartbeat/nightly/\(status)"])
        #expect(agent.requests.last?.query == "duration=0.000s")
    }

    @Test func theAddressAndTokenComeFromTheConfig() throws {
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let agent = try FakeAgent()
        defer { agent.stop() }
        try "from-the-file\n".write(to: dir.appendingPathComponent("token"), atomically: true, encoding: .utf8)
        let config = dir.appendingPathComponent("vitals.yaml")
        try """
        agent:
          listen: 0.0.0.0:\(agent.port)
          token_file: \(dir.appendingPathComponent("token").path)
        services:
          nightly: { heartbeat: { every: 24h } }
        """.write(to: config, atomically: true, encoding: .utf8)

        let fromFile = try ExecRun(["--heartbeat", "nightly", "-c", config.path, "--", "true"]).wait()
        #expect(fromFile.status == 0)
        #expect(fromFile.err == "")
        #expect(agent.requests.map(\.authorization) == ["Bearer from-the-file", "Bearer from-the-file"])

        let fromEnvironment = try ExecRun(["--heartbeat", "nightly", "-c", config.path, "--", "true"],
                                          environment: ["VITALS_TOKEN": "from-the-environment"]).wait()
        #expect(fromEnvironment.status == 0)
        #expect(agent.requests.suffix(2).map(\.authorization) == ["Bearer from-the-environment", "Bearer from-the-environment"])
    }

    @Test func aBrokenConfigWarnsAndTheJobStillRuns() throws {
        let result = try ExecRun(["--heartbeat", "nightly", "-c", "/nonexistent/vitals.yaml", "--url", "http://127.0.0.1:1",
                                  "--timeout", "1s", "--", "/bin/sh", "-c", "exit 5"]).wait()
        #expect(result.status == 5)
        #expect(result.err.hasPrefix("vitals exec: cannot use the configuration (/nonexistent/vitals.yaml: no such file); using the defaults\n"))
    }

    @Test(arguments: [
        (["--heartbeat", "nightly"], "give the job after --"),
        (["--heartbeat", "night/ly", "--", "true"], "--heartbeat must be a service name"),
        (["--heartbeat", "nightly", "--timeout", "5", "--", "true"], "--timeout: expected a duration like 5s or 500ms; got \"5\""),
        (["--", "true"], "Missing expected argument '--heartbeat <name>'"),
    ])
    func usageErrorsRunNothing(args: [String], message: String) throws {
        let result = try ExecRun(args).wait()
        #expect(result.status == 64)
        #expect(result.err.contains(message), "stderr: \(result.err)")
    }

    @Test func theCronExampleIsACommandThatWorks() throws {
        let example = SystemdUnitTests.root.appendingPathComponent("etc/cron.d/vitals-example")
        let line = try String(contentsOf: example, encoding: .utf8).split(separator: "\n")
            .first { $0.contains("/usr/local/bin/vitals exec") }
        let fields = try #require(line).dropFirst().split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        // m h dom mon dow user, then the command.
        #expect(fields.count > 7)
        let command = Array(fields.dropFirst(6))
        #expect(command.prefix(2) == ["/usr/local/bin/vitals", "exec"])
        #expect(command.contains("--heartbeat") && command.contains("--"))

        let agent = try FakeAgent()
        defer { agent.stop() }
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let config = dir.appendingPathComponent("vitals.yaml")
        try "agent: { listen: 127.0.0.1:\(agent.port), state_dir: \(dir.path) }\nservices: { nightly-backup: { heartbeat: { every: 24h } } }\n"
            .write(to: config, atomically: true, encoding: .utf8)
        // The same arguments, with this test's config and a job that exists.
        let args = command.dropFirst(2).map { arg -> String in
            switch arg {
            case "/etc/vitals/vitals.yaml": config.path
            case "/usr/local/bin/backup.sh": "/bin/true"
            default: arg
            }
        }
        let result = try ExecRun(args, environment: ["VITALS_TOKEN": Self.token]).wait()
        #expect(result.status == 0)
        #expect(result.err == "")
        #expect(agent.requests.map(\.path) == ["/v1/heartbeat/nightly-backup/start", "/v1/heartbeat/nightly-backup/0"])
    }

    /// With a real agent: a success makes the heartbeat service up, a failure down with the exit status.
    @Test func aRealAgentRecordsTheRuns() throws {
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let config = dir.appendingPathComponent("vitals.yaml")
        try """
        agent:
          listen: 127.0.0.1:0
          state_dir: \(dir.appendingPathComponent("state").path)
        services:
          nightly-backup: { heartbeat: { every: 24h, grace: 30m } }
        """.write(to: config, atomically: true, encoding: .utf8)
        let agent = try AgentProcess(config: config, directory: dir)
        defer { _ = agent.stop() }
        let url = try agent.baseURL()
        let tokenFile = dir.appendingPathComponent("state/token").path
        let exec = ["--heartbeat", "nightly-backup", "--url", url, "--token-file", tokenFile, "--"]

        let good = try ExecRun(exec + ["/bin/sh", "-c", "sleep 0.2"]).wait()
        #expect(good.status == 0)
        #expect(good.err == "")
        var service = try Self.service("nightly-backup", at: url)
        #expect(service["state"] as? String == "up")

        let bad = try ExecRun(exec + ["/bin/sh", "-c", "exit 3"]).wait()
        #expect(bad.status == 3)
        #expect(bad.err == "")
        service = try Self.service("nightly-backup", at: url)
        #expect(service["state"] as? String == "down")
        #expect((service["reason"] as? String)?.contains("exit 3") == true, "\(service)")
    }

    // MARK: Ping keys

    static let key = "0123456789abcdef0123456789abcdef"

    @Test func aPingKeyGoesInTheURLAndNoTokenIsSent() throws {
        let agent = try FakeAgent()
        defer { agent.stop() }
        let result = try ExecRun(["--heartbeat", "nightly", "--url", agent.url, "--", "/bin/sh", "-c", "exit 2"],
                                 environment: ["VITALS_PING_KEY": Self.key, "VITALS_TOKEN": Self.token]).wait()
        #expect(result.status == 2)
        #expect(result.err == "")
        #expect(agent.requests.map(\.path) == ["/v1/ping/\(Self.key)/start", "/v1/ping/\(Self.key)/2"])
        #expect(agent.requests.allSatisfy { $0.authorization == nil })
    }

    @Test func theKeyComesFromTheHeartbeatsKeyFileInTheConfig() throws {
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let agent = try FakeAgent()
        defer { agent.stop() }
        let keyFile = dir.appendingPathComponent("nightly.key")
        try "\(Self.key)\n".write(to: keyFile, atomically: true, encoding: .utf8)
        let config = dir.appendingPathComponent("vitals.yaml")
        try """
        agent: { listen: 127.0.0.1:\(agent.port), state_dir: \(dir.path) }
        services:
          nightly: { heartbeat: { schedule: "0 3 * * *", tz: UTC, grace: 30m, key_file: \(keyFile.path) } }
          other: { heartbeat: { every: 1h } }
        """.write(to: config, atomically: true, encoding: .utf8)
        let result = try ExecRun(["--heartbeat", "nightly", "-c", config.path, "--", "true"],
                                 environment: ["VITALS_TOKEN": Self.token]).wait()
        #expect(result.status == 0)
        #expect(result.err == "")
        #expect(agent.requests.map(\.path) == ["/v1/ping/\(Self.key)/start", "/v1/ping/\(Self.key)/0"])
        #expect(agent.requests.allSatisfy { $0.authorization == nil })

        // A heartbeat whose key file does not exist yet pings with the token, as before.
        let other = try ExecRun(["--heartbeat", "other", "-c", config.path, "--", "true"],
                                environment: ["VITALS_TOKEN": Self.token]).wait()
        #expect(other.err == "")
        #expect(agent.requests.suffix(2).map(\.path) == ["/v1/heartbeat/other/start", "/v1/heartbeat/other/0"])
        #expect(agent.requests.suffix(2).allSatisfy { $0.authorization == "Bearer \(Self.token)" })
    }

    @Test func aMalformedKeyIsNotUsed() throws {
        let agent = try FakeAgent()
        defer { agent.stop() }
        let result = try ExecRun(["--heartbeat", "nightly", "--url", agent.url, "--", "true"],
                                 environment: ["VITALS_PING_KEY": "../../v1/reload", "VITALS_TOKEN": Self.token]).wait()
        #expect(result.status == 0)
        #expect(result.err == "vitals exec: VITALS_PING_KEY is not a ping key (at least 16 letters, digits, -, _, . or ~); not using it\n")
        #expect(agent.requests.map(\.path) == ["/v1/heartbeat/nightly/start", "/v1/heartbeat/nightly/0"])
    }

    @Test func aRefusedKeyWarnsWithoutShowingIt() throws {
        let agent = try FakeAgent(answer: .error(status: .notFound, message: "not found"))
        defer { agent.stop() }
        let result = try ExecRun(["--heartbeat", "nightly", "--url", agent.url, "--", "true"],
                                 environment: ["VITALS_PING_KEY": Self.key]).wait()
        #expect(result.status == 0)
        #expect(!result.err.contains(Self.key))
        #expect(result.err.hasPrefix("vitals exec: could not report to the agent at \(agent.url)/v1/ping/KEY/start: "
            + "answered 404: not found (a wrong ping key? `vitals heartbeat-key nightly` shows the right one)\n"))
    }

    /// With a real agent: it creates the key on its first start and shows it
    /// once; `vitals heartbeat-key` prints it; `vitals exec` pings with it and
    /// no token; after a restart the same key still works.
    @Test func aRealAgentCreatesTheKeyAndExecUsesIt() throws {
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let config = dir.appendingPathComponent("vitals.yaml")
        let state = dir.appendingPathComponent("state").path
        try """
        agent:
          listen: 127.0.0.1:0
          state_dir: \(state)
        services:
          nightly-backup: { heartbeat: { schedule: "0 3 * * *", tz: Europe/Berlin, grace: 30m, max_runtime: 2h } }
          web: { tcp: { host: 127.0.0.1, port: 1 } }
        """.write(to: config, atomically: true, encoding: .utf8)
        let keyPath = state + "/heartbeat-keys/nightly-backup"

        var agent = try AgentProcess(config: config, directory: dir)
        var url = try agent.baseURL()
        let created = try agent.waitForLine(containing: "ping key created")
        let key = try HeartbeatKeysFile.read(keyPath)
        #expect(created.contains("heartbeat nightly-backup: ping key created in \(keyPath) (mode 0600); ping \(url)/v1/ping/\(key)"))
        let mode = try FileManager.default.attributesOfItem(atPath: keyPath)[.posixPermissions] as? NSNumber
        #expect(mode?.intValue == 0o600)

        let shown = try VitalsBinary.run(["heartbeat-key", "nightly-backup", "-c", config.path])
        #expect(shown.status == 0)
        #expect(shown.out == key + "\n")
        let shownURL = try VitalsBinary.run(["heartbeat-key", "nightly-backup", "--url", "-c", config.path])
        #expect(shownURL.out.hasPrefix("http://127.0.0.1:0/v1/ping/\(key)"), "from agent.listen as written")
        let notHeartbeat = try VitalsBinary.run(["heartbeat-key", "web", "-c", config.path])
        #expect(notHeartbeat.status == 1)
        #expect(notHeartbeat.err == "vitals heartbeat-key: service web is a tcp check, not a heartbeat\n")

        // No token anywhere: the key alone opens the heartbeat.
        let exec = ["--heartbeat", "nightly-backup", "-c", config.path, "--url", url, "--token-file", "/nonexistent/token", "--"]
        let good = try ExecRun(exec + ["/bin/sh", "-c", "exit 0"]).wait()
        #expect(good.status == 0)
        #expect(good.err == "")
        var service = try Self.service("nightly-backup", at: url)
        #expect(service["state"] as? String == "up")
        let heartbeat = try #require(service["heartbeat"] as? [String: Any])
        #expect(heartbeat["schedule"] as? String == "0 3 * * *")
        #expect(heartbeat["tz"] as? String == "Europe/Berlin")
        #expect(heartbeat["max_runtime"] as? String == "2h")
        let explained = try VitalsBinary.run(["explain", "nightly-backup", "--url", url])
        #expect(explained.status == 0)
        #expect(explained.out.hasPrefix("nightly-backup (heartbeat): up since "), "\(explained.out)")
        #expect(explained.out.contains("\n  next ping: next run scheduled at "), "\(explained.out)")
        #expect(explained.out.contains(" Europe/Berlin (0 3 * * *), the first after the last ping at "), "\(explained.out)")

        _ = agent.stop()
        agent = try AgentProcess(config: config, directory: dir)
        defer { _ = agent.stop() }
        url = try agent.baseURL()
        #expect(try HeartbeatKeysFile.read(keyPath) == key, "the key survives a restart")
        #expect(!agent.output.contains { $0.contains("ping key created") }, "shown once, on the first start")
        let bad = try ExecRun(["--heartbeat", "nightly-backup", "-c", config.path, "--url", url, "--",
                               "/bin/sh", "-c", "exit 4"]).wait()
        #expect(bad.err == "")
        service = try Self.service("nightly-backup", at: url)
        #expect(service["state"] as? String == "down")
        #expect((service["reason"] as? String)?.contains("exit 4") == true, "\(service)")

        // A wrong key: a plain 404, one log line, and a count in /metrics.
        let wrong = try HTTPFetch.request("GET", url: "\(url)/v1/ping/\(String(key.reversed()))").get()
        #expect(wrong.status == 404)
        try agent.waitForLine(containing: "refused a ping with a wrong key from 127.0.0.1")
        let metrics = try HTTPFetch.request(url: "\(url)/metrics").get().text
        #expect(metrics.contains("\nvitals_ping_key_refusals_total 1\n"))
    }

    static func service(_ name: String, at url: String) throws -> [String: Any] {
        let data = try Data(HTTPFetch.request(url: "\(url)/v1/services/\(name)").get().body)
        guard let object = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw TestFailure("not a JSON object: \(String(decoding: data, as: UTF8.self))")
        }
        return object
    }
}

/// A key file's text, trimmed.
enum HeartbeatKeysFile {
    static func read(_ path: String) throws -> String {
        try String(contentsOfFile: path, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

/// An agent on loopback that records every request and gives one answer.
final class FakeAgent: Sendable {
    struct Request: Sendable {
        var method: String
        var path: String
        var query: String?
        var authorization: String?
        var body: [UInt8] = []
    }

    private let server: HTTPServer
    private let recorded = Locked<[Request]>([])

    init(answer: HTTPResponse = .json(body: #"{"service":"nightly","beat":"success","state":"up"}"#)) throws {
        let recorded = self.recorded
        server = HTTPServer(handler: HTTPClosureHandler { request in
            // What `vitals exec` and webhooks send; on a busy machine another
            // test's agent may still probe the port this one was given (GET /health).
            if request.method == .get, !request.path.hasPrefix("/v1/") {
                return .error(status: .notFound, message: "not the agent's API")
            }
            recorded.withLock {
                $0.append(Request(method: request.method.rawValue, path: request.path, query: request.query,
                                  authorization: request.headers["Authorization"], body: request.body))
            }
            return answer
        })
        try server.start()
    }

    var port: UInt16 { server.ports[0] }
    var url: String { "http://127.0.0.1:\(port)" }
    var requests: [Request] { recorded.withLock { $0 } }
    func stop() { server.stop() }
}

/// One `vitals exec …` run, with its own environment and stdin, whose pid the test can signal.
final class ExecRun {
    let process = Process()
    private let out = Pipe(), err = Pipe(), input = Pipe()
    private let outData = Locked(Data()), errData = Locked(Data())
    private let readers = DispatchGroup()

    var pid: pid_t { process.processIdentifier }

    /// `environment` is added to this process's, without any VITALS_TOKEN of ours.
    init(_ args: [String], environment: [String: String] = [:], stdin: String = "") throws {
        process.executableURL = VitalsBinary.url
        process.arguments = ["exec"] + args
        var env = ProcessInfo.processInfo.environment
        env["VITALS_TOKEN"] = nil
        env.merge(environment) { $1 }
        process.environment = env
        process.standardOutput = out
        process.standardError = err
        process.standardInput = input
        try process.run()
        for (pipe, data) in [(out, outData), (err, errData)] {
            DispatchQueue.global().async(group: readers) {
                let bytes = pipe.fileHandleForReading.readDataToEndOfFile()
                data.withLock { $0 = bytes }
            }
        }
        input.fileHandleForWriting.write(Data(stdin.utf8))
        try input.fileHandleForWriting.close()
    }

    func wait(timeout: Double = 30) throws -> (status: Int32, out: String, err: String) {
        if readers.wait(timeout: .now() + timeout) == .timedOut {
            process.terminate()
            throw TestFailure("vitals \(process.arguments?.joined(separator: " ") ?? "") did not finish within \(timeout)s")
        }
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: outData.withLock { $0 }, as: UTF8.self),
                String(decoding: errData.withLock { $0 }, as: UTF8.self))
    }
}

/// Polls `condition` every 20ms until it holds; fails after `timeout` seconds.
func waitUntil(timeout: Double, _ condition: () -> Bool) throws {
    let deadline = Date().addingTimeInterval(timeout)
    while !condition() {
        if Date() >= deadline { throw TestFailure("condition not met within \(timeout)s") }
        usleep(20_000)
    }
}
