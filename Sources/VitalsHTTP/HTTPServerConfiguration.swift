/// An address to listen on: a numeric IPv4 or IPv6 address and a port.
/// Host names are not resolved. Port 0 asks the kernel for a free port;
/// `HTTPServer.localAddresses` gives the one bound.
public struct HTTPListenAddress: Sendable, Hashable, CustomStringConvertible {
    /// `127.0.0.1`, `0.0.0.0`, `::1`, `::` (no brackets).
    public var host: String
    public var port: UInt16

    public init(host: String, port: UInt16) {
        self.host = host
        self.port = port
    }

    /// `127.0.0.1:port`.
    public static func loopbackIPv4(port: UInt16 = 0) -> HTTPListenAddress { .init(host: "127.0.0.1", port: port) }
    /// `[::1]:port`.
    public static func loopbackIPv6(port: UInt16 = 0) -> HTTPListenAddress { .init(host: "::1", port: port) }

    /// Parses `127.0.0.1:8080`, `0.0.0.0:8080`, `[::1]:8080` or `[::]:8080`.
    /// The address must be numeric; nil otherwise.
    public init?(_ text: String) {
        let host: Substring
        let portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return nil }
            host = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":") else { return nil }
            portText = rest.dropFirst()
        } else {
            guard let colon = text.lastIndex(of: ":") else { return nil }
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
            if host.contains(":") { return nil }  // IPv6 needs brackets
        }
        guard let port = UInt16(portText), !host.isEmpty else { return nil }
        self.init(host: String(host), port: port)
        guard SocketAddress(self) != nil else { return nil }
    }

    var isIPv6: Bool { host.contains(":") }

    /// `127.0.0.1:8080` or `[::1]:8080`.
    public var description: String { isIPv6 ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// How the server listens and what it tolerates. Every timeout is enforced
/// by the event loop to within a few milliseconds; all may be set as low as
/// ~100 ms (tests do).
public struct HTTPServerConfiguration: Sendable {
    /// Where to listen; each address is bound by `start()`. IPv6 sockets are
    /// `IPV6_V6ONLY`, so `0.0.0.0:p` and `[::]:p` can both be bound.
    /// Default: `127.0.0.1:0`.
    public var listenAddresses: [HTTPListenAddress]

    /// Request size limits (see each default there).
    public var limits: HTTPParserLimits

    /// A request head must be complete this long after its first byte (for
    /// a new connection: after accept). Past it, a client that sent part of
    /// a head gets 408 and the connection is closed; one that sent nothing
    /// is closed silently. Stops slowloris clients. Default: 10 s.
    public var headerReadTimeout: Duration

    /// How long a keep-alive connection may sit between requests. Default: 60 s.
    public var idleTimeout: Duration

    /// A request body must arrive in full this long after its head.
    /// Past it: 408 and close. Default: 30 s.
    public var bodyReadTimeout: Duration

    /// How long pending output may make no progress (a client that stopped
    /// reading) before the connection is dropped. Default: 30 s.
    public var writeTimeout: Duration

    /// After the last response on a connection the server closes, it shuts
    /// down its sending side and discards what the client still sends for
    /// up to this long, so the client reads the response instead of a
    /// reset. Default: 2 s.
    public var lingerTimeout: Duration

    /// The most open connections. Past it the server accepts, writes a 503
    /// JSON error with `Connection: close` and closes. Default: 1024.
    public var maxConnections: Int

    /// When this many response bytes wait for a slow client, the server
    /// stops reading and parsing that connection's pipelined requests until
    /// the backlog drains. Default: 262,144 (256 KiB).
    public var maxBufferedOutputBytes: Int

    /// The `listen(2)` backlog. Default: 1024.
    public var listenBacklog: Int32

    /// How long a deferred request (see `HTTPDeferringHandler`) may wait for
    /// its answer. Past it the client gets 503 and the connection is closed;
    /// the late answer is dropped. Default: 30 s.
    public var deferredResponseTimeout: Duration

    public init(
        listenAddresses: [HTTPListenAddress] = [.loopbackIPv4()],
        limits: HTTPParserLimits = .default,
        headerReadTimeout: Duration = .seconds(10),
        idleTimeout: Duration = .seconds(60),
        bodyReadTimeout: Duration = .seconds(30),
        writeTimeout: Duration = .seconds(30),
        lingerTimeout: Duration = .seconds(2),
        maxConnections: Int = 1024,
        maxBufferedOutputBytes: Int = 256 * 1024,
        listenBacklog: Int32 = 1024,
        deferredResponseTimeout: Duration = .seconds(30)
    ) {
        self.listenAddresses = listenAddresses
        self.limits = limits
        self.headerReadTimeout = headerReadTimeout
        self.idleTimeout = idleTimeout
        self.bodyReadTimeout = bodyReadTimeout
        self.writeTimeout = writeTimeout
        self.lingerTimeout = lingerTimeout
        self.maxConnections = maxConnections
        self.maxBufferedOutputBytes = maxBufferedOutputBytes
        self.listenBacklog = listenBacklog
        self.deferredResponseTimeout = deferredResponseTimeout
    }
}

/// Serves requests. Called on the server's single event-loop thread, one
/// request at a time and in order per connection: it must be fast and must
/// not block (the agent returns pre-rendered responses). HEAD requests
/// arrive with `method == .head`: route them like GET; the server sends the
/// headers, with the GET body's Content-Length, and drops the body.
public protocol HTTPHandler: Sendable {
    func handle(_ request: HTTPRequest) -> HTTPResponse
}

/// A handler made of a closure.
public struct HTTPClosureHandler: HTTPHandler {
    private let body: @Sendable (HTTPRequest) -> HTTPResponse

    public init(_ body: @escaping @Sendable (HTTPRequest) -> HTTPResponse) {
        self.body = body
    }

    public func handle(_ request: HTTPRequest) -> HTTPResponse { body(request) }
}
