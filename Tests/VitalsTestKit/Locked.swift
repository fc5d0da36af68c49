import Foundation

/// A value behind a lock, shareable between threads and escaping closures.
// @unchecked: `value` is read and written only with `lock` held (it may hold non-Sendable test values).
public final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value

    public init(_ value: Value) { self.value = value }

    public func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R {
        lock.lock(); defer { lock.unlock() }
        return try body(&value)
    }
}
