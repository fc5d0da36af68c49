import Foundation
import Synchronization
import Testing
@testable import VitalsHistory
@testable import VitalsCore
import VitalsTestKit

/// `history.sqlite` for real: flushes, hours rolled from minutes, retention,
/// a restart, and a damaged file. The writer is driven by `flush()` and a
/// manual clock rather than its thread.
@Suite struct HistoryStoreTests {
    static let t0 = Date(timeIntervalSince1970: 1_800_007_200)

    final class Warnings: Sendable {
        let lines = Mutex<[String]>([])
        func add(_ line: String) { lines.withLock { $0.append(line) } }
        var all: [String] { lines.withLock { $0 } }
    }

    static func result(_ at: Date, _ outcome: ProbeOutcome, ms: Int64 = 20) -> ProbeResult {
        ProbeResult(time: at, latency: .milliseconds(ms), outcome: outcome)
    }

    @Test func flushedMinutesAreReadBackAndRolledIntoHours() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let clock = ManualClock(Self.t0)
        let warnings = Warnings()
        let recorder = HistoryRecorder(stateDir: scratch.path, clock: clock, warn: warnings.add)
        recorder.open()
        // 90 minutes: every 10 s a result; minutes 30-39 fail.
        for second in stride(from: 0, to: 90 * 60, by: 10) {
            clock.set(Self.t0.addingTimeInterval(Double(second)))
            let failing = (30 * 60..<40 * 60).contains(second)
            recorder.record(Self.result(clock.now(), failing ? .failed : .ok), service: "api")
            if second % 60 == 0 { recorder.flush() }
        }
        clock.set(Self.t0.addingTimeInterval(90 * 60))
        recorder.flush()
        #expect(warnings.all == [])
        #expect(recorder.lastFlush?.buckets == 1)

        let start = Int64(Self.t0.timeIntervalSince1970)
        try recorder.read { q throws(SQLiteError) in
            let minutes = try HistoryDatabase.buckets(service: "api", from: start, to: start + 5400, length: 60, db: q.db)
            #expect(minutes.count == 90)
            #expect(minutes.allSatisfy { $0.probes == 6 })
            let hours = try HistoryDatabase.buckets(service: "api", from: start, to: start + 7200, length: 3600, db: q.db)
            #expect(hours.map(\.minutes) == [60, 30])
            #expect(hours.map(\.probes) == [360, 180])
            #expect(hours[0].upMinutes == 50)
            #expect(hours[0].failures == 60)

            let uptime = try q.uptime(service: "api", from: Self.t0, to: Self.t0.addingTimeInterval(5400))
            #expect(uptime.ratio == 80.0 / 90.0)
            #expect(uptime.noDataSeconds == 0)
            let series = try q.series(service: "api", from: Self.t0, to: Self.t0.addingTimeInterval(5400), step: 600)
            #expect(series.map(\.state) == [.up, .up, .up, .down, .up, .up, .up, .up, .up])
            #expect(series[0].latencyUs(0.5) == 20_000)
        }
    }

    @Test func restartKeepsHistoryAndTheStoppedMinutesAreNoData() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let clock = ManualClock(Self.t0)
        let first = HistoryRecorder(stateDir: scratch.path, clock: clock, warn: { _ in })
        first.open()
        for minute in 0..<10 {
            clock.set(Self.t0.addingTimeInterval(Double(minute * 60 + 1)))
            first.record(Self.result(clock.now(), .ok), service: "api")
        }
        // Down at minute 9 and still down at shutdown.
        first.record([AgentEvent(id: 7, time: clock.now(), kind: .stateChange, service: "api", from: "up", to: "down",
                                 reason: "connection refused")])
        first.stop() // writes minute 9 too

        // Stopped for five minutes.
        clock.set(Self.t0.addingTimeInterval(15 * 60))
        let second = HistoryRecorder(stateDir: scratch.path, clock: clock, warn: { _ in })
        second.open()
        for minute in 15..<20 {
            clock.set(Self.t0.addingTimeInterval(Double(minute * 60 + 1)))
            second.record(Self.result(clock.now(), .ok), service: "api")
        }
        clock.set(Self.t0.addingTimeInterval(20 * 60))
        second.flush()

        try second.read { q throws(SQLiteError) in
            let figure = try q.uptime(service: "api", from: Self.t0, to: Self.t0.addingTimeInterval(20 * 60))
            #expect(figure.ratio == 1)
            #expect(figure.observedSeconds == 15 * 60)
            #expect(figure.noDataSeconds == 5 * 60)
            let start = Int64(Self.t0.timeIntervalSince1970)
            #expect(figure.gaps == [.init(from: start + 600, to: start + 900)])
            // The outage left open ends where the first run's data ended.
            let outages = try q.outages(service: "api", from: Self.t0, to: clock.now())
            #expect(outages.count == 1)
            #expect(outages.first?.reason == "connection refused")
            #expect(outages.first?.end == Self.t0.addingTimeInterval(9 * 60 + 1))
            let events = try q.events(from: Self.t0, to: clock.now(), group: nil, service: "api", limit: 10)
            #expect(events.map(\.id) == [7])
        }
        second.stop()
    }

    @Test func aMinuteFlushedTwiceAddsUp() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let clock = ManualClock(Self.t0.addingTimeInterval(5))
        let recorder = HistoryRecorder(stateDir: scratch.path, clock: clock, warn: { _ in })
        recorder.open()
        recorder.record(Self.result(clock.now(), .ok), service: "api")
        recorder.flush(all: true) // a shutdown in the middle of the minute
        clock.advance(by: .seconds(10))
        recorder.record(Self.result(clock.now(), .failed), service: "api")
        clock.advance(by: .seconds(60))
        recorder.flush()
        let start = Int64(Self.t0.timeIntervalSince1970)
        try recorder.read { q throws(SQLiteError) in
            let minute = try HistoryDatabase.buckets(service: "api", from: start, to: start + 60, length: 60, db: q.db)
            #expect(minute.map(\.probes) == [2])
            #expect(minute.map(\.upMinutes) == [0.5])
            let hour = try HistoryDatabase.buckets(service: "api", from: start - 3600, to: start + 3600, length: 3600, db: q.db)
            #expect(hour.map(\.minutes) == [1])
            #expect(hour.map(\.upMinutes) == [0.5])
        }
    }

    @Test func retentionDropsOldMinutesAndKeepsTheirHours() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let clock = ManualClock(Self.t0.addingTimeInterval(1))
        let recorder = HistoryRecorder(stateDir: scratch.path, settings: HistorySettings(minutes: .seconds(86_400),
                                                                                           hours: .seconds(3 * 86_400)),
                                       clock: clock, warn: { _ in })
        recorder.open()
        recorder.record(Self.result(clock.now(), .ok), service: "api")
        clock.advance(by: .seconds(60))
        recorder.flush()
        clock.advance(by: .seconds(2 * 86_400))
        recorder.record(Self.result(clock.now(), .ok), service: "api")
        clock.advance(by: .seconds(60))
        recorder.flush()
        let start = Int64(Self.t0.timeIntervalSince1970)
        try recorder.read { q throws(SQLiteError) in
            let minutes = try HistoryDatabase.buckets(service: "api", from: start - 3600, to: start + 4 * 86_400, length: 60, db: q.db)
            #expect(minutes.count == 1) // the first minute is gone
            let hours = try HistoryDatabase.buckets(service: "api", from: start - 3600, to: start + 4 * 86_400, length: 3600, db: q.db)
            #expect(hours.count == 2)
            // Past the minutes' retention, uptime comes from hours.
            #expect(q.length(from: Self.t0) == 3600)
        }
        clock.advance(by: .seconds(2 * 86_400))
        recorder.flush()
        try recorder.read { q throws(SQLiteError) in
            let hours = try HistoryDatabase.buckets(service: "api", from: start - 3600, to: start + 5 * 86_400, length: 3600, db: q.db)
            #expect(hours.count == 1)
        }
    }

    @Test func aDamagedFileIsMovedAsideAndANewOneStarted() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let path = scratch.file("history.sqlite")
        try Data(String(repeating: "not a database, just garbage\n", count: 200).utf8).write(to: URL(fileURLWithPath: path))
        let clock = ManualClock(Self.t0.addingTimeInterval(1))
        let warnings = Warnings()
        let recorder = HistoryRecorder(stateDir: scratch.path, clock: clock, warn: warnings.add)
        recorder.open()
        #expect(warnings.all.count == 1)
        #expect(warnings.all.first?.contains("is damaged") == true)
        let aside = "\(path).corrupt-\(Int64(clock.now().timeIntervalSince1970))"
        #expect(FileManager.default.fileExists(atPath: aside))
        recorder.record(Self.result(clock.now(), .ok), service: "api")
        clock.advance(by: .seconds(60))
        recorder.flush()
        try recorder.read { q throws(SQLiteError) in
            #expect(try q.uptime(service: "api", from: Self.t0, to: clock.now()).ratio == 1)
        }
        #expect(warnings.all.count == 1)
    }

    @Test func uptimeCacheHoldsEachWindowPerService() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let clock = ManualClock(Self.t0.addingTimeInterval(1))
        let recorder = HistoryRecorder(stateDir: scratch.path, clock: clock, warn: { _ in })
        recorder.open()
        recorder.record(Self.result(clock.now(), .ok), service: "api")
        recorder.record(Self.result(clock.now(), .ok), service: "db")
        recorder.record(Self.result(clock.now(), .failed), service: "db")
        clock.advance(by: .seconds(60))
        recorder.flush()
        #expect(recorder.uptimes["api"] == ["24h": 1, "7d": 1, "30d": 1])
        #expect(recorder.uptimes["db"]?["24h"] == 0.5)
    }
}
