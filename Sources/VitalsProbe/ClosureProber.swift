import Foundation
import VitalsCore

/// A `Prober` whose probes are run by a closure: a seam for tests and fakes.
///
/// The closure is called on the loop thread to start each probe and must
/// return promptly; it calls `complete` exactly once, from any thread, when
/// the probe ends. A completion for a cancelled probe is dropped.
public final class ClosureProber: Prober, ProberWaker, @unchecked Sendable {
    // @unchecked: every mutable field is read and written only with `condition` locked.

    public typealias Completion = @Sendable (ProbeResult) -> Void

    private let body: @Sendable (ServiceConfig, @escaping Completion) -> Void
    private let condition = NSCondition()
    private var arrived: [(ticket: UInt64, completion: ProbeCompletion)] = []
    private var tickets: [Int: UInt64] = [:]
    private var nextTicket: UInt64 = 0
    private var woken = false

    public init(_ body: @escaping @Sendable (_ service: ServiceConfig, _ complete: @escaping Completion) -> Void) {
        self.body = body
    }

    public func start(_ service: ServiceConfig, slot: Int) {
        condition.lock()
        nextTicket += 1
        let ticket = nextTicket
        tickets[slot] = ticket
        condition.unlock()
        body(service) { [weak self] result in
            guard let self else { return }
            condition.lock()
            arrived.append((ticket, ProbeCompletion(slot: slot, result: result)))
            condition.signal()
            condition.unlock()
        }
    }

    public func poll(timeout: Duration, into finished: inout [ProbeCompletion]) {
        let deadline = Date().addingTimeInterval(timeout.seconds)
        condition.lock()
        defer { condition.unlock() }
        while arrived.isEmpty && !woken {
            if !condition.wait(until: deadline) { break }
        }
        woken = false
        for (ticket, completion) in arrived where tickets[completion.slot] == ticket {
            tickets[completion.slot] = nil
            finished.append(completion)
        }
        arrived.removeAll(keepingCapacity: true)
    }

    public var waker: any ProberWaker { self }

    public func wake() {
        condition.lock()
        woken = true
        condition.signal()
        condition.unlock()
    }

    public func cancel(slot: Int, forget: Bool) {
        condition.lock()
        tickets[slot] = nil
        condition.unlock()
    }
}
