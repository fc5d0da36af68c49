import Foundation
import Testing
@testable import VitalsCore

private func utc(_ text: String) -> Date {
    guard let date = ISOTime.parse(text) else { fatalError("bad time in test: \(text)") }
    return date
}

private let berlin = TimeZone(identifier: "Europe/Berlin")!
private let newYork = TimeZone(identifier: "America/New_York")!
private let gmt = TimeZone(identifier: "UTC")!

/// The time zone database the agent reads; without it no zone but UTC is known.
private let haveZoneinfo = FileManager.default.fileExists(atPath: "/usr/share/zoneinfo/Europe/Berlin")

@Suite struct CronScheduleTests {
    struct RunsCase: CustomTestStringConvertible, Sendable {
        var name: String
        var schedule: String
        var zone: TimeZone
        var after: String
        /// The next runs after `after`, each found from the one before, in UTC.
        var runs: [String]
        var testDescription: String { name }
    }

    // Europe/Berlin 2026: CET→CEST on 29 March at 02:00 (01:00Z), CEST→CET on 25 October at 03:00 (01:00Z).
    // America/New_York 2026: EST→EDT on 8 March at 02:00 (07:00Z), EDT→EST on 1 November at 02:00 (06:00Z).
    static let daylightSavingCases: [RunsCase] = [
        .init(name: "Berlin spring: a fixed time in the skipped hour runs at the change",
              schedule: "30 2 * * *", zone: berlin, after: "2026-03-28T00:00:00Z",
              runs: ["2026-03-28T01:30:00Z", "2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z"]),
        .init(name: "Berlin spring: a wildcard schedule skips the missing hour",
              schedule: "*/30 * * * *", zone: berlin, after: "2026-03-29T00:00:00Z",
              runs: ["2026-03-29T00:30:00Z", "2026-03-29T01:00:00Z", "2026-03-29T01:30:00Z"]),
        .init(name: "Berlin spring: a time outside the gap moves with the offset",
              schedule: "0 3 * * *", zone: berlin, after: "2026-03-28T00:00:00Z",
              runs: ["2026-03-28T02:00:00Z", "2026-03-29T01:00:00Z", "2026-03-30T01:00:00Z"]),
        .init(name: "Berlin autumn: a fixed time in the repeated hour runs once, at its first occurrence",
              schedule: "30 2 * * *", zone: berlin, after: "2026-10-24T00:00:00Z",
              runs: ["2026-10-24T00:30:00Z", "2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"]),
        .init(name: "Berlin autumn: a wildcard schedule runs in both occurrences",
              schedule: "30 * * * *", zone: berlin, after: "2026-10-24T23:00:00Z",
              runs: ["2026-10-24T23:30:00Z", "2026-10-25T00:30:00Z", "2026-10-25T01:30:00Z", "2026-10-25T02:30:00Z"]),
        .init(name: "New York spring: a fixed time in the skipped hour runs at the change",
              schedule: "30 2 * * *", zone: newYork, after: "2026-03-07T00:00:00Z",
              runs: ["2026-03-07T07:30:00Z", "2026-03-08T07:00:00Z", "2026-03-09T06:30:00Z"]),
        .init(name: "New York spring: two fixed times in the gap run once, at the change",
              schedule: "15,45 2 * * *", zone: newYork, after: "2026-03-08T06:00:00Z",
              runs: ["2026-03-08T07:00:00Z", "2026-03-09T06:15:00Z"]),
        .init(name: "New York autumn: a fixed time in the repeated hour runs once",
              schedule: "30 1 * * *", zone: newYork, after: "2026-10-31T12:00:00Z",
              runs: ["2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"]),
        .init(name: "New York autumn: a minute wildcard in a fixed hour runs in both occurrences",
              schedule: "*/20 1 * * *", zone: newYork, after: "2026-11-01T05:00:00Z",
              runs: ["2026-11-01T05:20:00Z", "2026-11-01T05:40:00Z", "2026-11-01T06:00:00Z",
                     "2026-11-01T06:20:00Z", "2026-11-01T06:40:00Z", "2026-11-02T06:00:00Z"]),
        .init(name: "New York: the wall clock, not UTC, decides the day",
              schedule: "0 22 * * fri", zone: newYork, after: "2026-12-04T00:00:00Z",
              runs: ["2026-12-05T03:00:00Z", "2026-12-12T03:00:00Z"]),
    ]

    static let calendarCases: [RunsCase] = [
        .init(name: "leap day: only in leap years", schedule: "0 0 29 2 *", zone: gmt, after: "2026-01-01T00:00:00Z",
              runs: ["2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z"]),
        .init(name: "leap day in Berlin: the hour before in UTC", schedule: "0 0 29 2 *", zone: berlin,
              after: "2028-03-01T00:00:00Z", runs: ["2032-02-28T23:00:00Z"]),
        .init(name: "2100 is no leap year", schedule: "0 0 29 2 *", zone: gmt, after: "2096-03-01T00:00:00Z",
              runs: ["2104-02-29T00:00:00Z"]),
        .init(name: "weekday names in a range", schedule: "0 9 * * mon-fri", zone: gmt, after: "2026-12-04T10:00:00Z",
              runs: ["2026-12-07T09:00:00Z", "2026-12-08T09:00:00Z"]),
        .init(name: "month names in a list", schedule: "15 10 1 jan,JUL *", zone: gmt, after: "2026-02-01T00:00:00Z",
              runs: ["2026-07-01T10:15:00Z", "2027-01-01T10:15:00Z"]),
        .init(name: "a step over *", schedule: "0 */6 * * *", zone: gmt, after: "2026-12-02T07:00:00Z",
              runs: ["2026-12-02T12:00:00Z", "2026-12-02T18:00:00Z", "2026-12-03T00:00:00Z"]),
        .init(name: "a step over a range", schedule: "0 8-18/5 * * *", zone: gmt, after: "2026-12-02T09:00:00Z",
              runs: ["2026-12-02T13:00:00Z", "2026-12-02T18:00:00Z", "2026-12-03T08:00:00Z"]),
        .init(name: "both day fields restricted: either matches", schedule: "0 0 13 * fri", zone: gmt,
              after: "2026-12-01T00:00:00Z",
              runs: ["2026-12-04T00:00:00Z", "2026-12-11T00:00:00Z", "2026-12-13T00:00:00Z", "2026-12-18T00:00:00Z"]),
        .init(name: "a starred day-of-month field: both must match", schedule: "0 0 */2 * fri", zone: gmt,
              after: "2026-12-01T00:00:00Z", runs: ["2026-12-11T00:00:00Z", "2026-12-25T00:00:00Z"]),
        .init(name: "7 is Sunday", schedule: "0 0 * * 7", zone: gmt, after: "2026-12-02T00:00:00Z",
              runs: ["2026-12-06T00:00:00Z"]),
        .init(name: "a range ending at 7", schedule: "0 0 * * 5-7", zone: gmt, after: "2026-12-02T00:00:00Z",
              runs: ["2026-12-04T00:00:00Z", "2026-12-05T00:00:00Z", "2026-12-06T00:00:00Z", "2026-12-11T00:00:00Z"]),
        .init(name: "@hourly", schedule: "@hourly", zone: gmt, after: "2026-12-02T07:59:59Z", runs: ["2026-12-02T08:00:00Z"]),
        .init(name: "@daily", schedule: "@daily", zone: berlin, after: "2026-12-02T07:00:00Z", runs: ["2026-12-02T23:00:00Z"]),
        .init(name: "@midnight", schedule: "@midnight", zone: gmt, after: "2026-12-02T00:00:00Z", runs: ["2026-12-03T00:00:00Z"]),
        .init(name: "@weekly is Sunday midnight", schedule: "@weekly", zone: gmt, after: "2026-12-02T00:00:00Z",
              runs: ["2026-12-06T00:00:00Z"]),
        .init(name: "@monthly", schedule: "@monthly", zone: gmt, after: "2026-12-02T00:00:00Z", runs: ["2027-01-01T00:00:00Z"]),
        .init(name: "@yearly", schedule: "@yearly", zone: gmt, after: "2026-12-02T00:00:00Z", runs: ["2027-01-01T00:00:00Z"]),
        .init(name: "@annually", schedule: "@ANNUALLY", zone: gmt, after: "2027-01-01T00:00:00Z", runs: ["2028-01-01T00:00:00Z"]),
        .init(name: "a run exactly at the time asked about is not after it", schedule: "0 3 * * *", zone: gmt,
              after: "2026-12-02T03:00:00Z", runs: ["2026-12-03T03:00:00Z"]),
    ]

    @Test(.enabled(if: haveZoneinfo, "needs the tzdata package (/usr/share/zoneinfo)"),
          arguments: daylightSavingCases)
    func daylightSaving(_ c: RunsCase) throws {
        try expectRuns(c)
    }

    @Test(arguments: calendarCases)
    func calendar(_ c: RunsCase) throws {
        if c.zone.identifier != "UTC" {
            try #require(haveZoneinfo, "needs the tzdata package (/usr/share/zoneinfo)")
        }
        try expectRuns(c)
    }

    private func expectRuns(_ c: RunsCase) throws {
        let schedule = try CronSchedule.parse(c.schedule)
        var from = utc(c.after)
        var found: [String] = []
        for _ in c.runs {
            guard let next = schedule.next(after: from, in: c.zone) else { break }
            found.append(ISOTime.format(next).replacingOccurrences(of: ".000Z", with: "Z"))
            from = next
        }
        #expect(found == c.runs)
    }

    @Test(.enabled(if: haveZoneinfo, "needs the tzdata package (/usr/share/zoneinfo)"), arguments: [
        ("30 2 * * *", "Europe/Berlin", "2026-03-29T05:00:00Z", "2026-03-29T01:00:00Z"),
        ("0 3 * * *", "Europe/Berlin", "2026-12-02T01:59:00Z", "2026-12-01T02:00:00Z"),
        ("0 3 * * *", "Europe/Berlin", "2026-12-02T02:00:00Z", "2026-12-02T02:00:00Z"),
        ("30 * * * *", "Europe/Berlin", "2026-10-25T01:45:00Z", "2026-10-25T01:30:00Z"),
        ("0 0 29 2 *", "UTC", "2031-06-01T00:00:00Z", "2028-02-29T00:00:00Z"),
    ])
    func latestRunAtOrBefore(schedule: String, zone: String, at: String, expected: String) throws {
        let latest = try CronSchedule.parse(schedule).latest(atOrBefore: utc(at), in: TimeZone(identifier: zone)!)
        #expect(latest == utc(expected))
    }

    @Test(arguments: [
        ("0 3 * * 8", "day-of-week 8 out of range 0-7"),
        ("60 * * * *", "minute 60 out of range 0-59"),
        ("0 24 * * *", "hour 24 out of range 0-23"),
        ("0 0 0 * *", "day-of-month 0 out of range 1-31"),
        ("0 0 1 13 *", "month 13 out of range 1-12"),
        ("0 0 1 foo *", "month \"foo\" is neither a number 1-12 nor a name jan-dec"),
        ("0 0 * * funday", "day-of-week \"funday\" is neither a number 0-7 nor a name sun-sat"),
        ("0 0 * jan mon-sun", "day-of-week range mon-sun runs backwards; write it as two ranges, e.g. mon-7,0-sun"),
        ("0 22-2 * * *", "hour range 22-2 runs backwards; write it as two ranges, e.g. 22-23,0-2"),
        ("*/0 * * * *", "minute step 0 out of range 1-60"),
        ("0 */x * * *", "hour step \"x\" is not a number"),
        ("5/15 * * * *", "minute \"5/15\": a step needs * or a range, as in */15 or 5-59/15"),
        ("0 0 x * *", "day-of-month \"x\" is not a number"),
        ("1,,2 * * * *", "minute \"1,,2\" has an empty list item"),
        ("0 3 * *", "expected 5 fields (minute hour day-of-month month day-of-week) or a macro like @daily, got 4"),
        ("0 3 * * * *", "expected 5 fields (minute hour day-of-month month day-of-week) or a macro like @daily, got 6"),
        ("@reboot", "@reboot names no time, so there is nothing to be late for; use every: for a job that runs at boot"),
        ("@fortnightly", "unknown macro @fortnightly; use @yearly, @annually, @monthly, @weekly, @daily, @midnight or @hourly"),
        ("0 0 30 2 *", "day-of-month 30 never occurs in month 2"),
        ("0 0 31 apr,jun *", "day-of-month 31 never occurs in month apr,jun"),
    ])
    func refusals(schedule: String, message: String) {
        #expect(throws: CronError(message)) { try CronSchedule.parse(schedule) }
    }

    @Test func wildcardIsDecidedByTheMinuteAndHourFields() throws {
        #expect(try CronSchedule.parse("*/5 3 * * *").isWildcard)
        #expect(try CronSchedule.parse("5 * * * *").isWildcard)
        #expect(try CronSchedule.parse("@hourly").isWildcard)
        #expect(try !CronSchedule.parse("0 3 * * *").isWildcard)
        #expect(try !CronSchedule.parse("@daily").isWildcard)
    }

    @Test(.enabled(if: haveZoneinfo, "needs the tzdata package (/usr/share/zoneinfo)"))
    func wallClockIsTheZones() {
        #expect(CronSchedule.wallClock(utc("2026-03-29T01:00:00Z"), in: berlin) == "2026-03-29 03:00")
        #expect(CronSchedule.wallClock(utc("2026-11-01T06:30:05Z"), in: newYork, seconds: true) == "2026-11-01 01:30:05")
    }
}
