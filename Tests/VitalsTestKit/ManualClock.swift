import Foundation
import Synchronization
import VitalsCore

/// A clock that moves only when told to: tests advance it instead of sleeping.
public final class ManualClock: VitalsClock, Sendable {
    private let current: Mutex<Date>

    public init(_ start: Date = Date(timeIntervalSince1970: 1_800_000_000)) {
        current = Mutex(start)
    }

    public func now() -> Date {
        current.withLock { $0 }
    }

    public func advance(by duration: Duration) {
        current.withLock { $0 = $0.addingTimeInterval(duration.seconds) }
    }

    public func set(_ date: Date) {
        current.withLock { $0 = date }
    }
}
