#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Readings of `CLOCK_MONOTONIC` in nanoseconds: cheap to read and to compare,
/// never jumps with the wall clock. Loops keep their deadlines in it.
public struct MonotonicInstant: Sendable, Comparable, Hashable {
    public var nanoseconds: Int64

    public init(nanoseconds: Int64) { self.nanoseconds = nanoseconds }

    @inlinable
    public static func now() -> MonotonicInstant {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return MonotonicInstant(nanoseconds: Int64(ts.tv_sec) &* 1_000_000_000 &+ Int64(ts.tv_nsec))
    }

    public static func < (a: MonotonicInstant, b: MonotonicInstant) -> Bool { a.nanoseconds < b.nanoseconds }

    public static func + (a: MonotonicInstant, d: Duration) -> MonotonicInstant {
        MonotonicInstant(nanoseconds: a.nanoseconds &+ d.nanosecondCount)
    }

    public static func - (a: MonotonicInstant, b: MonotonicInstant) -> Duration {
        .nanoseconds(a.nanoseconds &- b.nanoseconds)
    }
}

extension Duration {
    /// The duration in whole nanoseconds (saturating).
    public var nanosecondCount: Int64 {
        let (s, atto) = components
        let (ns, overflow) = s.multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return s < 0 ? .min : .max }
        return ns &+ atto / 1_000_000_000
    }

    /// Whole milliseconds, rounded up, 0 for a duration that has passed,
    /// clamped to what a C `int` timeout (`poll`, `curl_multi_poll`) takes.
    public var millisecondsRoundedUp: Int32 {
        let ns = nanosecondCount
        if ns <= 0 { return 0 }
        return Int32(min((ns + 999_999) / 1_000_000, Int64(Int32.max)))
    }
}
