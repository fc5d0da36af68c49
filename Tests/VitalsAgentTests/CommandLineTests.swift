import Foundation
import Testing
import VitalsTestKit

/// The command line as an operator meets it: help, exit codes, messages.
@Suite struct CommandLineTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    @Test func versionPrintsTheVersion() throws {
        let result = try VitalsBinary.run(["version"])
        #expect(result.status == 0)
        #expect(result.out.hasPrefix("vitals "))
    }

    @Test(arguments: [
        ("run", "Run the agent: probe services, track heartbeats, serve status."),
        ("check", "Probe every service once, print a table, exit as a Nagios plugin does."),
        ("validate", "Check a configuration file and list every error in it."),
        ("status", "Ask a running agent for its status and print it."),
        ("version", "Print the version of vitals."),
        ("events", "Print the agent's recent events; --follow waits for new ones."),
        ("exec", "Run a cron job and report its start, end and exit status as heartbeats."),
    ])
    func everyCommandExplainsItself(command: String, abstract: String) throws {
        let result = try VitalsBinary.run([command, "--help"])
        #expect(result.status == 0)
        // Help wraps at 80 columns: compare with the white space folded.
        let folded = result.out.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        #expect(folded.hasPrefix("OVERVIEW: \(abstract)"))
        let top = try VitalsBinary.run(["--help"])
        #expect(top.out.contains(command))
    }

    @Test func validateAcceptsTheExampleConfig() throws {
        let result = try VitalsBinary.run(["validate", "-c", "etc/vitals.yaml"], in: Self.root)
        #expect(result.status == 0)
        #expect(result.out == "etc/vitals.yaml: OK (6 services, 2 groups, 5 actions)\n")
    }

    @Test func validateListsEveryError() throws {
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("bad.yaml").path
        try """
        defaults: { interval: 5, rise: two }
        services:
          web: { http: { url: http://127.0.0.1/, body_contain: ok } }
        """.write(toFile: path, atomically: true, encoding: .utf8)
        let result = try VitalsBinary.run(["validate", "-c", path])
        #expect(result.status == 1)
        let lines = result.err.split(separator: "\n").map(String.init)
        #expect(lines.count == 3)
        #expect(lines.allSatisfy { $0.hasPrefix(path + ": ") })
        #expect(lines[0].contains("defaults.interval: expected a duration like 250ms, 2s, 1m, got \"5\" (line 1, column 23)"))
        #expect(lines[2].contains("services.web.http.body_contain: unknown key, did you mean \"body_contains\"?"))
    }

    @Test func validateNamesAMissingFile() throws {
        let result = try VitalsBinary.run(["validate", "-c", "/nonexistent/vitals.yaml"])
        #expect(result.status == 1)
        #expect(result.err == "/nonexistent/vitals.yaml: no such file\n")
    }

    @Test func checkProbesOnceAndExitsLikeNagios() throws {
        let backend = try Backend()
        defer { backend.stop() }
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("c.yaml").path
        let closedPort = try LoopbackPort.unused()
        let yaml = """
        services:
          api: { http: { url: "http://127.0.0.1:\(backend.port)/" } }
          gone: { tcp: { host: 127.0.0.1, port: \(closedPort) } }
        """
        try yaml.write(toFile: path, atomically: true, encoding: .utf8)
        let result = try VitalsBinary.run(["check", "-c", path])
        #expect(result.status == 2)
        let rows = result.out.split(separator: "\n").map(String.init)
        try #require(rows.count == 4, "a summary, a header and two rows: \(result.out)")
        #expect(rows[0] == "VITALS CRITICAL - 1 down: gone (connect refused) | up=1 degraded=0 down=1 unknown=0")
        #expect(rows[1].hasPrefix("SERVICE"))
        #expect(rows[2].hasPrefix("api") && rows[2].contains(" up "))
        #expect(rows[3].hasPrefix("gone") && rows[3].contains(" down ") && rows[3].hasSuffix("connect refused"))

        try yaml.components(separatedBy: "\n").dropLast().joined(separator: "\n").write(toFile: path, atomically: true, encoding: .utf8)
        let healthy = try VitalsBinary.run(["check", "-c", path, "--json"])
        #expect(healthy.status == 0)
        let json = try JSONSerialization.jsonObject(with: Data(healthy.out.utf8)) as? [String: Any]
        #expect(json?["exit_code"] as? Int == 0)
        #expect((json?["services"] as? [[String: Any]])?.first?["state"] as? String == "up")
    }

    /// A plugin's exit 3 is unknown, with the plugin's own words (no prefix
    /// of ours), and the first line is a Nagios summary, so `vitals check`
    /// can itself run under Nagios, Icinga or Monit.
    @Test func checkReportsAPluginsUnknownAsUnknown() throws {
        let backend = try Backend()
        defer { backend.stop() }
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let plugin = dir.appendingPathComponent("check-unsure.sh").path
        try "#!/bin/sh\necho 'UNKNOWN: ? | tries=1'\nexit 3\n".write(toFile: plugin, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: plugin)
        let slow = dir.appendingPathComponent("check-slow.sh").path
        try "#!/bin/sh\necho 'WARNING - queue 80% full'\nexit 1\n".write(toFile: slow, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: slow)
        let path = dir.appendingPathComponent("c.yaml").path
        let closedPort = try LoopbackPort.unused()
        let healthy = """
        services:
          api: { http: { url: "http://127.0.0.1:\(backend.port)/" } }
          queue: { exec: ["\(slow)"] }
          disk: { exec: ["\(plugin)"] }
          job: { heartbeat: { every: 1h } }
        """
        try (healthy + "\n  gone: { tcp: { host: 127.0.0.1, port: \(closedPort) } }\n")
            .write(toFile: path, atomically: true, encoding: .utf8)
        let critical = try VitalsBinary.run(["check", "-c", path])
        #expect(critical.status == 2, "down outranks unknown")
        let rows = critical.out.split(separator: "\n").map(String.init)
        #expect(rows.first == "VITALS CRITICAL - 1 down: gone (connect refused); 1 unknown: disk (UNKNOWN: ?); "
            + "1 degraded: queue (WARNING - queue 80% full) | up=1 degraded=1 down=1 unknown=1")
        #expect(rows.count > 1 && rows[1].hasPrefix("SERVICE"), "the table follows the summary")
        let disk = rows.first { $0.hasPrefix("disk ") } ?? ""
        #expect(disk.contains(" unknown ") && disk.hasSuffix("  UNKNOWN: ?"), "the plugin's words once: \(disk)")

        try healthy.write(toFile: path, atomically: true, encoding: .utf8)
        let unknown = try VitalsBinary.run(["check", "-c", path])
        #expect(unknown.status == 3)
        #expect(unknown.out.split(separator: "\n").first
            == "VITALS UNKNOWN - 1 unknown: disk (UNKNOWN: ?); 1 degraded: queue (WARNING - queue 80% full) | up=1 degraded=1 down=0 unknown=1")
        let json = try JSONSerialization.jsonObject(with: Data(try VitalsBinary.run(["check", "-c", path, "--json"]).out.utf8)) as? [String: Any]
        let services = json?["services"] as? [[String: Any]] ?? []
        #expect(services.first { $0["name"] as? String == "disk" }?["reason"] as? String == "UNKNOWN: ?")
        #expect(json?["summary"] as? String
            == "VITALS UNKNOWN - 1 unknown: disk (UNKNOWN: ?); 1 degraded: queue (WARNING - queue 80% full) | up=1 degraded=1 down=0 unknown=1")

        try """
        services:
          api: { http: { url: "http://127.0.0.1:\(backend.port)/" } }
          job: { heartbeat: { every: 1h } }
        """.write(toFile: path, atomically: true, encoding: .utf8)
        let ok = try VitalsBinary.run(["check", "-c", path])
        #expect(ok.status == 0)
        #expect(ok.out.split(separator: "\n").first == "VITALS OK - 1 up, 1 skipped | up=1 degraded=0 down=0 unknown=0")
    }

    @Test func statusSaysWhenTheAgentIsUnreachable() throws {
        let port = try LoopbackPort.unused()
        let result = try VitalsBinary.run(["status", "--url", "http://127.0.0.1:\(port)"])
        #expect(result.status == 3)
        #expect(result.err.contains("cannot reach the agent"))
    }
}
