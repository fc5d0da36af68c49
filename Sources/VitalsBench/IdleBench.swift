import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Opens many TCP connections to the server and leaves them idle (nothing is
/// sent), then times `GET /healthz`, each on a fresh connection, and counts
/// how many idle connections survived.
struct IdleBench {
    struct Options {
        var url = ""
        var connections = 1000
        var samples = 50
        /// Pause between two samples, so the samples span a little time.
        var spacingMilliseconds = 10
    }

    struct Endpoint { var host: String; var port: UInt16 }

    let options: Options
    init(_ options: Options) { self.options = options }

    static func parse(url: String) throws -> Endpoint {
        guard url.hasPrefix("http://") else { throw UsageError("--url must be http://HOST:PORT") }
        let rest = url.dropFirst("http://".count).split(separator: "/", maxSplits: 1).first ?? ""
        guard let colon = rest.lastIndex(of: ":"), let port = UInt16(rest[rest.index(after: colon)...]) else {
            throw UsageError("--url needs a numeric IPv4 host and a port: \(url)")
        }
        return Endpoint(host: String(rest[..<colon]), port: port)
    }

    func run() throws {
        let endpoint = try Self.parse(url: options.url)
        print("idle bench: \(options.connections) idle connections to \(endpoint.host):\(endpoint.port), then \(options.samples) × GET /healthz on fresh connections, \(options.spacingMilliseconds) ms apart")

        // Baseline, before any idle connection.
        let baseline = try sample(endpoint, count: options.samples)

        let openStart = monotonicNanoseconds()
        var idle: [Int32] = []
        idle.reserveCapacity(options.connections)
        var connectFailures = 0
        var firstConnectError = ""
        for _ in 0..<options.connections {
            switch Socket.connect(endpoint) {
            case .success(let fd): idle.append(fd)
            case .failure(let error):
                connectFailures += 1
                if firstConnectError.isEmpty { firstConnectError = error.description }
            }
        }
        let opened = Double(monotonicNanoseconds() - openStart) / 1e6
        // Let the server's event loop accept the backlog before timing.
        sleep(seconds: 0.3)
        let windowStart = monotonicNanoseconds()
        let loaded = try sample(endpoint, count: options.samples)
        let window = Double(monotonicNanoseconds() - windowStart) / 1e9

        var open = 0, closed = 0, answered = 0
        for fd in idle {
            switch Socket.peekState(fd) {
            case .open: open += 1
            case .closed: closed += 1
            case .data: answered += 1
            }
        }
        let sinceOpen = Double(monotonicNanoseconds() - openStart) / 1e9
        for fd in idle { close(fd) }

        print("  opened \(idle.count) idle connections in \(fixed(opened, 1)) ms\(connectFailures > 0 ? " (\(connectFailures) failed: \(firstConnectError))" : "")")
        print("  /healthz with 0 idle:     p50 \(milliseconds(percentile(baseline.times, 0.5))) ms, p99 \(milliseconds(percentile(baseline.times, 0.99))) ms, max \(milliseconds(baseline.times.last ?? 0)) ms  (\(baseline.summary))")
        print("  /healthz with \(idle.count) idle:  p50 \(milliseconds(percentile(loaded.times, 0.5))) ms, p99 \(milliseconds(percentile(loaded.times, 0.99))) ms, max \(milliseconds(loaded.times.last ?? 0)) ms  (\(loaded.summary); samples over \(fixed(window, 2)) s)")
        print("  idle connections \(fixed(sinceOpen, 1)) s after opening: \(open) open, \(closed) closed by the server, \(answered) answered (e.g. 503 past the connection cap)")
        let fields: [(String, String)] = [
            ("connections", "\(idle.count)"),
            ("base_p50", milliseconds(percentile(baseline.times, 0.5))),
            ("base_p99", milliseconds(percentile(baseline.times, 0.99))),
            ("p50", milliseconds(percentile(loaded.times, 0.5))),
            ("p99", milliseconds(percentile(loaded.times, 0.99))),
            ("max", milliseconds(loaded.times.last ?? 0)),
            ("ok", "\(loaded.ok)"),
            ("samples", "\(options.samples)"),
            ("still_open", "\(open)"),
        ]
        print("RESULT idle " + fields.map { "\($0.0)=\($0.1)" }.joined(separator: " "))
    }

    struct Samples {
        var times: [Int64]  // sorted, nanoseconds
        var ok: Int
        var failures: [String]
        var summary: String {
            "\(ok)/\(times.count) answered 200" + (failures.isEmpty ? "" : "; first failure: \(failures[0])")
        }
    }

    /// `count` sequential requests, each on a new connection: connect, send,
    /// read the whole response. A failure counts with the time it took.
    func sample(_ endpoint: Endpoint, count: Int) throws -> Samples {
        var times: [Int64] = []
        var ok = 0
        var failures: [String] = []
        let request = Array("GET /healthz HTTP/1.1\r\nHost: \(endpoint.host):\(endpoint.port)\r\nConnection: close\r\n\r\n".utf8)
        for index in 0..<count {
            if index > 0 { sleep(seconds: Double(options.spacingMilliseconds) / 1000) }
            let start = monotonicNanoseconds()
            let outcome = Socket.connect(endpoint).flatMap { fd in
                defer { close(fd) }
                return Socket.exchange(fd, request)
            }
            times.append(monotonicNanoseconds() - start)
            switch outcome {
            case .success(let status) where status == 200: ok += 1
            case .success(let status): failures.append("status \(status)")
            case .failure(let error): failures.append(error.description)
            }
        }
        return Samples(times: times.sorted(), ok: ok, failures: failures)
    }
}

struct SocketError: Error, CustomStringConvertible {
    var description: String
}

/// Blocking IPv4 sockets, just enough for the idle bench.
enum Socket {
    enum PeekState { case open, closed, data }

    static func connect(_ endpoint: IdleBench.Endpoint) -> Result<Int32, SocketError> {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return .failure(SocketError(description: "socket: \(String(cString: strerror(errno)))")) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = endpoint.port.bigEndian
        guard inet_pton(AF_INET, endpoint.host, &address.sin_addr) == 1 else {
            close(fd)
            return .failure(SocketError(description: "not an IPv4 address: \(endpoint.host)"))
        }
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard result == 0 else {
            let message = String(cString: strerror(errno))
            close(fd)
            return .failure(SocketError(description: "connect: \(message)"))
        }
        return .success(fd)
    }

    /// Sends `request` and reads the response (to Content-Length or end of
    /// stream); returns its status code.
    static func exchange(_ fd: Int32, _ request: [UInt8]) -> Result<Int, SocketError> {
        let sent = request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        guard sent == request.count else { return .failure(SocketError(description: "send: \(String(cString: strerror(errno)))")) }
        var response: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16384)
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count < 0 {
                return .failure(SocketError(description: "recv: \(String(cString: strerror(errno)))"))
            }
            if count == 0 { break }
            response.append(contentsOf: buffer[..<count])
            if let length = completeLength(response), response.count >= length { break }
        }
        let text = String(decoding: response.prefix(64), as: UTF8.self)
        let parts = text.split(separator: " ", maxSplits: 2)
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), let status = Int(parts[1]) else {
            return .failure(SocketError(description: "no HTTP response (\(response.count) bytes)"))
        }
        return .success(status)
    }

    /// Head length + Content-Length, once the head is complete.
    private static func completeLength(_ bytes: [UInt8]) -> Int? {
        let terminator: [UInt8] = [13, 10, 13, 10]
        guard bytes.count >= 4 else { return nil }
        var headEnd: Int?
        for index in 0...(bytes.count - 4) where bytes[index] == 13 && Array(bytes[index..<index + 4]) == terminator {
            headEnd = index + 4
            break
        }
        guard let headEnd else { return nil }
        let head = String(decoding: bytes[..<headEnd], as: UTF8.self).lowercased()
        for line in head.split(separator: "\r\n") where line.hasPrefix("content-length:") {
            if let length = Int(line.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) {
                return headEnd + length
            }
        }
        return nil
    }

    /// Whether the peer closed the connection, sent something, or neither.
    static func peekState(_ fd: Int32) -> PeekState {
        var byte: UInt8 = 0
        let count = recv(fd, &byte, 1, Int32(MSG_PEEK | MSG_DONTWAIT))
        if count > 0 { return .data }
        if count == 0 { return .closed }
        return errno == EAGAIN || errno == EWOULDBLOCK ? .open : .closed
    }
}

/// A file's bytes as nginx `geo` variables, for answering them from memory
/// with `return 200 '${vb0}${vb1}...'`: nginx caps one configuration token
/// at 4 KiB, so a larger body cannot be a single `return` literal. Each
/// chunk is a single-quoted string (backslash and quote escaped, control
/// characters as nginx's `\n`, `\r`, `\t`); `geo` values are not scanned
/// for variables, so `$` needs no escape. Prints one `geo` line per chunk.
enum NginxGeo {
    static let chunkBytes = 1500

    /// Raw bytes, not `String`s: a chunk may end inside a UTF-8 sequence.
    static func lines(fileAt path: String, prefix: String) throws -> [[UInt8]] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw UsageError("cannot read \(path)")
        }
        let bytes = [UInt8](data)
        var lines: [[UInt8]] = []
        var start = 0
        while start < bytes.count {
            let end = min(bytes.count, start + chunkBytes)
            lines.append(Array("geo $\(prefix)\(lines.count) { default ".utf8) + quote(bytes[start..<end]) + Array("; }\n".utf8))
            start = end
        }
        return lines
    }

    static func quote(_ bytes: ArraySlice<UInt8>) -> [UInt8] {
        var out: [UInt8] = [UInt8(ascii: "'")]
        for byte in bytes {
            switch byte {
            case UInt8(ascii: "\\"): out += Array("\\\\".utf8)
            case UInt8(ascii: "'"): out += Array("\\'".utf8)
            case 10: out += Array("\\n".utf8)
            case 13: out += Array("\\r".utf8)
            case 9: out += Array("\\t".utf8)
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "'"))
        return out
    }
}
