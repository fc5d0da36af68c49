import Foundation
import Testing
import VitalsCore

// All time is passed in; nothing here sleeps or reads the system clock.

private let t0 = Date(timeIntervalSince1970: 1_800_000_000)
private func at(_ seconds: Double) -> Date { t0.addingTimeInterval(seconds) }

/// Every 60s with 10s grace: the first deadline is t0+70s.
private let hourlyish = HeartbeatCheck(every: .seconds(60), grace: .seconds(10))

@Suite struct HeartbeatTrackerTests {
    enum HeartbeatEvent: Sendable {
        case beat(BeatKind, Double, duration: Duration? = nil, exit: Int? = nil)
        case tick(Double)
    }

    struct ExpectedChange: Sendable, Equatable, CustomStringConvertible {
        var arrow: String
        var seconds: Double
        var reason: String
        var description: String { "\(arrow)@\(seconds) \(reason)" }
    }

    static func change(_ arrow: String, _ seconds: Double, _ reason: String) -> ExpectedChange {
        ExpectedChange(arrow: arrow, seconds: seconds, reason: reason)
    }

    struct HeartbeatCase: CustomTestStringConvertible, Sendable {
        var name: String
        var lastBeat: Double? = nil
        var events: [HeartbeatEvent]
        var changes: [ExpectedChange]
        var final: HealthState
        var testDescription: String { name }
    }

    static let heartbeatCases: [HeartbeatCase] = [
        .init(name: "no beat: unknown before the first deadline",
              events: [.tick(30), .tick(70)], changes: [], final: .unknown),
        .init(name: "no beat: down once the first deadline passes",
              events: [.tick(70), .tick(71)],
              changes: [change("unknown>down", 71, "no heartbeat since start (1m11s)")], final: .down),
        .init(name: "first beat: up at once",
              events: [.beat(.success, 5)],
              changes: [change("unknown>up", 5, "heartbeat received")], final: .up),
        .init(name: "beats on time keep it up",
              events: [.beat(.success, 5), .tick(65), .beat(.success, 60), .tick(120), .beat(.success, 125), .tick(185)],
              changes: [change("unknown>up", 5, "heartbeat received")], final: .up),
        .init(name: "late after every, then down after every plus grace",
              events: [.beat(.success, 5), .tick(65), .tick(66), .tick(75), .tick(76)],
              changes: [change("unknown>up", 5, "heartbeat received"),
                        change("up>degraded", 66, "late: no heartbeat for 1m1s (due every 1m; down after 10s more)"),
                        change("degraded>down", 76, "no heartbeat for 1m11s")], final: .down),
        .init(name: "a missed deadline is reported once",
              events: [.beat(.success, 5), .tick(76), .tick(90), .tick(500)],
              changes: [change("unknown>up", 5, "heartbeat received"),
                        change("up>down", 76, "no heartbeat for 1m11s")], final: .down),
        .init(name: "recovered: a beat after down is up at once",
              events: [.beat(.success, 5), .tick(76), .beat(.success, 80), .tick(140)],
              changes: [change("unknown>up", 5, "heartbeat received"),
                        change("up>down", 76, "no heartbeat for 1m11s"),
                        change("down>up", 80, "heartbeat received")], final: .up),
        .init(name: "fail report: down at once with the exit status",
              events: [.beat(.fail, 10, exit: 2)],
              changes: [change("unknown>down", 10, "job reported failure (exit 2)")], final: .down),
        .init(name: "fail report with exit status and duration",
              events: [.beat(.success, 5), .beat(.fail, 20, duration: .seconds(12), exit: 2)],
              changes: [change("unknown>up", 5, "heartbeat received"),
                        change("up>down", 20, "job reported failure (exit 2, after 12s)")], final: .down),
        .init(name: "fail report without details",
              events: [.beat(.fail, 10)],
              changes: [change("unknown>down", 10, "job reported failure")], final: .down),
        .init(name: "a success beat with a non-zero exit status is a failure",
              events: [.beat(.success, 10, exit: 1)],
              changes: [change("unknown>down", 10, "job reported failure (exit 1)")], final: .down),
        .init(name: "a success beat with exit 0 is a success",
              events: [.beat(.success, 10, exit: 0)],
              changes: [change("unknown>up", 10, "heartbeat received")], final: .up),
        .init(name: "recovered after a fail report",
              events: [.beat(.fail, 10, exit: 2), .beat(.success, 20, duration: .seconds(3))],
              changes: [change("unknown>down", 10, "job reported failure (exit 2)"),
                        change("down>up", 20, "job succeeded in 3s")], final: .up),
        .init(name: "a success after a fail report moves the deadline",
              events: [.beat(.fail, 10), .beat(.success, 12), .tick(81), .tick(83)],
              changes: [change("unknown>down", 10, "job reported failure"),
                        change("down>up", 12, "heartbeat received"),
                        change("up>degraded", 81, "late: no heartbeat for 1m9s (due every 1m; down after 10s more)"),
                        change("degraded>down", 83, "no heartbeat for 1m11s")], final: .down),
        .init(name: "start beat: no state change",
              events: [.beat(.start, 10)], changes: [], final: .unknown),
        .init(name: "start beat does not move the deadline",
              events: [.beat(.start, 65), .tick(71)],
              changes: [change("unknown>down", 71, "no heartbeat since start (1m11s)")], final: .down),
        .init(name: "start then success: the run's duration comes from the start beat",
              events: [.beat(.start, 10), .beat(.success, 25)],
              changes: [change("unknown>up", 25, "job succeeded in 15s")], final: .up),
        .init(name: "restored last beat: lateness and the deadline count from it",
              lastBeat: -30, events: [.tick(30), .tick(40), .tick(41)],
              changes: [change("unknown>degraded", 40, "late: no heartbeat for 1m10s (due every 1m; down after 10s more)"),
                        change("degraded>down", 41, "no heartbeat for 1m11s")], final: .down),
        .init(name: "restored last beat: unknown until a beat",
              lastBeat: -30, events: [.tick(30), .beat(.success, 35)],
              changes: [change("unknown>up", 35, "heartbeat received")], final: .up),
        .init(name: "restored last beat long ago: down at the first tick",
              lastBeat: -3600, events: [.tick(1)],
              changes: [change("unknown>down", 1, "no heartbeat for 1h1s")], final: .down),
    ]

    @Test("heartbeat transitions", arguments: HeartbeatTrackerTests.heartbeatCases)
    func heartbeatSequences(_ c: HeartbeatCase) {
        var tracker = HeartbeatTracker(service: "backup", check: hourlyish, startedAt: t0,
                                       lastBeat: c.lastBeat.map(at))
        var seen: [ExpectedChange] = []
        for event in c.events {
            let transition: HealthTransition?
            switch event {
            case let .beat(kind, seconds, duration, exit):
                transition = tracker.beat(kind, at: at(seconds), duration: duration, exitStatus: exit)
            case let .tick(seconds):
                transition = tracker.tick(at: at(seconds))
            }
            if let transition {
                #expect(transition.service == "backup")
                #expect(tracker.state == transition.to)
                #expect(tracker.since == transition.at)
                #expect(tracker.reason == transition.reason)
                seen.append(Self.change("\(transition.from.rawValue)>\(transition.to.rawValue)",
                                   transition.at.timeIntervalSince(t0), transition.reason))
            }
        }
        #expect(seen == c.changes)
        #expect(tracker.state == c.final)
    }

    // MARK: Late, as healthchecks.io has it: the period passed, the grace not yet

    /// A nightly job, as in etc/vitals.yaml: `every: 24h, grace: 30m`.
    static let nightly = HeartbeatCheck(every: .seconds(86_400), grace: .seconds(1800))

    static func utc(_ text: String) -> Date {
        // Fixed instants written out, so each case reads like the log it produces.
        try! Date(text, strategy: .iso8601)
    }

    struct LateCase: CustomTestStringConvertible, Sendable {
        var name: String
        var check: HeartbeatCheck = HeartbeatTrackerTests.nightly
        var startedAt = "2026-11-27T20:00:00Z"
        var lastBeat: String? = nil
        var restoredState: HealthState? = nil
        var events: [(String, String)]   // ("beat" | "fail" | "tick", ISO time)
        var changes: [String]            // "from>to@time rule: reason"
        var final: HealthState
        var testDescription: String { name }
    }

    static let lateCases: [LateCase] = [
        .init(name: "late after the period, then a beat: up again",
              events: [("beat", "2026-11-27T21:00:00Z"), ("tick", "2026-11-28T21:00:00Z"),
                       ("tick", "2026-11-28T21:05:00Z"), ("tick", "2026-11-28T21:06:00Z"),
                       ("beat", "2026-11-28T21:10:00Z")],
              changes: ["unknown>up@2026-11-27T21:00:00Z heartbeat: heartbeat received",
                        "up>degraded@2026-11-28T21:05:00Z late: late: no heartbeat for 1d5m (due every 1d; down after 30m more)",
                        "degraded>up@2026-11-28T21:10:00Z heartbeat: heartbeat received"],
              final: .up),
        .init(name: "late, then missed: down once the grace has passed too",
              events: [("beat", "2026-11-27T21:00:00Z"), ("tick", "2026-11-28T21:05:00Z"),
                       ("tick", "2026-11-28T21:30:00Z"), ("tick", "2026-11-28T21:30:01Z")],
              changes: ["unknown>up@2026-11-27T21:00:00Z heartbeat: heartbeat received",
                        "up>degraded@2026-11-28T21:05:00Z late: late: no heartbeat for 1d5m (due every 1d; down after 30m more)",
                        "degraded>down@2026-11-28T21:30:01Z heartbeat deadline: no heartbeat for 1d30m1s"],
              final: .down),
        .init(name: "grace 0: no late phase, down right after the period",
              check: HeartbeatCheck(every: .seconds(86_400)),
              events: [("beat", "2026-11-27T21:00:00Z"), ("tick", "2026-11-28T21:00:00Z"),
                       ("tick", "2026-11-28T21:00:01Z")],
              changes: ["unknown>up@2026-11-27T21:00:00Z heartbeat: heartbeat received",
                        "up>down@2026-11-28T21:00:01Z heartbeat deadline: no heartbeat for 1d1s"],
              final: .down),
        .init(name: "restart with a restored up state whose last beat is already late",
              startedAt: "2026-11-28T21:10:00Z", lastBeat: "2026-11-27T21:00:00Z", restoredState: .up,
              events: [("tick", "2026-11-28T21:10:00Z")],
              changes: ["up>degraded@2026-11-28T21:10:00Z late: late: no heartbeat for 1d10m (due every 1d; down after 30m more)"],
              final: .degraded),
        .init(name: "restart with only a last beat, already late: unknown becomes degraded",
              startedAt: "2026-11-28T21:10:00Z", lastBeat: "2026-11-27T21:00:00Z",
              events: [("tick", "2026-11-28T21:10:00Z"), ("tick", "2026-11-28T21:31:00Z")],
              changes: ["unknown>degraded@2026-11-28T21:10:00Z late: late: no heartbeat for 1d10m (due every 1d; down after 30m more)",
                        "degraded>down@2026-11-28T21:31:00Z heartbeat deadline: no heartbeat for 1d31m"],
              final: .down),
        .init(name: "no beat since start: unknown through the grace, no late phase",
              events: [("tick", "2026-11-28T20:05:00Z"), ("tick", "2026-11-28T20:30:01Z")],
              changes: ["unknown>down@2026-11-28T20:30:01Z heartbeat deadline: no heartbeat since start (1d30m1s)"],
              final: .down),
        .init(name: "a failed job stays down while late",
              events: [("fail", "2026-11-27T21:00:00Z"), ("tick", "2026-11-28T21:05:00Z"),
                       ("tick", "2026-11-28T21:31:00Z")],
              changes: ["unknown>down@2026-11-27T21:00:00Z failure report: job reported failure"],
              final: .down),
    ]

    @Test("late heartbeats", arguments: HeartbeatTrackerTests.lateCases)
    func lateSequences(_ c: LateCase) {
        let restored = c.restoredState.map { ServiceView(state: $0, since: Self.utc(c.lastBeat!), reason: "restored") }
        var tracker = HeartbeatTracker(service: "backup", check: c.check, startedAt: Self.utc(c.startedAt),
                                       lastBeat: c.lastBeat.map(Self.utc), restoring: restored)
        var seen: [String] = []
        for (input, time) in c.events {
            let now = Self.utc(time)
            let transition = switch input {
            case "beat": tracker.beat(.success, at: now)
            case "fail": tracker.beat(.fail, at: now)
            default: tracker.tick(at: now)
            }
            if let t = transition {
                #expect(tracker.decidingRule == t.rule)
                seen.append("\(t.from.rawValue)>\(t.to.rawValue)@\(time) \(t.rule): \(t.reason)")
            }
        }
        #expect(seen == c.changes)
        #expect(tracker.state == c.final)
    }

    /// Lateness is not a failure: the counts stay as the last beat left them.
    @Test func lateCountsNoFailure() throws {
        var tracker = HeartbeatTracker(service: "backup", check: Self.nightly, startedAt: Self.utc("2026-11-27T20:00:00Z"))
        _ = tracker.beat(.success, at: Self.utc("2026-11-27T21:00:00Z"))
        let lateChange = tracker.tick(at: Self.utc("2026-11-28T21:05:00Z"))
        let late = try #require(lateChange)
        #expect(late.rule == "late")
        #expect(late.consecutiveFailures == 0)
        #expect(late.consecutiveSuccesses == 1)
        #expect(tracker.deadline == Self.utc("2026-11-28T21:30:00Z"))
    }

    @Test func deadlineFollowsTheLastFinishedRun() {
        var tracker = HeartbeatTracker(service: "backup", check: hourlyish, startedAt: t0)
        #expect(tracker.deadline == at(70))
        _ = tracker.beat(.start, at: at(20))
        #expect(tracker.deadline == at(70))
        _ = tracker.beat(.success, at: at(30))
        #expect(tracker.deadline == at(100))
        _ = tracker.beat(.fail, at: at(50))
        #expect(tracker.deadline == at(120))

        let restored = HeartbeatTracker(service: "backup", check: hourlyish, startedAt: t0, lastBeat: at(-30))
        #expect(restored.deadline == at(40))
        #expect(restored.lastBeat == at(-30))
        #expect(restored.state == .unknown)
    }

    @Test func startBeatRecordsTheRunningJob() throws {
        var tracker = HeartbeatTracker(service: "backup", check: hourlyish, startedAt: t0)
        _ = tracker.beat(.success, at: at(5))
        #expect(tracker.runningSince == nil)
        let change1 = tracker.beat(.start, at: at(60))
        #expect(change1 == nil)
        #expect(tracker.runningSince == at(60))
        #expect(tracker.state == .up)
        #expect(tracker.lastBeat == at(5))

        let failedChange = tracker.beat(.fail, at: at(72), exitStatus: 3)
        let failed = try #require(failedChange)
        #expect(failed.reason == "job reported failure (exit 3, after 12s)")
        #expect(failed.rule == "failure report")
        #expect(tracker.runningSince == nil)
        #expect(tracker.lastDuration == .seconds(12))
        #expect(tracker.lastExitStatus == 3)
        #expect(tracker.lastBeat == at(72))
    }

    @Test func reportedDurationWinsOverTheStartBeat() {
        var tracker = HeartbeatTracker(service: "backup", check: hourlyish, startedAt: t0)
        _ = tracker.beat(.start, at: at(10))
        _ = tracker.beat(.success, at: at(40), duration: .seconds(25))
        #expect(tracker.lastDuration == .seconds(25))
        #expect(tracker.reason == "job succeeded in 25s")
    }

    @Test func rulesAndCounts() throws {
        var tracker = HeartbeatTracker(service: "backup", check: hourlyish, startedAt: t0)
        #expect(tracker.decidingRule == "awaiting first heartbeat")
        let upChange = tracker.beat(.success, at: at(5))
        let up = try #require(upChange)
        #expect(up.rule == "heartbeat")
        #expect(up.consecutiveSuccesses == 1)
        _ = tracker.beat(.success, at: at(10))
        #expect(tracker.consecutiveSuccesses == 2)
        let downChange = tracker.tick(at: at(81))
        let down = try #require(downChange)
        #expect(down == HealthTransition(service: "backup", from: .up, to: .down, at: at(81),
                                         reason: "no heartbeat for 1m11s", rule: "heartbeat deadline",
                                         consecutiveSuccesses: 0, consecutiveFailures: 1))
        #expect(tracker.decidingRule == "heartbeat deadline")
    }

    @Test func aLaterFailReportRefreshesTheReasonWithoutATransition() {
        var tracker = HeartbeatTracker(service: "backup", check: hourlyish, startedAt: t0)
        _ = tracker.beat(.fail, at: at(10), exitStatus: 2)
        let change2 = tracker.beat(.fail, at: at(20), exitStatus: 3)
        #expect(change2 == nil)
        #expect(tracker.reason == "job reported failure (exit 3)")
        #expect(tracker.since == at(10))
        #expect(tracker.consecutiveFailures == 2)
    }

    @Test func heartbeatMaintenance() throws {
        var tracker = HeartbeatTracker(service: "backup", check: hourlyish, startedAt: t0)
        _ = tracker.beat(.success, at: at(5))
        let onChange = tracker.setMaintenance(true, reason: "migrating", at: at(10))
        let on = try #require(onChange)
        #expect(on.to == .maintenance)
        #expect(on.reason == "migrating")
        let change3 = tracker.setMaintenance(true, reason: "still migrating", at: at(11))
        #expect(change3 == nil)
        #expect(tracker.reason == "still migrating")
        // Deadlines are still decided underneath, but reported state holds.
        let change4 = tracker.tick(at: at(76))
        #expect(change4 == nil)
        #expect(tracker.state == .maintenance)
        #expect(tracker.underlyingState == .down)
        let offChange = tracker.setMaintenance(false, reason: "", at: at(90))
        let off = try #require(offChange)
        #expect(off.from == .maintenance)
        #expect(off.to == .down)
        #expect(off.reason == "maintenance ended; no heartbeat for 1m11s")
        let change5 = tracker.setMaintenance(false, reason: "", at: at(91))
        #expect(change5 == nil)
        let change6 = tracker.beat(.success, at: at(95))
        #expect(change6?.to == .up)
    }
}
