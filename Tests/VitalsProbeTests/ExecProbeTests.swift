#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
import VitalsCore
@testable import VitalsProbe
import VitalsSystem

/// Plugins are shell scripts written to a temp dir. Their names start with
/// `vp_` so the zombie check can tell them from other tests' children.
@Suite("Exec probes (Nagios plugins)", .serialized)
final class ExecProbeTests {
    let directory: URL

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("vitals-exec-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    deinit {
        try? FileManager.default.removeItem(at: directory)
    }

    func plugin(_ name: String, _ body: String) throws -> String {
        let path = directory.appendingPathComponent(name).path
        try "#!/bin/sh\n\(body)\n".write(toFile: path, atomically: true, encoding: .utf8)
        chmod(path, 0o755)
        return path
    }

    func service(_ argv: [String], timeout: Duration = .seconds(2), env: [String: String] = [:]) -> ServiceConfig {
        ServiceConfig(name: "plugin", check: .exec(ExecCheck(argv: argv, env: env)), timing: ProbeTiming(timeout: timeout))
    }

    @Test("exit codes map to outcomes", arguments: [
        ("echo 'OK - all good | load=0.1'; exit 0", ProbeOutcome.ok, ""),
        ("echo 'WARNING - disk 85% | disk=85'; exit 1", .degraded, "WARNING - disk 85%"),
        ("echo 'CRITICAL - db down'; echo second line; exit 2", .failed, "CRITICAL - db down"),
        ("echo 'cannot reach agent'; exit 3", .unknown, "cannot reach agent"),
        ("echo 'UNKNOWN: ?'; exit 3", .unknown, "UNKNOWN: ?"),
        ("echo 'on stderr' >&2; exit 2", .failed, "on stderr"),
        ("exit 7", .failed, "exit status 7"),
        ("kill -9 $$", .failed, "killed by signal 9"),
    ])
    func exitCodes(script: String, outcome: ProbeOutcome, reason: String) throws {
        let path = try plugin("vp_code", script)
        let result = probe(service([path]))
        #expect(result.outcome == outcome)
        #expect(result.reason == reason)
        #expect(noZombiePlugins())
    }

    @Test func argumentsAndEnvironmentArePassedWithoutAShell() throws {
        let path = try plugin("vp_args", #"echo "arg=$1 env=$VP_MODE"; exit 1"#)
        let result = probe(service([path, "two words; exit 0", "ignored"], env: ["VP_MODE": "strict"]))
        #expect(result.outcome == .degraded)
        #expect(result.reason == "arg=two words; exit 0 env=strict")
    }

    @Test func outputIsCapped() throws {
        // 100 KiB of output: read and dropped past the cap, never blocking the plugin.
        let path = try plugin("vp_chatty", "head -c 102400 /dev/zero | tr '\\0' 'x'; echo; exit 2")
        let started = MonotonicInstant.now()
        let result = probe(service([path]))
        #expect(result.outcome == .failed)
        #expect(result.reason == String(repeating: "x", count: 8192))
        #expect(MonotonicInstant.now() - started < .seconds(2))
    }

    @Test func missingBinary() throws {
        let path = directory.appendingPathComponent("check_nothing").path
        let result = probe(service([path]))
        #expect(result.outcome == .failed)
        #expect(result.reason == "cannot run \(path): No such file or directory")
    }

    @Test func timeoutKillsTheWholeGroup() throws {
        let pidFile = directory.appendingPathComponent("child.pid").path
        let path = try plugin("vp_sleeper", "sleep 30 &\necho $! > \(pidFile)\nsleep 30")
        let started = MonotonicInstant.now()
        let result = probe(service([path], timeout: .milliseconds(300)))
        let elapsed = MonotonicInstant.now() - started
        #expect(result.outcome == .failed)
        #expect(result.reason == "timeout after 300ms")
        #expect(elapsed < .seconds(15))
        let child = try #require(pid_t(String(contentsOfFile: pidFile, encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)))
        #expect(eventually { Self.isGone(child) }, "the plugin's own child survived the timeout")
        #expect(noZombiePlugins())
    }

    @Test func aPluginIgnoringSIGTERMIsKilled() throws {
        let path = try plugin("vp_stubborn", "trap '' TERM\nsleep 30 &\nwait\nsleep 30")
        let prober = CurlMultiProber(configuration: .init(execKillGrace: .milliseconds(200)))
        let started = MonotonicInstant.now()
        let result = probe(service([path], timeout: .milliseconds(300)), prober: prober)
        let elapsed = MonotonicInstant.now() - started
        #expect(result.reason == "timeout after 300ms")
        #expect(elapsed >= .milliseconds(450))
        #expect(elapsed < .seconds(15))
        #expect(noZombiePlugins())
    }

    @Test func stoppingTheSchedulerKillsARunningPlugin() throws {
        let pidFile = directory.appendingPathComponent("plugin.pid").path
        let path = try plugin("vp_longrun", "echo $$ > \(pidFile)\nexec sleep 30")
        let sink = RecordingSink()
        let scheduler = ProbeScheduler(services: [service([path], timeout: .seconds(60))],
                                       prober: CurlMultiProber(), sink: sink, seed: 1)
        scheduler.start()
        #expect(eventually { FileManager.default.fileExists(atPath: pidFile) })
        let pid = try #require(pid_t(String(contentsOfFile: pidFile, encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)))
        scheduler.stop()
        #expect(eventually { Self.isGone(pid) && noZombiePlugins() })
        #expect(sink.all.isEmpty)
    }

    @Test func manyPluginsRunAtOnce() throws {
        let path = try plugin("vp_nap", "sleep 0.3; echo 'WARNING - napped'; exit 1")
        let services = (0..<10).map { i in
            ServiceConfig(name: "p\(i)", check: .exec(ExecCheck(argv: [path])), timing: ProbeTiming(timeout: .seconds(3)))
        }
        let started = MonotonicInstant.now()
        let results = ProbeScheduler.probeOnceBlocking(services: services, prober: CurlMultiProber())
        #expect(results.count == 10)
        #expect(results.values.allSatisfy { $0.outcome == .degraded && $0.reason == "WARNING - napped" })
        #expect(MonotonicInstant.now() - started < .seconds(2))
        #expect(noZombiePlugins())
    }

    /// Gone, or a zombie waiting for whoever adopted it (not us).
    static func isGone(_ pid: pid_t) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else { return true }
        guard let close = stat.lastIndex(of: ")") else { return true }
        return stat[stat.index(close, offsetBy: 2)] == "Z"
    }

    /// No child of this process named `vp_*` is left unreaped.
    func noZombiePlugins() -> Bool {
        let me = getpid()
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        for entry in entries where Int32(entry) != nil {
            guard let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
                  let open = stat.firstIndex(of: "("), let close = stat.lastIndex(of: ")") else { continue }
            let name = stat[stat.index(after: open)..<close]
            let fields = stat[stat.index(close, offsetBy: 2)...].split(separator: " ")
            guard fields.count > 1, name.hasPrefix("vp_"), Int32(fields[1]) == me else { continue }
            if fields[0] == "Z" { return false }
        }
        return true
    }
}
