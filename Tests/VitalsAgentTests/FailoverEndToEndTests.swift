import Foundation
import Testing
import VitalsProbe
import VitalsTestKit

/// Failover and restarts with the real binary, real backends on loopback,
/// real scripts and a real journal on disk.
@Suite(.serialized) struct FailoverEndToEndTests {
    /// Two backends, an active-passive group and a promote script that
    /// writes its environment and stdin next to the config.
    struct Setup {
        let dir: URL
        let config: URL
        let primary: Backend
        let backup: Backend

        init(interval: String = "200ms", fall: Int = 2, timeout: String = "300ms", extra: String = "",
             on: String = "{ failover: [promote] }", actions: String = "", script scriptPath: String? = nil) throws {
            dir = try makeTemporaryDirectory()
            primary = try Backend()
            backup = try Backend()
            let script = dir.appendingPathComponent("promote.sh")
            try """
            #!/bin/sh
            out="$(dirname "$0")/promote-$VITALS_EVENT_ID"
            env | grep '^VITALS_' | sort > "$out.env.tmp"
            cat > "$out.json"
            mv "$out.env.tmp" "$out.env"
            """.write(to: script, atomically: true, encoding: .utf8)
            chmod(script.path, 0o755)
            config = dir.appendingPathComponent("vitals.yaml")
            try """
            agent: { listen: 127.0.0.1:0, state_dir: \(dir.path)/state }
            defaults: { interval: \(interval), timeout: \(timeout), rise: 2, fall: \(fall), jitter: 0ms, fast_interval: 100ms }
            services:
              web-1: { http: { url: "http://127.0.0.1:\(primary.port)/health" } }
              web-2: { http: { url: "http://127.0.0.1:\(backup.port)/health" } }
            \(extra)
            groups:
              web:
                members: [web-1, web-2]
                failback: manual
                cooldown: 0s
                on: \(on)
            actions:
              promote: { exec: [\(scriptPath ?? script.path)], timeout: 5s }
            \(actions)
            """.write(to: config, atomically: true, encoding: .utf8)
        }

        func stop() {
            primary.stop()
            backup.stop()
            try? FileManager.default.removeItem(at: dir)
        }

        /// The files the promote script wrote, by event id.
        var promotions: [String] {
            ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? [])
                .filter { $0.hasPrefix("promote-") && $0.hasSuffix(".env") }.sorted()
        }

        /// The bearer token the agent wrote on its first start.
        func token() throws -> String {
            try String(contentsOfFile: dir.path + "/state/token", encoding: .utf8)
                .trimmingCharacters(in: .whitespacesAndNewlines)
        }

        /// The VITALS_* variables of each promote run, in event order.
        var promotionEnvironments: [[String: String]] {
            promotions.compactMap { name in
                guard let text = try? String(contentsOfFile: dir.path + "/" + name, encoding: .utf8) else { return nil }
                var vars: [String: String] = [:]
                for line in text.split(separator: "\n") {
                    guard let eq = line.firstIndex(of: "=") else { continue }
                    vars[String(line[..<eq])] = String(line[line.index(after: eq)...])
                }
                return vars
            }.sorted { Int($0["VITALS_EVENT_ID"] ?? "") ?? 0 < Int($1["VITALS_EVENT_ID"] ?? "") ?? 0 }
        }

        /// Waits until the promote script has run for an event of `kind`.
        func waitForPromotion(_ kind: String, timeout: Double = 10) -> [String: String]? {
            let deadline = Date().addingTimeInterval(timeout)
            while Date() < deadline {
                if let found = promotionEnvironments.first(where: { $0["VITALS_EVENT"] == kind }) { return found }
                usleep(10_000)
            }
            return nil
        }

        func journal() throws -> [[String: Any]] {
            let text = try String(contentsOfFile: dir.path + "/state/events.jsonl", encoding: .utf8)
            return try text.split(separator: "\n").map {
                try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
            }
        }
    }

    @Test func primaryDiesAndThePromoteScriptRunsWithTheEvent() throws {
        let setup = try Setup()
        defer { setup.stop() }
        let agent = try AgentProcess(config: setup.config, directory: setup.dir)
        try agent.waitForLine(containing: "group web: activated")

        let killedAt = Date()
        setup.primary.stop()
        try agent.waitForLine(containing: "group web: failover web-1 → web-2")
        let deadline = Date().addingTimeInterval(10)
        while setup.promotions.isEmpty && Date() < deadline { usleep(5_000) }
        let elapsed = Date().timeIntervalSince(killedAt) * 1000
        let promotion = try #require(setup.promotions.first, "the promote script did not run")
        // interval × fall + timeout + 100 ms: 200 × 2 + 300 + 100
        print("failover: promote script ran \(Int(elapsed)) ms after the primary stopped (interval×fall+timeout+100ms = 800 ms)")

        let env = try String(contentsOfFile: setup.dir.path + "/" + promotion, encoding: .utf8)
        let vars = Dictionary(uniqueKeysWithValues: env.split(separator: "\n").compactMap { line -> (String, String)? in
            guard let eq = line.firstIndex(of: "=") else { return nil }
            return (String(line[..<eq]), String(line[line.index(after: eq)...]))
        })
        #expect(vars["VITALS_EVENT"] == "failover")
        #expect(vars["VITALS_GROUP"] == "web")
        #expect(vars["VITALS_FROM"] == "web-1")
        #expect(vars["VITALS_TO"] == "web-2")
        #expect(vars["VITALS_REASON"]?.contains("web-1") == true)
        #expect(vars["VITALS_EVENT_ID"].flatMap(UInt64.init) != nil)
        #expect(vars["VITALS_TIME"]?.hasSuffix("Z") == true)
        let id = try #require(vars["VITALS_EVENT_ID"])
        let stdin = try JSONSerialization.jsonObject(with: Data(contentsOf: setup.dir.appendingPathComponent("promote-\(id).json"))) as? [String: Any]
        #expect(stdin?["kind"] as? String == "failover")
        #expect(stdin?["to"] as? String == "web-2")
        try agent.waitForLine(containing: "action promote (exec) for event \(id) failover: ok")
        #expect(agent.stop() == 0)

        // The journal holds the decision before its result.
        let journal = try setup.journal()
        let decision = journal.firstIndex { ($0["event"] as? [String: Any])?["kind"] as? String == "failover" }
        let result = journal.firstIndex { ($0["action"] as? [String: Any])?["action"] as? String == "promote" }
        #expect(decision != nil && result != nil && decision! < result!)
    }

    @Test func aDryRunDecidesAndLogsButRunsNoAction() throws {
        let setup = try Setup()
        defer { setup.stop() }
        let agent = try AgentProcess(config: setup.config, extraArgs: ["--dry-run", "--log-format", "json"],
                                     directory: setup.dir)
        try agent.waitForLine(containing: "dry run: no action will run")
        try agent.waitForLine(containing: "group web: activated")
        setup.primary.stop()
        try agent.waitForLine(containing: "group web: failover web-1 → web-2")
        let skipped = try agent.waitForLine(containing: "action promote (exec)")
        #expect(skipped.contains("skipped (dry run)"))
        // Skipping is what a dry run is for: not an error.
        let record = try JSONSerialization.jsonObject(with: Data(skipped.utf8)) as? [String: Any]
        #expect(record?["level"] as? String == "notice")
        #expect(setup.promotions.isEmpty, "the script did not run")
        // --log-format json: every line is one JSON object with time, level and message.
        for line in agent.output {
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            #expect(object?["time"] is String && object?["level"] is String && object?["message"] is String, "\(line)")
        }
        #expect(agent.stop() == 0)
    }

    /// keepalived's notify_master runs on every change of master, whatever its
    /// cause: `move` runs on each change of the active member, not only failovers.
    @Test func everyChangeOfTheActiveMemberRunsTheMoveActions() throws {
        let setup = try Setup(on: "{ move: [promote] }")
        defer { setup.stop() }
        let agent = try AgentProcess(config: setup.config, directory: setup.dir)
        let base = try agent.baseURL()
        let token = try setup.token()
        try agent.waitForLine(containing: "group web: activated")
        #expect(setup.waitForPromotion("activated")?["VITALS_TO"] == "web-1", "the first choice places the VIP too")
        try agent.waitForLine(containing: "web-2: unknown → up")

        let auth = ["Authorization": "Bearer \(token)"]
        let switched = try HTTPFetch.request("POST", url: base + "/v1/groups/web/switchover", headers: auth,
                                             body: Array(#"{"to":"web-2"}"#.utf8)).get()
        #expect(switched.status == 200, "\(switched.text)")
        let switchover = setup.waitForPromotion("switchover")
        #expect(switchover?["VITALS_FROM"] == "web-1")
        #expect(switchover?["VITALS_TO"] == "web-2")

        // Maintenance on the active member moves it back: a failover, also a move.
        let maintenance = try HTTPFetch.request("POST", url: base + "/v1/services/web-2/maintenance", headers: auth,
                                                body: Array(#"{"reason":"kernel update"}"#.utf8)).get()
        #expect(maintenance.status == 200, "\(maintenance.text)")
        let failover = setup.waitForPromotion("failover")
        #expect(failover?["VITALS_FROM"] == "web-2")
        #expect(failover?["VITALS_TO"] == "web-1")
        #expect(agent.stop() == 0)
    }

    /// Monit's `if failed ... then alert`: a missed cron heartbeat and a
    /// group event nobody listed by kind still reach the notifier.
    @Test func servicesAndCatchAllListsReachSomeone() throws {
        let setup = try Setup(extra: "  job: { heartbeat: { every: 500ms }, on: { missed: [note] } }",
                              on: "{ any: [note] }", actions: "  note: { log: {} }")
        defer { setup.stop() }
        let agent = try AgentProcess(config: setup.config, directory: setup.dir)
        let activated = try agent.waitForLine(containing: "group web: activated")
        let groupEvent = try #require(activated.range(of: "event=").map { activated[$0.upperBound...].prefix { $0.isNumber } })
        try agent.waitForLine(containing: "action note (log) for event \(groupEvent) activated: ok")
        let missed = try agent.waitForLine(containing: "job: unknown → down")
        let jobEvent = try #require(missed.range(of: "event=").map { missed[$0.upperBound...].prefix { $0.isNumber } })
        try agent.waitForLine(containing: "action note (log) for event \(jobEvent) state_change: ok")
        #expect(agent.stop() == 0)
    }

    /// A relative `exec:` path is the config file's neighbour, wherever the agent was started.
    @Test func aRelativeScriptPathIsFoundBesideTheConfig() throws {
        let setup = try Setup(script: "./promote.sh")
        defer { setup.stop() }
        let elsewhere = setup.dir.appendingPathComponent("elsewhere")
        try FileManager.default.createDirectory(at: elsewhere, withIntermediateDirectories: true)
        let agent = try AgentProcess(config: setup.config, directory: elsewhere)
        try agent.waitForLine(containing: "group web: activated")
        setup.primary.stop()
        try agent.waitForLine(containing: "group web: failover web-1 → web-2")
        #expect(setup.waitForPromotion("failover")?["VITALS_TO"] == "web-2")
        #expect(agent.stop() == 0)
    }

    @Test func aRestartAfterAFailoverKeepsTheActiveMemberAndDoesNotActAgain() throws {
        let setup = try Setup()
        defer { setup.stop() }
        var agent = try AgentProcess(config: setup.config, directory: setup.dir)
        try agent.waitForLine(containing: "group web: activated")
        setup.primary.answer(503)
        try agent.waitForLine(containing: "group web: failover web-1 → web-2")
        try agent.waitForLine(containing: "action promote (exec)")
        kill(agent.process.processIdentifier, SIGKILL)
        agent.process.waitUntilExit()

        // The primary is healthy again; failback is manual: web-2 stays active.
        setup.primary.answer(200)
        agent = try AgentProcess(config: setup.config, directory: setup.dir)
        let base = try agent.baseURL()
        // web-1 recovered while the agent was down: reported from its last known state.
        let recovered = try agent.waitForLine(containing: "web-1: down → up")
        #expect(recovered.contains("changed while the agent was not running"))
        try agent.waitForLine(containing: "web-2: unknown → up")
        let group = try JSONSerialization.jsonObject(with: Data(fetch(base + "/v1/groups/web").utf8)) as? [String: Any]
        #expect(group?["active_member"] as? String == "web-2")
        #expect(agent.stop() == 0)
        #expect(!agent.output.contains { $0.contains("failover") && $0.contains("group web") })
        #expect(setup.promotions.count == 1, "the promote script ran once, before the restart")
        let failovers = try setup.journal().filter { ($0["event"] as? [String: Any])?["kind"] as? String == "failover" }
        #expect(failovers.count == 1)
    }

    @Test func aKillDuringABurstLosesNoLoggedEvent() throws {
        let setup = try Setup(extra: "  job: { heartbeat: { every: 1h } }")
        defer { setup.stop() }
        let agent = try AgentProcess(config: setup.config, directory: setup.dir)
        let base = try agent.baseURL()
        let token = try setup.token()
        // Every beat flips the job between up and down: one event each.
        let hammer = Thread {
            for i in 0..<400 {
                _ = HTTPFetch.request("POST", url: base + "/v1/heartbeat/job/\(i % 2)",
                                      headers: ["Authorization": "Bearer \(token)"], timeout: .seconds(1))
            }
        }
        hammer.start()
        try agent.waitForLine(containing: "job: down → up", timeout: 20)
        usleep(100_000)
        kill(agent.process.processIdentifier, SIGKILL)
        agent.process.waitUntilExit()

        // A line is logged only after its event is on disk.
        let logged = Set(agent.output.compactMap { line -> UInt64? in
            guard line.contains("job: "), let range = line.range(of: "event=") else { return nil }
            return UInt64(line[range.upperBound...].prefix { $0.isNumber })
        })
        #expect(logged.count > 5)
        let journaled = Set(try setup.journal().compactMap { ($0["event"] as? [String: Any])?["id"] as? Int }.map(UInt64.init))
        #expect(logged.subtracting(journaled).isEmpty, "logged but not journaled: \(logged.subtracting(journaled).sorted())")
    }

    @Test func aHeartbeatDeadlineIsCarriedOverARestart() throws {
        let setup = try Setup(extra: "  job: { heartbeat: { every: 1h, grace: 10m } }")
        defer { setup.stop() }
        var agent = try AgentProcess(config: setup.config, directory: setup.dir)
        var base = try agent.baseURL()
        let token = try setup.token()
        let beat = try HTTPFetch.request("POST", url: base + "/v1/heartbeat/job", headers: ["Authorization": "Bearer \(token)"]).get()
        let deadline = try #require(try JSONSerialization.jsonObject(with: Data(beat.body)) as? [String: Any])["deadline"] as? String
        try agent.waitForLine(containing: "job: unknown → up")
        #expect(agent.stop() == 0)

        agent = try AgentProcess(config: setup.config, directory: setup.dir)
        base = try agent.baseURL()
        let status = try JSONSerialization.jsonObject(with: Data(fetch(base + "/v1/services/job").utf8)) as? [String: Any]
        let heartbeat = status?["heartbeat"] as? [String: Any]
        #expect(heartbeat?["deadline"] as? String == deadline)
        #expect(heartbeat?["last_beat"] != nil)
        #expect(agent.stop() == 0)
    }

    @Test func aBrokenReloadKeepsTheOldConfigAndSaysWhy() throws {
        let setup = try Setup()
        defer { setup.stop() }
        let agent = try AgentProcess(config: setup.config, directory: setup.dir)
        let base = try agent.baseURL()
        let token = try setup.token()
        try agent.waitForLine(containing: "group web: activated")
        let good = try String(contentsOf: setup.config, encoding: .utf8)

        try (good + "\nbogus: 1\n").write(to: setup.config, atomically: true, encoding: .utf8)
        let refused = try HTTPFetch.request("POST", url: base + "/v1/reload", headers: ["Authorization": "Bearer \(token)"]).get()
        #expect(refused.status == 422)
        #expect(refused.text.contains("bogus: unknown key"))
        // The API's refusal is logged too; SIGHUP's is the next one.
        let refusedText = "reload refused; still running the previous configuration"
        try agent.waitForLine(containing: refusedText)
        let logged = agent.output.count
        kill(agent.process.processIdentifier, SIGHUP)
        // One record, one line: the errors are on it, not on lines of their own.
        let refusedLine = try agent.waitForLine(containing: refusedText, after: logged)
        #expect(refusedLine.contains("bogus: unknown key"), "\(refusedLine)")
        #expect(agent.output.allSatisfy { $0.hasPrefix("20") }, "every line starts with its time: \(agent.output)")
        // Both refusals are events, with the reasons.
        let events = try JSONSerialization.jsonObject(with: Data(fetch(base + "/v1/events").utf8)) as? [String: Any]
        let refusals = (events?["events"] as? [[String: Any]] ?? []).filter { $0["kind"] as? String == "reload_refused" }
        #expect(refusals.count == 2)
        #expect((refusals.first?["reason"] as? String)?.contains("bogus: unknown key") == true)
        #expect(try fetch(base + "/v1/groups/web").contains(#""active_member":"web-2""#) == false)
        #expect(try fetch(base + "/v1/services/web-1").contains(#""state":"up""#))

        try good.replacingOccurrences(of: "  web-2:", with: "  extra: { tcp: { host: 127.0.0.1, port: \(setup.backup.port) } }\n  web-2:")
            .write(to: setup.config, atomically: true, encoding: .utf8)
        let accepted = try HTTPFetch.request("POST", url: base + "/v1/reload", headers: ["Authorization": "Bearer \(token)"]).get()
        #expect(accepted.status == 200)
        #expect(accepted.text.contains(#""added":["extra"]"#))
        try agent.waitForLine(containing: "extra: unknown → up")
        // What existed before keeps its state: no new transition for web-1.
        #expect(agent.output.filter { $0.contains("web-1: unknown → up") }.count == 1)

        // Groups and actions are reported too, not only services.
        let retuned = try String(contentsOf: setup.config, encoding: .utf8)
            .replacingOccurrences(of: "cooldown: 0s", with: "cooldown: 5s")
            .replacingOccurrences(of: "timeout: 5s }", with: "timeout: 7s }")
        try retuned.write(to: setup.config, atomically: true, encoding: .utf8)
        let tuned = try HTTPFetch.request("POST", url: base + "/v1/reload", headers: ["Authorization": "Bearer \(token)"]).get()
        #expect(tuned.status == 200)
        let answer = try JSONSerialization.jsonObject(with: Data(tuned.body)) as? [String: Any]
        #expect(answer?["unchanged"] as? Int == 3)
        #expect((answer?["groups"] as? [String: Any])?["changed"] as? [String] == ["web"])
        #expect((answer?["actions"] as? [String: Any])?["changed"] as? [String] == ["promote"])
        #expect((answer?["actions"] as? [String: Any])?["unchanged"] as? Int == 0)
        #expect(agent.stop() == 0)
    }

    /// Reading and parsing the file happens off the status server's loop:
    /// with the config turned into a FIFO that nobody writes yet, the reload
    /// waits, and the status is still served; then the file arrives.
    @Test func aReloadReadsTheFileOffTheStatusServersLoop() throws {
        let setup = try Setup()
        defer { setup.stop() }
        let agent = try AgentProcess(config: setup.config, directory: setup.dir)
        let base = try agent.baseURL()
        let token = try String(contentsOfFile: setup.dir.path + "/state/token", encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        try agent.waitForLine(containing: "group web: activated")
        let good = try String(contentsOf: setup.config, encoding: .utf8)
        try FileManager.default.removeItem(at: setup.config)
        #expect(mkfifo(setup.config.path, 0o600) == 0)

        let reload = Locked<Result<HTTPFetch.Response, HTTPFetch.Failure>?>(nil)
        let posted = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            let answer = HTTPFetch.request("POST", url: base + "/v1/reload",
                                           headers: ["Authorization": "Bearer \(token)"], timeout: .seconds(20))
            reload.withLock { $0 = answer }
            posted.signal()
        }
        // The reload now waits for the FIFO's writer; reads do not wait for it.
        for _ in 0..<5 {
            let status = try HTTPFetch.request(url: base + "/v1/status", timeout: .seconds(2)).get()
            #expect(status.status == 200)
        }
        #expect(reload.withLock { $0 } == nil, "the reload is still waiting for its file")

        // The agent is the FIFO's reader now: a non-blocking open for writing
        // succeeds once it is (ENXIO until then); bounded, so a reload that
        // never reads fails the test instead of hanging it.
        var fd: Int32 = -1
        for _ in 0..<200 where fd < 0 {
            fd = open(setup.config.path, O_WRONLY | O_NONBLOCK)
            if fd < 0 { usleep(50_000) }
        }
        try #require(fd >= 0, "the reload never opened its file")
        let writer = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
        writer.write(Data(good.utf8))
        try writer.close()
        #expect(posted.wait(timeout: .now() + 20) == .success)
        let answer = try #require(reload.withLock { $0 }).get()
        #expect(answer.status == 200)
        #expect(answer.text.contains(#""reloaded":true"#))
        #expect(agent.stop() == 0)
    }

    @Test func aSecondAgentOnTheSameStateDirectoryRefuses() throws {
        let setup = try Setup()
        defer { setup.stop() }
        let agent = try AgentProcess(config: setup.config, directory: setup.dir)
        _ = try agent.baseURL()
        let second = try VitalsBinary.run(["run", "-c", setup.config.path])
        #expect(second.status == 1)
        #expect(second.err.contains("is in use by another vitals (pid \(agent.process.processIdentifier))"))
        #expect(agent.stop() == 0)
    }

    /// Whether this process can mount a tmpfs (root, outside a locked-down
    /// container): tried once, on a scratch folder, before the test runs.
    static let canMountTmpfs: Bool = {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vitals-tmpfs-\(UUID().uuidString)").path
        guard (try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)) != nil else { return false }
        defer { try? FileManager.default.removeItem(atPath: dir) }
        guard run("/bin/mount", ["-t", "tmpfs", "-o", "size=64k", "vitals-test", dir]) == 0 else { return false }
        _ = run("/bin/umount", [dir])
        return true
    }()

    @Test(.enabled(if: canMountTmpfs,
                   "cannot mount a tmpfs here (needs root); the fake-disk tests in StoreJournalTests cover write failures"))
    func aFullDiskDegradesButProbingGoesOn() throws {
        let setup = try Setup(extra: "  job: { heartbeat: { every: 1h } }")
        defer { setup.stop() }
        let state = setup.dir.appendingPathComponent("state").path
        try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true)
        // A real full disk: permission bits do not stop root, a tmpfs does.
        try #require(Self.run("/bin/mount", ["-t", "tmpfs", "-o", "size=512k,mode=0700", "vitals-test", state]) == 0)
        defer { _ = Self.run("/bin/umount", ["-l", state]) }
        let agent = try AgentProcess(config: setup.config, directory: setup.dir)
        let base = try agent.baseURL()
        let token = try String(contentsOfFile: state + "/token", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        try agent.waitForLine(containing: "group web: activated")
        let filler = state + "/filler"
        _ = Self.run("/bin/dd", ["if=/dev/zero", "of=\(filler)", "bs=16k"])  // until the disk is full
        #expect(FileManager.default.fileExists(atPath: filler))

        let beat = try HTTPFetch.request("POST", url: base + "/v1/heartbeat/job", headers: ["Authorization": "Bearer \(token)"]).get()
        #expect(beat.status == 200, "the API goes on")
        try agent.waitForLine(containing: "job: unknown → up")
        var healthz = ""
        for _ in 0..<100 where !healthz.contains("degraded") {
            healthz = try fetch(base + "/healthz")
            usleep(20_000)
        }
        #expect(healthz.contains(#""status":"degraded""#))
        #expect(healthz.contains("No space left on device"))
        #expect(try fetch(base + "/v1/status").contains(#""degraded":true"#))
        #expect(try fetch(base + "/v1/services/web-1").contains(#""state":"up""#), "probing goes on")

        try FileManager.default.removeItem(atPath: filler)
        for _ in 0..<100 where healthz.contains("degraded") {
            healthz = try fetch(base + "/healthz")
            usleep(20_000)
        }
        #expect(healthz.contains(#""status":"ok""#), "writing resumed")
        #expect(agent.stop() == 0)
        let journal = try String(contentsOfFile: state + "/events.jsonl", encoding: .utf8)
        #expect(journal.contains(#""service":"job""#), "the event that waited reached the disk")
    }

    /// A command is answered only once it is journaled: kill -9 right after
    /// the answer loses none of a switchover, a hold or a maintenance, and
    /// the move's action is not run a second time after the restart.
    @Test func commandsAcknowledgedJustBeforeKill9Survive() throws {
        let setup = try Setup(on: "{ move: [promote] }")
        defer { setup.stop() }
        var agent = try AgentProcess(config: setup.config, directory: setup.dir)
        var base = try agent.baseURL()
        try agent.waitForLine(containing: "group web: activated")
        try agent.waitForLine(containing: "web-2: unknown → up")
        let auth = ["Authorization": "Bearer \(try setup.token())"]
        func killAndRestart() throws {
            kill(agent.process.processIdentifier, SIGKILL)
            agent.process.waitUntilExit()
            agent = try AgentProcess(config: setup.config, directory: setup.dir)
            base = try agent.baseURL()
            try agent.waitForLine(containing: "started:")
        }
        func json(_ path: String) throws -> [String: Any] {
            try #require(try JSONSerialization.jsonObject(with: Data(fetch(base + path).utf8)) as? [String: Any])
        }

        let switched = try HTTPFetch.request("POST", url: base + "/v1/groups/web/switchover", headers: auth,
                                             body: Array(#"{"to":"web-2"}"#.utf8)).get()
        #expect(switched.status == 200)
        let promotedBefore = setup.promotions.count
        try killAndRestart()
        #expect(try json("/v1/groups/web")["active_member"] as? String == "web-2", "the switchover survived")
        // Once both members are decided again, nothing moved: no promote ran for a second choice.
        try agent.waitForLine(containing: "web-1: unknown → up")
        try agent.waitForLine(containing: "web-2: unknown → up")
        #expect(try json("/v1/groups/web")["active_member"] as? String == "web-2")
        #expect(setup.promotions.count <= promotedBefore + 1, "at most the switchover's own run, before the kill")

        let held = try HTTPFetch.request("POST", url: base + "/v1/groups/web/hold", headers: auth,
                                         body: Array(#"{"reason":"db migration"}"#.utf8)).get()
        #expect(held.status == 200)
        try killAndRestart()
        let group = try json("/v1/groups/web")
        #expect(group["held"] as? Bool == true)
        #expect((group["hold"] as? [String: Any])?["reason"] as? String == "db migration")

        let maintained = try HTTPFetch.request("POST", url: base + "/v1/services/web-1/maintenance", headers: auth,
                                               body: Array(#"{"reason":"kernel","for":"30m"}"#.utf8)).get()
        #expect(maintained.status == 200)
        try killAndRestart()
        let service = try json("/v1/services/web-1")
        #expect(service["state"] as? String == "maintenance")
        #expect(service["maintenance_until"] is String, "it still ends on time")

        // Each move ran its action at most once: none is run again by a restart.
        #expect(setup.promotions.count <= promotedBefore + 1)
        #expect(agent.stop() == 0)
    }

    /// With the state directory full, a failover is made (and its action run
    /// once); when space returns, the snapshot names the new active member
    /// within two seconds, and a kill -9 and restart does not fail over again.
    @Test(.enabled(if: canMountTmpfs, "mounting a tmpfs needs root"))
    func aFailoverOnAFullDiskIsNeverRepeatedAfterARestart() throws {
        let setup = try Setup()
        defer { setup.stop() }
        let state = setup.dir.appendingPathComponent("state").path
        try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true)
        try #require(Self.run("/bin/mount", ["-t", "tmpfs", "-o", "size=512k,mode=0700", "vitals-test", state]) == 0)
        defer { _ = Self.run("/bin/umount", ["-l", state]) }
        var agent = try AgentProcess(config: setup.config, directory: setup.dir)
        var base = try agent.baseURL()
        try agent.waitForLine(containing: "group web: activated")
        let filler = state + "/filler"
        _ = Self.run("/bin/dd", ["if=/dev/zero", "of=\(filler)", "bs=16k"])  // until the disk is full

        setup.primary.answer(503)
        try agent.waitForLine(containing: "group web: failover web-1 → web-2")
        for _ in 0..<250 where setup.promotions.count < 1 { usleep(20_000) }
        #expect(setup.promotions.count == 1)

        try FileManager.default.removeItem(atPath: filler)
        let freed = Date()
        func snapshotNamesWeb2() -> Bool {
            guard let data = FileManager.default.contents(atPath: state + "/state.json"),
                  let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                  let groups = object["groups"] as? [String: Any],
                  let web = groups["web"] as? [String: Any] else { return false }
            return web["active"] as? [String] == ["web-2"]
        }
        var healthz = try fetch(base + "/healthz")
        while Date().timeIntervalSince(freed) < 2, healthz.contains("degraded") || !snapshotNamesWeb2() {
            usleep(50_000)
            healthz = try fetch(base + "/healthz")
        }
        #expect(healthz.contains(#""status":"ok""#), "writing resumed within 2 s: \(healthz)")
        #expect(snapshotNamesWeb2(), "state.json names the new active member within 2 s")

        kill(agent.process.processIdentifier, SIGKILL)
        agent.process.waitUntilExit()
        agent = try AgentProcess(config: setup.config, directory: setup.dir)
        base = try agent.baseURL()
        try agent.waitForLine(containing: "web-1: unknown → down")
        #expect(try fetch(base + "/v1/groups/web").contains(#""active_member":"web-2""#))
        #expect(agent.stop() == 0)
        #expect(setup.promotions.count == 1, "the promote script ran once, not again after the restart")
        #expect(!agent.output.contains { $0.contains("failover web-1 → web-2") }, "no second failover")
    }

    func fetch(_ url: String) throws -> String {
        try HTTPFetch.request(url: url).get().text
    }

    static func run(_ path: String, _ args: [String]) -> Int32 {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: path)
        p.arguments = args
        p.standardError = FileHandle.nullDevice
        guard (try? p.run()) != nil else { return -1 }
        p.waitUntilExit()
        return p.terminationStatus
    }
}
