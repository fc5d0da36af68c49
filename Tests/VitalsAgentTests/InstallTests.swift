import Foundation
import Testing

/// `make install` and `make uninstall` into a temporary DESTDIR, with the
/// binary under test (INSTALL_BIN) so no release build is started.
@Suite(.serialized) struct InstallTests {
    static let root = SystemdUnitTests.root
    static let make = SystemdUnitTests.executable("make")

    @Test(.enabled(if: make != nil, "make is not installed"))
    func installsEverythingAndUninstallRemovesIt() throws {
        let dest = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dest) }
        let install = try Self.make(["install", "PREFIX=/usr/local"], into: dest)
        #expect(install.status == 0, "make install:\n\(install.output)")

        let fm = FileManager.default
        let files = try Self.files(under: dest)
        #expect(files == [
            "etc/vitals/vitals.yaml",
            "usr/local/bin/vitals",
            "usr/local/lib/systemd/system/vitals.service",
            "usr/local/lib/sysusers.d/vitals.conf",
            "usr/local/share/vitals/scripts/check-disk.sh",
            "usr/local/share/vitals/scripts/promote.sh",
            "usr/local/share/vitals/vitals.yaml",
        ])
        for executable in ["usr/local/bin/vitals", "usr/local/share/vitals/scripts/promote.sh"] {
            #expect(fm.isExecutableFile(atPath: dest.appendingPathComponent(executable).path), "\(executable)")
        }
        let version = try SystemdUnitTests.run(dest.appendingPathComponent("usr/local/bin/vitals").path, ["version"])
        #expect(version.output.hasPrefix("vitals "))

        // The config keeps its state where the unit lets it write, and finds the installed scripts.
        let configPath = dest.appendingPathComponent("etc/vitals/vitals.yaml")
        let config = try String(contentsOf: configPath, encoding: .utf8)
        #expect(config.contains("state_dir: /var/lib/vitals "))
        #expect(config.contains("token_file: /var/lib/vitals/token "))
        #expect(config.contains("exec: [/usr/local/share/vitals/scripts/check-disk.sh,"))
        #expect(!config.contains("./.vitals") && !config.contains("./scripts/"))
        let validate = try VitalsBinary.run(["validate", "-c", configPath.path])
        #expect(validate.status == 0, "\(validate.err)")

        // The unit as installed is the shipped one: PREFIX=/usr/local and /etc are its defaults.
        let unit = try String(contentsOf: dest.appendingPathComponent("usr/local/lib/systemd/system/vitals.service"),
                              encoding: .utf8)
        #expect(unit == (try String(contentsOf: SystemdUnitTests.unit, encoding: .utf8)))

        let uninstall = try Self.make(["uninstall", "PREFIX=/usr/local"], into: dest)
        #expect(uninstall.status == 0, "make uninstall:\n\(uninstall.output)")
        #expect(try Self.files(under: dest) == [])
    }

    @Test(.enabled(if: make != nil, "make is not installed"))
    func theUnitAndConfigFollowPrefixAndSysconfdir() throws {
        let dest = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dest) }
        let variables = ["PREFIX=/opt/vitals", "SYSCONFDIR=/opt/vitals/etc"]
        let install = try Self.make(["install"] + variables, into: dest)
        #expect(install.status == 0, "make install:\n\(install.output)")
        let unit = try SystemdUnitTests.settings(dest.appendingPathComponent("opt/vitals/lib/systemd/system/vitals.service"),
                                                 section: "Service")
        #expect(unit["ExecStart"] == ["/opt/vitals/bin/vitals run -c /opt/vitals/etc/vitals/vitals.yaml"])
        #expect(unit["ExecReload"]?.first == "/opt/vitals/bin/vitals validate -c /opt/vitals/etc/vitals/vitals.yaml")
        let config = try String(contentsOf: dest.appendingPathComponent("opt/vitals/etc/vitals/vitals.yaml"), encoding: .utf8)
        #expect(config.contains("exec: [/opt/vitals/share/vitals/scripts/promote.sh]"))

        let uninstall = try Self.make(["uninstall"] + variables, into: dest)
        #expect(uninstall.status == 0, "make uninstall:\n\(uninstall.output)")
        #expect(try Self.files(under: dest) == [])
    }

    @Test(.enabled(if: make != nil, "make is not installed"))
    func anExistingConfigIsNeverOverwrittenNorRemoved() throws {
        let dest = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dest) }
        let configDir = dest.appendingPathComponent("etc/vitals")
        try FileManager.default.createDirectory(at: configDir, withIntermediateDirectories: true)
        let mine = "# the operator's own\nservices: {}\n"
        try mine.write(to: configDir.appendingPathComponent("vitals.yaml"), atomically: true, encoding: .utf8)

        let install = try Self.make(["install"], into: dest)
        #expect(install.status == 0, "make install:\n\(install.output)")
        #expect(install.output.contains("kept the existing \(configDir.path)/vitals.yaml; the new example is vitals.yaml.example"))
        #expect(try String(contentsOf: configDir.appendingPathComponent("vitals.yaml"), encoding: .utf8) == mine)
        #expect(FileManager.default.fileExists(atPath: configDir.appendingPathComponent("vitals.yaml.example").path))

        let uninstall = try Self.make(["uninstall"], into: dest)
        #expect(uninstall.status == 0, "make uninstall:\n\(uninstall.output)")
        #expect(uninstall.output.contains("kept \(configDir.path)/vitals.yaml: it was edited after install"))
        #expect(try Self.files(under: dest) == ["etc/vitals/vitals.yaml"])
        #expect(try String(contentsOf: configDir.appendingPathComponent("vitals.yaml"), encoding: .utf8) == mine)
    }

    // MARK: Helpers

    /// `make target… DESTDIR=dest INSTALL_BIN=<binary under test>` in the repository, with
    /// nothing of an outer make or the caller's environment changing the variables.
    static func make(_ args: [String], into dest: URL) throws -> (status: Int32, output: String) {
        var environment = ProcessInfo.processInfo.environment
        for name in ["MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "PREFIX", "SYSCONFDIR", "UNITDIR",
                     "SYSUSERSDIR", "INSTALL_BIN", "DESTDIR"] {
            environment[name] = nil
        }
        return try SystemdUnitTests.run(make!, ["--no-print-directory"] + args
                                            + ["DESTDIR=\(dest.path)", "INSTALL_BIN=\(VitalsBinary.url.path)"],
                                        in: root, environment: environment)
    }

    /// Regular files under `dir`, as sorted relative paths.
    static func files(under dir: URL) throws -> [String] {
        let base = dir.resolvingSymlinksInPath().path
        var out: [String] = []
        guard let walker = FileManager.default.enumerator(atPath: base) else { return [] }
        for case let path as String in walker {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: base + "/" + path, isDirectory: &isDirectory), !isDirectory.boolValue {
                out.append(path)
            }
        }
        return out.sorted()
    }
}
