import Foundation
import Testing
import VitalsCore
import VitalsHTTP
import VitalsProbe
import VitalsTestKit
@testable import VitalsAgent

/// Ping keys over a real socket: the status server on loopback, answering
/// `/v1/ping/{key}` with no Authorization header, each key opening its own
/// heartbeat and nothing else.
@Suite struct PingKeyTests {
    let clock = ManualClock()
    static let adminToken = "adm1n-t0ken"

    func config(stateDir: String, backupKeyFile: String) -> VitalsConfig {
        VitalsConfig(
            agent: AgentSettings(stateDir: stateDir),
            services: [
                ServiceConfig(name: "web-1", check: .tcp(TCPCheck(host: "127.0.0.1", port: 1))),
                ServiceConfig(name: "backup", check: .heartbeat(HeartbeatCheck(every: .seconds(86_400), grace: .seconds(1800),
                                                                               keyFile: backupKeyFile))),
                ServiceConfig(name: "sweep", check: .heartbeat(HeartbeatCheck(every: .seconds(3600)))),
            ])
    }

    /// The agent's API on loopback, with the keys of `config`, and what it logged.
    final class Served {
        let owner: StateOwner
        let keys: HeartbeatKeys
        let server: HTTPServer
        let logged = Locked<[String]>([])
        var base: String { "http://\(server.localAddresses[0])" }

        init(_ config: VitalsConfig, clock: ManualClock) throws {
            owner = StateOwner(config: config, configPath: "t.yaml", clock: clock) { _ in }
            let logged = self.logged
            keys = HeartbeatKeys(log: { line in logged.withLock { $0.append(line) } })
            try keys.load(config)
            let api = StatusAPI(owner: owner, view: StatusView(owner: owner, clock: clock),
                                token: BearerToken(PingKeyTests.adminToken), allowGetHeartbeats: false, clock: clock,
                                keys: keys)
            server = HTTPServer(configuration: .init(listenAddresses: [.loopbackIPv4(port: 0)]), handler: api)
            try server.start()
        }

        func state(_ service: String) -> HealthState? { owner.view.core.entry(service)?.health.state }
        func stop() { server.stop() }
    }

    func fetch(_ method: String, _ url: String, headers: [String: String] = [:]) throws -> (Int, [String: Any]) {
        let answer = try HTTPFetch.request(method, url: url, headers: headers, body: method == "POST" ? [] : nil,
                                           timeout: .seconds(5)).get()
        let object = try JSONSerialization.jsonObject(with: Data(answer.body)) as? [String: Any] ?? [:]
        return (answer.status, object)
    }

    static func message(_ object: [String: Any]) -> String? {
        (object["error"] as? [String: Any])?["message"] as? String
    }

    @Test func keysAreCreated0600InTheStateDirAndStayTheSameAcrossARestart() throws {
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let state = dir.appendingPathComponent("state").path
        let keyFile = dir.appendingPathComponent("keys/backup.key").path
        let config = config(stateDir: state, backupKeyFile: keyFile)

        let created = try HeartbeatKeys(log: { _ in }).load(config)
        #expect(created.map(\.service) == ["backup", "sweep"])
        #expect(created.map(\.path) == [keyFile, state + "/heartbeat-keys/sweep"])
        for file in created {
            let attributes = try FileManager.default.attributesOfItem(atPath: file.path)
            #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600, "\(file.path)")
            #expect(file.key.count == 32 && file.key.allSatisfy(\.isHexDigit))
            let folder = try FileManager.default.attributesOfItem(atPath: (file.path as NSString).deletingLastPathComponent)
            #expect((folder[.posixPermissions] as? NSNumber)?.intValue == 0o700)
        }
        #expect(created[0].key != created[1].key)
        #expect(created[1].announcement(base: "http://127.0.0.1:9310") == "heartbeat sweep: ping key created in "
            + "\(state)/heartbeat-keys/sweep (mode 0600); ping http://127.0.0.1:9310/v1/ping/\(created[1].key) "
            + "(no token needed); `vitals heartbeat-key sweep` shows it again")

        // A restart reads the same keys and creates none.
        let again = HeartbeatKeys(log: { _ in })
        #expect(try again.load(config).isEmpty)
        #expect(again.service(forKey: created[0].key) == "backup")
        #expect(again.service(forKey: created[1].key) == "sweep")
    }

    @Test func aKeyOpensOnlyItsHeartbeatWithNoAuthorizationAndGETWorks() throws {
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let config = config(stateDir: dir.path, backupKeyFile: dir.appendingPathComponent("backup.key").path)
        let served = try Served(config, clock: clock)
        defer { served.stop() }
        let backupKey = try HeartbeatKeys.read(at: dir.appendingPathComponent("backup.key").path).get()
        let sweepKey = try HeartbeatKeys.read(at: dir.appendingPathComponent("heartbeat-keys/sweep").path).get()

        let (code, body) = try fetch("POST", "\(served.base)/v1/ping/\(backupKey)")
        #expect(code == 200)
        #expect(body["service"] as? String == "backup")
        #expect(body["state"] as? String == "up")
        #expect(served.state("backup") == .up)
        #expect(served.state("sweep") == .unknown, "the backup key moved nothing else")

        // GET, whatever allow_get_heartbeats says: the key is the secret.
        #expect(try fetch("GET", "\(served.base)/v1/ping/\(sweepKey)/start").0 == 200)
        guard case .heartbeat(let running)? = served.owner.view.core.entry("sweep")?.health else {
            Issue.record("sweep is not a heartbeat")
            return
        }
        #expect(running.runningSince == clock.now())
        #expect(try fetch("GET", "\(served.base)/v1/ping/\(sweepKey)/3").0 == 200)
        #expect(served.state("sweep") == .down)
        #expect(served.state("backup") == .up)

        // A key is no token: it opens neither the named heartbeat routes nor anything else.
        let bearer = ["Authorization": "Bearer \(backupKey)"]
        #expect(try fetch("POST", "\(served.base)/v1/heartbeat/backup", headers: bearer).0 == 401)
        #expect(try fetch("POST", "\(served.base)/v1/services/web-1/maintenance", headers: bearer).0 == 401)
        // The admin token keeps working on the named routes.
        let admin = ["Authorization": "Bearer \(Self.adminToken)"]
        #expect(try fetch("POST", "\(served.base)/v1/heartbeat/sweep", headers: admin).0 == 200)
        #expect(served.state("sweep") == .up)
        // Only GET and POST.
        #expect(try fetch("PUT", "\(served.base)/v1/ping/\(backupKey)").0 == 405)
    }

    @Test func aWrongKeyIsA404ThatSaysNothingMore() throws {
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let config = config(stateDir: dir.path, backupKeyFile: dir.appendingPathComponent("backup.key").path)
        let served = try Served(config, clock: clock)
        defer { served.stop() }
        let backupKey = try HeartbeatKeys.read(at: dir.appendingPathComponent("backup.key").path).get()
        let almost = String(backupKey.dropLast()) + (backupKey.last == "0" ? "1" : "0")

        var answers: [String] = []
        for wrong in [almost, "0123456789abcdef0123456789abcdef", "x", backupKey + "0", "backup"] {
            for path in ["/v1/ping/\(wrong)", "/v1/ping/\(wrong)/start", "/v1/ping/\(wrong)/0"] {
                let answer = try HTTPFetch.request("POST", url: served.base + path, body: []).get()
                #expect(answer.status == 404, "\(path)")
                answers.append(answer.text)
            }
        }
        #expect(Set(answers) == [#"{"error":{"status":404,"message":"not found"}}"#])
        #expect(served.state("backup") == .unknown)
        // An endpoint that does not exist is named the same for a right key and a wrong one.
        let right = try fetch("POST", "\(served.base)/v1/ping/\(backupKey)/bogus")
        let wrong = try fetch("POST", "\(served.base)/v1/ping/\(almost)/bogus")
        #expect(right.0 == 404 && wrong.0 == 404)
        #expect(Self.message(right.1) == Self.message(wrong.1))
        #expect(Self.message(right.1) == "no such heartbeat endpoint: bogus (use start, fail or an exit status 0-255)")
    }

    @Test func wrongKeysAreCountedAndSummedUpAtMostOnceAMinute() throws {
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let config = config(stateDir: dir.path, backupKeyFile: dir.appendingPathComponent("backup.key").path)
        let served = try Served(config, clock: clock)
        defer { served.stop() }

        for _ in 0..<5 { _ = try fetch("POST", "\(served.base)/v1/ping/0123456789abcdef0123456789abcdef") }
        #expect(served.keys.refusedTotal == 5)
        let first = served.logged.withLock { $0 }
        #expect(first == ["refused a ping with a wrong key from 127.0.0.1; more are counted and logged at most once every 1m"])

        clock.advance(by: .seconds(30))
        served.keys.flush(at: clock.now())
        #expect(served.logged.withLock { $0.count } == 1, "not yet a minute")
        clock.advance(by: .seconds(31))
        served.keys.flush(at: clock.now())
        #expect(served.logged.withLock { $0.last } == "refused 4 pings with a wrong key in the last 1m1s (0.07/s) from 127.0.0.1; 5 since start")
        served.keys.flush(at: clock.now().adding(.seconds(120)))
        #expect(served.logged.withLock { $0.count } == 2, "nothing new, nothing said")
    }

    @Test func twoHeartbeatsWithOneKeyAreRefused() throws {
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let shared = dir.appendingPathComponent("shared.key").path
        try "0123456789abcdef-shared\n".write(toFile: shared, atomically: true, encoding: .utf8)
        let config = VitalsConfig(agent: AgentSettings(stateDir: dir.path), services: [
            ServiceConfig(name: "a", check: .heartbeat(HeartbeatCheck(every: .seconds(60), keyFile: shared))),
            ServiceConfig(name: "b", check: .heartbeat(HeartbeatCheck(every: .seconds(60), keyFile: shared))),
        ])
        #expect(throws: HeartbeatKeyError.shared("a", "b")) { try HeartbeatKeys(log: { _ in }).load(config) }

        try "short\n".write(toFile: shared, atomically: true, encoding: .utf8)
        #expect(throws: HeartbeatKeyError.invalid(shared)) { try HeartbeatKeys(log: { _ in }).load(config) }
    }
}

/// Keys and reloads, with a real agent: a heartbeat added by a reload gets
/// its key; a key file that cannot be used refuses the reload, and the
/// previous configuration stays in force; a removed heartbeat's key opens nothing.
@Suite struct PingKeyReloadTests {
    @Test func aReloadReadsOrCreatesTheKeysOfNewHeartbeats() throws {
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let config = dir.appendingPathComponent("vitals.yaml")
        let state = dir.appendingPathComponent("state").path
        func write(_ services: String) throws {
            try "agent: { listen: 127.0.0.1:0, state_dir: \(state) }\nservices:\n\(services)"
                .write(to: config, atomically: true, encoding: .utf8)
        }
        try write("  first: { heartbeat: { every: 1h } }\n")
        let agent = try AgentProcess(config: config, directory: dir)
        defer { _ = agent.stop() }
        let url = try agent.baseURL()
        let token = try HeartbeatKeysFile.read(state + "/token")
        let admin = ["Authorization": "Bearer \(token)"]
        let firstKey = try HeartbeatKeysFile.read(state + "/heartbeat-keys/first")

        // A key file too short to be a key: the reload is refused, naming it.
        let bad = dir.appendingPathComponent("second.key").path
        try "short\n".write(toFile: bad, atomically: true, encoding: .utf8)
        try write("  first: { heartbeat: { every: 1h } }\n  second: { heartbeat: { every: 1h, key_file: \(bad) } }\n")
        let refused = try HTTPFetch.request("POST", url: "\(url)/v1/reload", headers: admin, body: []).get()
        #expect(refused.status == 422)
        #expect(refused.text.contains("ping key file \(bad): a key is at least 16 characters"), "\(refused.text)")
        #expect(try HTTPFetch.request("POST", url: "\(url)/v1/ping/\(firstKey)", body: []).get().status == 200,
                "the previous keys stay in force")

        // The second heartbeat without a key file: its key is created and shown once.
        try write("  second: { heartbeat: { every: 1h } }\n")
        let reloaded = try HTTPFetch.request("POST", url: "\(url)/v1/reload", headers: admin, body: []).get()
        #expect(reloaded.status == 200, "\(reloaded.text)")
        try agent.waitForLine(containing: "heartbeat second: ping key created in \(state)/heartbeat-keys/second")
        let secondKey = try HeartbeatKeysFile.read(state + "/heartbeat-keys/second")
        #expect(try HTTPFetch.request("POST", url: "\(url)/v1/ping/\(secondKey)", body: []).get().status == 200)
        #expect(try HTTPFetch.request("POST", url: "\(url)/v1/ping/\(firstKey)", body: []).get().status == 404,
                "a removed heartbeat's key opens nothing")
    }
}
