#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// close(2), out of reach of `WebSocket.close()` inside the class.
private func posixClose(_ fd: Int32) { _ = close(fd) }
#if canImport(Glibc)
private let streamSocket = Int32(SOCK_STREAM.rawValue)
private let sendFlags = Int32(MSG_NOSIGNAL)
#else
private let streamSocket = SOCK_STREAM
private let sendFlags: Int32 = 0
#endif

/// A minimal WebSocket client (RFC 6455) on a blocking POSIX socket: text
/// frames only, client frames masked, every read bounded by `poll`.
final class WebSocket {
    private var fd: Int32
    private var buffer: [UInt8] = []

    init(url: String, timeout: Double) throws {
        guard let parsed = URL(string: url), parsed.scheme == "ws", let host = parsed.host, let port = parsed.port else {
            throw TestFailure("not a ws:// URL: \(url)")
        }
        fd = socket(AF_INET, streamSocket, 0)
        guard fd >= 0 else { throw TestFailure("socket: \(String(cString: strerror(errno)))") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        guard inet_pton(AF_INET, host, &address.sin_addr) == 1 else {
            posixClose(fd)
            throw TestFailure("not an IPv4 address: \(host)")
        }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else {
            let message = String(cString: strerror(errno))
            posixClose(fd)
            throw TestFailure("connect to \(host):\(port): \(message)")
        }

        // The opening handshake.
        let key = Data((0..<16).map { _ in UInt8.random(in: 0...255) }).base64EncodedString()
        var path = parsed.path.isEmpty ? "/" : parsed.path
        if let query = parsed.query { path += "?" + query }
        let request = "GET \(path) HTTP/1.1\r\nHost: \(host):\(port)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Key: \(key)\r\nSec-WebSocket-Version: 13\r\n\r\n"
        do {
            try write(Array(request.utf8))
            let limit = Date().addingTimeInterval(timeout)
            let end: [UInt8] = Array("\r\n\r\n".utf8)
            var headerEnd: Int?
            while headerEnd == nil {
                if let range = Self.find(end, in: buffer) { headerEnd = range; break }
                guard buffer.count < 16_384 else { throw TestFailure("WebSocket handshake answer too long") }
                try fill(deadline: limit)
            }
            let head = String(decoding: buffer[0..<headerEnd!], as: UTF8.self)
            buffer.removeFirst(headerEnd! + end.count)
            let lines = head.components(separatedBy: "\r\n")
            guard let status = lines.first, status.hasPrefix("HTTP/1.1 101") else {
                throw TestFailure("WebSocket handshake refused:\n\(head)")
            }
            let expected = Data(SHA1.hash(Array((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").utf8))).base64EncodedString()
            let accept = lines.dropFirst().first { $0.lowercased().hasPrefix("sec-websocket-accept:") }
                .map { $0.dropFirst("sec-websocket-accept:".count).trimmingCharacters(in: .whitespaces) }
            guard accept == expected else {
                throw TestFailure("WebSocket handshake: Sec-WebSocket-Accept \(accept ?? "missing"), expected \(expected)")
            }
        } catch {
            close()
            throw error
        }
    }

    func close() {
        guard fd >= 0 else { return }
        // A close frame, best effort, then the socket.
        try? sendFrame(opcode: 0x8, payload: [0x03, 0xE8])
        posixClose(fd)
        fd = -1
    }

    deinit { close() }

    func sendText(_ text: String) throws {
        try sendFrame(opcode: 0x1, payload: Array(text.utf8))
    }

    /// The next complete text message, or nil if none arrived within `timeout`.
    /// A message cut off by the timeout stays buffered for the next call.
    func receiveText(timeout: Double) throws -> String? {
        let limit = Date().addingTimeInterval(timeout)
        while true {
            if let message = try takeMessage() { return message }
            if Date() >= limit { return nil }
            do {
                try fill(deadline: limit)
            } catch is ReadTimeout {
                return nil
            }
        }
    }

    // MARK: Frames

    private func sendFrame(opcode: UInt8, payload: [UInt8]) throws {
        var frame: [UInt8] = [0x80 | opcode]
        let count = payload.count
        if count < 126 {
            frame.append(0x80 | UInt8(count))
        } else if count <= 0xFFFF {
            frame.append(0x80 | 126)
            frame += [UInt8(count >> 8), UInt8(count & 0xFF)]
        } else {
            frame.append(0x80 | 127)
            frame += (0..<8).reversed().map { UInt8((UInt64(count) >> (UInt64($0) * 8)) & 0xFF) }
        }
        let mask = (0..<4).map { _ in UInt8.random(in: 0...255) }
        frame += mask
        frame += payload.enumerated().map { $0.element ^ mask[$0.offset & 3] }
        try write(frame)
    }

    private var fragments: [UInt8] = []

    /// Parses whole frames from the buffer; returns a text message once one is complete.
    private func takeMessage() throws -> String? {
        while true {
            guard buffer.count >= 2 else { return nil }
            let fin = buffer[0] & 0x80 != 0
            let opcode = buffer[0] & 0x0F
            let masked = buffer[1] & 0x80 != 0
            var length = UInt64(buffer[1] & 0x7F)
            var offset = 2
            if length == 126 {
                guard buffer.count >= 4 else { return nil }
                length = UInt64(buffer[2]) << 8 | UInt64(buffer[3])
                offset = 4
            } else if length == 127 {
                guard buffer.count >= 10 else { return nil }
                length = buffer[2..<10].reduce(0) { $0 << 8 | UInt64($1) }
                offset = 10
            }
            guard length < 64 << 20 else { throw TestFailure("WebSocket frame of \(length) bytes") }
            var mask: [UInt8] = []
            if masked {
                guard buffer.count >= offset + 4 else { return nil }
                mask = Array(buffer[offset..<offset + 4])
                offset += 4
            }
            guard buffer.count >= offset + Int(length) else { return nil }
            var payload = Array(buffer[offset..<offset + Int(length)])
            buffer.removeFirst(offset + Int(length))
            if masked { payload = payload.enumerated().map { $0.element ^ mask[$0.offset & 3] } }
            switch opcode {
            case 0x0, 0x1:  // continuation, text
                fragments += payload
                if fin {
                    defer { fragments = [] }
                    return String(decoding: fragments, as: UTF8.self)
                }
            case 0x8:
                throw TestFailure("the browser closed the DevTools WebSocket")
            case 0x9:
                try sendFrame(opcode: 0xA, payload: payload)  // pong
            case 0xA:
                continue
            default:
                throw TestFailure("unexpected WebSocket opcode \(opcode)")
            }
        }
    }

    // MARK: Socket

    private struct ReadTimeout: Error {}

    /// Reads what is there into the buffer, waiting at most until `deadline`.
    private func fill(deadline: Date) throws {
        let left = deadline.timeIntervalSinceNow
        guard left > 0 else { throw ReadTimeout() }
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let ready = poll(&pfd, 1, Int32(max(1, min(left * 1000, 60_000))))
        if ready < 0 {
            if errno == EINTR { return }
            throw TestFailure("poll: \(String(cString: strerror(errno)))")
        }
        if ready == 0 { throw ReadTimeout() }
        var chunk = [UInt8](repeating: 0, count: 65_536)
        let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if count < 0 {
            if errno == EINTR || errno == EAGAIN { return }
            throw TestFailure("recv: \(String(cString: strerror(errno)))")
        }
        if count == 0 { throw TestFailure("the browser closed the DevTools connection") }
        buffer += chunk[0..<count]
    }

    private func write(_ bytes: [UInt8]) throws {
        var sent = 0
        while sent < bytes.count {
            let n = bytes.withUnsafeBytes { raw in
                send(fd, raw.baseAddress! + sent, raw.count - sent, sendFlags)
            }
            if n < 0 {
                if errno == EINTR { continue }
                throw TestFailure("send: \(String(cString: strerror(errno)))")
            }
            sent += n
        }
    }

    private static func find(_ needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        for start in 0...(haystack.count - needle.count) where haystack[start..<start + needle.count].elementsEqual(needle) {
            return start
        }
        return nil
    }
}

/// SHA-1, only to check the handshake's Sec-WebSocket-Accept.
private enum SHA1 {
    static func hash(_ message: [UInt8]) -> [UInt8] {
        var h: [UInt32] = [0x6745_2301, 0xEFCD_AB89, 0x98BA_DCFE, 0x1032_5476, 0xC3D2_E1F0]
        var data = message
        let bitLength = UInt64(message.count) * 8
        data.append(0x80)
        while data.count % 64 != 56 { data.append(0) }
        data += (0..<8).reversed().map { UInt8((bitLength >> (UInt64($0) * 8)) & 0xFF) }
        for chunk in stride(from: 0, to: data.count, by: 64) {
            var w = [UInt32](repeating: 0, count: 80)
            for i in 0..<16 {
                let j = chunk + i * 4
                w[i] = UInt32(data[j]) << 24 | UInt32(data[j + 1]) << 16 | UInt32(data[j + 2]) << 8 | UInt32(data[j + 3])
            }
            for i in 16..<80 {
                let x = w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]
                w[i] = x << 1 | x >> 31
            }
            var (a, b, c, d, e) = (h[0], h[1], h[2], h[3], h[4])
            for i in 0..<80 {
                let (f, k): (UInt32, UInt32)
                switch i {
                case 0..<20: (f, k) = ((b & c) | (~b & d), 0x5A82_7999)
                case 20..<40: (f, k) = (b ^ c ^ d, 0x6ED9_EBA1)
                case 40..<60: (f, k) = ((b & c) | (b & d) | (c & d), 0x8F1B_BCDC)
                default: (f, k) = (b ^ c ^ d, 0xCA62_C1D6)
                }
                let temp = (a << 5 | a >> 27) &+ f &+ e &+ k &+ w[i]
                (e, d, c, b, a) = (d, c, b << 30 | b >> 2, a, temp)
            }
            h[0] = h[0] &+ a; h[1] = h[1] &+ b; h[2] = h[2] &+ c; h[3] = h[3] &+ d; h[4] = h[4] &+ e
        }
        return h.flatMap { v in (0..<4).reversed().map { UInt8((v >> (UInt32($0) * 8)) & 0xFF) } }
    }
}
