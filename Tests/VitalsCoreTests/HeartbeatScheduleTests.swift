import Foundation
import Testing
import VitalsCore

// All time is passed in; nothing here sleeps or reads the system clock.

private func utc(_ text: String) -> Date {
    guard let date = ISOTime.parse(text) else { fatalError("bad time in test: \(text)") }
    return date
}

private let haveZoneinfo = FileManager.default.fileExists(atPath: "/usr/share/zoneinfo/Europe/Berlin")

/// A nightly job at 03:00 Berlin time (02:00Z in December), 30 minutes of grace.
private func nightly(maxRuntime: Duration? = nil) throws -> HeartbeatCheck {
    HeartbeatCheck(runs: .schedule(try CronSchedule.parse("0 3 * * *"), timeZone: TimeZone(identifier: "Europe/Berlin")!),
                   grace: .seconds(1800), maxRuntime: maxRuntime)
}

@Suite(.enabled(if: haveZoneinfo, "needs the tzdata package (/usr/share/zoneinfo)"))
struct HeartbeatScheduleTests {
    enum Step: Sendable {
        case beat(BeatKind, String)
        case tick(String)
    }

    struct Case: CustomTestStringConvertible, Sendable {
        var name: String
        var steps: [Step]
        /// `from>to@time reason`, one per transition.
        var changes: [String]
        var final: HealthState
        var testDescription: String { name }
    }

    static let cases: [Case] = [
        .init(name: "no ping yet: unknown until the first scheduled run's grace ends, then down",
              steps: [.tick("2026-12-02T02:00:01Z"), .tick("2026-12-02T02:30:00Z"), .tick("2026-12-02T02:30:01Z")],
              changes: ["unknown>down@2026-12-02T02:30:01Z late: no ping for the run scheduled at 2026-12-02 03:00 Europe/Berlin (grace 30m)"],
              final: .down),
        .init(name: "a run on time keeps it up, and no late phase within the grace",
              steps: [.beat(.start, "2026-12-02T02:00:05Z"), .tick("2026-12-02T02:10:00Z"),
                      .beat(.success, "2026-12-02T02:40:00Z"), .tick("2026-12-03T02:15:00Z"), .tick("2026-12-03T02:30:00Z")],
              changes: ["unknown>up@2026-12-02T02:40:00Z job succeeded in 39m55s"], final: .up),
        .init(name: "the next scheduled run missed: down after its grace",
              steps: [.beat(.success, "2026-12-02T02:05:00Z"), .tick("2026-12-03T02:30:00Z"), .tick("2026-12-03T02:30:01Z"),
                      .tick("2026-12-03T05:00:00Z")],
              changes: ["unknown>up@2026-12-02T02:05:00Z heartbeat received",
                        "up>down@2026-12-03T02:30:01Z late: no ping for the run scheduled at 2026-12-03 03:00 Europe/Berlin (grace 30m)"],
              final: .down),
        .init(name: "a start ping within the grace is the run beginning: not late",
              steps: [.beat(.success, "2026-12-02T02:05:00Z"), .beat(.start, "2026-12-03T02:20:00Z"),
                      .tick("2026-12-03T02:31:00Z"), .beat(.success, "2026-12-03T03:00:00Z")],
              changes: ["unknown>up@2026-12-02T02:05:00Z heartbeat received"], final: .up),
        .init(name: "a ping a little early counts for the coming run",
              steps: [.beat(.success, "2026-12-02T01:59:30Z"), .tick("2026-12-02T02:31:00Z")],
              changes: ["unknown>up@2026-12-02T01:59:30Z heartbeat received"], final: .up),
        .init(name: "a late ping after down makes it up again",
              steps: [.tick("2026-12-02T02:31:00Z"), .beat(.success, "2026-12-02T04:00:00Z"), .tick("2026-12-03T02:29:00Z")],
              changes: ["unknown>down@2026-12-02T02:31:00Z late: no ping for the run scheduled at 2026-12-02 03:00 Europe/Berlin (grace 30m)",
                        "down>up@2026-12-02T04:00:00Z heartbeat received"], final: .up),
        .init(name: "a failure report is down at once",
              steps: [.beat(.fail, "2026-12-02T02:01:00Z")],
              changes: ["unknown>down@2026-12-02T02:01:00Z job reported failure"], final: .down),
    ]

    @Test(arguments: cases)
    func timeline(_ c: Case) throws {
        var tracker = HeartbeatTracker(service: "backup", check: try nightly(), startedAt: utc("2026-12-01T12:00:00Z"))
        var changes: [String] = []
        for step in c.steps {
            let change: HealthTransition?
            switch step {
            case .beat(let kind, let time): change = tracker.beat(kind, at: utc(time))
            case .tick(let time): change = tracker.tick(at: utc(time))
            }
            if let change {
                changes.append("\(change.from.rawValue)>\(change.to.rawValue)@\(ISOTime.format(change.at).replacingOccurrences(of: ".000Z", with: "Z")) \(change.reason)")
            }
        }
        #expect(changes == c.changes)
        #expect(tracker.state == c.final)
    }

    @Test func dueAndDeadlineFollowThePings() throws {
        var tracker = HeartbeatTracker(service: "backup", check: try nightly(), startedAt: utc("2026-12-01T12:00:00Z"))
        #expect(tracker.due == utc("2026-12-02T02:00:00Z"))
        #expect(tracker.deadline == utc("2026-12-02T02:30:00Z"))
        _ = tracker.beat(.start, at: utc("2026-12-02T02:00:01Z"))
        #expect(tracker.due == utc("2026-12-03T02:00:00Z"))
        #expect(tracker.dueExplanation == "next run scheduled at 2026-12-03 03:00 Europe/Berlin (0 3 * * *), "
            + "the first after the last ping at 2026-12-02 03:00:01 Europe/Berlin; down if no ping by "
            + "2026-12-03 03:30 Europe/Berlin (grace 30m); running since 2026-12-02T02:00:01.000Z")
    }

    @Test func aReloadToAScheduleCountsFromTheLastBeat() throws {
        var tracker = HeartbeatTracker(service: "backup", check: HeartbeatCheck(every: .seconds(86_400)),
                                       startedAt: utc("2026-12-01T12:00:00Z"))
        _ = tracker.beat(.success, at: utc("2026-12-01T13:00:00Z"))
        tracker.recheck(try nightly())
        #expect(tracker.due == utc("2026-12-02T02:00:00Z"))
    }

    @Test func theSkippedHourInSpringIsDueAtTheChange() throws {
        let check = HeartbeatCheck(runs: .schedule(try CronSchedule.parse("30 2 * * *"),
                                                   timeZone: TimeZone(identifier: "Europe/Berlin")!), grace: .seconds(600))
        let tracker = HeartbeatTracker(service: "backup", check: check, startedAt: utc("2026-03-28T12:00:00Z"))
        #expect(tracker.due == utc("2026-03-29T01:00:00Z"))
        #expect(tracker.deadline == utc("2026-03-29T01:10:00Z"))
    }
}

@Suite struct HeartbeatMaxRuntimeTests {
    private let t0 = Date(timeIntervalSince1970: 1_800_000_000)
    private func at(_ seconds: Double) -> Date { t0.addingTimeInterval(seconds) }

    @Test func aRunLongerThanMaxRuntimeIsDownOnceThenItsEndDecides() {
        let check = HeartbeatCheck(every: .seconds(86_400), grace: .seconds(1800), maxRuntime: .seconds(7200))
        var tracker = HeartbeatTracker(service: "backup", check: check, startedAt: t0)
        _ = tracker.beat(.success, at: at(10))
        _ = tracker.beat(.start, at: at(100))
        #expect(tracker.runtimeLimit == at(7300))
        #expect(tracker.tick(at: at(7300)) == nil)
        let down = tracker.tick(at: at(100 + 7380))
        #expect(down?.to == .down)
        #expect(down?.rule == "max_runtime")
        #expect(down?.reason == "running for 2h3m, more than max_runtime 2h")
        #expect(tracker.tick(at: at(100 + 9000)) == nil)
        #expect(tracker.runningSince == at(100))
        let up = tracker.beat(.success, at: at(100 + 9600))
        #expect(up?.to == .up)
        #expect(up?.reason == "job succeeded in 2h40m")
        #expect(tracker.runningSince == nil)
    }

    @Test func aNewStartAfterAnOverrunIsBoundAgain() {
        let check = HeartbeatCheck(every: .seconds(86_400), maxRuntime: .seconds(60))
        var tracker = HeartbeatTracker(service: "backup", check: check, startedAt: t0)
        _ = tracker.beat(.start, at: at(0))
        #expect(tracker.tick(at: at(61))?.rule == "max_runtime")
        _ = tracker.beat(.start, at: at(100))
        // Still down from the first overrun: the second one refreshes the reason but changes nothing.
        #expect(tracker.tick(at: at(161)) == nil)
        #expect(tracker.reason == "running for 1m1s, more than max_runtime 1m")
        #expect(tracker.decidingRule == "max_runtime")
    }

    @Test func withoutMaxRuntimeAStartedRunIsNotBound() {
        var tracker = HeartbeatTracker(service: "backup", check: HeartbeatCheck(every: .seconds(86_400)), startedAt: t0)
        _ = tracker.beat(.success, at: at(0))
        _ = tracker.beat(.start, at: at(10))
        #expect(tracker.runtimeLimit == nil)
        #expect(tracker.tick(at: at(86_000)) == nil)
        #expect(tracker.state == .up)
    }
}

/// A run still going when the agent stops is still going when it starts
/// again: its start survives in the snapshot, so neither its schedule nor
/// its max_runtime is lost.
@Suite(.enabled(if: haveZoneinfo, "needs the tzdata package (/usr/share/zoneinfo)"))
struct HeartbeatRestartTests {
    func config() throws -> VitalsConfig {
        try ConfigLoader.load(yaml: """
            services:
              backup: { heartbeat: { schedule: "0 3 * * *", tz: Europe/Berlin, grace: 30m, max_runtime: 2h } }
            """)
    }

    func tracker(_ core: AgentCore) -> HeartbeatTracker? {
        if case .heartbeat(let t)? = core.entry("backup")?.health { return t }
        return nil
    }

    @Test func aStartedRunSurvivesARestart() throws {
        var core = AgentCore(config: try config(), startedAt: utc("2026-12-01T12:00:00Z"))
        _ = try core.apply(.heartbeat(.success, service: "backup"), at: utc("2026-12-01T12:05:00Z"))
        _ = try core.apply(.heartbeat(.start, service: "backup"), at: utc("2026-12-02T02:00:03Z"))
        let saved = core.persistentSnapshot(at: utc("2026-12-02T02:10:00Z"))
        #expect(saved.runningSince == ["backup": utc("2026-12-02T02:00:03Z")])

        // Through the stored JSON, as the state directory keeps it.
        let data = try StoredJSON.encoder().encode(saved)
        let restored = try StoredJSON.decoder().decode(AgentSnapshot.self, from: data)
        var again = AgentCore(config: try config(), startedAt: utc("2026-12-02T02:10:00Z"), restoring: restored)
        #expect(tracker(again)?.runningSince == utc("2026-12-02T02:00:03Z"))
        #expect(tracker(again)?.due == utc("2026-12-03T02:00:00Z"), "the run that started before the restart is not missed")
        #expect(try again.apply(.tick, at: utc("2026-12-02T02:31:00Z")).isEmpty)
        let overrun = try again.apply(.tick, at: utc("2026-12-02T04:00:04Z"))
        #expect(overrun.map(\.rule) == ["max_runtime"])
    }

    @Test func aSnapshotFromBeforeRunsWereKeptStillLoads() throws {
        let old = #"{"savedAt":"2026-12-01T12:00:00.000Z","groups":{},"maintenance":{},"lastBeats":{},"lastKnown":{}}"#
        let snapshot = try StoredJSON.decoder().decode(AgentSnapshot.self, from: Data(old.utf8))
        #expect(snapshot.runningSince == nil)
    }
}
