#if canImport(Glibc)
import Glibc
#endif
import CSystem
import Synchronization
import VitalsSystem

/// How many connections a server has open, written by its loop and read
/// from any thread.
final class ConnectionGauge: Sendable {
    let value = Atomic<Int>(0)
}

/// One accepted connection, owned by the event loop.
final class Connection {
    let fd: Int32
    /// The epoll tag: generation in the high bits, descriptor in the low 32,
    /// so an event for a closed descriptor that was reused is recognised.
    let tag: UInt64
    let remote: HTTPRemoteAddress?
    var parser: HTTPRequestParser
    var output = OutputQueue()
    var timer: ConnectionTimer
    /// No more requests will be served: flush, then close.
    var closing = false
    /// The peer sent FIN.
    var peerClosedInput = false
    /// Output is done and shut down; discarding input until close.
    var lingering = false
    var lingerDiscardedBytes = 0
    var registeredEvents: UInt32
    var isClosed = false

    init(fd: Int32, tag: UInt64, remote: HTTPRemoteAddress?, limits: HTTPParserLimits, now: UInt64, events: UInt32) {
        self.fd = fd
        self.tag = tag
        self.remote = remote
        self.parser = HTTPRequestParser(limits: limits)
        self.timer = ConnectionTimer(acceptedAt: now)
        self.registeredEvents = events
    }
}

private let epollIn = UInt32(EPOLLIN.rawValue)
private let epollOut = UInt32(EPOLLOUT.rawValue)
private let epollErrOrHup = UInt32(EPOLLERR.rawValue) | UInt32(EPOLLHUP.rawValue)

/// The single-threaded epoll loop: accepts, reads, parses, calls the
/// handler, writes, and enforces every timeout. Lives on its own thread
/// from `run()` until the wake descriptor fires.
final class EventLoop {
    private static let wakeTag = UInt64.max
    private static let listenerBit: UInt64 = 1 << 62
    /// How long accepting pauses after the process ran out of descriptors,
    /// so a full table does not spin the loop on a readable listener.
    private static let acceptPauseNanoseconds: UInt64 = 100_000_000
    /// Input discarded while lingering before the connection is cut.
    private static let maxLingerDiscardBytes = 1024 * 1024
    /// Bodies up to this size are copied next to their head (one iovec);
    /// larger ones are referenced.
    private static let inlineBodyLimit = 2048

    private let configuration: HTTPServerConfiguration
    private let handler: any HTTPHandler
    private let timeouts: ConnectionTimeouts
    private let epfd: Int32
    private let wakeFD: Int32
    private let listeners: [Int32]

    private var connections: [Connection?] = []
    private var connectionCount = 0 {
        didSet { openConnections.value.store(connectionCount, ordering: .relaxed) }
    }
    /// `connectionCount`, readable from other threads (for `/metrics`).
    private let openConnections: ConnectionGauge
    private var nextGeneration: UInt64 = 1
    private var nextSweep = UInt64.max
    private var acceptPausedUntil: UInt64?
    private var now: UInt64
    private var date = HTTPDateCache()

    private let eventCapacity = 256
    private let events: UnsafeMutablePointer<epoll_event>
    private let readBuffer: UnsafeMutableRawBufferPointer
    private let iovecCapacity = 64
    private let iovecs: UnsafeMutablePointer<iovec>
    private let acceptAddress: UnsafeMutablePointer<sockaddr_storage>
    private let overCapacityBody = HTTPResponse.error(status: .serviceUnavailable, message: "too many connections").body

    /// Takes ownership of `listeners` and `wakeFD`: they are registered
    /// here and closed when `run()` returns.
    init(configuration: HTTPServerConfiguration, handler: any HTTPHandler, listeners: [Int32], wakeFD: Int32,
         openConnections: ConnectionGauge) throws(SystemCallError) {
        self.openConnections = openConnections
        self.configuration = configuration
        self.handler = handler
        self.timeouts = ConnectionTimeouts(configuration)
        self.listeners = listeners
        self.wakeFD = wakeFD
        self.epfd = try Posix.epollCreate()
        self.now = EventLoop.nanosecondsNow()
        events = .allocate(capacity: eventCapacity)
        readBuffer = .allocate(byteCount: 64 * 1024, alignment: 16)
        iovecs = .allocate(capacity: iovecCapacity)
        acceptAddress = .allocate(capacity: 1)
        do {
            try Posix.epollControl(epfd, EPOLL_CTL_ADD, wakeFD, events: epollIn, tag: EventLoop.wakeTag)
            for (index, fd) in listeners.enumerated() {
                try Posix.epollControl(epfd, EPOLL_CTL_ADD, fd, events: epollIn, tag: EventLoop.listenerBit | UInt64(index))
            }
        } catch {
            Posix.close(epfd)
            freeBuffers()
            throw error
        }
    }

    /// `CLOCK_MONOTONIC` in nanoseconds, the unit of every deadline here.
    static func nanosecondsNow() -> UInt64 { UInt64(MonotonicInstant.now().nanoseconds) }

    private func freeBuffers() {
        events.deallocate()
        readBuffer.deallocate()
        iovecs.deallocate()
        acceptAddress.deallocate()
    }

    // MARK: - The loop

    /// A loop released without running (its thread could not start) still
    /// closes what it owns.
    deinit {
        if !isShutDown { closeEverything() }
    }

    func run() {
        defer { closeEverything() }
        while true {
            let count: Int
            do {
                count = try Posix.epollWait(epfd, events, capacity: Int32(eventCapacity), timeoutMilliseconds: waitTimeout())
            } catch {
                // Only a bug (bad descriptor, bad pointer, bad size) gets here.
                fatalError("VitalsHTTP event loop: \(error)")
            }
            now = EventLoop.nanosecondsNow()
            date.refresh()
            for i in 0..<count {
                let tag = events[i].data.u64
                let mask = events[i].events
                if tag == EventLoop.wakeTag { return }
                if tag & EventLoop.listenerBit != 0 {
                    if acceptPausedUntil == nil {
                        acceptConnections(on: listeners[Int(tag & 0xFFFF)])
                    }
                } else {
                    handleConnectionEvent(tag: tag, mask: mask)
                }
            }
            if let until = acceptPausedUntil, now >= until { resumeAccepting() }
            if now >= nextSweep { sweep() }
        }
    }

    private func waitTimeout() -> Int32 {
        let next = min(nextSweep, acceptPausedUntil ?? .max)
        if next == .max { return -1 }
        let current = EventLoop.nanosecondsNow()
        if next <= current { return 0 }
        let milliseconds = (next - current + 999_999) / 1_000_000
        return Int32(clamping: milliseconds)
    }

    private var isShutDown = false

    private func closeEverything() {
        isShutDown = true
        for i in connections.indices {
            if let c = connections[i] { close(c) }
        }
        for fd in listeners { Posix.close(fd) }
        Posix.close(wakeFD)
        Posix.close(epfd)
        freeBuffers()
    }

    // MARK: - Accepting

    private func acceptConnections(on listener: Int32) {
        // Bounded so that a connection storm cannot starve served clients.
        for _ in 0..<128 {
            let accepted: Int32?
            do {
                accepted = try Posix.accept(listener, acceptAddress)
            } catch {
                switch error.errno {
                case EMFILE, ENFILE, ENOBUFS, ENOMEM:
                    pauseAccepting()
                    return
                default:
                    // ECONNABORTED, EPROTO, EPERM: that one connection failed.
                    continue
                }
            }
            guard let fd = accepted else { return }
            if connectionCount >= configuration.maxConnections {
                rejectOverCapacity(fd)
                continue
            }
            try? Posix.setOption(fd, level: Int32(IPPROTO_TCP), name: TCP_NODELAY, value: 1, "TCP_NODELAY")
            let tag = (nextGeneration << 32) | UInt64(UInt32(bitPattern: fd))
            nextGeneration = nextGeneration == (1 << 29) ? 1 : nextGeneration + 1
            do {
                try Posix.epollControl(epfd, EPOLL_CTL_ADD, fd, events: epollIn, tag: tag)
            } catch {
                Posix.close(fd)
                continue
            }
            let connection = Connection(
                fd: fd, tag: tag, remote: SocketAddress.describe(acceptAddress),
                limits: configuration.limits, now: now, events: epollIn)
            let index = Int(fd)
            if index >= connections.count {
                connections.append(contentsOf: repeatElement(nil, count: index - connections.count + 64))
            }
            connections[index] = connection
            connectionCount += 1
            noteDeadline(connection)
        }
    }

    private func pauseAccepting() {
        for fd in listeners {
            try? Posix.epollControl(epfd, EPOLL_CTL_MOD, fd, events: 0, tag: 0)
        }
        acceptPausedUntil = now + EventLoop.acceptPauseNanoseconds
    }

    private func resumeAccepting() {
        acceptPausedUntil = nil
        for (index, fd) in listeners.enumerated() {
            try? Posix.epollControl(epfd, EPOLL_CTL_MOD, fd, events: epollIn, tag: EventLoop.listenerBit | UInt64(index))
        }
    }

    /// Answers a connection past `maxConnections` with a 503 and closes it,
    /// without ever tracking it: one non-blocking send into an empty socket
    /// buffer.
    private func rejectOverCapacity(_ fd: Int32) {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(256)
        ResponseHead.write(
            into: &bytes, status: .serviceUnavailable, headers: ["Content-Type": "application/json"],
            contentLength: overCapacityBody.count, connection: .close, date: date.bytes)
        overCapacityBody.withUnsafeBytes { bytes.append(contentsOf: $0) }
        _ = try? bytes.withUnsafeBytes { (raw) throws(SystemCallError) -> IOResult in try Posix.send(fd, raw) }
        Posix.shutdownWrite(fd)
        // Read what already arrived so that close sends FIN, not RST, and
        // the client gets to read the 503.
        _ = try? Posix.recv(fd, readBuffer)
        Posix.close(fd)
    }

    // MARK: - Connections

    private func handleConnectionEvent(tag: UInt64, mask: UInt32) {
        let index = Int(tag & 0xFFFF_FFFF)
        guard index < connections.count, let c = connections[index], c.tag == tag else { return }
        if mask & epollErrOrHup != 0 {
            // Reset, or both directions shut: nothing can be delivered.
            close(c)
            return
        }
        if mask & epollIn != 0 {
            readable(c)
            if c.isClosed { return }
        }
        if mask & epollOut != 0 {
            writable(c)
        }
    }

    private func readable(_ c: Connection) {
        if c.lingering {
            drainLingering(c)
            return
        }
        if c.closing { return }
        let result: IOResult
        do {
            result = try Posix.recv(c.fd, readBuffer)
        } catch {
            close(c)
            return
        }
        switch result {
        case .wouldBlock:
            return
        case .processed(0):
            // The client is done sending; a partial request can never
            // complete. Finish writing what is owed, then close.
            c.peerClosedInput = true
            c.closing = true
            c.parser.discardBufferedBytes()
            flush(c)
        case .processed(let n):
            c.parser.feed(UnsafeRawBufferPointer(rebasing: readBuffer[0..<n]))
            processRequests(c)
        }
    }

    private func writable(_ c: Connection) {
        flush(c)
        if !c.isClosed && !c.closing && c.output.pendingBytes < configuration.maxBufferedOutputBytes
            && c.parser.bufferedByteCount > 0 {
            processRequests(c)
        }
    }

    /// Parses and answers buffered requests until more bytes are needed,
    /// the connection is closing, or its output is backed up.
    private func processRequests(_ c: Connection) {
        let cap = configuration.maxBufferedOutputBytes
        while true {
            var completed = false
            var backedUp = false
            while !c.closing {
                if c.output.pendingBytes >= cap {
                    backedUp = true
                    break
                }
                let event: HTTPParserEvent?
                do {
                    event = try c.parser.next()
                } catch {
                    enqueue(error.response, to: c, head: false, connection: .close)
                    c.closing = true
                    break
                }
                guard let event else { break }
                switch event {
                case .continueExpected:
                    c.output.appendInline { $0.append(contentsOf: "HTTP/1.1 100 Continue\r\n\r\n".utf8) }
                case .request(var request):
                    completed = true
                    request.remoteAddress = c.remote
                    let response = handler.handle(request)
                    let keepAlive = request.keepAlive && !response.closesConnection
                    let field: ResponseHead.ConnectionField =
                        !keepAlive ? .close : (request.version == .http1_0 ? .keepAlive : .none)
                    enqueue(response, to: c, head: request.method == .head, connection: field)
                    if !keepAlive { c.closing = true }
                }
            }
            c.timer.parserPhase(c.parser.phase, completedRequest: completed, now: now)
            flush(c)
            // Continue only if the flush drained a backlog that stopped us.
            if c.isClosed || c.closing || !backedUp || c.output.pendingBytes >= cap { return }
        }
    }

    private func enqueue(_ response: HTTPResponse, to c: Connection, head: Bool, connection: ResponseHead.ConnectionField) {
        let status = response.status
        let body = response.body
        let sendBody = !head && !status.forbidsBody && body.count > 0
        let inlineBody = sendBody && body.count <= EventLoop.inlineBodyLimit
        let date = self.date.bytes
        c.output.appendInline { out in
            if let head = response.preparedHead {
                head.write(into: &out, date: date, connection: connection)
            } else {
                ResponseHead.write(
                    into: &out, status: status, headers: response.headers,
                    contentLength: status.forbidsContentLength ? nil : body.count,
                    connection: connection, date: date)
            }
            if inlineBody {
                body.withUnsafeBytes { out.append(contentsOf: $0) }
            }
        }
        if sendBody && !inlineBody {
            c.output.appendBody(body)
        }
    }

    private func flush(_ c: Connection) {
        var progressed = false
        if !c.output.isEmpty {
            do {
                progressed = try c.output.write(to: c.fd, iovecs: iovecs, capacity: iovecCapacity)
            } catch {
                close(c)
                return
            }
        }
        c.timer.output(pending: !c.output.isEmpty, progressed: progressed, now: now)
        if c.output.isEmpty && c.closing {
            if c.peerClosedInput {
                close(c)
                return
            }
            startLingering(c)
        } else {
            var wanted: UInt32 = 0
            if !c.output.isEmpty { wanted |= epollOut }
            if !c.closing && c.output.pendingBytes < configuration.maxBufferedOutputBytes { wanted |= epollIn }
            setInterest(c, wanted)
        }
        if !c.isClosed { noteDeadline(c) }
    }

    /// Shuts down the sending side after the last response and discards
    /// input until the client closes (or the linger timeout), so that
    /// unread input does not turn close into a reset that destroys the
    /// response before the client reads it.
    private func startLingering(_ c: Connection) {
        c.lingering = true
        c.parser.discardBufferedBytes()
        c.timer.startLingering(now: now)
        Posix.shutdownWrite(c.fd)
        setInterest(c, epollIn)
        if !c.isClosed { drainLingering(c) }
    }

    private func drainLingering(_ c: Connection) {
        while true {
            let result: IOResult
            do {
                result = try Posix.recv(c.fd, readBuffer)
            } catch {
                close(c)
                return
            }
            switch result {
            case .wouldBlock:
                return
            case .processed(0):
                close(c)
                return
            case .processed(let n):
                c.lingerDiscardedBytes += n
                if c.lingerDiscardedBytes > EventLoop.maxLingerDiscardBytes {
                    close(c)
                    return
                }
            }
        }
    }

    private func setInterest(_ c: Connection, _ wanted: UInt32) {
        guard wanted != c.registeredEvents else { return }
        do {
            try Posix.epollControl(epfd, EPOLL_CTL_MOD, c.fd, events: wanted, tag: c.tag)
            c.registeredEvents = wanted
        } catch {
            close(c)
        }
    }

    private func close(_ c: Connection) {
        guard !c.isClosed else { return }
        c.isClosed = true
        // Explicit, though close() would do it: a descriptor copied into a
        // forked child keeps the registration alive otherwise.
        try? Posix.epollControl(epfd, EPOLL_CTL_DEL, c.fd, events: 0, tag: 0)
        Posix.close(c.fd)
        connections[Int(c.fd)] = nil
        connectionCount -= 1
    }

    // MARK: - Timeouts

    private func noteDeadline(_ c: Connection) {
        let deadline = c.timer.deadline(timeouts)
        if deadline < nextSweep { nextSweep = deadline }
    }

    /// Acts on every passed deadline and finds the next one. Runs only
    /// when the earliest known deadline passed, so its cost (one pass over
    /// the connections) is paid about once per timeout, not per event.
    private func sweep() {
        var next = UInt64.max
        for index in connections.indices {
            guard let c = connections[index] else { continue }
            if let expiry = c.timer.expiry(at: now, timeouts) {
                expire(c, expiry)
            }
            if !c.isClosed {
                next = min(next, c.timer.deadline(timeouts))
            }
        }
        nextSweep = next
    }

    private func expire(_ c: Connection, _ expiry: ConnectionExpiry) {
        switch expiry {
        case .idle, .write, .linger:
            close(c)
        case .header, .body:
            if c.closing {
                // Already answered; the client is not reading it either.
                close(c)
                return
            }
            c.closing = true
            c.parser.discardBufferedBytes()
            enqueue(
                .error(status: .requestTimeout, message: expiry == .header ? "request head not received in time" : "request body not received in time"),
                to: c, head: false, connection: .close)
            flush(c)
        }
    }
}
