import Foundation
import VitalsCore

/// A clock that moves only when told to: tests advance it instead of sleeping.
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
