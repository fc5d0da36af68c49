import Foundation
import Testing
import VitalsHTTP
import VitalsTestKit

/// `vitals status` against a stand-in agent with a fixed `/v1/status`: what
/// an operator reads first (the active member, holds, isolation, a pending
/// move), and the exit status and colour that follow each group's condition.
@Suite struct StatusCommandTests {
    /// `web` is held on its dead primary while `web-2` would serve: traffic
    /// stays pinned to `web-1`, and the group's condition is `down`.
    static let heldOnADeadMember = #"""
    {"agent":{"version":"1.0.0","uptime_seconds":60},
    "services":[
    {"name":"web-1","kind":"http","state":"down","since":"2026-01-01T00:00:30.000Z","reason":"connect refused","latency_ms":null},
    {"name":"web-2","kind":"http","state":"up","since":"2026-01-01T00:00:00.000Z","reason":"2 consecutive successes","latency_ms":1.5},
    {"name":"db-1","kind":"tcp","state":"up","since":"2026-01-01T00:00:00.000Z","reason":"2 consecutive successes","latency_ms":0.5},
    {"name":"db-2","kind":"tcp","state":"up","since":"2026-01-01T00:00:00.000Z","reason":"2 consecutive successes","latency_ms":0.5}],
    "groups":[
    {"name":"web","mode":"active-passive","state":"degraded","condition":"down","active":["web-1"],"active_member":"web-1",
     "members":[{"name":"web-1","state":"down","reason":"connect refused","active":true},{"name":"web-2","state":"up","reason":"","active":false}],
     "serving":["web-2"],"held":true,"hold":{"cause":"operator","reason":"db migration","since":"2026-01-01T00:00:00.000Z"},
     "isolated":false,"recent_failovers":0,"recent_events":[]},
    {"name":"db","mode":"active-passive","state":"up","condition":"ok","active":["db-2"],"active_member":"db-2",
     "members":[{"name":"db-1","state":"up","reason":"","active":false},{"name":"db-2","state":"up","reason":"","active":true}],
     "serving":["db-1","db-2"],"held":false,"isolated":true,"isolation_reason":"2 of 4 services failed within 10s",
     "pending":{"kind":"failback","from":"db-2","to":"db-1","not_before":"2026-01-01T00:01:00.000Z","reason":"db-1 is up again; deferred by cooldown 30s"},
     "recent_failovers":1,"recent_events":[]},
    {"name":"pool","mode":"active-active","state":"up","condition":"ok","active":["db-1","db-2"],
     "members":[{"name":"db-1","state":"up","reason":"","active":true},{"name":"db-2","state":"up","reason":"","active":true}],
     "serving":["db-1","db-2"],"held":false,"isolated":false,"recent_failovers":0,"recent_events":[]}]}
    """#

    /// Every service serves or is in maintenance, but `web`'s active member
    /// is the one in maintenance and its failover waits for the cooldown:
    /// the group is `degraded`, and so is the answer.
    static let degradedGroupOnly = #"""
    {"agent":{"version":"1.0.0","uptime_seconds":60},
    "services":[
    {"name":"web-1","kind":"http","state":"maintenance","since":"2026-01-01T00:00:30.000Z","reason":"kernel update","latency_ms":null},
    {"name":"web-2","kind":"http","state":"up","since":"2026-01-01T00:00:00.000Z","reason":"2 consecutive successes","latency_ms":1.5}],
    "groups":[
    {"name":"web","mode":"active-passive","state":"degraded","condition":"degraded","active":["web-1"],"active_member":"web-1",
     "members":[{"name":"web-1","state":"maintenance","reason":"kernel update","active":true},{"name":"web-2","state":"up","reason":"","active":false}],
     "serving":["web-2"],"held":false,"isolated":false,
     "pending":{"kind":"failover","from":"web-1","to":"web-2","not_before":"2026-01-01T00:01:00.000Z","reason":"web-1 is in maintenance; deferred by cooldown 30s"},
     "recent_failovers":0,"recent_events":[]}]}
    """#

    @Test func showsTheActiveMemberAndEveryMarkFirst() throws {
        let agent = try CannedStatus(Self.heldOnADeadMember)
        defer { agent.stop() }
        let result = try VitalsBinary.run(["status", "--url", agent.url])
        #expect(result.status == 2, "web is down: critical")
        #expect(result.out == """
        GROUP  MODE            CONDITION  ACTIVE        SERVING     MARKS
        web    active-passive  down       web-1 (down)  web-2       HELD
        db     active-passive  ok         db-2          db-1, db-2  ISOLATED PENDING
        pool   active-active   ok         db-1, db-2    db-1, db-2

        web: HELD (operator) since 2026-01-01T00:00:00.000Z: db migration
        db: ISOLATED: 2 of 4 services failed within 10s
        db: PENDING failback db-2 → db-1 not before 2026-01-01T00:01:00.000Z: db-1 is up again; deferred by cooldown 30s

        SERVICE  KIND  STATE  SINCE                     LATENCY  REASON
        web-1    http  down   2026-01-01T00:00:30.000Z  -        connect refused
        web-2    http  up     2026-01-01T00:00:00.000Z  1.5ms    2 consecutive successes
        db-1     tcp   up     2026-01-01T00:00:00.000Z  0.5ms    2 consecutive successes
        db-2     tcp   up     2026-01-01T00:00:00.000Z  0.5ms    2 consecutive successes

        """)
    }

    @Test func exitStatusFollowsTheGroupCondition() throws {
        let agent = try CannedStatus(Self.degradedGroupOnly)
        defer { agent.stop() }
        let result = try VitalsBinary.run(["status", "--url", agent.url])
        #expect(result.status == 1, "web is degraded though every service serves or is in maintenance")
        let rows = result.out.split(separator: "\n").map(String.init)
        try #require(rows.count > 1, "\(result.out)")
        #expect(rows[1] == "web    active-passive  degraded   web-1 (maintenance)  web-2    PENDING")
        #expect(rows.contains("web: PENDING failover web-1 → web-2 not before 2026-01-01T00:01:00.000Z: web-1 is in maintenance; deferred by cooldown 30s"))
    }

    /// On a terminal the condition is coloured as a state is: down red.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/script"),
                   "/usr/bin/script (util-linux) is needed for a terminal"))
    func coloursTheConditionOnATerminal() throws {
        let agent = try CannedStatus(Self.heldOnADeadMember)
        defer { agent.stop() }
        let result = try OnATerminal.run(VitalsBinary.url.path + " status --url " + agent.url)
        #expect(result.status == 2)
        let web = result.out.split(separator: "\n").first { $0.hasPrefix("web ") } ?? ""
        #expect(web.contains("\u{1B}[31mdown"), "web's condition in red: \(web.debugDescription)")
        let db = result.out.split(separator: "\n").first { $0.hasPrefix("db ") } ?? ""
        #expect(db.contains("\u{1B}[32mok"), "db's condition in green: \(db.debugDescription)")
    }
}

/// A stand-in agent that answers `GET /v1/status` with a fixed document.
final class CannedStatus: Sendable {
    let server: HTTPServer

    init(_ document: String) throws {
        server = HTTPServer(configuration: HTTPServerConfiguration(listenAddresses: [.loopbackIPv4()]),
                            handler: HTTPClosureHandler { request in
            request.path == "/v1/status" ? .json(body: document)
                : .error(status: .notFound, message: "no such path: \(request.path)")
        })
        try server.start()
    }

    var url: String { "http://127.0.0.1:\(server.ports[0])" }
    func stop() { server.stop() }
}

/// Runs a command line on a pseudo-terminal (`script`), so the program sees a
/// terminal on its standard output.
enum OnATerminal {
    static func run(_ commandLine: String) throws -> (status: Int32, out: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/script")
        process.arguments = ["-qec", commandLine, "/dev/null"]
        var environment = ProcessInfo.processInfo.environment
        environment["NO_COLOR"] = nil
        process.environment = environment
        let out = Pipe()
        process.standardOutput = out
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus,
                String(decoding: data, as: UTF8.self).replacingOccurrences(of: "\r\n", with: "\n"))
    }
}
