import Foundation
import Testing
import VitalsCore

// The agent's core driven by scripted inputs at scripted times: no clock,
// no threads, no I/O.

private let t0 = Date(timeIntervalSince1970: 1_800_000_000)
private func at(_ seconds: Double) -> Date { t0.addingTimeInterval(seconds) }

private let yaml = """
    defaults: { interval: 1s, timeout: 500ms, rise: 1, fall: 1, jitter: 0ms }
    services:
      web-1: { tcp: { host: 127.0.0.1, port: 8081 } }
      web-2: { tcp: { host: 127.0.0.1, port: 8082 } }
      web-3: { tcp: { host: 127.0.0.1, port: 8083 } }
      backup: { heartbeat: { every: 1h, grace: 10m } }
    groups:
      web:
        mode: active-passive
        members: [web-1, web-2, web-3]
        on: { failover: [promote] }
    actions:
      promote: { exec: [/bin/true] }
    """

private func config(_ text: String = yaml) throws -> VitalsConfig {
    try ConfigLoader.load(yaml: text)
}

private func result(_ ok: Bool, at seconds: Double) -> ProbeResult {
    ProbeResult(time: at(seconds), latency: .milliseconds(2), outcome: ok ? .ok : .failed,
                reason: ok ? "" : "connect refused")
}

/// A core whose three web members are up and whose group has activated web-1.
private func running() throws -> (AgentCore, [AgentEvent]) {
    var core = AgentCore(config: try config(), startedAt: t0)
    var events: [AgentEvent] = []
    for name in ["web-1", "web-2", "web-3"] {
        events += try core.apply(.probeResult(result(true, at: 1), service: name), at: at(1))
    }
    events += try core.apply(.roundEnded, at: at(1))
    return (core, events)
}

private func summary(_ events: [AgentEvent]) -> [String] {
    events.map { "\($0.id) \($0.kind) \($0.group ?? $0.service ?? "")" }
}

@Suite struct AgentCoreTests {
    @Test func aRoundIsDecidedOnceInTheOrderItHappened() throws {
        var (core, start) = try running()
        #expect(summary(start) == ["1 state_change web-1", "2 state_change web-2", "3 state_change web-3",
                                   "4 activated web"])
        #expect(core.firstRoundComplete)

        #expect(try core.apply(.probeResult(result(false, at: 5), service: "web-1"), at: at(5)).isEmpty)
        #expect(try core.apply(.probeResult(result(true, at: 5.1), service: "web-2"), at: at(5.1)).isEmpty)
        #expect(core.entry("web-1")?.health.state == .down, "the service's own state is current at once")
        #expect(core.coordinator.engine(named: "web")?.activeMember == "web-1", "the group has not decided yet")

        let round = try core.apply(.roundEnded, at: at(5.2))
        #expect(summary(round) == ["5 state_change web-1", "6 failover web"])
        #expect(round[1].time == at(5), "a round is decided at the time of its last change")
        #expect(core.coordinator.engine(named: "web")?.activeMember == "web-2")
        #expect(try core.apply(.roundEnded, at: at(6)).isEmpty, "nothing is decided twice")
    }

    @Test func anOperatorCommandFirstDecidesWhatTheProbeLoopRecorded() throws {
        var (core, _) = try running()
        _ = try core.apply(.probeResult(result(false, at: 5), service: "web-2"), at: at(5))
        #expect(throws: AgentCore.Refused.self) {
            try core.apply(.switchover(group: "web", to: "web-2"), at: at(5.1))
        }
        do {
            _ = try core.apply(.probeResult(result(false, at: 6), service: "web-3"), at: at(6))
            _ = try core.apply(.switchover(group: "web", to: "web-3"), at: at(6.1))
            Issue.record("a switchover to a member recorded down was accepted")
        } catch {
            guard case .refused(let why) = error.refusal else { throw error }
            #expect(why.contains("web-3"), "\(why)")
            #expect(summary(error.decided).first == "6 state_change web-3", "the caught-up change is not lost")
        }
        let held = try core.apply(.hold(group: "web", reason: "migration"), at: at(7))
        #expect(summary(held) == ["8 held web"])
        #expect(throws: AgentCore.Refused.self) { try core.apply(.hold(group: "nope", reason: ""), at: at(7)) }
    }

    @Test func refusalsNameWhatIsWrong() throws {
        var (core, _) = try running()
        func refusal(_ input: AgentInput) -> AgentRefusal? {
            do { _ = try core.apply(input, at: at(9)); return nil } catch { return error.refusal }
        }
        #expect(refusal(.heartbeat(.success, service: "web-1")) == .notAHeartbeatService("web-1", kind: "tcp"))
        #expect(refusal(.heartbeat(.success, service: "web-9")) == .unknownService("web-9"))
        #expect(refusal(.maintenance(service: "web-9", on: true, reason: "x")) == .unknownService("web-9"))
        #expect(refusal(.release(group: "db")) == .unknownGroup("db"))
        #expect(AgentRefusal.unknownService("web-9").description == "no such service: web-9")
    }

    @Test func maintenanceMovesTheGroupAndExpiresOnATick() throws {
        var (core, _) = try running()
        let events = try core.apply(.maintenance(service: "web-1", on: true, reason: "kernel", until: at(60)), at: at(10))
        #expect(summary(events) == ["5 state_change web-1", "6 failover web"])
        #expect(core.persistentSnapshot(at: at(11)).maintenance["web-1"]
                == AgentSnapshot.Maintenance(reason: "kernel", until: at(60)))
        #expect(try core.apply(.tick, at: at(59)).isEmpty)
        let expired = try core.apply(.tick, at: at(60))
        #expect(expired.first?.service == "web-1")
        #expect(expired.first?.reason.hasPrefix("maintenance ended") == true)
        #expect(core.persistentSnapshot(at: at(61)).maintenance.isEmpty)
    }

    @Test func heartbeatsAndDeadlines() throws {
        var (core, _) = try running()
        let beat = try core.apply(.heartbeat(.success, service: "backup"), at: at(10))
        #expect(beat.map(\.to) == ["up"])
        #expect(try core.apply(.tick, at: at(10 + 3600)).isEmpty, "the period itself is still on time")
        let late = try core.apply(.tick, at: at(10 + 3600 + 1))
        #expect(late.map(\.to) == ["degraded"])
        #expect(late.first?.rule == "late")
        #expect(try core.apply(.tick, at: at(10 + 3600 + 600)).isEmpty, "the deadline itself is still in time")
        let missed = try core.apply(.tick, at: at(10 + 3600 + 601))
        #expect(missed.map(\.to) == ["down"])
        #expect(missed.first?.rule == "heartbeat deadline")
        #expect(core.persistentSnapshot(at: at(5000)).lastBeats["backup"] == at(10))
    }

    /// A late job is degraded, which still serves: its group moves only once it is missed.
    @Test func aLateHeartbeatMemberKeepsItsGroupUntilMissed() throws {
        var core = AgentCore(config: try config("""
            services:
              nightly-a: { heartbeat: { every: 1h, grace: 10m } }
              nightly-b: { heartbeat: { every: 1h, grace: 10m } }
            groups:
              jobs: { members: [nightly-a, nightly-b] }
            """), startedAt: t0)
        _ = try core.apply(.heartbeat(.success, service: "nightly-a"), at: at(10))
        _ = try core.apply(.heartbeat(.success, service: "nightly-b"), at: at(10))
        _ = try core.apply(.heartbeat(.success, service: "nightly-b"), at: at(3000))
        let late = try core.apply(.tick, at: at(10 + 3601))
        #expect(summary(late).map { $0.split(separator: " ").dropFirst().joined(separator: " ") }
                == ["state_change nightly-a"])
        #expect(core.coordinator.engine(named: "jobs")?.activeMember == "nightly-a")
        let missed = try core.apply(.tick, at: at(10 + 4201))
        #expect(missed.contains { $0.kind == .group(.failover) && $0.to == "nightly-b" }, "\(summary(missed))")
    }

    @Test func aReloadKeepsWhatDidNotChangeAndIsNumberedAfterWaitingChanges() throws {
        var (core, _) = try running()
        _ = try core.apply(.probeResult(result(false, at: 5), service: "web-3"), at: at(5))
        let changed = try config(yaml.replacingOccurrences(of: "port: 8082", with: "port: 9082"))
        let events = try core.apply(.reload(changed), at: at(6))
        #expect(summary(events).prefix(2) == ["5 state_change web-3", "6 config_reloaded "])
        #expect(events[1].reason == "configuration reloaded: services: changed web-2, 3 unchanged; groups: 1 unchanged; actions: 1 unchanged")
        #expect(core.entry("web-1")?.health.state == .up, "unchanged: keeps its state")
        #expect(core.entry("web-2")?.health.state == .unknown, "its target changed: starts afresh")
        #expect(!core.firstRoundComplete, "web-2 has not reported under its new target")
        #expect(core.coordinator.engine(named: "web")?.activeMember == "web-1")
        #expect(ReloadSummary(from: try config(), to: changed) == ReloadSummary(services: .init(changed: ["web-2"], kept: 3),
                                                                                groups: .init(kept: 1), actions: .init(kept: 1)))
    }

    @Test func aReloadThatChangesOnlyTimingOrConditionsKeepsEveryState() throws {
        var (core, _) = try running()
        let retimed = try config(yaml
            .replacingOccurrences(of: "timeout: 500ms, rise: 1, fall: 1", with: "timeout: 2s, rise: 3, fall: 2")
            .replacingOccurrences(of: "every: 1h", with: "every: 2h"))
        let events = try core.apply(.reload(retimed), at: at(6))
        #expect(summary(events) == ["5 config_reloaded "], "no state changes, no group event")
        for name in ["web-1", "web-2", "web-3"] {
            #expect(core.entry(name)?.health.state == .up, "\(name) keeps its state")
        }
        #expect(core.firstRoundComplete)
        // The new rules apply from the next result: fall is now 2.
        _ = try core.apply(.probeResult(result(false, at: 7), service: "web-1"), at: at(7))
        #expect(try core.apply(.roundEnded, at: at(7)).isEmpty)
        _ = try core.apply(.probeResult(result(false, at: 8), service: "web-1"), at: at(8))
        #expect(summary(try core.apply(.roundEnded, at: at(8))) == ["6 state_change web-1", "7 failover web"])
    }

    @Test func aReloadThatMovesTheActiveMembersTargetNeverMovesTheGroupByItself() throws {
        var (core, _) = try running()
        let moved = try config(yaml.replacingOccurrences(of: "port: 8081", with: "port: 9081"))
        let events = try core.apply(.reload(moved), at: at(6))
        #expect(summary(events) == ["5 config_reloaded "], "no group_down, no failover: \(summary(events))")
        #expect(core.entry("web-1")?.health.state == .unknown, "its own state starts afresh")
        #expect(core.coordinator.engine(named: "web")?.activeMember == "web-1", "the group keeps its active member")
        #expect(try core.apply(.tick, at: at(7)).isEmpty)
        // Its first decision under the new target is what the group acts on.
        _ = try core.apply(.probeResult(result(false, at: 8), service: "web-1"), at: at(8))
        #expect(summary(try core.apply(.roundEnded, at: at(8))) == ["6 state_change web-1", "7 failover web"])
    }

    @Test func aRestartContinuesFromTheSnapshotAndTheJournal() throws {
        var (core, _) = try running()
        _ = try core.apply(.probeResult(result(false, at: 5), service: "web-1"), at: at(5))
        let failover = try core.apply(.roundEnded, at: at(5)).last!
        #expect(failover.kind == .group(.failover))
        let snapshot = core.persistentSnapshot(at: at(6))
        let journal = core.recentEvents.all

        var restarted = AgentCore(config: try config(), startedAt: at(100), restoring: snapshot,
                                  recentEvents: journal, firstEventID: 7)
        #expect(try restarted.apply(.restarted(journal: journal), at: at(100)).isEmpty)
        let marked = restarted.recentEvents.event(failover.id)?.actions ?? []
        #expect(marked.map(\.action) == ["promote"])
        #expect(marked.first?.result == .skipped(AgentCore.interruptedReason))
        #expect(restarted.coordinator.engine(named: "web")?.activeMember == "web-2", "not decided again")

        // web-1 recovered while the agent was down: its first decision says so.
        let first = try restarted.apply(.probeResult(result(true, at: 101), service: "web-1"), at: at(101))
            + restarted.apply(.roundEnded, at: at(101))
        #expect(first.first?.id == 7, "ids continue after the journal")
        #expect(first.first?.from == "down")
        #expect(first.first?.reason.contains("changed while the agent was not running") == true)
    }

    /// The journal is written before a command is answered and before a
    /// decision's actions start; the snapshot after. What a crash leaves
    /// between them is replayed at start.
    @Test func aRestartReplaysWhatTheJournalHasAndTheSnapshotMissed() throws {
        var (core, _) = try running()
        let stale = core.persistentSnapshot(at: at(2))
        _ = try core.apply(.maintenance(service: "web-3", on: true, reason: "kernel", until: at(900)), at: at(3))
        _ = try core.apply(.probeResult(result(false, at: 5), service: "web-1"), at: at(5))
        let failover = try core.apply(.roundEnded, at: at(5)).last!
        #expect(failover.kind == .group(.failover))
        _ = try core.apply(.hold(group: "web", reason: "db migration"), at: at(6))
        let journal = core.recentEvents.all

        var restarted = AgentCore(config: try config(), startedAt: at(100), restoring: stale,
                                  recentEvents: journal, firstEventID: journal.last!.id + 1)
        let engine = try #require(restarted.coordinator.engine(named: "web"))
        #expect(engine.activeMember == "web-2", "the failover the journal recorded is not made again")
        #expect(engine.hold?.reason == "db migration")
        #expect(restarted.entry("web-3")?.health.state == .maintenance)
        #expect(restarted.maintenanceUntil["web-3"] == at(900), "the maintenance ends when it was meant to")
        // web-1 still down after the restart: no second failover, no action to run.
        _ = try restarted.apply(.probeResult(result(false, at: 101), service: "web-1"), at: at(101))
        _ = try restarted.apply(.probeResult(result(true, at: 101), service: "web-2"), at: at(101))
        let first = try restarted.apply(.roundEnded, at: at(101))
        #expect(!first.contains { $0.kind.groupKind != nil }, "\(summary(first))")
        // Replaying twice, or a snapshot that already has it all, changes nothing.
        let full = restarted.persistentSnapshot(at: at(102))
        #expect(full.replaying(journal) == full)
    }

    @Test func aHeartbeatServiceIsWhatItWasAfterARestart() throws {
        var (core, _) = try running()
        _ = try core.apply(.heartbeat(.success, service: "backup"), at: at(10))
        let snapshot = core.persistentSnapshot(at: at(11))
        var restarted = AgentCore(config: try config(), startedAt: at(100), restoring: snapshot)
        let backup = try #require(restarted.entry("backup")?.health)
        #expect(backup.state == .up, "not \"no heartbeat yet\"")
        #expect(backup.since == at(10))
        // (The web group, whose members have not reported since the restart, decides too.)
        let missed = try restarted.apply(.tick, at: at(10 + 4200 + 1)).filter { $0.service == "backup" }
        #expect(missed.map(\.to) == ["down"])
        #expect(missed.first?.from == "up")
        #expect(missed.first?.reason.contains("not running") == false, "\(missed.first?.reason ?? "")")
    }

    @Test func theTargetCheckReplacesADecisionWhoseTargetFailed() throws {
        var (core, _) = try running()
        _ = try core.apply(.probeResult(result(false, at: 5), service: "web-1"), at: at(5))
        let failover = try core.apply(.roundEnded, at: at(5)).last!
        #expect(failover.to == "web-2")
        _ = try core.apply(.probeResult(result(false, at: 5.5), service: "web-2"), at: at(5.5))
        let replaced = try core.apply(.confirmTarget(eventID: failover.id), at: at(5.6))
        #expect(replaced.contains { $0.kind == .group(.failover) && $0.to == "web-3" }, "\(summary(replaced))")
        do {
            _ = try core.apply(.confirmTarget(eventID: failover.id), at: at(5.7))
            Issue.record("an event whose group moved on was confirmed")
        } catch {
            #expect(error.refusal == .actionsNotRun("superseded by a later decision"))
        }
        let latest = replaced.last!
        #expect(try core.apply(.confirmTarget(eventID: latest.id), at: at(5.8)).isEmpty, "its target is up: run")
    }

    @Test func actionResultsAreRecordedWithTheirEvent() throws {
        var (core, start) = try running()
        let activated = start.last!
        let outcome = ActionOutcome(action: "promote", kind: "exec", eventID: activated.id, eventKind: activated.kind,
                                    group: "web", result: .ok, attempts: 1, started: at(2), finished: at(2),
                                    duration: .milliseconds(5))
        let stateVersion = core.stateVersion
        #expect(try core.apply(.actionsFinished([outcome]), at: at(2)).isEmpty)
        #expect(core.recentEvents.event(activated.id)?.actions == [outcome])
        #expect(core.stateVersion != stateVersion, "readers see the result at once")
    }

    @Test func chunkedStorageKeepsValueSemantics() {
        var a = ChunkedArray(0..<1000)
        let b = a
        a[700] = -1
        a.append(1000)
        #expect(b[700] == 700)
        #expect(b.count == 1000)
        #expect(a[700] == -1)
        #expect(a.count == 1001)
        #expect(Array(a.prefix(3)) == [0, 1, 2])
        #expect(a.last == 1000)
    }
}

extension AgentCoreTests {
    /// Exec actions export `event.service` as `VITALS_SERVICE`: for a
    /// failover it is the member whose failure caused it.
    @Test func aFailoverNamesTheMemberThatFailed() throws {
        var (core, _) = try running()
        _ = try core.apply(.probeResult(result(false, at: 5), service: "web-1"), at: at(5))
        let events = try core.apply(.roundEnded, at: at(5)) + core.apply(.tick, at: at(10))
        let failover = events.first { $0.kind == .group(.failover) }
        #expect(failover?.service == "web-1")
        #expect(failover?.groupEvent?.service == "web-1", "kept through the journal's round trip")
    }
}
