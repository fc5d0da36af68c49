#if canImport(Glibc)
import Glibc
#endif
import CSystem
import VitalsSystem

/// The single-threaded epoll loop: accepts, reads, parses, calls the
/// handler, writes, and enforces every timeout. Lives on its own thread
/// from `run()` until its mailbox asks it to stop.
final class EventLoop {
    static let wakeTag = UInt64.max
    static let listenerBit: UInt64 = 1 << 62
    /// How long accepting pauses after the process ran out of descriptors,
    /// so a full table does not spin the loop on a readable listener.
    static let acceptPauseNanoseconds: UInt64 = 100_000_000
    /// Input discarded while lingering before the connection is cut.
    static let maxLingerDiscardBytes = 1024 * 1024
    /// Bodies up to this size are copied next to their head (one iovec);
    /// larger ones are referenced.
    static let inlineBodyLimit = 2048

    let configuration: HTTPServerConfiguration
    let handler: LoopHandler
    let timeouts: ConnectionTimeouts
    let deferredTimeout: UInt64
    let epfd: Int32
    let mailbox: LoopMailbox
    let listeners: [Int32]

    var connections: [Connection?] = []
    var connectionCount = 0 {
        didSet { openConnections.value.store(connectionCount, ordering: .relaxed) }
    }
    /// `connectionCount`, readable from other threads (for `/metrics`).
    private let openConnections: ConnectionGauge
    var nextGeneration: UInt64 = 1
    var nextSweep = UInt64.max
    var acceptPausedUntil: UInt64?
    var now: UInt64
    var date = HTTPDateCache()
    var nextRequestID: UInt64 = 0

    let eventCapacity = 256
    let events: UnsafeMutablePointer<epoll_event>
    let readBuffer: UnsafeMutableRawBufferPointer
    let iovecCapacity = 64
    let iovecs: UnsafeMutablePointer<iovec>
    let acceptAddress: UnsafeMutablePointer<sockaddr_storage>
    let overCapacityBody = HTTPResponse.error(status: .serviceUnavailable, message: "too many connections").body

    /// Takes ownership of `listeners`: they are registered here and closed
    /// when `run()` returns. `mailbox` brings answers and the stop request.
    init(configuration: HTTPServerConfiguration, handler: LoopHandler, listeners: [Int32], mailbox: LoopMailbox,
         openConnections: ConnectionGauge) throws(SystemCallError) {
        self.openConnections = openConnections
        self.configuration = configuration
        self.handler = handler
        self.timeouts = ConnectionTimeouts(configuration)
        self.deferredTimeout = UInt64(max(0, configuration.deferredResponseTimeout.nanosecondCount))
        self.listeners = listeners
        self.mailbox = mailbox
        self.epfd = try Posix.epollCreate()
        self.now = EventLoop.nanosecondsNow()
        events = .allocate(capacity: eventCapacity)
        readBuffer = .allocate(byteCount: 64 * 1024, alignment: 16)
        iovecs = .allocate(capacity: iovecCapacity)
        acceptAddress = .allocate(capacity: 1)
        do {
            try Posix.epollControl(epfd, EPOLL_CTL_ADD, mailbox.wakeFD, events: epollIn, tag: EventLoop.wakeTag)
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

    func freeBuffers() {
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
                if tag == EventLoop.wakeTag {
                    let (answers, stop) = mailbox.take()
                    if stop { return }
                    for answer in answers { deliver(answer) }
                    continue
                }
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

    func waitTimeout() -> Int32 {
        let next = min(nextSweep, acceptPausedUntil ?? .max)
        if next == .max { return -1 }
        let current = EventLoop.nanosecondsNow()
        if next <= current { return 0 }
        let milliseconds = (next - current + 999_999) / 1_000_000
        return Int32(clamping: milliseconds)
    }

    var isShutDown = false

    func closeEverything() {
        isShutDown = true
        for i in connections.indices {
            if let c = connections[i] { close(c) }
        }
        for fd in listeners { Posix.close(fd) }
        Posix.close(epfd)
        freeBuffers()
    }

    // MARK: - Accepting

    func acceptConnections(on listener: Int32) {
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

    func pauseAccepting() {
        for fd in listeners {
            try? Posix.epollControl(epfd, EPOLL_CTL_MOD, fd, events: 0, tag: 0)
        }
        acceptPausedUntil = now + EventLoop.acceptPauseNanoseconds
    }

    func resumeAccepting() {
        acceptPausedUntil = nil
        for (index, fd) in listeners.enumerated() {
            try? Posix.epollControl(epfd, EPOLL_CTL_MOD, fd, events: epollIn, tag: EventLoop.listenerBit | UInt64(index))
        }
    }

    /// Answers a connection past `maxConnections` with a 503 and closes it,
    /// without ever tracking it: one non-blocking send into an empty socket
    /// buffer.
    func rejectOverCapacity(_ fd: Int32) {
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
}
