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
        #expect(result.out == "etc/vitals.yaml: OK (6 services, 2 groups, 3 actions)\n")
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
        #expect(rows[0].hasPrefix("SERVICE"))
        #expect(rows[1].hasPrefix("api") && rows[1].contains(" up "))
        #expect(rows[2].hasPrefix("gone") && rows[2].contains(" down ") && rows[2].hasSuffix("connect refused"))

        try yaml.components(separatedBy: "\n").dropLast().joined(separator: "\n").write(toFile: path, atomically: true, encoding: .utf8)
        let healthy = try VitalsBinary.run(["check", "-c", path, "--json"])
        #expect(healthy.status == 0)
        let json = try JSONSerialization.jsonObject(with: Data(healthy.out.utf8)) as? [String: Any]
        #expect(json?["exit_code"] as? Int == 0)
        #expect((json?["services"] as? [[String: Any]])?.first?["state"] as? String == "up")
    }

    @Test func statusSaysWhenTheAgentIsUnreachable() throws {
        let port = try LoopbackPort.unused()
        let result = try VitalsBinary.run(["status", "--url", "http://127.0.0.1:\(port)"])
        #expect(result.status == 3)
        #expect(result.err.contains("cannot reach the agent"))
    }
}
