#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
@testable import VitalsHTTP
import VitalsSystem

/// Raised by the test client when something did not happen in time or the
/// bytes were not HTTP.
struct ClientError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// A monotonic deadline for test waits. Tests never sleep and hope: they
/// wait for an event with a deadline and fail if it passes.
struct Deadline {
    let nanoseconds: UInt64

    init(seconds: Double) {
        nanoseconds = UInt64(MonotonicInstant.now().nanoseconds) + UInt64(seconds * 1e9)
    }

    /// Milliseconds left, at least 0.
    var remainingMilliseconds: Int32 {
        let now = UInt64(MonotonicInstant.now().nanoseconds)
        return now >= nanoseconds ? 0 : Int32(clamping: (nanoseconds - now) / 1_000_000 + 1)
    }

    var hasPassed: Bool { UInt64(MonotonicInstant.now().nanoseconds) >= nanoseconds }
}

/// Seconds since `start` on the monotonic clock.
func secondsSince(_ start: UInt64) -> Double {
    Double(UInt64(MonotonicInstant.now().nanoseconds) - start) / 1e9
}

/// A parsed response, as the test client saw it.
struct ClientResponse {
    var status: Int
    var reason: String
    var headers: [(String, String)]
    var body: [UInt8]

    func header(_ name: String) -> String? {
        headers.first { $0.0.lowercased() == name.lowercased() }?.1
    }

    var bodyText: String { String(decoding: body, as: UTF8.self) }
}

/// A blocking loopback client over a raw socket, with every wait bounded.
final class TestClient {
    let fd: Int32
    private var buffer: [UInt8] = []

    /// Connects. `receiveBuffer` sets SO_RCVBUF before connecting (a small
    /// one makes a client that stops reading fill up quickly).
    convenience init(_ address: HTTPListenAddress, receiveBuffer: Int32? = nil) throws {
        try self.init(unconnectedFor: address, receiveBuffer: receiveBuffer)
        try connect(address)
    }

    /// Creates the socket only; `connect(_:)` later.
    init(unconnectedFor address: HTTPListenAddress, receiveBuffer: Int32? = nil) throws {
        guard let socketAddress = SocketAddress(address) else { throw ClientError("bad address \(address)") }
        fd = socket(socketAddress.family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw ClientError("socket: errno \(errno)") }
        if var size = receiveBuffer {
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        }
    }

    func connect(_ address: HTTPListenAddress) throws {
        var socketAddress = SocketAddress(address)!
        let length = socketAddress.length
        let rc = withUnsafePointer(to: &socketAddress.storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, length) }
        }
        guard rc == 0 else { throw ClientError("connect \(address): errno \(errno)") }
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    }

    deinit { Glibc.close(fd) }

    func send(_ text: String) throws { try send(Array(text.utf8)) }

    func send(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw ClientError("send: errno \(errno)")
            }
            offset += n
        }
    }

    /// Sends without blocking past the timeout; stops early when the
    /// server stops taking bytes. Returns how many were sent.
    @discardableResult
    func sendWhatFits(_ bytes: [UInt8], timeout: Double) throws -> Int {
        let deadline = Deadline(seconds: timeout)
        var offset = 0
        while offset < bytes.count {
            var pfd = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            let ready = poll(&pfd, 1, min(deadline.remainingMilliseconds, 200))
            if ready == 0 { break }  // the server stopped reading: enough
            if ready < 0 { if errno == EINTR { continue }; throw ClientError("poll: errno \(errno)") }
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) }
            if n < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                break  // reset: the server already gave up on us
            }
            offset += n
        }
        return offset
    }

    /// Whether the server hung up (FIN or reset) within the timeout,
    /// without reading anything: polls for RDHUP/HUP/ERR only.
    func waitForHangUp(timeout: Double) throws -> Bool {
        let deadline = Deadline(seconds: timeout)
        while !deadline.hasPassed {
            // POLLRDHUP (0x2000) is _GNU_SOURCE-only in the headers Swift sees.
            var pfd = pollfd(fd: fd, events: 0x2000, revents: 0)
            let ready = poll(&pfd, 1, deadline.remainingMilliseconds)
            if ready < 0 { if errno == EINTR { continue }; throw ClientError("poll: errno \(errno)") }
            if ready > 0 { return true }
        }
        return false
    }

    /// Waits up to the deadline for bytes; returns false on EOF.
    private func fill(_ deadline: Deadline) throws -> Bool {
        while true {
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&pfd, 1, deadline.remainingMilliseconds)
            if ready < 0 {
                if errno == EINTR { continue }
                throw ClientError("poll: errno \(errno)")
            }
            if ready == 0 { throw ClientError("timed out waiting for the server") }
            var chunk = [UInt8](repeating: 0, count: 65536)
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 {
                if errno == EINTR { continue }
                if errno == ECONNRESET { return false }
                throw ClientError("recv: errno \(errno)")
            }
            if n == 0 { return false }
            buffer.append(contentsOf: chunk[0..<n])
            return true
        }
    }

    /// Reads one response. `bodyExpected: false` for HEAD (Content-Length
    /// describes the GET body, none follows).
    func readResponse(bodyExpected: Bool = true, timeout: Double = 5) throws -> ClientResponse {
        let deadline = Deadline(seconds: timeout)
        var headEnd: Int?
        while true {
            if let i = findHeadEnd() { headEnd = i; break }
            guard try fill(deadline) else { throw ClientError("connection closed before a response head (\(buffer.count) bytes)") }
        }
        let head = String(decoding: buffer[0..<headEnd!], as: UTF8.self)
        var lines = head.components(separatedBy: "\r\n")
        let statusLine = lines.removeFirst()
        let parts = statusLine.split(separator: " ", maxSplits: 2).map(String.init)
        guard parts.count >= 2, parts[0] == "HTTP/1.1", let status = Int(parts[1]) else {
            throw ClientError("bad status line: \(statusLine)")
        }
        var headers: [(String, String)] = []
        for line in lines where !line.isEmpty {
            guard let colon = line.firstIndex(of: ":") else { throw ClientError("bad header: \(line)") }
            headers.append((String(line[..<colon]), String(line[line.index(after: colon)...]).trimmingSpaces()))
        }
        buffer.removeFirst(headEnd! + 4)
        var response = ClientResponse(status: status, reason: parts.count > 2 ? parts[2] : "", headers: headers, body: [])
        if bodyExpected, let lengthText = response.header("Content-Length"), let length = Int(lengthText) {
            while buffer.count < length {
                guard try fill(deadline) else { throw ClientError("connection closed in a body") }
            }
            response.body = Array(buffer[0..<length])
            buffer.removeFirst(length)
        }
        return response
    }

    /// Reads until the server closes; returns what arrived after whatever
    /// `readResponse` consumed.
    func readUntilClose(timeout: Double = 5) throws -> [UInt8] {
        let deadline = Deadline(seconds: timeout)
        while try fill(deadline) {}
        defer { buffer.removeAll() }
        return buffer
    }

    /// Whether the server closed the connection (EOF or reset) within the
    /// timeout, with no more bytes sent.
    func waitForClose(timeout: Double) throws -> Bool {
        let deadline = Deadline(seconds: timeout)
        do {
            while try fill(deadline) {}
            return true
        } catch let error as ClientError where error.description.hasPrefix("timed out") {
            return false
        }
    }

    var bufferedBytes: [UInt8] { buffer }

    /// The bytes of exactly one `recv` (after waiting for readability).
    func receiveOnce(timeout: Double = 5) throws -> [UInt8] {
        precondition(buffer.isEmpty)
        guard try fill(Deadline(seconds: timeout)) else { return [] }
        defer { buffer.removeAll() }
        return buffer
    }

    private func findHeadEnd() -> Int? {
        guard buffer.count >= 4 else { return nil }
        for i in 0...(buffer.count - 4) where buffer[i] == 13 && buffer[i + 1] == 10 && buffer[i + 2] == 13 && buffer[i + 3] == 10 {
            return i
        }
        return nil
    }
}

extension String {
    func trimmingSpaces() -> String {
        var s = Substring(self)
        while s.first == " " { s = s.dropFirst() }
        while s.last == " " { s = s.dropLast() }
        return String(s)
    }
}

/// Whether `[::1]` can be bound on this machine.
let ipv6LoopbackAvailable: Bool = {
    let fd = socket(AF_INET6, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return false }
    defer { Glibc.close(fd) }
    var address = SocketAddress(HTTPListenAddress.loopbackIPv6())!
    let length = address.length
    return withUnsafePointer(to: &address.storage) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 }
    }
}()

/// The handler the server tests use: a pre-rendered ~10 KB status document
/// on GET/HEAD /v1/status, an echo of what was parsed on /echo, 404 else.
struct TestHandler: HTTPHandler {
    static let statusBody: HTTPBody = {
        var text = #"{"services":["#
        var i = 0
        while text.utf8.count < 10_000 {
            if i > 0 { text += "," }
            text += #"{"name":"service-\#(i)","state":"up","since":"2026-01-01T00:00:00Z"}"#
            i += 1
        }
        text += "]}"
        return HTTPBody(string: text)
    }()
    static let statusResponse = HTTPResponse.json(body: statusBody)

    func handle(_ request: HTTPRequest) -> HTTPResponse {
        switch (request.method, request.path) {
        case (.get, "/v1/status"), (.head, "/v1/status"):
            return TestHandler.statusResponse
        case (_, "/echo"), (_, "/echo/"):
            var text = "method=\(request.method.rawValue)"
            text += " version=\(request.version)"
            text += " segments=\(request.pathSegments.joined(separator: "|"))"
            text += " query=\(request.queryItems.map { "\($0.name):\($0.value)" }.joined(separator: ","))"
            text += " body=\(String(decoding: request.body, as: UTF8.self))"
            text += " remote=\(request.remoteAddress?.host ?? "none")"
            return .text(body: text)
        case (_, "/close"):
            return HTTPResponse(status: .ok, headers: ["Connection": "close"], body: Array("bye".utf8))
        default:
            if request.path.hasPrefix("/echo/") {
                return .text(body: "segments=\(request.pathSegments.joined(separator: "|"))")
            }
            return .error(status: .notFound, message: "no route for \(request.path)")
        }
    }
}

/// Starts a server on 127.0.0.1:0 (or the given addresses), runs `body`,
/// and always stops it.
func withServer<R>(
    _ configure: (inout HTTPServerConfiguration) -> Void = { _ in },
    handler: any HTTPHandler = TestHandler(),
    _ body: (HTTPServer) throws -> R
) throws -> R {
    var configuration = HTTPServerConfiguration(listenAddresses: [.loopbackIPv4()])
    configure(&configuration)
    let server = HTTPServer(configuration: configuration, handler: handler)
    try server.start()
    defer { server.stop() }
    return try body(server)
}
