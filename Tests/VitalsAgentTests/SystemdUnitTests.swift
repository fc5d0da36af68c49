import Foundation
import Testing

/// The shipped unit (`etc/systemd/vitals.service`) and sysusers file, read by
/// systemd's own tools where they are installed (Debian package `systemd`; no
/// running systemd is needed).
@Suite struct SystemdUnitTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let unit = root.appendingPathComponent("etc/systemd/vitals.service")
    static let sysusers = root.appendingPathComponent("etc/systemd/vitals.sysusers.conf")

    static let systemdAnalyze = executable("systemd-analyze")
    static let systemdSysusers = executable("systemd-sysusers")

    @Test(.enabled(if: systemdAnalyze != nil,
                   "systemd-analyze is not installed (Debian package systemd; scripts/install-deps.sh test installs it)"))
    func systemdAnalyzeVerifiesTheUnit() throws {
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        // verify insists that ExecStart's program exists: point it at the binary under test.
        let text = try String(contentsOf: Self.unit, encoding: .utf8)
            .replacingOccurrences(of: "/usr/local/bin/vitals", with: VitalsBinary.url.path)
        let copy = dir.appendingPathComponent("vitals.service")
        try text.write(to: copy, atomically: true, encoding: .utf8)

        let result = try Self.run(Self.systemdAnalyze!, ["verify", copy.path])
        #expect(result.status == 0, "systemd-analyze verify: \(result.output)")
        // Unknown keys and bad values are only warnings (exit 0): none may mention the unit.
        let complaints = result.output.split(separator: "\n").filter { $0.contains("vitals.service") }
        #expect(complaints.isEmpty, "systemd-analyze verify:\n\(complaints.joined(separator: "\n"))")
    }

    @Test(.enabled(if: systemdAnalyze != nil, "systemd-analyze is not installed"))
    func verifyWouldCatchAMistake() throws {
        // The check above is only worth something if verify speaks up about a bad unit.
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let text = try String(contentsOf: Self.unit, encoding: .utf8)
            .replacingOccurrences(of: "/usr/local/bin/vitals", with: VitalsBinary.url.path)
            .replacingOccurrences(of: "ProtectSystem=strict", with: "ProtectSystem=very")
        let copy = dir.appendingPathComponent("vitals.service")
        try text.write(to: copy, atomically: true, encoding: .utf8)
        let result = try Self.run(Self.systemdAnalyze!, ["verify", copy.path])
        #expect(result.output.contains("vitals.service"), "systemd-analyze verify said: \(result.output)")
    }

    @Test(.enabled(if: systemdSysusers != nil, "systemd-sysusers is not installed"))
    func systemdSysusersCreatesTheUser() throws {
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        // An empty root: nothing exists there yet, and --dry-run writes nothing.
        let result = try Self.run(Self.systemdSysusers!, ["--root", dir.path, "--dry-run", Self.sysusers.path])
        #expect(result.status == 0, "systemd-sysusers: \(result.output)")
        #expect(result.output.contains("Creating user 'vitals' (Vitals health agent)"), "\(result.output)")
        #expect(!result.output.contains("ignoring"), "\(result.output)")
    }

    @Test func theUnitSaysWhatTheAgentNeeds() throws {
        let settings = try Self.settings(Self.unit, section: "Service")
        // Readiness, watchdog and reload as the agent speaks them.
        #expect(settings["Type"] == ["notify"])
        #expect(settings["NotifyAccess"] == ["main"])
        #expect(settings["WatchdogSec"] == ["30s"])
        #expect(settings["ExecStart"] == ["/usr/local/bin/vitals run -c /etc/vitals/vitals.yaml"])
        #expect(settings["ExecReload"] == ["/usr/local/bin/vitals validate -c /etc/vitals/vitals.yaml",
                                           "/bin/kill -HUP $MAINPID"])
        // Stop: SIGTERM to the agent only, which gives actions 10s; then everything gets SIGKILL.
        #expect(settings["KillMode"] == ["mixed"])
        #expect(settings["TimeoutStopSec"] == ["30s"])
        #expect(settings["Restart"] == ["on-failure"])
        // A dedicated user whose only writable place is the state directory it starts in.
        #expect(settings["User"] == ["vitals"])
        #expect(settings["Group"] == ["vitals"])
        #expect(settings["StateDirectory"] == ["vitals"])
        #expect(settings["WorkingDirectory"] == ["/var/lib/vitals"])
        for (key, value) in [("ProtectSystem", "strict"), ("ProtectHome", "yes"), ("PrivateTmp", "yes"),
                             ("NoNewPrivileges", "yes"), ("ProtectKernelTunables", "yes"),
                             ("RestrictAddressFamilies", "AF_UNIX AF_INET AF_INET6")] {
            #expect(settings[key] == [value], "\(key)")
        }
        #expect(try Self.settings(Self.unit, section: "Install")["WantedBy"] == ["multi-user.target"])
    }

    @Test func theSysusersFileMatchesTheUnit() throws {
        let lines = try String(contentsOf: Self.sysusers, encoding: .utf8).split(separator: "\n")
            .filter { !$0.hasPrefix("#") && !$0.trimmingCharacters(in: .whitespaces).isEmpty }
        #expect(lines.count == 1)
        let fields = lines.first?.split(separator: " ", omittingEmptySubsequences: true).map(String.init) ?? []
        #expect(fields.first == "u")
        #expect(fields.dropFirst().first == "vitals")
        #expect(fields.contains("/var/lib/vitals"))
    }

    // MARK: Helpers

    /// Every `Key=value` of one section, values in order (keys may repeat).
    static func settings(_ file: URL, section: String) throws -> [String: [String]] {
        var current = ""
        var out: [String: [String]] = [:]
        for raw in try String(contentsOf: file, encoding: .utf8).split(separator: "\n") {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if line.hasPrefix("[") { current = String(line.dropFirst().dropLast()); continue }
            guard current == section, let equals = line.firstIndex(of: "=") else { continue }
            out[String(line[..<equals]), default: []].append(String(line[line.index(after: equals)...]))
        }
        return out
    }

    static func executable(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        let dirs = path.split(separator: ":").map(String.init) + ["/usr/bin", "/bin", "/usr/sbin", "/sbin"]
        return dirs.map { "\($0)/\(name)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// Runs a tool to completion; stdout and stderr together.
    static func run(_ program: String, _ args: [String], in directory: URL? = nil,
                    environment: [String: String]? = nil) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: program)
        process.arguments = args
        if let directory { process.currentDirectoryURL = directory }
        if let environment { process.environment = environment }
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}
