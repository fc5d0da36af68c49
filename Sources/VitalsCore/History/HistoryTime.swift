import Foundation

/// Times as the history API and `vitals history` take them: a duration
/// meaning that long ago (`7d`, `90m`), an ISO 8601 time in UTC
/// (`2027-01-15T10:00:00Z`), or seconds since the Unix epoch.
public enum HistoryTime {
    public static func parse(_ text: String, now: Date) -> Date? {
        if let seconds = Double(text), seconds.isFinite { return Date(timeIntervalSince1970: seconds) }
        if let date = ISOTime.parse(text) { return date }
        if let ago = DurationText.parse(text) { return now.addingTimeInterval(-ago.seconds) }
        return nil
    }

    /// A step: a duration that is a whole number of minutes, at least one.
    public static func step(_ text: String) -> Int64? {
        guard let d = DurationText.parse(text) else { return nil }
        let seconds = d.milliseconds / 1000
        guard seconds >= 60, seconds % 60 == 0, d.milliseconds % 1000 == 0 else { return nil }
        return seconds
    }
}
