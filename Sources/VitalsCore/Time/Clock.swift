import Foundation

/// Where the core gets the time. Core code never reads the system clock
/// itself: the agent passes a `SystemClock`, tests a `ManualClock` (in VitalsTestKit).
///
/// Times are wall-clock `Date`s because every time the core keeps is also
/// shown to operators and written to disk (heartbeat deadlines survive a
/// restart). Schedulers that need monotonic deadlines keep their own.
public protocol VitalsClock: Sendable {
    func now() -> Date
}

/// The real wall clock, to the millisecond: every time Vitals keeps is shown
/// and stored with milliseconds, so a time read back after a restart equals
/// the one that was kept (a heartbeat deadline stays the same deadline).
public struct SystemClock: VitalsClock {
    public init() {}
    public func now() -> Date {
        Date(timeIntervalSince1970: (Date().timeIntervalSince1970 * 1000).rounded(.down) / 1000)
    }
}

extension Duration {
    /// The duration as fractional seconds.
    public var seconds: Double {
        let (s, atto) = components
        return Double(s) + Double(atto) / 1e18
    }

    /// The duration in whole milliseconds, rounded down.
    public var milliseconds: Int64 {
        let (s, atto) = components
        return s * 1000 + atto / 1_000_000_000_000_000
    }
}

extension Date {
    /// `self + duration`.
    public func adding(_ duration: Duration) -> Date {
        addingTimeInterval(duration.seconds)
    }

    /// The time from `earlier` to `self`, as a Duration.
    public func duration(since earlier: Date) -> Duration {
        .nanoseconds(Int64((timeIntervalSince(earlier) * 1e9).rounded()))
    }
}
