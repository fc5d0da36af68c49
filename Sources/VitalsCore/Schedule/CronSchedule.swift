import Foundation

/// A five-field cron schedule (`minute hour day-of-month month day-of-week`),
/// or one of the macros `@yearly`/`@annually`, `@monthly`, `@weekly`,
/// `@daily`/`@midnight`, `@hourly`. Pure: the time zone is given to each question.
///
/// Syntax, as crontab(5) has it: `*`, numbers, ranges (`1-5`), lists
/// (`1,15,30`), steps over `*` or a range (`*/15`, `8-18/2`), and the names
/// `jan`-`dec` and `sun`-`sat` (also in ranges: `mon-fri`). Day of week 0 and
/// 7 are both Sunday. When both day fields are restricted (neither starts with
/// `*`), a day matches either of them (`0 0 1,15 * mon`: the 1st, the 15th and
/// every Monday); otherwise it must match both.
///
/// Daylight saving time, as Vixie cron and cronie handle it:
///
/// - Times are wall-clock times in the given zone.
/// - A **fixed-time** schedule (neither the minute nor the hour field starts
///   with `*`) whose time is skipped by a spring-forward runs once, at the
///   moment of the change (`30 2 * * *` in Europe/Berlin on the last Sunday of
///   March runs at 03:00 CEST). A time that occurs twice in the autumn runs
///   once, at its first occurrence.
/// - A **wildcard** schedule (`*/15 * * * *`, `0 * * * *`) follows the wall
///   clock: a skipped time does not run at all, and a repeated time runs at
///   both occurrences.
public struct CronSchedule: Sendable, Equatable, CustomStringConvertible {
    /// As written in the configuration.
    public let text: String
    // One bit per allowed value.
    let minutes: UInt64
    let hours: UInt32
    let daysOfMonth: UInt32
    let months: UInt16
    let daysOfWeek: UInt8
    let dayOfMonthStar: Bool
    let dayOfWeekStar: Bool
    /// Vixie's "wildcard job": the minute or hour field starts with `*`.
    public let isWildcard: Bool

    public var description: String { text }

    // MARK: Parsing

    /// The five fields, in order, with the words errors name them by.
    enum Field: Int, CaseIterable {
        case minute, hour, dayOfMonth, month, dayOfWeek

        var name: String {
            switch self {
            case .minute: "minute"
            case .hour: "hour"
            case .dayOfMonth: "day-of-month"
            case .month: "month"
            case .dayOfWeek: "day-of-week"
            }
        }

        var bounds: ClosedRange<Int> {
            switch self {
            case .minute: 0...59
            case .hour: 0...23
            case .dayOfMonth: 1...31
            case .month: 1...12
            case .dayOfWeek: 0...7
            }
        }

        var names: [String] {
            switch self {
            case .month: ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
            case .dayOfWeek: ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
            case .minute, .hour, .dayOfMonth: []
            }
        }

        /// The value of the first name.
        var firstNamed: Int { self == .month ? 1 : 0 }
    }

    static let macros: [String: String] = [
        "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
        "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *",
    ]

    /// Parses `text`; the error says which field is wrong and why, in crontab's words.
    public static func parse(_ text: String) throws(CronError) -> CronSchedule {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        var fieldsText = trimmed
        if trimmed.hasPrefix("@") {
            let macro = trimmed.lowercased()
            if macro == "@reboot" {
                throw CronError("@reboot names no time, so there is nothing to be late for; "
                    + "use every: for a job that runs at boot")
            }
            guard let expanded = macros[macro] else {
                throw CronError("unknown macro \(trimmed); use @yearly, @annually, @monthly, @weekly, @daily, @midnight or @hourly")
            }
            fieldsText = expanded
        }
        let parts = fieldsText.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        guard parts.count == 5 else {
            throw CronError("expected 5 fields (minute hour day-of-month month day-of-week) or a macro like @daily, got \(parts.count)")
        }
        var bits: [UInt64] = []
        for field in Field.allCases {
            bits.append(try parseField(parts[field.rawValue], field))
        }
        // Day of week 7 is Sunday, as 0 is.
        let dow = (bits[4] & 0x7F) | (bits[4] >> 7 & 1)
        let schedule = CronSchedule(
            text: text, minutes: bits[0], hours: UInt32(bits[1]), daysOfMonth: UInt32(bits[2]),
            months: UInt16(bits[3]), daysOfWeek: UInt8(dow),
            dayOfMonthStar: parts[2].hasPrefix("*"), dayOfWeekStar: parts[4].hasPrefix("*"),
            isWildcard: parts[0].hasPrefix("*") || parts[1].hasPrefix("*"))
        // `0 0 30 2 *` is valid crontab that never runs: a heartbeat would never be due.
        if !schedule.dayOfMonthStar, schedule.dayOfWeekStar, !schedule.dayOccursInSomeMonth {
            throw CronError("day-of-month \(parts[2]) never occurs in month \(parts[3])")
        }
        return schedule
    }

    private static func parseField(_ text: String, _ field: Field) throws(CronError) -> UInt64 {
        var bits: UInt64 = 0
        for item in text.split(separator: ",", omittingEmptySubsequences: false) {
            guard !item.isEmpty else { throw CronError("\(field.name) \"\(text)\" has an empty list item") }
            let pieces = item.split(separator: "/", omittingEmptySubsequences: false)
            guard pieces.count <= 2 else { throw CronError("\(field.name) \"\(item)\" has more than one step") }
            var range: ClosedRange<Int>
            let base = pieces[0]
            if base == "*" {
                range = field.bounds
                if field == .dayOfWeek { range = 0...6 }
            } else if let dash = base.firstIndex(of: "-") {
                let low = try value(base[..<dash], field)
                let high = try value(base[base.index(after: dash)...], field)
                guard low <= high else {
                    throw CronError("\(field.name) range \(base) runs backwards; write it as two ranges, "
                        + "e.g. \(base[..<dash])-\(field.bounds.upperBound),\(field.bounds.lowerBound)-\(base[base.index(after: dash)...])")
                }
                range = low...high
            } else {
                let single = try value(base, field)
                guard pieces.count == 1 else {
                    throw CronError("\(field.name) \"\(item)\": a step needs * or a range, as in */\(pieces[1]) or \(single)-\(field.bounds.upperBound)/\(pieces[1])")
                }
                range = single...single
            }
            var step = 1
            if pieces.count == 2 {
                guard let parsed = Int(pieces[1]), pieces[1].allSatisfy(\.isASCII) else {
                    throw CronError("\(field.name) step \"\(pieces[1])\" is not a number")
                }
                let span = field.bounds.count
                guard (1...span).contains(parsed) else {
                    throw CronError("\(field.name) step \(parsed) out of range 1-\(span)")
                }
                step = parsed
            }
            for v in stride(from: range.lowerBound, through: range.upperBound, by: step) {
                bits |= 1 << UInt64(v)
            }
        }
        return bits
    }

    private static func value(_ text: Substring, _ field: Field) throws(CronError) -> Int {
        if !text.isEmpty, text.allSatisfy({ $0.isASCII && $0.isNumber }) {
            guard let number = Int(text), field.bounds.contains(number) else {
                throw CronError("\(field.name) \(text) out of range \(field.bounds.lowerBound)-\(field.bounds.upperBound)")
            }
            return number
        }
        if let index = field.names.firstIndex(of: text.lowercased()) {
            return index + field.firstNamed
        }
        switch field {
        case .month:
            throw CronError("month \"\(text)\" is neither a number 1-12 nor a name jan-dec")
        case .dayOfWeek:
            throw CronError("day-of-week \"\(text)\" is neither a number 0-7 nor a name sun-sat")
        case .minute, .hour, .dayOfMonth:
            throw CronError("\(field.name) \"\(text)\" is not a number")
        }
    }

    private var dayOccursInSomeMonth: Bool {
        let longest = [0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
        return (1...12).contains { month in
            months & (1 << month) != 0 && (1...longest[month]).contains { daysOfMonth & (1 << $0) != 0 }
        }
    }

    // MARK: Questions

    /// The first run strictly after `date`.
    public func next(after date: Date, in zone: TimeZone) -> Date? {
        let t = date.timeIntervalSince1970
        let first = Self.localDay(of: t, in: zone) - 1
        for day in first...(first + Self.searchDays) {
            guard let earliest = runs(onLocalDay: day, in: zone).first(where: { Double($0) > t }) else { continue }
            // The runs of one local day may come after those of the next
            // (a repeated hour), so look one day further before answering.
            let beyond = runs(onLocalDay: day + 1, in: zone).first { Double($0) > t }
            return Date(timeIntervalSince1970: Double(min(earliest, beyond ?? earliest)))
        }
        return nil
    }

    /// The last run at or before `date`.
    public func latest(atOrBefore date: Date, in zone: TimeZone) -> Date? {
        let t = date.timeIntervalSince1970
        let first = Self.localDay(of: t, in: zone) + 1
        for day in stride(from: first, through: first - Self.searchDays, by: -1) {
            guard let latest = runs(onLocalDay: day, in: zone).last(where: { Double($0) <= t }) else { continue }
            let before = runs(onLocalDay: day - 1, in: zone).last { Double($0) <= t }
            return Date(timeIntervalSince1970: Double(max(latest, before ?? latest)))
        }
        return nil
    }

    /// Long enough for any schedule that runs at all: a Friday the 29th of
    /// February can be 28 years away.
    static let searchDays = 366 * 29

    /// The days since 1970-01-01 of `t`'s wall-clock date in `zone`.
    static func localDay(of t: TimeInterval, in zone: TimeZone) -> Int {
        let local = t + Double(zone.secondsFromGMT(for: Date(timeIntervalSince1970: t)))
        return Int((local / 86_400).rounded(.down))
    }

    /// The instants (seconds since the epoch, ascending) this schedule runs
    /// at whose wall-clock date is `day` in `zone`.
    func runs(onLocalDay day: Int, in zone: TimeZone) -> [Int64] {
        guard matches(day: day) else { return [] }
        let dayStart = Int64(day) * 86_400
        func offset(_ t: Int64) -> Int64 { Int64(zone.secondsFromGMT(for: Date(timeIntervalSince1970: Double(t)))) }
        // Offset changes are months apart: one on either side of the day covers it.
        let before = offset(dayStart - 2 * 86_400)
        let after = offset(dayStart + 3 * 86_400)
        var instants: [Int64] = []
        for hour in 0..<24 where hours & (1 << UInt32(hour)) != 0 {
            for minute in 0..<60 where minutes & (1 << UInt64(minute)) != 0 {
                let wall = dayStart + Int64(hour * 3600 + minute * 60)
                if before == after {
                    instants.append(wall - before)
                    continue
                }
                let candidates = Set([wall - before, wall - after].filter { wall - offset($0) == $0 })
                switch candidates.count {
                case 0:
                    // Skipped by a spring-forward: a fixed time runs at the change.
                    if !isWildcard { instants.append(Self.change(between: wall - before, and: wall - after, offset)) }
                case 1:
                    instants.append(candidates.first!)
                default:
                    // Repeated by a fall-back: once for a fixed time, twice for a wildcard one.
                    instants.append(contentsOf: isWildcard ? candidates.sorted() : [candidates.min()!])
                }
            }
        }
        return Array(Set(instants)).sorted()
    }

    /// The first second at which the offset differs from the offset at the earlier of `a` and `b`.
    private static func change(between a: Int64, and b: Int64, _ offset: (Int64) -> Int64) -> Int64 {
        var low = min(a, b), high = max(a, b)
        let start = offset(low)
        while high - low > 1 {
            let middle = low + (high - low) / 2
            if offset(middle) == start { low = middle } else { high = middle }
        }
        return high
    }

    /// Whether the schedule runs at all on this date (days since 1970-01-01).
    func matches(day: Int) -> Bool {
        let (_, month, dayOfMonth) = Self.civil(fromDays: day)
        guard months & (1 << UInt16(month)) != 0 else { return false }
        let weekday = ((day % 7) + 11) % 7   // 1970-01-01 was a Thursday (4)
        let domMatch = daysOfMonth & (1 << UInt32(dayOfMonth)) != 0
        let dowMatch = daysOfWeek & (1 << UInt8(weekday)) != 0
        return dayOfMonthStar || dayOfWeekStar ? domMatch && dowMatch : domMatch || dowMatch
    }

    /// `date` on the wall clock of `zone`: "2026-12-02 03:00", or with seconds "2026-12-02 03:00:05".
    public static func wallClock(_ date: Date, in zone: TimeZone, seconds: Bool = false) -> String {
        let local = Int64((date.timeIntervalSince1970 + Double(zone.secondsFromGMT(for: date))).rounded(.down))
        let day = Int(local >= 0 ? local / 86_400 : (local - 86_399) / 86_400)
        let inDay = Int(local - Int64(day) * 86_400)
        let (year, month, dayOfMonth) = civil(fromDays: day)
        func two(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }
        var text = "\(year)-\(two(month))-\(two(dayOfMonth)) \(two(inDay / 3600)):\(two(inDay / 60 % 60))"
        if seconds { text += ":\(two(inDay % 60))" }
        return text
    }

    /// Year, month (1-12) and day (1-31) of a day count since 1970-01-01 (proleptic Gregorian).
    static func civil(fromDays days: Int) -> (year: Int, month: Int, day: Int) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }
}

/// Why a schedule was refused, in crontab's words: "day-of-week 8 out of range 0-7".
public struct CronError: Error, Equatable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
