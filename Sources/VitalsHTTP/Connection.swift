#if canImport(Glibc)
import Glibc
#endif
import CSystem
import Synchronization

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
    /// The request whose deferred answer this connection waits for; later
    /// requests stay unparsed in `parser` until it comes.
    var awaiting: AwaitedRequest?

    init(fd: Int32, tag: UInt64, remote: HTTPRemoteAddress?, limits: HTTPParserLimits, now: UInt64, events: UInt32) {
        self.fd = fd
        self.tag = tag
        self.remote = remote
        self.parser = HTTPRequestParser(limits: limits)
        self.timer = ConnectionTimer(acceptedAt: now)
        self.registeredEvents = events
    }
}

/// A request answered later (`HTTPDeferringHandler`): what its answer needs.
struct AwaitedRequest {
    var id: UInt64
    /// Monotonic nanoseconds; then the client gets 503.
    var deadline: UInt64
    var head: Bool
    var keepAlive: Bool
    var version: HTTPVersion
}

/// What the loop calls for each request.
enum LoopHandler: Sendable {
    /// Answers every request at once, on the loop thread.
    case immediate(any HTTPHandler)
    /// May answer a request later, from any thread.
    case deferring(any HTTPDeferringHandler)
}

let epollIn = UInt32(EPOLLIN.rawValue)
let epollOut = UInt32(EPOLLOUT.rawValue)
let epollErrOrHup = UInt32(EPOLLERR.rawValue) | UInt32(EPOLLHUP.rawValue)
