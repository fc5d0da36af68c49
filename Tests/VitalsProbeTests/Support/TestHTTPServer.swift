#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// A small HTTP/1.1 server on 127.0.0.1 for integration tests: POSIX
/// sockets on port 0, listen backlog 128, one thread per connection,
/// keep-alive, and routes that misbehave on purpose.
///
/// Routes: `/ok` (200 "ok"), `/503`, `/text` ("hello world"),
/// `/json/up`, `/json/down`, `/json/partial`, `/slow?ms=N` (answers after N
/// ms), `/hang` (never answers), `/truncated` (Content-Length 100, 10 bytes,
/// close), `/empty` (closes without a reply), `/redirect` (301 to /ok),
/// `/big?kb=N`, `/method` (echoes the method), `/auth` (200 only with
/// `X-Token: s3cret`), `/echo` (200, body the method; no body to HEAD).
/// Every request's method, target and headers are recorded (`recorded`).
final class TestHTTPServer: @unchecked Sendable {
    let port: UInt16
    private let listenFD: Int32
    private let lock = NSLock()
    private var open: Set<Int32> = []
    private var stopped = false
    private var accepted = 0
    private var requests = 0
    private var log: [RecordedRequest] = []
    private let acceptLoopDone = DispatchSemaphore(value: 0)

    init() throws {
        signal(SIGPIPE, SIG_IGN)
        let (fd, port) = try TestSockets.listen(backlog: 128)
        listenFD = fd
        self.port = port
        let thread = Thread { [self] in
            acceptLoop()
            acceptLoopDone.signal()
        }
        thread.start()
    }

    func url(_ path: String) -> String { "http://127.0.0.1:\(port)\(path)" }

    /// Connections accepted so far.
    var acceptedConnections: Int { lock.withLock { accepted } }
    /// Requests read so far.
    var requestCount: Int { lock.withLock { requests } }

    /// One request as the server read it; header names lower-cased.
    struct RecordedRequest: Sendable, Equatable {
        var method: String
        var target: String
        var headers: [String: String]
    }

    /// Every request read so far, in order.
    var recorded: [RecordedRequest] { lock.withLock { log } }

    /// Closes the listener and every connection (hung ones included).
    func stop() {
        let fds: Set<Int32> = lock.withLock {
            stopped = true
            return open
        }
        Glibc.shutdown(listenFD, Int32(SHUT_RDWR))
        acceptLoopDone.wait()
        Glibc.close(listenFD)
        for fd in fds { Glibc.shutdown(fd, Int32(SHUT_RDWR)) }
    }

    private func acceptLoop() {
        while true {
            let fd = accept(listenFD, nil, nil)
            if fd < 0 {
                if errno == EINTR { continue }
                return
            }
            let keep: Bool = lock.withLock {
                guard !stopped else { return false }
                open.insert(fd)
                accepted += 1
                return true
            }
            guard keep else { Glibc.close(fd); return }
            let thread = Thread { [self] in
                serve(fd)
                lock.withLock { _ = open.remove(fd) }
                Glibc.close(fd)
            }
            thread.start()
        }
    }

    private func serve(_ fd: Int32) {
        var buffer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            // Read one request head.
            var headEnd: Int?
            while headEnd == nil {
                headEnd = Self.find([13, 10, 13, 10], in: buffer)
                if headEnd != nil { break }
                let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                if n <= 0 { return }
                buffer.append(contentsOf: chunk[0..<n])
            }
            let head = String(decoding: buffer[0..<headEnd!], as: UTF8.self)
            buffer.removeFirst(headEnd! + 4)
            lock.withLock { requests += 1 }
            let lines = head.components(separatedBy: "\r\n")
            let parts = lines[0].split(separator: " ")
            guard parts.count >= 2 else { return }
            let method = String(parts[0])
            let target = String(parts[1])
            var headers: [String: String] = [:]
            for line in lines.dropFirst() {
                guard let colon = line.firstIndex(of: ":") else { continue }
                headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
            if let length = headers["content-length"].flatMap(Int.init), length > 0 {
                while buffer.count < length {
                    let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                    if n <= 0 { return }
                    buffer.append(contentsOf: chunk[0..<n])
                }
                buffer.removeFirst(length)
            }
            lock.withLock { log.append(RecordedRequest(method: method, target: target, headers: headers)) }
            guard respond(fd, method: method, target: target, headers: headers) else { return }
        }
    }

    /// Answers one request; false closes the connection.
    private func respond(_ fd: Int32, method: String, target: String, headers: [String: String]) -> Bool {
        let path = target.split(separator: "?", maxSplits: 1).first.map(String.init) ?? target
        var query: [String: String] = [:]
        if let q = target.split(separator: "?", maxSplits: 1).dropFirst().first {
            for pair in q.split(separator: "&") {
                let kv = pair.split(separator: "=", maxSplits: 1)
                if kv.count == 2 { query[String(kv[0])] = String(kv[1]) }
            }
        }
        switch path {
        case "/ok": return send(fd, 200, "ok")
        case "/503": return send(fd, 503, "unavailable")
        case "/text": return send(fd, 200, "hello world")
        case "/json/up": return send(fd, 200, #"{"status":"UP","checks":{"db":{"state":"ok"}},"count":3,"live":true}"#)
        case "/json/down": return send(fd, 200, #"{"status":"DOWN","checks":{"db":{"state":"ok"}}}"#)
        case "/json/partial": return send(fd, 200, #"{"status":"UP","checks":{}}"#)
        case "/slow":
            let ms = query["ms"].flatMap(Int.init) ?? 1000
            Thread.sleep(forTimeInterval: Double(ms) / 1000)
            return send(fd, 200, "ok")
        case "/hang":
            // Never answer: wait until the peer or `stop` closes the connection.
            var byte: UInt8 = 0
            while recv(fd, &byte, 1, 0) > 0 {}
            return false
        case "/truncated":
            let text = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789"
            _ = sendAll(fd, Array(text.utf8))
            return false
        case "/empty":
            return false
        case "/redirect":
            return send(fd, 301, "moved", extra: "Location: /ok\r\n")
        case "/big":
            let kb = query["kb"].flatMap(Int.init) ?? 100
            return send(fd, 200, "start" + String(repeating: "x", count: kb * 1024) + "end")
        case "/method":
            return send(fd, 200, method)
        case "/echo":
            return method == "HEAD" ? send(fd, 200, "") : send(fd, 200, method)
        case "/auth":
            return headers["x-token"] == "s3cret" ? send(fd, 200, "ok") : send(fd, 401, "who are you")
        default:
            return send(fd, 404, "not found")
        }
    }

    private func send(_ fd: Int32, _ status: Int, _ body: String, extra: String = "") -> Bool {
        let reason = [200: "OK", 301: "Moved Permanently", 401: "Unauthorized", 404: "Not Found",
                      503: "Service Unavailable"][status] ?? "Status"
        let bytes = Array(body.utf8)
        let head = "HTTP/1.1 \(status) \(reason)\r\nContent-Length: \(bytes.count)\r\n\(extra)\r\n"
        return sendAll(fd, Array(head.utf8) + bytes)
    }

    private func sendAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return false }
            offset += n
        }
        return true
    }

    private static func find(_ needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        for i in 0...(haystack.count - needle.count) where haystack[i..<(i + needle.count)].elementsEqual(needle) {
            return i
        }
        return nil
    }
}

enum TestSockets {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// A listening TCP socket on 127.0.0.1, port chosen by the kernel.
    static func listen(backlog: Int32) throws -> (fd: Int32, port: UInt16) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket: \(errno)") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, Glibc.listen(fd, backlog) == 0 else {
            close(fd)
            throw Failure(description: "bind/listen: \(errno)")
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return (fd, UInt16(bigEndian: address.sin_port))
    }

    /// A plain client connect (blocking), for filling a backlog.
    static func connect(port: UInt16) -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        _ = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        return fd
    }
}
