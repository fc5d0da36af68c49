#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
import VitalsProbe
import VitalsTestKit

/// A reload must never take a healthy group down or move it: a service whose
/// probe target is unchanged keeps its state whatever timing keys changed,
/// and one whose target changed leaves the group where it was until its first
/// real probe result decides. Run with the real binary, real backends on
/// loopback, real action scripts and real SIGHUPs.
@Suite(.serialized) struct ReloadStormTests {
    /// Backends for `primary` and `backup`, an active-passive group `web` and
    /// one recording script behind every action the group can run.
    struct Setup {
        let scratch: Scratch
        let config: URL
        let primary: Backend
        let backup: Backend

        init() throws {
            scratch = try Scratch()
            primary = try Backend()
            backup = try Backend()
            config = URL(fileURLWithPath: scratch.file("vitals.yaml"))
            // Each run appends one line: action, event kind, from, to.
            try scratch.script("record.sh", """
            cat > /dev/null
            echo "$VITALS_ACTION $VITALS_EVENT $VITALS_FROM $VITALS_TO" >> "$(dirname "$0")/runs.log"
            """)
            try write(primaryURL: healthURL(primary.port), primaryTimeout: "300ms")
        }

        func healthURL(_ port: UInt16) -> String { "http://127.0.0.1:\(port)/health" }

        /// The configuration, differing between calls only in the primary's
        /// target or timeout. Written atomically (a temporary file renamed
        /// over the old one), so a reload never reads half a file.
        func text(primaryURL: String, primaryTimeout: String) -> String {
            let record = scratch.file("record.sh")
            return """
            agent: { listen: 127.0.0.1:0, state_dir: \(scratch.file("state")) }
            defaults: { interval: 200ms, timeout: 300ms, rise: 2, fall: 2, jitter: 0ms, fast_interval: 100ms }
            services:
              primary: { http: { url: "\(primaryURL)" }, timeout: \(primaryTimeout) }
              backup: { http: { url: "\(healthURL(backup.port))" } }
            groups:
              web:
                members: [primary, backup]
                failback: manual
                cooldown: 0s
                on: { failover: [promote], move: [moved], group_down: [down], group_recovered: [recovered] }
            actions:
              promote: { exec: [\(record)], timeout: 5s }
              moved: { exec: [\(record)], timeout: 5s }
              down: { exec: [\(record)], timeout: 5s }
              recovered: { exec: [\(record)], timeout: 5s }

            """
        }

        func write(primaryURL: String, primaryTimeout: String) throws {
            try text(primaryURL: primaryURL, primaryTimeout: primaryTimeout)
                .write(to: config, atomically: true, encoding: .utf8)
        }

        /// The action runs so far, one line each: `promote failover primary backup`.
        var runs: [String] {
            (scratch.read("runs.log") ?? "").split(separator: "\n").map(String.init)
        }

        func stop() {
            primary.stop()
            backup.stop()
            scratch.remove()
        }
    }

    /// One answer of `GET /v1/groups/web/active`.
    struct Poll: Sendable, CustomStringConvertible {
        var started: Date
        var ended: Date
        /// The HTTP status, nil when the request itself failed.
        var status: Int?
        /// The active member named in the answer, nil when none.
        var member: String?
        var detail: String

        var description: String {
            "\(Self.clock(started)) \(status.map(String.init) ?? "no answer") \(member ?? "-") \(member == nil ? detail : "")"
        }

        static func clock(_ date: Date) -> String {
            String(format: "%.3f", date.timeIntervalSince1970.truncatingRemainder(dividingBy: 100))
        }
    }

    /// Polls the group's active member every `period` on a thread of its
    /// own, as a load balancer following `/v1/groups/{g}/active` would,
    /// until stopped or `maxPolls` answers are in.
    final class ActivePoller: Sendable {
        private let polls = Locked<[Poll]>([])
        private let stopRequested = Locked(false)
        private let finished = DispatchSemaphore(value: 0)

        init(url: String, periodMicroseconds: UInt32 = 40_000, maxPolls: Int = 1_000) {
            let polls = self.polls, stopRequested = self.stopRequested, finished = self.finished
            Thread.detachNewThread {
                defer { finished.signal() }
                for _ in 0..<maxPolls {
                    if stopRequested.withLock({ $0 }) { return }
                    let started = Date()
                    let answer = HTTPFetch.request(url: url, timeout: .seconds(2))
                    var poll = Poll(started: started, ended: Date(), status: nil, member: nil, detail: "")
                    switch answer {
                    case .success(let response):
                        poll.status = response.status
                        poll.detail = response.text
                        let object = try? JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any]
                        let active = object?["active"] as? [[String: Any]] ?? []
                        poll.member = active.first?["member"] as? String
                    case .failure(let failure):
                        poll.detail = failure.description
                    }
                    polls.withLock { $0.append(poll) }
                    usleep(periodMicroseconds)
                }
            }
        }

        var answers: [Poll] { polls.withLock { $0 } }

        /// Waits until `count` more answers than now are in (bounded).
        func waitForMore(_ count: Int, timeout: Double = 10) throws {
            let target = answers.count + count
            let deadline = Date().addingTimeInterval(timeout)
            while answers.count < target {
                guard Date() < deadline else { throw TestFailure("the poller made no \(count) more polls within \(timeout)s") }
                usleep(5_000)
            }
        }

        /// Stops polling; returns every answer.
        func stop() throws -> [Poll] {
            stopRequested.withLock { $0 = true }
            guard finished.wait(timeout: .now() + 10) == .success else { throw TestFailure("the poller did not stop") }
            return answers
        }
    }

    /// Sends SIGTERM and waits (bounded) for the agent to exit; its exit
    /// status, or nil if it had to be killed.
    static func terminate(_ agent: AgentProcess, timeout: Double = 20) -> Int32? {
        kill(agent.process.processIdentifier, SIGTERM)
        let deadline = Date().addingTimeInterval(timeout)
        while agent.process.isRunning && Date() < deadline { usleep(10_000) }
        if agent.process.isRunning {
            kill(agent.process.processIdentifier, SIGKILL)
            agent.process.waitUntilExit()
            return nil
        }
        agent.process.waitUntilExit()
        return agent.process.terminationReason == .exit ? agent.process.terminationStatus : nil
    }

    static func service(_ base: String, _ name: String) throws -> [String: Any] {
        let text = try HTTPFetch.request(url: base + "/v1/services/\(name)").get().text
        return try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
    }

    /// A group waits for `unknown` members for 30 s after the agent starts
    /// (`GroupEngine.startupGrace`, not configurable), so a reload inside
    /// that window cannot show whether a reload alone moves a group or
    /// takes it down: the storm starts once it is over, as it would on an
    /// agent that has been running for a while. `startLogged` is when the
    /// start-up line was read, after the agent took its start time.
    static func waitOutStartupGrace(since startLogged: Date) {
        Thread.sleep(until: startLogged.addingTimeInterval(31))
    }

    /// Waits (bounded) until both actions of the failover have reported.
    static func waitForFailoverActions(_ agent: AgentProcess, timeout: Double = 10) throws {
        let deadline = Date().addingTimeInterval(timeout)
        for action in ["promote", "moved"] {
            while !agent.output.contains(where: { $0.contains("action \(action) (exec) for event") && $0.contains(" failover: ") }) {
                guard Date() < deadline else {
                    throw TestFailure("action \(action) did not report on the failover; the agent logged:\n\(agent.output.joined(separator: "\n"))")
                }
                usleep(10_000)
            }
        }
    }

    /// The index of the first line from `start` on that contains `text`.
    static func index(of text: String, in lines: [String], from start: Int = 0) -> Int? {
        guard start < lines.count else { return nil }
        return lines[start...].firstIndex { $0.contains(text) }
    }

    /// Point 12b of "Decisions an operator can trust": 50 SIGHUPs in 5 s,
    /// alternating two files that differ only in the primary's `timeout`,
    /// while a poller follows the active member every 40 ms and the primary
    /// starts failing half-way through. The group must fail over once, on
    /// the real probe results, and never be without an active member.
    @Test func aReloadStormDuringAFailoverNeverLeavesTheGroupWithoutAnActiveMember() throws {
        let setup = try Setup()
        defer { setup.stop() }
        let agent = try AgentProcess(config: setup.config, directory: URL(fileURLWithPath: setup.scratch.path))
        let pid = agent.process.processIdentifier
        let base = try agent.baseURL()
        let startLogged = Date()
        try agent.waitForLine(containing: "group web: activated none → primary")
        try agent.waitForLine(containing: "backup: unknown → up")
        Self.waitOutStartupGrace(since: startLogged)
        let before = try Self.service(base, "primary")
        #expect(before["state"] as? String == "up")

        let poller = ActivePoller(url: base + "/v1/groups/web/active")
        try poller.waitForMore(3)

        // The storm: each SIGHUP follows an atomic rewrite flipping the primary's timeout.
        let contents = [setup.text(primaryURL: setup.healthURL(setup.primary.port), primaryTimeout: "400ms"),
                        setup.text(primaryURL: setup.healthURL(setup.primary.port), primaryTimeout: "300ms")]
        let config = setup.config
        let sent = Locked(0)
        let stormDone = DispatchSemaphore(value: 0)
        let stormStarted = Date()
        Thread.detachNewThread {
            defer { stormDone.signal() }
            for i in 0..<50 {
                guard (try? contents[i % 2].write(to: config, atomically: true, encoding: .utf8)) != nil else { return }
                kill(pid, SIGHUP)
                sent.withLock { $0 += 1 }
                usleep(100_000)
            }
        }

        // Half-way through the storm, the primary starts answering 503.
        let deadline = Date().addingTimeInterval(20)
        while sent.withLock({ $0 }) < 20 {
            try #require(Date() < deadline, "the storm did not get to its 20th SIGHUP")
            usleep(5_000)
        }
        // Until now, only reloads happened: the primary kept its state (same `since`).
        let midStorm = try Self.service(base, "primary")
        #expect(midStorm["state"] as? String == "up")
        #expect(midStorm["since"] as? String == before["since"] as? String,
                "a reload that changed only the timeout kept the primary's state: \(midStorm)")
        let failedAt = Date()
        setup.primary.answer(503)
        try agent.waitForLine(containing: "group web: failover primary → backup")
        let failoverSeen = Date()
        let sentAtFailover = sent.withLock { $0 }

        try #require(stormDone.wait(timeout: .now() + 30) == .success, "the storm did not finish")
        let stormSeconds = Date().timeIntervalSince(stormStarted)
        try Self.waitForFailoverActions(agent)
        // A few polls after the storm, then stop following.
        try poller.waitForMore(5)
        let polls = try poller.stop()
        let exit = Self.terminate(agent)
        let lines = agent.output

        // Each reload is one `config_reloaded` event (and a line of its own before it).
        let reloadEvent = "agent: config_reloaded: configuration reloaded: services: changed primary, 1 unchanged"
        let reloads = lines.filter { $0.contains(reloadEvent) }
        let failoverIndex = try #require(Self.index(of: "group web: failover primary → backup", in: lines))
        let reloadsAfterFailover = lines[failoverIndex...].filter { $0.contains(reloadEvent) }.count
        print("""
            reload storm: \(sent.withLock { $0 }) SIGHUPs in \(String(format: "%.2f", stormSeconds)) s, \
            \(reloads.count) reloads logged (\(reloadsAfterFailover) after the failover); \
            primary failed at SIGHUP 20, failover seen \(Int(failoverSeen.timeIntervalSince(failedAt) * 1000)) ms later \
            (SIGHUP \(sentAtFailover)); \(polls.count) polls
            """)

        // Every poll answered with an active member: never a 503, never an error.
        let unanswered = polls.filter { $0.status != 200 || $0.member == nil }
        #expect(unanswered.isEmpty, "polls without an active member: \(unanswered)")
        // primary, then backup: one switch, after the primary failed.
        let members = polls.compactMap(\.member)
        let firstBackup = members.firstIndex(of: "backup") ?? members.count
        #expect(members[..<firstBackup].allSatisfy { $0 == "primary" } && members[firstBackup...].allSatisfy { $0 == "backup" },
                "the active member went back and forth: \(polls)")
        #expect(polls.filter { $0.ended < failedAt }.allSatisfy { $0.member == "primary" },
                "before the primary failed, every poll named it: \(polls)")
        #expect(polls.filter { $0.started > failoverSeen }.allSatisfy { $0.member == "backup" },
                "after the failover, every poll named the backup: \(polls)")
        #expect(polls.contains { $0.ended < failedAt } && polls.contains { $0.started > failoverSeen })
        #expect(polls.filter { $0.member == "backup" }.allSatisfy { $0.started > failedAt },
                "no move before the primary failed: \(polls)")

        // The storm really ran through the failover.
        #expect(reloads.count >= 25, "SIGHUPs were reloaded: \(reloads.count) of 50")
        #expect(reloadsAfterFailover >= 1, "reloads went on after the failover")

        // Exactly one failover and its actions; no group_down, no group_recovered.
        let runs = setup.runs
        #expect(runs.filter { $0.hasPrefix("promote ") } == ["promote failover primary backup"], "\(runs)")
        #expect(runs.filter { $0.hasPrefix("moved ") } == ["moved activated  primary", "moved failover primary backup"],
                "the only moves: the first choice and the failover: \(runs)")
        #expect(runs.filter { $0.hasPrefix("down ") || $0.hasPrefix("recovered ") }.isEmpty, "\(runs)")
        #expect(lines.filter { $0.contains("group web: failover") }.count == 1, "\(lines.joined(separator: "\n"))")
        #expect(!lines.contains { $0.contains("group_down") || $0.contains("group_recovered") },
                "\(lines.joined(separator: "\n"))")
        // The primary went up once and down once: no reload restarted its state.
        #expect(lines.filter { $0.contains("primary: unknown → ") }.count == 1, "\(lines.joined(separator: "\n"))")
        #expect(lines.filter { $0.contains("primary: up → down") }.count == 1, "\(lines.joined(separator: "\n"))")
        #expect(exit == 0, "the agent exits 0 on SIGTERM")
    }

    /// A reload that points the primary at another target restarts it as
    /// `unknown`, but the group keeps it active: with a live target it comes
    /// back `up` and nothing moves; with a dead one the group fails over
    /// once, after `fall` real probe failures, not at the reload.
    @Test func aReloadThatChangesTheTargetMovesTheGroupOnlyOnARealProbeResult() throws {
        let setup = try Setup()
        defer { setup.stop() }
        let alternate = try Backend()
        defer { alternate.stop() }
        let agent = try AgentProcess(config: setup.config, directory: URL(fileURLWithPath: setup.scratch.path))
        let pid = agent.process.processIdentifier
        let base = try agent.baseURL()
        let startLogged = Date()
        try agent.waitForLine(containing: "group web: activated none → primary")
        try agent.waitForLine(containing: "backup: unknown → up")
        Self.waitOutStartupGrace(since: startLogged)
        let poller = ActivePoller(url: base + "/v1/groups/web/active")
        try poller.waitForMore(3)

        // 1. Another live backend: the primary starts over there and comes back up.
        let movedAt = agent.output.count
        try setup.write(primaryURL: setup.healthURL(alternate.port), primaryTimeout: "300ms")
        kill(pid, SIGHUP)
        try agent.waitForLine(containing: "configuration reloaded: services: changed primary", after: movedAt)
        // The old backend goes away: from now on only the new target can keep the primary up.
        setup.primary.stop()
        try agent.waitForLine(containing: "primary: unknown → up", after: movedAt)
        let upAgain = try Self.service(base, "primary")
        #expect(upAgain["state"] as? String == "up")
        #expect(upAgain["target"] as? String == setup.healthURL(alternate.port))
        // A few more successes, all on the new target (the old one refuses now).
        let successes = upAgain["consecutive_successes"] as? Int ?? 0
        let deadline = Date().addingTimeInterval(10)
        var latest = upAgain
        while (latest["consecutive_successes"] as? Int ?? 0) < successes + 3 {
            try #require(Date() < deadline, "the primary was not probed 3 more times: \(latest)")
            usleep(20_000)
            latest = try Self.service(base, "primary")
        }
        #expect(latest["state"] as? String == "up")
        try poller.waitForMore(3)
        let whileMoved = poller.answers
        #expect(whileMoved.allSatisfy { $0.status == 200 && $0.member == "primary" },
                "the group kept the primary through the reload: \(whileMoved)")
        #expect(!agent.output.contains { $0.contains("group web: failover") || $0.contains("group_down") })

        // 2. A dead port: the group fails over once, on the primary's first decision.
        let refusing = try RefusingPort()
        let deadAt = agent.output.count
        let pollsBeforeDead = poller.answers.count
        try setup.write(primaryURL: setup.healthURL(refusing.port), primaryTimeout: "300ms")
        kill(pid, SIGHUP)
        try agent.waitForLine(containing: "configuration reloaded: services: changed primary", after: deadAt)
        let reloadSeen = Date()
        try agent.waitForLine(containing: "group web: failover primary → backup", after: deadAt)
        let failoverSeen = Date()
        try Self.waitForFailoverActions(agent)
        try poller.waitForMore(3)
        let polls = try poller.stop()
        let exit = Self.terminate(agent)
        let lines = agent.output
        print("target change: failover seen \(Int(failoverSeen.timeIntervalSince(reloadSeen) * 1000)) ms after the reload to a dead port; \(polls.count) polls")

        // The failover follows the primary's own decision: down after `fall` failures.
        let reloadIndex = try #require(Self.index(of: "configuration reloaded: services: changed primary", in: lines, from: deadAt))
        let downIndex = try #require(Self.index(of: "primary: unknown → down", in: lines, from: deadAt))
        let failoverIndex = try #require(Self.index(of: "group web: failover primary → backup", in: lines, from: deadAt))
        #expect(reloadIndex < downIndex && downIndex < failoverIndex, "\(lines[deadAt...].joined(separator: "\n"))")
        #expect(lines[downIndex].contains("fall 2/2"), "\(lines[downIndex])")
        let answers = polls[pollsBeforeDead...]
        #expect(answers.allSatisfy { $0.status == 200 && $0.member != nil }, "never without an active member: \(Array(answers))")
        let members = answers.compactMap(\.member)
        let firstBackup = members.firstIndex(of: "backup") ?? members.count
        #expect(members[..<firstBackup].allSatisfy { $0 == "primary" } && firstBackup < members.count
                && members[firstBackup...].allSatisfy { $0 == "backup" }, "primary, then backup: \(Array(answers))")
        #expect(answers.filter { $0.ended < reloadSeen }.allSatisfy { $0.member == "primary" })
        #expect(answers.filter { $0.started > failoverSeen }.allSatisfy { $0.member == "backup" })

        let runs = setup.runs
        #expect(runs.filter { $0.hasPrefix("promote ") } == ["promote failover primary backup"], "\(runs)")
        #expect(runs.filter { $0.hasPrefix("moved ") } == ["moved activated  primary", "moved failover primary backup"], "\(runs)")
        #expect(runs.filter { $0.hasPrefix("down ") || $0.hasPrefix("recovered ") }.isEmpty, "\(runs)")
        #expect(lines.filter { $0.contains("group web: failover") }.count == 1, "\(lines.joined(separator: "\n"))")
        #expect(!lines.contains { $0.contains("group_down") || $0.contains("group_recovered") },
                "\(lines.joined(separator: "\n"))")
        #expect(exit == 0, "the agent exits 0 on SIGTERM")
    }
}
