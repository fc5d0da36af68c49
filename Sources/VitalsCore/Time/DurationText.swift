/// Durations as operators write them: `250ms`, `2s`, `1m`, `1h`, `1h30m`, `1.5s`.
///
/// Units: `ms`, `s`, `m`, `h`, `d`. A bare number is rejected: a duration
/// without a unit is the commonest config mistake and has no safe meaning.
public enum DurationText {
    public static func parse(_ text: String) -> Duration? {
        let s = text.trimmingCharacters(in: .whitespaces)
        guard !s.isEmpty else { return nil }
        var total: Double = 0 // milliseconds
        var i = s.startIndex
        var sawComponent = false
        while i < s.endIndex {
            let numberStart = i
            while i < s.endIndex, s[i].isASCII, s[i].isNumber || s[i] == "." { i = s.index(after: i) }
            guard numberStart < i, let value = Double(s[numberStart..<i]), value >= 0 else { return nil }
            let unitStart = i
            while i < s.endIndex, s[i].isASCII, s[i].isLetter { i = s.index(after: i) }
            let unit = s[unitStart..<i]
            let factor: Double
            switch unit {
            case "ms": factor = 1
            case "s": factor = 1000
            case "m": factor = 60_000
            case "h": factor = 3_600_000
            case "d": factor = 86_400_000
            default: return nil
            }
            total += value * factor
            sawComponent = true
        }
        guard sawComponent, total.isFinite, total < 1e15 else { return nil }
        return .nanoseconds(Int64((total * 1_000_000).rounded()))
    }

    /// Renders a duration the way it is written in config: `1m12s`, `250ms`, `2h`.
    public static func format(_ d: Duration) -> String {
        var ms = d.milliseconds
        if ms == 0 {
            let (_, atto) = d.components
            return atto == 0 ? "0s" : "<1ms"
        }
        var parts: [String] = []
        if ms < 0 { return "-" + format(.milliseconds(-ms)) }
        let units: [(Int64, String)] = [(86_400_000, "d"), (3_600_000, "h"), (60_000, "m"), (1000, "s")]
        for (size, name) in units where ms >= size {
            parts.append("\(ms / size)\(name)")
            ms %= size
        }
        if ms > 0 { parts.append("\(ms)ms") }
        return parts.joined()
    }
}

import Foundation
