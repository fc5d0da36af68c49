import Foundation
import Testing
import VitalsCore

// All time is passed in: results carry their own `time`, ticks take `at:`.
// Nothing here sleeps or reads the system clock.

private let t0 = Date(timeIntervalSince1970: 1_800_000_000)
private func at(_ seconds: Double) -> Date { t0.addingTimeInterval(seconds) }

private let failReason = "status 503, expected 200-299"
private let slowReason = "slow: 900ms over 500ms"
private let unsureReason = "UNKNOWN: cannot read /proc/mounts"

/// `+` ok, `~` degraded, `-` failed, `?` unknown.
private func result(_ symbol: Character, at time: Date) -> ProbeResult {
    switch symbol {
    case "+": return ProbeResult(time: time, latency: .milliseconds(20), outcome: .ok)
    case "~": return ProbeResult(time: time, latency: .milliseconds(900), outcome: .degraded, reason: slowReason)
    case "-": return ProbeResult(time: time, latency: .milliseconds(20), outcome: .failed, reason: failReason)
    case "?": return ProbeResult(time: time, latency: .milliseconds(20), outcome: .unknown, reason: unsureReason)
    default: preconditionFailure("unknown result symbol \(symbol)")
    }
}

private let noFlapping = FlapPolicy(changes: 0)

private func timing(rise: Int = 2, fall: Int = 3, fallWindow: FallWindow? = nil,
                    startPeriod: Duration = .zero, flapping: FlapPolicy = noFlapping) -> ProbeTiming {
    ProbeTiming(interval: .seconds(5), rise: rise, fall: fall, fastInterval: .seconds(1),
                startPeriod: startPeriod, fallWindow: fallWindow, flapping: flapping)
}

/// Feeds `sequence` to `tracker`, one result per second starting `from` seconds after t0.
@discardableResult
private func feed(_ tracker: inout HealthTracker, _ sequence: String, from start: Double = 1) -> [HealthTransition] {
    var transitions: [HealthTransition] = []
    for (i, symbol) in sequence.enumerated() {
        if let t = tracker.record(result(symbol, at: at(start + Double(i)))) {
            transitions.append(t)
        }
    }
    return transitions
}

private func arrows(_ transitions: [HealthTransition]) -> [String] {
    transitions.map { "\($0.from.rawValue)>\($0.to.rawValue)" }
}

/// rise 1, fall 1, more than 2 changes in 60s is flapping, settle 30s.
private let flappy = timing(rise: 1, fall: 1, flapping: FlapPolicy(changes: 2, window: .seconds(60), settle: .seconds(30)))

/// unknown>up at 1 (not counted), then changes at 2, 3, 4: the third is flapping.
private func startFlapping() -> (HealthTracker, [HealthTransition]) {
    var tracker = HealthTracker(service: "api", timing: flappy, startedAt: t0)
    let transitions = feed(&tracker, "+-+-", from: 1)
    return (tracker, transitions)
}

@Suite struct HealthTrackerTests {
    // MARK: - Rise, fall, window, soft conditions

    struct SequenceCase: CustomTestStringConvertible, Sendable {
        var name: String
        var sequence: String
        var timing: ProbeTiming
        var changes: [String]
        var final: HealthState
        var rule: String
        var testDescription: String { name }
    }

    static let sequenceCases: [SequenceCase] = [
        .init(name: "nothing recorded stays unknown", sequence: "",
              timing: timing(), changes: [], final: .unknown, rule: "awaiting rise 2 or fall 3"),
        .init(name: "one success is not enough from unknown", sequence: "+",
              timing: timing(), changes: [], final: .unknown, rule: "awaiting rise 2 or fall 3"),
        .init(name: "unknown to up after rise", sequence: "++",
              timing: timing(), changes: ["unknown>up"], final: .up, rule: "rise 2/2"),
        .init(name: "two failures are not enough from unknown", sequence: "--",
              timing: timing(), changes: [], final: .unknown, rule: "awaiting rise 2 or fall 3"),
        .init(name: "unknown to down after fall", sequence: "---",
              timing: timing(), changes: ["unknown>down"], final: .down, rule: "fall 3/3"),
        .init(name: "alternating results never decide from unknown", sequence: "+-+-+-+-",
              timing: timing(), changes: [], final: .unknown, rule: "awaiting rise 2 or fall 3"),
        .init(name: "unknown to degraded when the deciding success is degraded", sequence: "+~",
              timing: timing(), changes: ["unknown>degraded"], final: .degraded, rule: "rise 2/2"),
        .init(name: "degraded results count toward rise", sequence: "~+",
              timing: timing(), changes: ["unknown>up"], final: .up, rule: "rise 2/2"),
        .init(name: "up to down after exactly fall failures", sequence: "++---",
              timing: timing(), changes: ["unknown>up", "up>down"], final: .down, rule: "fall 3/3"),
        .init(name: "up stays up after fall-1 failures", sequence: "++--",
              timing: timing(), changes: ["unknown>up"], final: .up, rule: "rise 2/2"),
        .init(name: "a success resets the failure count", sequence: "++--+--",
              timing: timing(), changes: ["unknown>up"], final: .up, rule: "rise 2/2"),
        .init(name: "down to up after rise", sequence: "---++",
              timing: timing(), changes: ["unknown>down", "down>up"], final: .up, rule: "rise 2/2"),
        .init(name: "down stays down after rise-1 successes", sequence: "---+",
              timing: timing(), changes: ["unknown>down"], final: .down, rule: "fall 3/3"),
        .init(name: "a failure resets the success count", sequence: "---+-+",
              timing: timing(), changes: ["unknown>down"], final: .down, rule: "fall 3/3"),
        .init(name: "down to degraded after rise", sequence: "---+~",
              timing: timing(), changes: ["unknown>down", "down>degraded"], final: .degraded, rule: "rise 2/2"),
        .init(name: "up to degraded at once", sequence: "++~",
              timing: timing(), changes: ["unknown>up", "up>degraded"], final: .degraded,
              rule: "latest result degraded"),
        .init(name: "degraded back to up at once", sequence: "++~+",
              timing: timing(), changes: ["unknown>up", "up>degraded", "degraded>up"], final: .up,
              rule: "latest result ok"),
        .init(name: "degraded to down after fall", sequence: "~~---",
              timing: timing(), changes: ["unknown>degraded", "degraded>down"], final: .down, rule: "fall 3/3"),
        .init(name: "failures do not interrupt degraded before fall", sequence: "~~--~",
              timing: timing(), changes: ["unknown>degraded"], final: .degraded, rule: "rise 2/2"),
        .init(name: "rise 1 and fall 1 follow every result", sequence: "+-+",
              timing: timing(rise: 1, fall: 1), changes: ["unknown>up", "up>down", "down>up"], final: .up,
              rule: "rise 1/1"),
        .init(name: "without a fall window 1-0-1-0-1 stays up", sequence: "++-+-+-",
              timing: timing(), changes: ["unknown>up"], final: .up, rule: "rise 2/2"),
        .init(name: "fall window catches 1-0-1-0-1", sequence: "++-+-+-",
              timing: timing(fallWindow: .init(failures: 3, probes: 5)),
              changes: ["unknown>up", "up>down"], final: .down, rule: "fall_window 3 of 5"),
        .init(name: "fall window needs its failures count", sequence: "++-+-++-",
              timing: timing(fallWindow: .init(failures: 3, probes: 5)),
              changes: ["unknown>up"], final: .up, rule: "rise 2/2"),
        .init(name: "fall window decides from unknown", sequence: "-+-+-",
              timing: timing(fallWindow: .init(failures: 3, probes: 5)),
              changes: ["unknown>down"], final: .down, rule: "fall_window 3 of 5"),
        .init(name: "consecutive fall wins over the window when both hold", sequence: "++---",
              timing: timing(fallWindow: .init(failures: 3, probes: 5)),
              changes: ["unknown>up", "up>down"], final: .down, rule: "fall 3/3"),
        .init(name: "fall window restarts when the service rises", sequence: "---++-",
              timing: timing(fallWindow: .init(failures: 3, probes: 5)),
              changes: ["unknown>down", "down>up"], final: .up, rule: "rise 2/2"),
    ]

    @Test("rise, fall, fall window and soft conditions", arguments: HealthTrackerTests.sequenceCases)
    func sequences(_ c: SequenceCase) {
        var tracker = HealthTracker(service: "api", timing: c.timing, startedAt: t0)
        let transitions = feed(&tracker, c.sequence)
        #expect(arrows(transitions) == c.changes)
        #expect(tracker.state == c.final)
        #expect(tracker.decidingRule == c.rule)
        #expect(tracker.recentResults.count == c.sequence.count)
    }

    // MARK: - Unknown results

    struct UnknownCase: CustomTestStringConvertible, Sendable {
        var name: String
        var sequence: String
        var timing: ProbeTiming = HealthTrackerTests.plain
        var changes: [String]
        var final: HealthState
        var rule: String
        var reason: String
        /// (successes, failures, unknowns) in a row at the end.
        var counts: [Int]
        var testDescription: String { name }
    }

    static let plain = timing()
    static let ups = "2 consecutive successes"
    static let notYet = "awaiting rise 2 or fall 3"

    static let unknownCases: [UnknownCase] = [
        .init(name: "fewer than fall unknown results decide nothing", sequence: "??",
              changes: [], final: .unknown, rule: notYet, reason: "not probed yet", counts: [0, 0, 2]),
        .init(name: "fall unknown results from the start: unknown, for the plugin's reason", sequence: "???",
              changes: [], final: .unknown, rule: "unknown 3/3", reason: unsureReason, counts: [0, 0, 3]),
        .init(name: "unknown results break no success streak", sequence: "+?+",
              changes: ["unknown>up"], final: .up, rule: "rise 2/2", reason: ups, counts: [2, 0, 0]),
        .init(name: "unknown results do not count toward fall", sequence: "++-?-?",
              changes: ["unknown>up"], final: .up, rule: "rise 2/2", reason: ups, counts: [0, 2, 1]),
        .init(name: "unknown results break no failure streak", sequence: "++-?--",
              changes: ["unknown>up", "up>down"], final: .down, rule: "fall 3/3", reason: failReason,
              counts: [0, 3, 0]),
        .init(name: "unknown results are not in the fall window", sequence: "++-?-?",
              timing: timing(fallWindow: .init(failures: 3, probes: 5)),
              changes: ["unknown>up"], final: .up, rule: "rise 2/2", reason: ups, counts: [0, 2, 1]),
        .init(name: "up stays up after fall-1 unknown results", sequence: "++??",
              changes: ["unknown>up"], final: .up, rule: "rise 2/2", reason: ups, counts: [2, 0, 2]),
        .init(name: "up to unknown after fall unknown results", sequence: "++???",
              changes: ["unknown>up", "up>unknown"], final: .unknown, rule: "unknown 3/3", reason: unsureReason,
              counts: [0, 0, 3]),
        .init(name: "down to unknown after fall unknown results", sequence: "---???",
              changes: ["unknown>down", "down>unknown"], final: .unknown, rule: "unknown 3/3",
              reason: unsureReason, counts: [0, 0, 3]),
        .init(name: "degraded to unknown after fall unknown results", sequence: "~~???",
              changes: ["unknown>degraded", "degraded>unknown"], final: .unknown, rule: "unknown 3/3",
              reason: unsureReason, counts: [0, 0, 3]),
        .init(name: "a full rise again after unknown", sequence: "++???+",
              changes: ["unknown>up", "up>unknown"], final: .unknown, rule: "unknown 3/3", reason: unsureReason,
              counts: [1, 0, 0]),
        .init(name: "unknown to up after rise", sequence: "++???++",
              changes: ["unknown>up", "up>unknown", "unknown>up"], final: .up, rule: "rise 2/2", reason: ups,
              counts: [2, 0, 0]),
        .init(name: "unknown to down after fall", sequence: "++???---",
              changes: ["unknown>up", "up>unknown", "unknown>down"], final: .down, rule: "fall 3/3",
              reason: failReason, counts: [0, 3, 0]),
        .init(name: "changes into and out of unknown are not flapping", sequence: "+?+?+?+",
              timing: flappy, changes: ["unknown>up", "up>unknown", "unknown>up", "up>unknown", "unknown>up",
                                        "up>unknown", "unknown>up"],
              final: .up, rule: "rise 1/1", reason: "1 consecutive successes", counts: [1, 0, 0]),
    ]

    @Test("unknown results", arguments: HealthTrackerTests.unknownCases)
    func unknownResults(_ c: UnknownCase) {
        var tracker = HealthTracker(service: "api", timing: c.timing, startedAt: t0)
        let transitions = feed(&tracker, c.sequence)
        #expect(arrows(transitions) == c.changes)
        #expect(tracker.state == c.final)
        #expect(tracker.decidingRule == c.rule)
        #expect(tracker.reason == c.reason)
        #expect([tracker.consecutiveSuccesses, tracker.consecutiveFailures, tracker.consecutiveUnknowns] == c.counts)
    }

    @Test func goingUnknownCarriesThePluginsReasonAndTime() throws {
        var tracker = HealthTracker(service: "api", timing: timing(), startedAt: t0)
        let change = try #require(feed(&tracker, "++???").last)
        #expect(change == HealthTransition(service: "api", from: .up, to: .unknown, at: at(5),
                                           reason: unsureReason, rule: "unknown 3/3",
                                           consecutiveSuccesses: 0, consecutiveFailures: 0))
        #expect(tracker.since == at(5))
        #expect(tracker.lastResult?.outcome == .unknown)
    }

    @Test func anUnknownResultWithoutReasonSaysSo() {
        var tracker = HealthTracker(service: "api", timing: timing(fall: 1), startedAt: t0)
        _ = tracker.record(ProbeResult(time: at(1), latency: nil, outcome: .unknown))
        #expect(tracker.reason == "probe result unknown")
    }

    @Test func maintenanceHidesGoingUnknownAndEndsOnIt() throws {
        var tracker = HealthTracker(service: "api", timing: timing(), startedAt: t0)
        feed(&tracker, "++")
        _ = tracker.setMaintenance(true, reason: "kernel update", at: at(3))
        #expect(feed(&tracker, "???", from: 4).isEmpty)
        #expect(tracker.underlyingState == .unknown)
        let endedChange = tracker.setMaintenance(false, reason: "", at: at(7))
        let ended = try #require(endedChange)
        #expect(ended.to == .unknown)
        #expect(ended.reason == "maintenance ended; \(unsureReason)")
    }

    @Test func transitionsCarryReasonsCountsAndTimes() throws {
        var tracker = HealthTracker(service: "api", timing: timing(), startedAt: t0)
        let ups = feed(&tracker, "++", from: 1)
        let up = try #require(ups.first)
        #expect(up == HealthTransition(service: "api", from: .unknown, to: .up, at: at(2),
                                       reason: "2 consecutive successes", rule: "rise 2/2",
                                       consecutiveSuccesses: 2, consecutiveFailures: 0))
        #expect(tracker.since == at(2))

        let degradedChange = tracker.record(result("~", at: at(3)))
        let degraded = try #require(degradedChange)
        #expect(degraded.reason == slowReason)
        #expect(degraded.rule == "latest result degraded")
        #expect(tracker.reason == slowReason)

        #expect(feed(&tracker, "--", from: 4).isEmpty)
        let downChange = tracker.record(result("-", at: at(6)))
        let down = try #require(downChange)
        #expect(down == HealthTransition(service: "api", from: .degraded, to: .down, at: at(6),
                                         reason: failReason, rule: "fall 3/3",
                                         consecutiveSuccesses: 0, consecutiveFailures: 3))
        #expect(tracker.since == at(6))
        #expect(tracker.reason == failReason)
        #expect(tracker.consecutiveFailures == 3)
        #expect(tracker.consecutiveSuccesses == 0)
        #expect(tracker.lastResult?.time == at(6))
    }

    @Test func degradedRiseCarriesTheSoftReason() throws {
        var tracker = HealthTracker(service: "api", timing: timing(), startedAt: t0)
        let t = try #require(feed(&tracker, "+~").first)
        #expect(t.to == .degraded)
        #expect(t.reason == "\(slowReason) (2 consecutive successes)")
    }

    @Test func failureWithoutReasonSaysProbeFailed() throws {
        var tracker = HealthTracker(service: "api", timing: timing(fall: 1), startedAt: t0)
        let tChange = tracker.record(ProbeResult(time: at(1), latency: nil, outcome: .failed))
        let t = try #require(tChange)
        #expect(t.reason == "probe failed")
    }

    // MARK: - Start period

    struct StartPeriodCase: CustomTestStringConvertible, Sendable {
        var name: String
        /// (seconds after start, symbol)
        var results: [Pair]
        var changes: [String]
        var final: HealthState
        var failures: Int
        var testDescription: String { name }

        struct Pair: Sendable {
            var seconds: Double
            var symbol: Character
        }
    }

    static func pairs(_ items: (Double, Character)...) -> [StartPeriodCase.Pair] {
        items.map { .init(seconds: $0.0, symbol: $0.1) }
    }

    static let startPeriodCases: [StartPeriodCase] = [
        .init(name: "failures during the start period do not count",
              results: pairs((1, "-"), (2, "-"), (3, "-"), (4, "-"), (9, "-")),
              changes: [], final: .unknown, failures: 0),
        .init(name: "failures count from the end of the start period",
              results: pairs((1, "-"), (2, "-"), (9, "-"), (10, "-"), (11, "-"), (12, "-")),
              changes: ["unknown>down"], final: .down, failures: 3),
        .init(name: "two early failures and two counted ones are not a fall",
              results: pairs((8, "-"), (9, "-"), (10, "-"), (11, "-")),
              changes: [], final: .unknown, failures: 2),
        .init(name: "successes during the start period count toward rise",
              results: pairs((1, "+"), (2, "+")),
              changes: ["unknown>up"], final: .up, failures: 0),
        .init(name: "an ignored failure still breaks a success streak",
              results: pairs((1, "+"), (2, "-"), (3, "+")),
              changes: [], final: .unknown, failures: 0),
        .init(name: "the start period ends early once the service rises",
              results: pairs((1, "+"), (2, "+"), (3, "-"), (4, "-"), (5, "-")),
              changes: ["unknown>up", "up>down"], final: .down, failures: 3),
    ]

    @Test("start period", arguments: HealthTrackerTests.startPeriodCases)
    func startPeriod(_ c: StartPeriodCase) {
        var tracker = HealthTracker(service: "api", timing: timing(startPeriod: .seconds(10)), startedAt: t0)
        var transitions: [HealthTransition] = []
        for pair in c.results {
            if let t = tracker.record(result(pair.symbol, at: at(pair.seconds))) { transitions.append(t) }
        }
        #expect(arrows(transitions) == c.changes)
        #expect(tracker.state == c.final)
        #expect(tracker.consecutiveFailures == c.failures)
        // Ignored results are still shown.
        #expect(tracker.recentResults.count == c.results.count)
    }

    // MARK: - Flapping

    @Test func flappingEntersAfterMoreThanChangesWithinWindow() throws {
        let (tracker, transitions) = startFlapping()
        #expect(arrows(transitions) == ["unknown>up", "up>down", "down>up", "up>flapping"])
        let flap = try #require(transitions.last)
        #expect(flap.reason == "3 state changes in 1m")
        #expect(flap.rule == "flapping: 3 changes in 1m")
        #expect(flap.at == at(4))
        #expect(tracker.state == .flapping)
        #expect(tracker.underlyingState == .down)
        #expect(tracker.decidingRule == "flapping: 3 changes in 1m")
        #expect(!tracker.state.isServing)
    }

    @Test func exactlyChangesIsNotFlapping() {
        var tracker = HealthTracker(service: "api", timing: flappy, startedAt: t0)
        let transitions = feed(&tracker, "+-+", from: 1)
        #expect(arrows(transitions) == ["unknown>up", "up>down", "down>up"])
        #expect(tracker.state == .up)
    }

    @Test func upDegradedSwitchesCountAsChanges() {
        var tracker = HealthTracker(service: "api", timing: flappy, startedAt: t0)
        let transitions = feed(&tracker, "+~+~", from: 1)
        #expect(arrows(transitions) == ["unknown>up", "up>degraded", "degraded>up", "up>flapping"])
    }

    @Test func changesOutsideTheWindowDoNotCount() {
        var tracker = HealthTracker(service: "api", timing: flappy, startedAt: t0)
        var transitions: [HealthTransition] = []
        // Changes at 2 and 3, then 70 and 71, then 140: never more than two within 60s,
        // though five in all.
        for (seconds, symbol) in [(1.0, "+"), (2, "-"), (3, "+"), (70, "-"), (71, "+"), (140, "-")] as [(Double, Character)] {
            if let t = tracker.record(result(symbol, at: at(seconds))) { transitions.append(t) }
        }
        #expect(transitions.count == 6)
        #expect(!transitions.contains { $0.to == .flapping })
        #expect(tracker.state == .down)
    }

    @Test func zeroChangesDisablesFlapping() {
        var tracker = HealthTracker(service: "api", timing: timing(rise: 1, fall: 1), startedAt: t0)
        let transitions = feed(&tracker, "+-+-+-+-+-", from: 1)
        #expect(transitions.count == 10)
        #expect(!transitions.contains { $0.to == .flapping })
    }

    @Test func flappingLeavesAfterSettleOnTick() throws {
        var (tracker, _) = startFlapping() // underlying down since 4
        let change1 = tracker.tick(at: at(33))
        #expect(change1 == nil)
        #expect(tracker.state == .flapping)
        let settledChange = tracker.tick(at: at(34))
        let settled = try #require(settledChange)
        #expect(settled.from == .flapping)
        #expect(settled.to == .down)
        #expect(settled.at == at(34))
        #expect(settled.reason == "held down for 30s after flapping; \(failReason)")
        #expect(tracker.decidingRule == "settle 30s; fall 1/1")
        let change2 = tracker.tick(at: at(35))
        #expect(change2 == nil)
    }

    @Test func flappingLeavesAfterSettleOnRecord() throws {
        var (tracker, _) = startFlapping()
        let change3 = tracker.record(result("-", at: at(20)))
        #expect(change3 == nil)
        let settledChange = tracker.record(result("-", at: at(34)))
        let settled = try #require(settledChange)
        #expect(arrows([settled]) == ["flapping>down"])
    }

    @Test func anUnderlyingChangeRestartsTheSettleClock() throws {
        var (tracker, _) = startFlapping()
        #expect(tracker.record(result("+", at: at(10))) == nil) // underlying up since 10, still flapping
        #expect(tracker.state == .flapping)
        let change4 = tracker.tick(at: at(34))
        #expect(change4 == nil)
        let settledChange = tracker.tick(at: at(40))
        let settled = try #require(settledChange)
        #expect(arrows([settled]) == ["flapping>up"])
    }

    @Test func afterSettlingChangesAreCountedAfresh() {
        var (tracker, _) = startFlapping()
        _ = tracker.tick(at: at(34))
        // Two more changes within the 60s window of the earlier ones: not flapping again.
        let transitions = feed(&tracker, "+-", from: 35)
        #expect(arrows(transitions) == ["down>up", "up>down"])
        #expect(tracker.state == .down)
    }

    // MARK: - Maintenance

    @Test func maintenanceHoldsStateAndReturnsToWhatResultsImply() throws {
        var tracker = HealthTracker(service: "api", timing: timing(), startedAt: t0)
        feed(&tracker, "++", from: 1)

        let onChange = tracker.setMaintenance(true, reason: "kernel upgrade", at: at(3))
        let on = try #require(onChange)
        #expect(on == HealthTransition(service: "api", from: .up, to: .maintenance, at: at(3),
                                       reason: "kernel upgrade", rule: "maintenance",
                                       consecutiveSuccesses: 2, consecutiveFailures: 0))
        #expect(tracker.isInMaintenance)
        #expect(tracker.decidingRule == "maintenance")

        // Results are still counted, but the reported state holds.
        #expect(feed(&tracker, "----", from: 4).isEmpty)
        #expect(tracker.state == .maintenance)
        #expect(tracker.underlyingState == .down)
        #expect(tracker.consecutiveFailures == 4)
        #expect(tracker.recentResults.count == 6)
        #expect(tracker.nextProbeDelayHint == .normal)

        let offChange = tracker.setMaintenance(false, reason: "", at: at(10))
        let off = try #require(offChange)
        #expect(arrows([off]) == ["maintenance>down"])
        #expect(off.reason == "maintenance ended; \(failReason)")
        #expect(off.rule == "fall 3/3")
        #expect(!tracker.isInMaintenance)
        #expect(tracker.since == at(10))
    }

    @Test func maintenanceRepeatedAndRedundantCalls() {
        var tracker = HealthTracker(service: "api", timing: timing(), startedAt: t0)
        let change5 = tracker.setMaintenance(false, reason: "", at: at(1))
        #expect(change5 == nil)
        let change6 = tracker.setMaintenance(true, reason: "", at: at(2))
        #expect(change6?.reason == "maintenance")
        let change7 = tracker.setMaintenance(true, reason: "disk swap", at: at(3))
        #expect(change7 == nil)
        #expect(tracker.reason == "disk swap")
        #expect(tracker.since == at(2))
        // Nothing recorded: back to unknown.
        let off = tracker.setMaintenance(false, reason: "", at: at(4))
        #expect(off.map { arrows([$0]) } == ["maintenance>unknown"])
    }

    @Test func maintenanceClearsFlapping() throws {
        var (tracker, _) = startFlapping()
        let onChange = tracker.setMaintenance(true, reason: "investigating", at: at(5))
        let on = try #require(onChange)
        #expect(arrows([on]) == ["flapping>maintenance"])
        // No flapping detection during maintenance, and settle does not apply.
        #expect(feed(&tracker, "+-+-+-", from: 6).isEmpty)
        let change8 = tracker.tick(at: at(100))
        #expect(change8 == nil)
        let offChange = tracker.setMaintenance(false, reason: "", at: at(101))
        let off = try #require(offChange)
        #expect(arrows([off]) == ["maintenance>down"])
        // Counting starts afresh after maintenance: two changes are not flapping.
        #expect(arrows(feed(&tracker, "+-", from: 102)) == ["down>up", "up>down"])
    }

    // MARK: - Recent results

    @Test func recentResultsKeepTheLastTwenty() throws {
        var tracker = HealthTracker(service: "api", timing: timing(), startedAt: t0)
        feed(&tracker, String(repeating: "+", count: 25), from: 1)
        let recent = tracker.recentResults
        #expect(recent.count == HealthTracker.recentCapacity)
        #expect(recent.count == 20)
        #expect(recent.first?.time == at(6))
        #expect(recent.last?.time == at(25))
        #expect(recent.map(\.time) == (6...25).map { at(Double($0)) })
        #expect(tracker.lastResult?.time == at(25))
    }

    @Test func recentResultsBelowCapacityAreInOrder() {
        var tracker = HealthTracker(service: "api", timing: timing(), startedAt: t0)
        feed(&tracker, "+-~", from: 1)
        #expect(tracker.recentResults.map(\.outcome) == [.ok, .failed, .degraded])
        #expect(tracker.lastResult?.outcome == .degraded)
    }

    // MARK: - Probe delay hint

    struct HintCase: CustomTestStringConvertible, Sendable {
        var sequence: String
        var hint: ProbeDelayHint
        var testDescription: String { "\"\(sequence)\" -> \(hint)" }
    }

    static let hintCases: [HintCase] = [
        .init(sequence: "", hint: .normal),
        .init(sequence: "+", hint: .fast),     // unknown, confirming up
        .init(sequence: "-", hint: .fast),     // unknown, confirming down
        .init(sequence: "++", hint: .normal),  // up, settled
        .init(sequence: "++-", hint: .fast),   // up, first failure
        .init(sequence: "++--", hint: .fast),
        .init(sequence: "++-+", hint: .normal),
        .init(sequence: "++~", hint: .normal), // degraded is settled
        .init(sequence: "---", hint: .normal), // down, settled
        .init(sequence: "---+", hint: .fast),  // down, first success
        .init(sequence: "---++", hint: .normal),
        .init(sequence: "---+-", hint: .normal),
        .init(sequence: "++?", hint: .fast),   // up, unknown results adding up
        .init(sequence: "---?", hint: .fast),  // down, likewise
        .init(sequence: "??", hint: .normal),  // unknown: nothing to confirm
        .init(sequence: "++???", hint: .normal), // unknown, settled
        .init(sequence: "++?+", hint: .normal),
    ]

    @Test("next probe delay hint", arguments: HealthTrackerTests.hintCases)
    func probeDelayHint(_ c: HintCase) {
        var tracker = HealthTracker(service: "api", timing: timing(), startedAt: t0)
        feed(&tracker, c.sequence)
        #expect(tracker.nextProbeDelayHint == c.hint)
        #expect(tracker.nextProbeDelay == (c.hint == .fast ? .seconds(1) : .seconds(5)))
    }

    @Test func hintIsNormalForIgnoredStartupFailuresAndWhileFlapping() {
        var starting = HealthTracker(service: "api", timing: timing(startPeriod: .seconds(10)), startedAt: t0)
        feed(&starting, "-")
        #expect(starting.nextProbeDelayHint == .normal)

        let (flapping, _) = startFlapping()
        #expect(flapping.nextProbeDelayHint == .normal)
    }

    @Test func fastIntervalDefaultsToInterval() {
        var tracker = HealthTracker(service: "api", timing: ProbeTiming(interval: .seconds(3)), startedAt: t0)
        feed(&tracker, "+")
        #expect(tracker.nextProbeDelayHint == .fast)
        #expect(tracker.nextProbeDelay == .seconds(3))
    }
}
