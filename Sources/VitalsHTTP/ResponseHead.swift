#if canImport(Glibc)
import Glibc
#endif

/// The `Date` header value, formatted once per second.
struct HTTPDateCache {
    private(set) var bytes: [UInt8] = []
    private var second: Int = -1

    init() { refresh() }

    /// Re-formats if the wall-clock second changed.
    mutating func refresh() {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME_COARSE, &ts)
        let now = Int(ts.tv_sec)
        if now != second {
            second = now
            bytes = HTTPDateCache.format(now)
        }
    }

    /// IMF-fixdate (RFC 9110 §5.6.7): `Sun, 06 Nov 1994 08:49:37 GMT`.
    static func format(_ seconds: Int) -> [UInt8] {
        var t = time_t(seconds)
        var tm = Glibc.tm()
        gmtime_r(&t, &tm)
        let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        var out: [UInt8] = []
        out.reserveCapacity(29)
        func two(_ n: Int32) {
            out.append(UInt8(ascii: "0") + UInt8(n / 10 % 10))
            out.append(UInt8(ascii: "0") + UInt8(n % 10))
        }
        out.append(contentsOf: days[Int(tm.tm_wday)].utf8)
        out.append(contentsOf: ", ".utf8)
        two(tm.tm_mday)
        out.append(0x20)
        out.append(contentsOf: months[Int(tm.tm_mon)].utf8)
        out.append(0x20)
        let year = Int(tm.tm_year) + 1900
        out.append(contentsOf: String(year).utf8)
        out.append(0x20)
        two(tm.tm_hour)
        out.append(UInt8(ascii: ":"))
        two(tm.tm_min)
        out.append(UInt8(ascii: ":"))
        two(tm.tm_sec)
        out.append(contentsOf: " GMT".utf8)
        return out
    }
}

/// Writes response heads. The server owns the framing fields.
enum ResponseHead {
    enum ConnectionField {
        case none
        case close
        case keepAlive
    }

    /// Appends the head of `response` to `out`.
    static func write(
        into out: inout [UInt8],
        status: HTTPStatus,
        headers: HTTPHeaders,
        contentLength: Int?,
        connection: ConnectionField,
        date: [UInt8]
    ) {
        writeBeforeDate(into: &out, status: status)
        out.append(contentsOf: date)
        writeAfterDate(into: &out, headers: headers, contentLength: contentLength)
        writeEnd(into: &out, connection: connection)
    }

    /// The status line and `Server`, up to the `Date` value:
    /// `HTTP/1.1 200 OK\r\nServer: vitals\r\nDate: `.
    static func writeBeforeDate(into out: inout [UInt8], status: HTTPStatus) {
        out.append(contentsOf: "HTTP/1.1 ".utf8)
        appendDecimal(status.code, to: &out)
        out.append(0x20)
        appendSanitized(status.reasonPhrase, to: &out)
        out.append(contentsOf: "\r\nServer: vitals\r\nDate: ".utf8)
    }

    /// From the end of the `Date` value through the handler's fields:
    /// the CRLF, `Content-Length` and every safe, unreserved field.
    static func writeAfterDate(into out: inout [UInt8], headers: HTTPHeaders, contentLength: Int?) {
        if let contentLength {
            out.append(contentsOf: "\r\nContent-Length: ".utf8)
            appendDecimal(contentLength, to: &out)
        }
        out.append(contentsOf: "\r\n".utf8)
        for field in headers where !isReserved(field.name) && isSafe(field) {
            out.append(contentsOf: field.name.utf8)
            out.append(contentsOf: ": ".utf8)
            out.append(contentsOf: field.value.utf8)
            out.append(contentsOf: "\r\n".utf8)
        }
    }

    /// The connection field, if any, and the blank line.
    @inline(__always)
    static func writeEnd(into out: inout [UInt8], connection: ConnectionField) {
        switch connection {
        case .none: break
        case .close: out.append(contentsOf: "Connection: close\r\n".utf8)
        case .keepAlive: out.append(contentsOf: "Connection: keep-alive\r\n".utf8)
        }
        out.append(contentsOf: "\r\n".utf8)
    }

    static func appendDecimal(_ value: Int, to out: inout [UInt8]) {
        if value == 0 {
            out.append(UInt8(ascii: "0"))
            return
        }
        var v = value
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                     UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var n = 0
        withUnsafeMutableBytes(of: &digits) { d in
            while v > 0 {
                d[n] = UInt8(ascii: "0") + UInt8(v % 10)
                v /= 10
                n += 1
            }
            while n > 0 {
                n -= 1
                out.append(d[n])
            }
        }
    }

    private static func appendSanitized(_ text: String, to out: inout [UInt8]) {
        for byte in text.utf8 where byte >= 0x20 && byte != 0x7F { out.append(byte) }
    }

    /// Framing fields the server writes itself.
    static func isReserved(_ name: String) -> Bool {
        switch name.utf8.count {
        case 4: return HTTPHeaders.equalsIgnoringCase(name, "date")
        case 6: return HTTPHeaders.equalsIgnoringCase(name, "server")
        case 10: return HTTPHeaders.equalsIgnoringCase(name, "connection")
        case 14: return HTTPHeaders.equalsIgnoringCase(name, "content-length")
        case 17: return HTTPHeaders.equalsIgnoringCase(name, "transfer-encoding")
        default: return false
        }
    }

    /// A field a handler built from untrusted text must not split the head:
    /// names are non-empty without separators or controls, values have no
    /// CR, LF or NUL. Unsafe fields are dropped.
    static func isSafe(_ field: HTTPHeader) -> Bool {
        guard !field.name.isEmpty else { return false }
        for b in field.name.utf8 where b <= 0x20 || b == UInt8(ascii: ":") || b >= 0x7F { return false }
        for b in field.value.utf8 where b == 0x0D || b == 0x0A || b == 0 { return false }
        return true
    }
}

/// A response head rendered once, without the per-request `Date` value and
/// connection field: the bytes before the `Date` value and the bytes after
/// it, exactly as `ResponseHead.write` would produce them. Headers are
/// validated (unsafe and reserved fields dropped) when it is made.
final class PreparedHead: Sendable {
    /// `beforeDate` followed by `afterDate`.
    let bytes: [UInt8]
    /// Where `afterDate` starts in `bytes`.
    let dateOffset: Int
    /// The response's own headers ask for `Connection: close`.
    let closesConnection: Bool

    init(status: HTTPStatus, headers: HTTPHeaders, bodyCount: Int) {
        var out: [UInt8] = []
        out.reserveCapacity(128)
        ResponseHead.writeBeforeDate(into: &out, status: status)
        dateOffset = out.count
        ResponseHead.writeAfterDate(
            into: &out, headers: headers,
            contentLength: status.forbidsContentLength ? nil : bodyCount)
        bytes = out
        closesConnection = headers.containsToken("close", inField: "Connection")
    }

    /// Appends the full head: the cached bytes around `date`, then the
    /// connection field and the blank line.
    @inline(__always)
    func write(into out: inout [UInt8], date: [UInt8], connection: ResponseHead.ConnectionField) {
        bytes.withUnsafeBufferPointer { all in
            out.append(contentsOf: UnsafeBufferPointer(rebasing: all[..<dateOffset]))
            out.append(contentsOf: date)
            out.append(contentsOf: UnsafeBufferPointer(rebasing: all[dateOffset...]))
        }
        ResponseHead.writeEnd(into: &out, connection: connection)
    }
}
