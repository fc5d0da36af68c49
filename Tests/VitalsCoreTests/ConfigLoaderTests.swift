import Foundation
import Testing
@testable import VitalsCore

/// Files next to this test file: fixtures, and the repository's `etc/vitals.yaml`.
private enum Files {
    static let testsDirectory = URL(fileURLWithPath: #filePath).resolvingSymlinksInPath().deletingLastPathComponent()
    static let invalidFixtures = testsDirectory.appendingPathComponent("Fixtures/invalid")
    static let validFixtures = testsDirectory.appendingPathComponent("Fixtures/valid")
    static let exampleConfig = testsDirectory
        .deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("etc/vitals.yaml")

    /// Fixture file names in a directory, sorted, so test arguments are stable.
    static func yamlFiles(in directory: URL) -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return names.filter { $0.hasSuffix(".yaml") }.sorted()
    }

    static func text(_ url: URL) throws -> String {
        try String(contentsOf: url, encoding: .utf8)
    }
}

/// The messages a fixture expects: its leading `# expect: <message>` lines.
private func expectedMessages(in text: String) -> [String] {
    var messages: [String] = []
    for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
        guard line.hasPrefix("#") else { break }
        if line.hasPrefix("# expect: ") { messages.append(String(line.dropFirst("# expect: ".count))) }
    }
    return messages
}

/// Loads `yaml`, expecting failure; returns the rendered messages.
private func errorMessages(_ yaml: String) -> [String] {
    do {
        let config = try ConfigLoader.load(yaml: yaml)
        Issue.record("expected errors, loaded \(config)")
        return []
    } catch {
        return error.messages
    }
}

@Suite struct ConfigLoaderTests {
    // MARK: invalid fixtures

    @Test func thereAreEnoughInvalidFixtures() {
        #expect(Files.yamlFiles(in: Files.invalidFixtures).count >= 30)
    }

    @Test(arguments: Files.yamlFiles(in: Files.invalidFixtures))
    func invalidFixtureReportsExactlyItsExpectedErrors(_ name: String) throws {
        let text = try Files.text(Files.invalidFixtures.appendingPathComponent(name))
        let expected = expectedMessages(in: text)
        #expect(!expected.isEmpty, "fixture \(name) has no `# expect:` lines")
        #expect(errorMessages(text) == expected)
    }

    // MARK: the error values

    @Test func errorsCarryPathMessageAndPosition() throws {
        let yaml = """
        services:
          web-1:
            http: { url: http://127.0.0.1:8081/health }
            rise: two
        """
        #expect(throws: ConfigErrors([
            ConfigError(path: "services.web-1.rise", message: "expected a whole number ≥ 1, got \"two\"",
                        line: 4, column: 11),
        ])) {
            try ConfigLoader.load(yaml: yaml)
        }
    }

    @Test func errorsAreSortedByLineAndPrintedOnePerLine() {
        let errors = ConfigErrors([
            ConfigError(path: "b", message: "second", line: 9, column: 1),
            ConfigError(path: "", message: "first", line: 2, column: 5),
            ConfigError(path: "c", message: "third", line: 9, column: 3),
        ])
        #expect(errors.description == """
        first (line 2, column 5)
        b: second (line 9, column 1)
        c: third (line 9, column 3)
        """)
    }

    @Test(arguments: ["", "\n\n", "---\n", "~\n"])
    func emptyTextIsAnError(_ yaml: String) {
        #expect(errorMessages(yaml) == ["configuration is empty (line 1, column 1)"])
    }

    @Test func duplicateKeyIsReportedWithTheOtherErrors() {
        let yaml = """
        defaults: { rise: 2, rise: 3, fall: x }
        services:
          a: { tcp: { host: h, port: 1 } }
          a: { tcp: { host: h, port: 2 } }
          b: { tcp: { host: h, port: 99999 } }
        """
        #expect(errorMessages(yaml) == [
            "defaults: duplicate key \"rise\", first at line 1 (line 1, column 22)",
            "defaults.fall: expected a whole number ≥ 1, got \"x\" (line 1, column 37)",
            "services: duplicate key \"a\", first at line 3 (line 4, column 3)",
            "services.b.tcp.port: expected a port 1-65535, got \"99999\" (line 5, column 30)",
        ])
    }

    /// Duplicates are found by renaming keys in the text and composing again;
    /// positions must still be those of the text as written.
    @Test(arguments: [
        ("services:\r\n  a: { tcp: { host: h, port: 1 } }\r\n  a: { tcp: { host: h, port: 2 } }\r\n",
         ["services: duplicate key \"a\", first at line 2 (line 3, column 3)"]),
        ("defaults: { 'rise': 2, \"rise\": 3, rise: 4, fall: x }\n",
         ["defaults: duplicate key \"rise\", first at line 1 (line 1, column 24)",
          "defaults: duplicate key \"rise\", first at line 1 (line 1, column 35)",
          "defaults.fall: expected a whole number ≥ 1, got \"x\" (line 1, column 50)"]),
        ("services: { ключ1: { tcp: { host: h, port: 1 } }, ключ1: { tcp: {} }, b: { tcp: { host: h, port: 0 } } }",
         ["services.ключ1: invalid name; use letters, digits, \".\", \"_\" and \"-\", starting with a letter or digit (line 1, column 13)",
          "services: duplicate key \"ключ1\", first at line 1 (line 1, column 51)",
          "services.b.tcp.port: expected a port 1-65535, got \"0\" (line 1, column 98)"]),
        ("services:\n  &x a: { tcp: { host: h, port: 1 } }\n  !!str a: { tcp: { host: h, port: 1 } }\n  a: {}\n",
         ["services: duplicate key \"a\", first at line 2 (line 3, column 3)",
          "services: duplicate key \"a\", first at line 2 (line 4, column 3)"]),
        ("services:\n  ? [a]\n  : 1\n  ? [a]\n  : 2\n",
         ["duplicate key (line 2, column 5)"]),
    ])
    func duplicateKeyPositions(_ yaml: String, _ expected: [String]) {
        #expect(errorMessages(yaml) == expected)
    }

    @Test(arguments: [
        ("a: b\n---\nc: d\n", "invalid YAML: expected one document, found another (line 2, column 1)"),
        ("services:\n  a: { tcp: {} }\n  a: {}\nbad: [\n",
         "invalid YAML: did not find expected node content, while parsing a flow node (line 5, column 1)"),
    ])
    func syntaxErrorIsTheOnlyError(_ yaml: String, _ expected: String) {
        #expect(errorMessages(yaml) == [expected])
    }

    /// YAML forbids tabs in indentation, and libyaml's complaint ("found
    /// character that cannot start any token") does not say so.
    @Test(arguments: [
        ("services:\n\ta: 1\n", ["services.a: a tab; YAML indents with spaces (line 2, column 1)"]),
        ("services:\n  web:\n  \ttcp: { host: h, port: 1 }\n\t\tinterval: 1s\n",
         ["services.web.tcp: a tab; YAML indents with spaces (line 3, column 3)",
          "services.web.interval: a tab; YAML indents with spaces (line 4, column 1)"]),
    ])
    func aTabInIndentationIsNamed(_ yaml: String, _ expected: [String]) {
        #expect(errorMessages(yaml) == expected)
    }

    @Test func aTabInsideAValueIsNoError() throws {
        let config = try ConfigLoader.load(yaml: "services:\n  web: { http: { url: http://h/, body_contains: \"a\\tb\" } }\nactions:\n  n:\t{ log: {} }\n")
        #expect(config.actions.map(\.name) == ["n"])
    }

    @Test func nearestSuggestionNeedsACloseMatch() {
        #expect(ConfigReader.nearest(to: "body_contain", in: ConfigReader.httpKeys) == "body_contains")
        #expect(ConfigReader.nearest(to: "Interval", in: ConfigReader.timingKeys) == "interval")
        #expect(ConfigReader.nearest(to: "tiemout", in: ConfigReader.timingKeys) == "timeout")
        #expect(ConfigReader.nearest(to: "colour", in: ConfigReader.httpKeys) == nil)
        #expect(ConfigReader.editDistance("kitten", "sitting") == 3)
        #expect(ConfigReader.editDistance("ab", "ba") == 1)
    }

    // MARK: valid configs

    @Test func exampleConfigLoads() throws {
        let config = try ConfigLoader.load(yaml: Files.text(Files.exampleConfig))

        #expect(config.agent.listen == [ListenAddress(host: "127.0.0.1", port: 9310)])
        #expect(config.agent.stateDir == "./.vitals")
        #expect(config.agent.tokenFile == "./.vitals/token")
        #expect(config.agent.logLevel == .info)
        #expect(config.agent.allowGetHeartbeats == false)

        #expect(config.defaults.interval == .seconds(1))
        #expect(config.defaults.timeout == .milliseconds(500))
        #expect(config.defaults.fallWindow == FallWindow(failures: 3, probes: 5))
        #expect(config.defaults.flapping == FlapPolicy(changes: 5, window: .seconds(120), settle: .seconds(120)))

        // File order is kept.
        #expect(config.services.map(\.name) == ["web-1", "web-2", "db", "cache", "disk", "nightly-backup"])
        #expect(config.groups.map(\.name) == ["web", "caches"])
        #expect(config.actions.map(\.name) == ["promote", "notify", "log-it", "mail-ops", "slack"])

        let web1 = try #require(config.service(named: "web-1"))
        guard case .http(let http) = web1.check else {
            Issue.record("web-1 is not an http check: \(web1.check)")
            return
        }
        #expect(http.url == "http://127.0.0.1:8081/health")
        #expect(http.headers == [HTTPHeaderField(name: "X-Probe", value: "vitals")])
        #expect(http.status == [StatusRange(200, 299)])
        #expect(http.bodyRegex == "^ok")
        #expect(http.json == [JSONExpectation(path: "status", expected: .string("UP"))])
        #expect(http.maxLatency == .milliseconds(300))
        #expect(http.slowLatency == .milliseconds(100))
        #expect(http.certMinDays == 14)
        #expect(http.maxBodyBytes == 65_536)
        #expect(web1.dependsOn == ["db"])
        #expect(web1.timing == config.defaults)

        // Defaults fill what a service leaves out; a service's own keys win.
        let web2 = try #require(config.service(named: "web-2"))
        #expect(web2.check == .http(HTTPCheck(url: "http://127.0.0.1:8082/health")))
        let db = try #require(config.service(named: "db"))
        #expect(db.check == .tcp(TCPCheck(host: "127.0.0.1", port: 5432)))
        #expect(db.timing.interval == .seconds(2))
        #expect(db.timing.rise == 1)
        #expect(db.timing.fall == config.defaults.fall)
        #expect(db.timing.fastInterval == .milliseconds(250))

        let disk = try #require(config.service(named: "disk"))
        #expect(disk.check == .exec(ExecCheck(argv: ["./scripts/check-disk.sh", "-w", "20%", "-c", "10%", "/"])))
        #expect(disk.timing.timeout == .seconds(10))
        let backup = try #require(config.service(named: "nightly-backup"))
        #expect(backup.check == .heartbeat(HeartbeatCheck(
            runs: .schedule(try CronSchedule.parse("0 3 * * *"), timeZone: TimeZone(identifier: "Europe/Berlin")!),
            grace: .seconds(1800), maxRuntime: .seconds(7200))))

        let web = try #require(config.group(named: "web"))
        #expect(web.mode == .activePassive(failback: .manual, failbackDelay: .seconds(30)))
        #expect(web.members == ["web-1", "web-2"])
        #expect(web.onMove == ["promote"])
        #expect(web.on[.failover] == ["notify"])
        #expect(web.on[.groupDown] == ["notify", "log-it"])
        #expect(web.maxFailovers == 3)
        #expect(web.failoverWindow == .seconds(600))
        let caches = try #require(config.group(named: "caches"))
        #expect(caches.mode == .activeActive(minHealthy: 1))
        #expect(caches.onAny == ["log-it"])
        #expect(db.on == [.state(.down): ["notify"], .state(.up): ["notify"]])
        #expect(backup.on == [.missed: ["notify"], .failed: ["notify"]])

        #expect(config.action(named: "promote")?.kind == .exec(argv: ["./scripts/promote.sh"], env: [:]))
        let notify = try #require(config.action(named: "notify"))
        #expect(notify.kind == .webhook(.to("http://127.0.0.1:9999/hooks/vitals", method: "POST", body: nil,
                                        headers: [HTTPHeaderField(name: "X-Source", value: "vitals")])))
        #expect(notify.retries == 2)
        #expect(notify.timeout == .seconds(30))
        #expect(config.action(named: "log-it")?.kind == .log)
    }

    @Test func flowAndBlockStyleLoadTheSame() throws {
        let block = try ConfigLoader.load(yaml: Files.text(Files.validFixtures.appendingPathComponent("block.yaml")))
        let flow = try ConfigLoader.load(yaml: Files.text(Files.validFixtures.appendingPathComponent("flow.yaml")))
        #expect(block == flow)
        #expect(block.services.count == 4)
    }

    @Test(arguments: Files.yamlFiles(in: Files.validFixtures))
    func validFixtureLoads(_ name: String) throws {
        let text = try Files.text(Files.validFixtures.appendingPathComponent(name))
        #expect(throws: Never.self) { try ConfigLoader.load(yaml: text) }
    }

    @Test func listenAcceptsAListWithIPv6() throws {
        let config = try ConfigLoader.load(yaml: """
        agent:
          listen: [127.0.0.1:9310, "[::1]:9310"]
        """)
        #expect(config.agent.listen == [
            ListenAddress(host: "127.0.0.1", port: 9310),
            ListenAddress(host: "::1", port: 9310),
        ])
        #expect(config.agent.listen.map(\.description) == ["127.0.0.1:9310", "[::1]:9310"])
    }

    @Test func minimalConfigTakesEveryDefault() throws {
        let config = try ConfigLoader.load(yaml: """
        services:
          web: { http: { url: https://example.com/ } }
        groups:
          g: { members: [web] }
        """)
        #expect(config.agent == AgentSettings())
        #expect(config.defaults == ProbeTiming())
        #expect(config.services == [ServiceConfig(name: "web", check: .http(HTTPCheck(url: "https://example.com/")))])
        #expect(config.groups == [GroupConfig(name: "g", mode: .activePassive(failback: .manual,
                                                                              failbackDelay: .seconds(10)),
                                              members: ["web"])])
    }

    @Test func heartbeatScheduleTimeZoneMaxRuntimeAndKeyFile() throws {
        let config = try ConfigLoader.load(yaml: """
            services:
              backup:
                heartbeat: { schedule: "0 3 * * mon-fri", tz: America/New_York, grace: 30m, max_runtime: 2h,
                             key_file: /etc/vitals/backup.key }
              sweep: { heartbeat: { schedule: "@hourly" } }
            """)
        let backup = try #require(config.service(named: "backup"))
        #expect(backup.check == .heartbeat(HeartbeatCheck(
            runs: .schedule(try CronSchedule.parse("0 3 * * mon-fri"), timeZone: TimeZone(identifier: "America/New_York")!),
            grace: .seconds(1800), maxRuntime: .seconds(7200), keyFile: "/etc/vitals/backup.key")))
        // Without tz, the agent's own zone, as cron's.
        let sweep = try #require(config.service(named: "sweep"))
        #expect(sweep.check == .heartbeat(HeartbeatCheck(runs: .schedule(try CronSchedule.parse("@hourly"), timeZone: .current))))
    }

    @Test func tokenFileDefaultsUnderStateDir() throws {
        let config = try ConfigLoader.load(yaml: "agent: { state_dir: /var/lib/vitals }")
        #expect(config.agent.tokenFile == "/var/lib/vitals/token")
    }

    @Test func serviceOverridesStartFromOverriddenDefaults() throws {
        let config = try ConfigLoader.load(yaml: """
        defaults:
          rise: 4
          flapping: { changes: 7 }
        services:
          a:
            tcp: { host: 127.0.0.1, port: 1 }
            fall: 9
            flapping: { window: 5m }
        """)
        let timing = try #require(config.service(named: "a")).timing
        #expect(timing.rise == 4)
        #expect(timing.fall == 9)
        #expect(timing.flapping == FlapPolicy(changes: 7, window: .seconds(300), settle: .seconds(120)))
    }

    @Test func statusAndJSONScalars() throws {
        let config = try ConfigLoader.load(yaml: """
        services:
          a:
            http:
              url: http://127.0.0.1:1/
              status: 204
              json: { up: true, count: 3, ratio: 0.5, name: "3", gone: null, word: UP }
          b: { http: { url: http://127.0.0.1:2/, status: "200-204", method: head, max_body: 1MiB } }
        """)
        guard case .http(let a) = config.services[0].check, case .http(let b) = config.services[1].check else {
            Issue.record("expected http checks")
            return
        }
        #expect(a.status == [StatusRange(204)])
        #expect(a.json.map(\.expected) == [.bool(true), .number(3), .number(0.5), .string("3"), .null, .string("UP")])
        #expect(b.status == [StatusRange(200, 204)])
        #expect(b.method == "HEAD")
        #expect(b.maxBodyBytes == 1 << 20)
    }

    @Test func relativeProgramPathsResolveAgainstTheConfigDirectory() throws {
        let config = try ConfigLoader.load(yaml: """
        services:
          disk: { exec: [./scripts/check-disk.sh, -w, ./not-a-program] }
          plain: { exec: [check_disk] }
          nested: { exec: { argv: [plugins/check.sh] } }
          absolute: { exec: [/usr/lib/nagios/check_ping] }
        actions:
          promote: { exec: [../bin/promote.sh] }
        """, baseDirectory: "/etc/vitals")
        #expect(config.services.map { service -> String in
            guard case .exec(let exec) = service.check else { return "" }
            return exec.argv.joined(separator: " ")
        } == ["/etc/vitals/scripts/check-disk.sh -w ./not-a-program", "check_disk", "/etc/vitals/plugins/check.sh",
              "/usr/lib/nagios/check_ping"])
        #expect(config.actions.first?.kind == .exec(argv: ["/etc/vitals/../bin/promote.sh"], env: [:]))
    }

    @Test func execMappingFormAndLogTrue() throws {
        let config = try ConfigLoader.load(yaml: """
        services:
          disk: { exec: { argv: [/bin/check, -x], env: { LANG: C } } }
        actions:
          run: { exec: { argv: [./go.sh], env: { MODE: fast } }, timeout: 5s }
          log-true: { log: true }
        """)
        #expect(config.services[0].check == .exec(ExecCheck(argv: ["/bin/check", "-x"], env: ["LANG": "C"])))
        #expect(config.actions[0] == ActionConfig(name: "run", kind: .exec(argv: ["./go.sh"], env: ["MODE": "fast"]),
                                                  timeout: .seconds(5)))
        #expect(config.actions[1].kind == .log)
    }
}

extension ConfigLoaderTests {
    @Test func isolationSettleAndTheShareRuleMinimum() throws {
        let services = """
            services:
              web-1: { tcp: { host: 127.0.0.1, port: 8081 }, interval: 2s, jitter: 500ms }
              web-2: { tcp: { host: 127.0.0.1, port: 8082 } }
              gw: { tcp: { host: 127.0.0.1, port: 1 } }
            """
        let defaults = try ConfigLoader.load(yaml: services)
        #expect(defaults.agent.isolation.settle == nil)
        // Three probed services and no witness: the guard cannot isolate, so nothing waits.
        #expect(FailoverCoordinator.settle(for: defaults) == .zero)

        let witnessed = try ConfigLoader.load(yaml: "agent: { isolation: { share: 50%, witness: gw } }\n" + services)
        #expect(FailoverCoordinator.settle(for: witnessed) == .milliseconds(2500), "longest interval + jitter")

        let atOnce = try ConfigLoader.load(yaml: "agent: { isolation: { witness: gw, settle: 0s } }\n" + services)
        #expect(atOnce.agent.isolation.settle == .zero)
        #expect(FailoverCoordinator.settle(for: atOnce) == .zero)
    }
}
