import Foundation

/// A point on the agent's monotonic clock, as the time since an arbitrary
/// origin (the edge passes `VitalsSystem.MonotonicInstant.now().nanoseconds`;
/// VitalsCore imports no system module, hence a type of its own). Lease
/// deadlines are measured on it: unlike the wall clock it never jumps, so a
/// clock step cannot stretch a leader's right to act. The core never reads
/// a clock; instants arrive with the inputs.
public struct MonotonicTime: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// Time since the origin.
    public var offset: Duration

    public init(_ offset: Duration) {
        self.offset = offset
    }

    public static func seconds(_ s: Int64) -> MonotonicTime { MonotonicTime(.seconds(s)) }

    public static func < (a: MonotonicTime, b: MonotonicTime) -> Bool { a.offset < b.offset }
    public static func + (a: MonotonicTime, d: Duration) -> MonotonicTime { MonotonicTime(a.offset + d) }
    public static func - (a: MonotonicTime, d: Duration) -> MonotonicTime { MonotonicTime(a.offset - d) }
    public static func - (a: MonotonicTime, b: MonotonicTime) -> Duration { a.offset - b.offset }

    /// `+12.5s`: for logs and tests; operators see wall times.
    public var description: String { "+" + DurationText.format(offset) }
}
