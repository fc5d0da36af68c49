import Foundation
import Testing
@testable import VitalsCore

/// Bucketing, merging and uptime arithmetic: pure code, a manual clock's worth of dates, no I/O.
@Suite struct HistoryAggregationTests {
    /// 2027-01-15T10:00:00Z, an hour boundary.
    static let t0 = Date(timeIntervalSince1970: 1_800_007_200)

    static func result(_ at: Date, _ outcome: ProbeOutcome, ms: Int64? = 20) -> ProbeResult {
        ProbeResult(time: at, latency: ms.map { .milliseconds($0) }, outcome: outcome)
    }

    @Test func resultsLandInTheMinuteOfTheirTimestamp() {
        var agg = HistoryAggregator()
        let t0 = Self.t0
        agg.record(Self.result(t0.addingTimeInterval(5), .ok, ms: 10), service: "api")
        agg.record(Self.result(t0.addingTimeInterval(59.999), .failed, ms: 5000), service: "api")
        agg.record(Self.result(t0.addingTimeInterval(30), .degraded, ms: 300), service: "api")
        agg.record(Self.result(t0.addingTimeInterval(31), .unknown), service: "api")
        agg.record(Self.result(t0.addingTimeInterval(60), .ok), service: "api")
        agg.record(Self.result(t0.addingTimeInterval(10), .ok), service: "db")

        // During the next minute, only the finished one is taken.
        let drained = agg.drain(now: t0.addingTimeInterval(61))
        #expect(drained.map(\.service) == ["api", "db"])
        let api = drained[0]
        #expect(api.start == Int64(t0.timeIntervalSince1970))
        #expect(api.length == 60)
        #expect(api.probes == 3) // the unknown one says nothing of the service
        #expect(api.failures == 1)
        #expect(api.degraded == 1)
        #expect(api.minutes == 1)
        #expect(abs(api.upMinutes - 2.0 / 3.0) < 1e-9)
        // A failure's latency is its timeout: left out of the latency figures.
        #expect(api.latencyCount == 2)
        #expect(api.latencyMinUs == 10_000)
        #expect(api.latencyMaxUs == 300_000)
        #expect(api.latencySumUs == 310_000)
        #expect(api.state == .partial)
        #expect(agg.pendingCount == 1)

        let rest = agg.drain(now: t0.addingTimeInterval(61), all: true)
        #expect(rest.map(\.start) == [Int64(t0.timeIntervalSince1970) + 60])
        #expect(agg.pendingCount == 0)
    }

    @Test func bucketsAreUTCSoDaylightSavingNeverFoldsAnHour() {
        // Europe/Berlin fell back at 2026-10-25T01:00:00Z: local 02:00-03:00 came twice.
        let change = Date(timeIntervalSince1970: 1_792_890_000)
        var agg = HistoryAggregator()
        for minute in -120..<60 {
            agg.record(Self.result(change.addingTimeInterval(Double(minute * 60) + 1), .ok), service: "api")
        }
        let buckets = agg.drain(now: change.addingTimeInterval(3 * 3600), all: true)
        #expect(buckets.count == 180)
        #expect(zip(buckets, buckets.dropFirst()).allSatisfy { $1.start - $0.start == 60 })
        let hours = Set(buckets.map { HistoryBucket.floorStart($0.start, length: 3600) })
        #expect(hours.count == 3)
    }

    @Test func aClockSteppedBackwardsWritesIntoTheEarlierMinute() {
        let clock = (now: Self.t0.addingTimeInterval(10 * 60 + 5), back: Self.t0.addingTimeInterval(5 * 60 + 5))
        var agg = HistoryAggregator()
        agg.record(Self.result(clock.now, .ok), service: "api")
        // The wall clock steps back five minutes: the next result is stamped earlier.
        agg.record(Self.result(clock.back, .failed), service: "api")
        // The minute `now` is in stays open, even when earlier ones are newer in arrival.
        let first = agg.drain(now: clock.back)
        #expect(first.map(\.start) == [Int64(clock.now.timeIntervalSince1970) - 5])
        let second = agg.drain(now: clock.now.addingTimeInterval(60))
        #expect(second.map(\.start) == [Int64(clock.back.timeIntervalSince1970) - 5])
        #expect(second[0].failures == 1)
    }

    @Test func aMinuteWrittenTwiceIsStillOneMinuteInItsHour() {
        let start = Int64(Self.t0.timeIntervalSince1970)
        var first = HistoryBucket(service: "api", start: start, length: 60)
        first.add(.ok, latencyUs: 10)
        var second = HistoryBucket(service: "api", start: start, length: 60)
        second.add(.failed, latencyUs: nil)

        let a = HistoryBucket.write(first, over: nil)
        #expect(a.minute == first)
        #expect(a.hourDelta.minutes == 1)
        #expect(a.hourDelta.upMinutes == 1)
        let b = HistoryBucket.write(second, over: a.minute)
        #expect(b.minute.probes == 2)
        #expect(b.minute.minutes == 1)
        #expect(b.minute.upMinutes == 0.5)
        // The hour gains the new probe, no new minute, and loses half an up-minute.
        #expect(b.hourDelta.probes == 1)
        #expect(b.hourDelta.minutes == 0)
        #expect(b.hourDelta.upMinutes == -0.5)
        let hour = a.hourDelta.merged(with: b.hourDelta)
        #expect(hour.minutes == 1 && hour.upMinutes == 0.5 && hour.probes == 2 && hour.latencyCount == 1)
    }

    /// Minutes 0-3 up, minute 4 half up (one of two probes failed), minutes
    /// 5-6 without data (agent stopped), minutes 7-9 down.
    static func tenMinutes() -> [HistoryBucket] {
        let start = Int64(t0.timeIntervalSince1970)
        var buckets: [HistoryBucket] = []
        for minute in 0..<10 where minute != 5 && minute != 6 {
            var b = HistoryBucket(service: "api", start: start + Int64(minute) * 60, length: 60)
            switch minute {
            case 0...3: b.add(.ok, latencyUs: 10)
            case 4: b.add(.ok, latencyUs: 10); b.add(.failed, latencyUs: nil)
            default: b.add(.failed, latencyUs: nil)
            }
            buckets.append(b)
        }
        return buckets
    }

    @Test func uptimeLeavesOutMinutesWithoutDataAndReportsThem() {
        let start = Int64(Self.t0.timeIntervalSince1970)
        let figure = Uptime.compute(Self.tenMinutes(), from: start, to: start + 600, length: 60)
        // 4 + 0.5 + 0 up-minutes out of 8 minutes with data.
        #expect(figure.ratio == 4.5 / 8)
        #expect(figure.observedSeconds == 480)
        #expect(figure.upSeconds == 270)
        #expect(figure.downSeconds == 210)
        #expect(figure.noDataSeconds == 120)
        #expect(figure.gaps == [.init(from: start + 300, to: start + 420)])

        // Over the first five minutes only: 4.5 of 5.
        let early = Uptime.compute(Self.tenMinutes(), from: start, to: start + 300, length: 60)
        #expect(early.ratio == 0.9)
        #expect(early.noDataSeconds == 0)
        #expect(early.gaps == [])

        // A span before anything was recorded: no ratio, all of it no data.
        let before = Uptime.compute(Self.tenMinutes(), from: start - 600, to: start, length: 60)
        #expect(before.ratio == nil)
        #expect(before.noDataSeconds == 600)
        #expect(before.gaps == [.init(from: start - 600, to: start)])

        // An unaligned start takes in its whole minute.
        let unaligned = Uptime.compute(Self.tenMinutes(), from: start + 30, to: start + 120, length: 60)
        #expect(unaligned.from == start && unaligned.to == start + 120)
        #expect(unaligned.ratio == 1)
        #expect(unaligned.noDataSeconds == 0)
    }

    @Test func hourUptimeIsTheSumOfItsMinutes() {
        let start = Int64(Self.t0.timeIntervalSince1970)
        let hour = Self.tenMinutes().map { HistoryBucket.write($0, over: nil).hourDelta }.reduce(
            HistoryBucket(service: "api", start: start, length: 3600)) { $0.merged(with: $1) }
        #expect(hour.minutes == 8)
        #expect(hour.upMinutes == 4.5)
        let figure = Uptime.compute([hour], from: start, to: start + 3600, length: 3600)
        #expect(figure.ratio == 4.5 / 8)
        #expect(figure.noDataSeconds == 3600 - 480)
        #expect(figure.gaps == nil)
        // The hour in progress, 10 minutes in: its future is not "no data".
        let inProgress = Uptime.compute([hour], from: start, to: start + 600, length: 3600)
        #expect(inProgress.noDataSeconds == 120)
    }

    @Test func seriesHasOnePointPerStepWithDataOrNot() {
        let start = Int64(Self.t0.timeIntervalSince1970)
        let points = HistorySeries.points(Self.tenMinutes(), service: "api", from: start, to: start + 600, step: 120)
        #expect(points.map(\.time) == [0, 120, 240, 360, 480].map { start + $0 })
        #expect(points.map(\.state) == [.up, .up, .partial, .down, .down])
        // Minutes 4 (half up) and 5 (no data): one minute with data, half up.
        #expect(points[2].uptime == 0.5)
        let minutes = HistorySeries.points(Self.tenMinutes(), service: "api", from: start, to: start + 600, step: 60)
        #expect(minutes[5].state == .noData && minutes[5].uptime == nil)
    }

    @Test func percentilesComeFromTheHistogramWithinObservedBounds() {
        var b = HistoryBucket(service: "api", start: 0, length: 60)
        for ms in 1...100 { b.add(.ok, latencyUs: Int64(ms) * 1000) }
        let point = HistoryPoint(time: 0, step: 60, bucket: b)
        let p50 = point.latencyUs(0.5)!, p99 = point.latencyUs(0.99)!
        #expect(p50 >= 25_000 && p50 <= 50_000)
        #expect(p99 > 50_000 && p99 <= 100_000)
        #expect(point.latencyUs(1.0) == 100_000)
        #expect(point.latencyAverageUs == 50_500)
        #expect(HistoryPoint(time: 0, step: 60, bucket: HistoryBucket(service: "x", start: 0, length: 60)).latencyUs(0.5) == nil)
        // Under a millisecond (a probe on loopback) is still a latency.
        var fast = HistoryBucket(service: "api", start: 0, length: 60)
        fast.add(.ok, latencyUs: 180)
        fast.add(.ok, latencyUs: 220)
        let median = HistoryPoint(time: 0, step: 60, bucket: fast).latencyUs(0.5)!
        #expect(median >= 180 && median <= 220)
    }

    @Test func outagesRunFromDownToServing() {
        var tracker = OutageTracker()
        let t0 = Self.t0
        func change(_ to: HealthState, _ at: Double, _ reason: String = "") -> AgentEvent {
            AgentEvent(id: 1, time: t0.addingTimeInterval(at), kind: .stateChange, service: "api", from: "up",
                       to: to.rawValue, reason: reason)
        }
        #expect(tracker.apply(change(.degraded, 0)) == [])
        let opened = tracker.apply(change(.down, 10, "status 503"))
        #expect(opened == [.opened(Outage(service: "api", start: t0.addingTimeInterval(10), reason: "status 503"))])
        #expect(tracker.apply(change(.flapping, 20)) == []) // still the same outage
        let closed = tracker.apply(change(.up, 70))
        #expect(closed == [.closed(Outage(service: "api", start: t0.addingTimeInterval(10), end: t0.addingTimeInterval(70),
                                          reason: "status 503"))])
        #expect(closed.first.flatMap { if case .closed(let o) = $0 { o.duration } else { nil } } == .seconds(60))
        #expect(tracker.open.isEmpty)
    }
}
