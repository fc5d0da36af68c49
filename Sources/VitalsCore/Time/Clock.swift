import Foundation

/// Where the core gets the time. Core code never reads the system clock
/// itself: the agent passes a `SystemClock`, tests a `ManualClock`.
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

/// A clock that moves only when told to. For tests.
public final class ManualClock: VitalsClock, @unchecked Sendable {
    private let lock = NSLock()
    private var current: Date

    public init(_ start: Date = Date(timeIntervalSince1970: 1_800_000_000)) {
        current = start
    }

    public func now() -> Date {
        lock.lock(); defer { lock.unlock() }
        return current
    }

    public func advance(by duration: Duration) {
        lock.lock(); defer { lock.unlock() }
        current = current.addingTimeInterval(duration.seconds)
    }

    public func set(_ date: Date) {
        lock.lock(); defer { lock.unlock() }
        current = date
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
