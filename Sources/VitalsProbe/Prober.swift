import VitalsCore

/// Runs probes on behalf of one loop thread: the scheduler's.
///
/// The shape is a poll loop, not callbacks, so that the scheduler thread can
/// *be* the I/O thread: `start` adds a transfer, `poll` waits for I/O (or for
/// the next due probe) and hands back the probes that finished, and a result
/// never hops threads before it reaches the scheduler.
///
/// A prober is not `Sendable`: it belongs to the thread that runs the loop,
/// and is handed over whole (`sending`) to the scheduler that starts it.
/// Only its `waker` is shared with other threads.
public protocol Prober: AnyObject {
    /// Starts one probe of `service`. `slot` names the probe in its
    /// `ProbeCompletion` and stays the same for a service across probes, so a
    /// prober may keep per-service state (an easy handle, a kept-alive
    /// connection) under it. At most one probe per slot is in flight.
    func start(_ service: ServiceConfig, slot: Int)

    /// Waits until at least one probe finishes, the waker is woken, or
    /// `timeout` passes, then appends every finished probe to `finished`.
    /// May return early and empty-handed.
    func poll(timeout: Duration, into finished: inout [ProbeCompletion])

    /// Abandons the probe in flight in `slot`, if any: no completion follows.
    /// With `forget`, also drops what the prober keeps for the slot (the
    /// service was removed or its check changed).
    func cancel(slot: Int, forget: Bool)

    /// Makes the current (or the next) `poll` return promptly; usable from
    /// any thread, and for as long as anyone holds it.
    var waker: any ProberWaker { get }
}

/// The part of a `Prober` other threads may touch.
public protocol ProberWaker: Sendable {
    func wake()
}

/// A probe that finished: which slot, and its raw result.
public struct ProbeCompletion: Sendable, Equatable {
    public var slot: Int
    public var result: ProbeResult

    public init(slot: Int, result: ProbeResult) {
        self.slot = slot
        self.result = result
    }
}

/// How soon to probe a service again, as the health model answers after each
/// result: `.fast` while a state change is being confirmed. The health
/// model's own type, so the two can never disagree.
public typealias NextProbe = ProbeDelayHint

/// Where the scheduler delivers results. Called on the scheduler's loop
/// thread, once per finished probe: hand the result on and return quickly.
public protocol ProbeResultSink: Sendable {
    func deliver(_ result: ProbeResult, service: String)

    /// After the results of one round (everything one poll of the prober
    /// returned) were delivered. Work that need not follow every result
    /// (deciding on state changes) is done here once for all of them: in a
    /// storm of changes its cost then grows with rounds, not results.
    func roundEnded()
}

extension ProbeResultSink {
    public func roundEnded() {}
}

/// A `ProbeResultSink` made of closures.
public struct ProbeResultHandler: ProbeResultSink {
    private let body: @Sendable (ProbeResult, String) -> Void
    private let endOfRound: @Sendable () -> Void

    public init(_ body: @escaping @Sendable (_ result: ProbeResult, _ service: String) -> Void,
                roundEnded: @escaping @Sendable () -> Void = {}) {
        self.body = body
        self.endOfRound = roundEnded
    }

    public func deliver(_ result: ProbeResult, service: String) {
        body(result, service)
    }

    public func roundEnded() {
        endOfRound()
    }
}
