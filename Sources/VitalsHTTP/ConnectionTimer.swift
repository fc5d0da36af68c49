/// The server's timeouts in nanoseconds of the monotonic clock.
struct ConnectionTimeouts: Equatable {
    var header: UInt64
    var idle: UInt64
    var body: UInt64
    var write: UInt64
    var linger: UInt64

    init(header: UInt64, idle: UInt64, body: UInt64, write: UInt64, linger: UInt64) {
        self.header = header
        self.idle = idle
        self.body = body
        self.write = write
        self.linger = linger
    }

    init(_ configuration: HTTPServerConfiguration) {
        func nanos(_ d: Duration) -> UInt64 {
            let (s, atto) = d.components
            guard s >= 0 else { return 0 }
            return UInt64(s) &* 1_000_000_000 &+ UInt64(atto / 1_000_000_000)
        }
        self.init(
            header: nanos(configuration.headerReadTimeout),
            idle: nanos(configuration.idleTimeout),
            body: nanos(configuration.bodyReadTimeout),
            write: nanos(configuration.writeTimeout),
            linger: nanos(configuration.lingerTimeout))
    }
}

/// Which deadline of a connection passed, and so what the server does.
enum ConnectionExpiry: Equatable {
    /// Nothing (or nothing more) was sent in time: close without a word.
    case idle
    /// A head was started and not finished in time: 408, then close.
    case header
    /// A body did not arrive in time: 408, then close.
    case body
    /// Pending output made no progress in time: drop the connection.
    case write
    /// The lingering close is over: close.
    case linger
}

/// The deadlines of one connection, as a pure state machine over monotonic
/// nanoseconds: the event loop reports what happened and when, and asks
/// for the next deadline and whether it passed. No clock is read here, so
/// tests drive it with plain numbers.
struct ConnectionTimer: Equatable {
    enum Phase: Equatable {
        /// Accepted, no byte yet. Bounded by the header timeout from accept,
        /// so a connection that never speaks is not held for the idle time.
        case awaitingFirstRequest
        /// Between requests on a keep-alive connection.
        case idle
        /// Part of a head has arrived.
        case head
        /// The head is complete, the body is arriving.
        case body
        /// The last response is written; discarding input until close.
        case lingering
    }

    private(set) var phase: Phase = .awaitingFirstRequest
    private(set) var phaseStart: UInt64
    private(set) var writeStalledSince: UInt64?

    init(acceptedAt now: UInt64) {
        phaseStart = now
    }

    /// Reports the parser's phase after the loop fed it and took out its
    /// requests (`completedRequest`: at least one came out).
    mutating func parserPhase(_ parserPhase: HTTPRequestParser.Phase, completedRequest: Bool, now: UInt64) {
        if phase == .lingering { return }
        let next: Phase
        switch parserPhase {
        case .idle: next = (phase == .awaitingFirstRequest && !completedRequest) ? .awaitingFirstRequest : .idle
        case .head: next = .head
        case .body: next = .body
        }
        if phase == .awaitingFirstRequest && next == .head && !completedRequest {
            // The first head is timed from accept.
            phase = .head
            return
        }
        if next != phase || completedRequest {
            phase = next
            phaseStart = now
        }
    }

    /// Reports a write attempt: whether output is still pending, and
    /// whether the attempt moved any bytes.
    mutating func output(pending: Bool, progressed: Bool, now: UInt64) {
        if !pending {
            // Idle time counts from when the last response was fully sent.
            if writeStalledSince != nil && phase == .idle { phaseStart = now }
            writeStalledSince = nil
        } else if progressed || writeStalledSince == nil {
            writeStalledSince = now
        }
    }

    mutating func startLingering(now: UInt64) {
        phase = .lingering
        phaseStart = now
    }

    /// A connection waiting for its next request while a response is
    /// still being written is not idle: only the write timeout applies.
    private var idleWhileWriting: Bool { phase == .idle && writeStalledSince != nil }

    private func phaseLimit(_ timeouts: ConnectionTimeouts) -> UInt64 {
        switch phase {
        case .awaitingFirstRequest, .head: return timeouts.header
        case .idle: return timeouts.idle
        case .body: return timeouts.body
        case .lingering: return timeouts.linger
        }
    }

    /// The earliest time at which `expiry(at:)` may report something.
    func deadline(_ timeouts: ConnectionTimeouts) -> UInt64 {
        let phaseDeadline = phaseStart.addingReportingOverflow(phaseLimit(timeouts))
        var deadline = phaseDeadline.overflow || idleWhileWriting ? UInt64.max : phaseDeadline.partialValue
        if let writeStalledSince {
            let w = writeStalledSince.addingReportingOverflow(timeouts.write)
            deadline = min(deadline, w.overflow ? UInt64.max : w.partialValue)
        }
        return deadline
    }

    /// Which deadline has passed at `now`, if any.
    func expiry(at now: UInt64, _ timeouts: ConnectionTimeouts) -> ConnectionExpiry? {
        if let writeStalledSince, now >= writeStalledSince &+ timeouts.write, phase != .lingering {
            return .write
        }
        guard !idleWhileWriting, now >= phaseStart &+ phaseLimit(timeouts) else { return nil }
        switch phase {
        case .awaitingFirstRequest, .idle: return .idle
        case .head: return .header
        case .body: return .body
        case .lingering: return .linger
        }
    }
}
