#if canImport(Glibc)
import Glibc
#endif
import CSystem
import Synchronization
import VitalsSystem

/// A small, strict HTTP/1.1 server: POSIX sockets, one epoll event-loop
/// thread, requests handed to an `HTTPHandler`.
///
/// ```swift
/// let server = HTTPServer(configuration: .init(listenAddresses: [.loopbackIPv4(port: 0)]), handler: handler)
/// try server.start()
/// print(server.localAddresses)   // [127.0.0.1:41234]
/// server.stop()
/// ```
///
/// Keep-alive and pipelining (answered in order), HTTP/1.0, HEAD,
/// `Content-Length` bodies and `Expect: 100-continue` are supported;
/// chunked request bodies are rejected with 501. Every response carries
/// `Content-Length` (except 1xx/204/304), `Date` and `Server: vitals`. After
/// a rejected request (see `HTTPParseError`) the connection is closed.
public final class HTTPServer: Sendable {
    public let configuration: HTTPServerConfiguration
    private let handler: LoopHandler
    private let state = Mutex<State>(.idle)
    private let gauge = ConnectionGauge()

    private enum State {
        case idle
        case running(thread: LoopThread, mailbox: LoopMailbox, addresses: [HTTPListenAddress])
        case stopped
    }

    public init(configuration: HTTPServerConfiguration = .init(), handler: any HTTPHandler) {
        self.configuration = configuration
        self.handler = .immediate(handler)
    }

    /// A server whose handler may answer requests later, from another thread.
    public init(configuration: HTTPServerConfiguration = .init(), deferringHandler: any HTTPDeferringHandler) {
        self.configuration = configuration
        self.handler = .deferring(deferringHandler)
    }

    deinit {
        stop()
    }

    /// Binds every listen address and starts the event-loop thread. Throws
    /// (having bound nothing) if any address cannot be bound. A server
    /// starts at most once.
    public func start() throws(SystemCallError) {
        try state.withLock { (state) throws(SystemCallError) in
            guard case .idle = state else { preconditionFailure("HTTPServer.start() called on a server that was started") }
            var listeners: [Int32] = []
            var addresses: [HTTPListenAddress] = []
            var loopOwnsDescriptors = false
            do throws(SystemCallError) {
                for address in configuration.listenAddresses {
                    let (fd, bound) = try makeListeningSocket(address, backlog: configuration.listenBacklog)
                    listeners.append(fd)
                    addresses.append(bound)
                }
                let mailbox = try LoopMailbox()
                let loop = try EventLoop(configuration: configuration, handler: handler, listeners: listeners, mailbox: mailbox,
                                         openConnections: gauge)
                loopOwnsDescriptors = true
                // Should the thread not start, the loop is released unrun and closes what it owns.
                let thread = try LoopThread.start(name: "vitals-http") { loop.run() }
                state = .running(thread: thread, mailbox: mailbox, addresses: addresses)
            } catch {
                if !loopOwnsDescriptors {
                    for fd in listeners { Posix.close(fd) }
                }
                throw error
            }
        }
    }

    /// Stops the loop, closes every connection and listening socket, and
    /// waits for the thread to end, so the ports are free when it returns.
    /// Idempotent. From a handler (the loop thread itself) it only asks the
    /// loop to stop after the current event.
    public func stop() {
        let running: (thread: LoopThread, mailbox: LoopMailbox)? = state.withLock { state in
            switch state {
            case .running(let thread, let mailbox, _):
                state = .stopped
                return (thread, mailbox)
            case .idle, .stopped:
                state = .stopped
                return nil
            }
        }
        guard let running else { return }
        // The loop exits only through this request.
        running.mailbox.requestStop()
        running.thread.join()
    }

    /// The addresses bound, with the kernel-chosen port where port 0 was
    /// asked for. Empty before `start()` and after `stop()`.
    public var localAddresses: [HTTPListenAddress] {
        state.withLock { state in
            if case .running(_, _, let addresses) = state { return addresses }
            return []
        }
    }

    /// Client connections open now (0 before `start()` and after `stop()`).
    public var openConnections: Int { gauge.value.load(ordering: .relaxed) }

    /// The bound ports, in the order of `configuration.listenAddresses`.
    public var ports: [UInt16] { localAddresses.map(\.port) }
}
