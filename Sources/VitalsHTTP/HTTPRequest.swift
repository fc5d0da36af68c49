/// The peer of a connection.
public struct HTTPRemoteAddress: Sendable, Hashable, CustomStringConvertible {
    public enum Family: Sendable, Hashable { case ipv4, ipv6 }

    public var family: Family
    /// The numeric address, without brackets (`127.0.0.1`, `::1`).
    public var host: String
    public var port: UInt16

    public init(family: Family, host: String, port: UInt16) {
        self.family = family
        self.host = host
        self.port = port
    }

    /// `127.0.0.1:5000` or `[::1]:5000`.
    public var description: String {
        switch family {
        case .ipv4: return "\(host):\(port)"
        case .ipv6: return "[\(host)]:\(port)"
        }
    }
}

/// One `name=value` pair of a query string, percent-decoded, `+` read as a
/// space. A pair without `=` has an empty value.
public struct HTTPQueryItem: Sendable, Hashable {
    public var name: String
    public var value: String

    public init(name: String, value: String) {
        self.name = name
        self.value = value
    }
}

/// A parsed request. Everything the parser accepted has already been
/// validated: percent-encoding in `target` is well formed and each decoded
/// path segment is valid UTF-8 without NUL.
public struct HTTPRequest: Sendable, Equatable {
    public var method: HTTPMethod
    /// The request-target exactly as sent (`/v1/services/web%20a?verbose=1`).
    public var target: String
    /// The path of the target as sent, still percent-encoded, without the
    /// query (`/v1/services/web%20a`). For an absolute-form target
    /// (`http://host/x`) it is the path part (`/x`); for `OPTIONS *` it is
    /// `*`; for `CONNECT` it is the authority.
    public var path: String
    /// The raw query string after `?`, or nil when the target has none.
    public var query: String?
    public var version: HTTPVersion
    public var headers: HTTPHeaders
    /// The body, exactly `Content-Length` bytes (empty without one).
    public var body: [UInt8]
    /// The connection's peer; nil for requests not read from a socket.
    public var remoteAddress: HTTPRemoteAddress?

    /// Builds a request, splitting `target` into `path` and `query`. For
    /// handler tests; the server builds requests through the parser.
    public init(
        method: HTTPMethod,
        target: String,
        version: HTTPVersion = .http1_1,
        headers: HTTPHeaders = [:],
        body: [UInt8] = [],
        remoteAddress: HTTPRemoteAddress? = nil
    ) {
        self.method = method
        self.target = target
        if let q = target.utf8.firstIndex(of: UInt8(ascii: "?")) {
            self.path = String(target[..<q])
            self.query = String(target[target.index(after: q)...])
        } else {
            self.path = target
            self.query = nil
        }
        self.version = version
        self.headers = headers
        self.body = body
        self.remoteAddress = remoteAddress
    }

    init(method: HTTPMethod, target: String, path: String, query: String?, version: HTTPVersion, headers: HTTPHeaders, body: [UInt8]) {
        self.method = method
        self.target = target
        self.path = path
        self.query = query
        self.version = version
        self.headers = headers
        self.body = body
        self.remoteAddress = nil
    }

    /// The percent-decoded segments of `path`: `/v1/services/web%2Fa` gives
    /// `["v1", "services", "web/a"]`; `/` gives `[]`; a trailing slash gives
    /// a trailing empty segment. Empty for `*` and CONNECT targets.
    public var pathSegments: [String] {
        guard path.utf8.first == UInt8(ascii: "/") else { return [] }
        if path.utf8.count == 1 { return [] }
        return path.utf8.dropFirst().split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false).map {
            String(decoding: PercentEncoding.decode($0, plusAsSpace: false), as: UTF8.self)
        }
    }

    /// The decoded query items in order; empty without a query.
    public var queryItems: [HTTPQueryItem] {
        guard let query, !query.isEmpty else { return [] }
        return query.utf8.split(separator: UInt8(ascii: "&")).map { pair in
            if let eq = pair.firstIndex(of: UInt8(ascii: "=")) {
                return HTTPQueryItem(
                    name: String(decoding: PercentEncoding.decode(pair[..<eq], plusAsSpace: true), as: UTF8.self),
                    value: String(decoding: PercentEncoding.decode(pair[pair.index(after: eq)...], plusAsSpace: true), as: UTF8.self))
            }
            return HTTPQueryItem(name: String(decoding: PercentEncoding.decode(pair, plusAsSpace: true), as: UTF8.self), value: "")
        }
    }

    /// The first value of the query item `name`, or nil.
    public func queryValue(_ name: String) -> String? {
        queryItems.first { $0.name == name }?.value
    }

    /// Whether the connection stays open after this request: HTTP/1.1
    /// unless `Connection: close`; HTTP/1.0 only with `Connection: keep-alive`.
    public var keepAlive: Bool {
        if version == .http1_1 {
            return !headers.containsToken("close", inField: "Connection")
        }
        return headers.containsToken("keep-alive", inField: "Connection")
            && !headers.containsToken("close", inField: "Connection")
    }
}

enum PercentEncoding {
    @inline(__always)
    static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    /// Decodes `%XX` escapes; input must already be validated (invalid
    /// escapes are copied through unchanged).
    static func decode<C: Collection<UInt8>>(_ bytes: C, plusAsSpace: Bool) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var i = bytes.startIndex
        while i != bytes.endIndex {
            let b = bytes[i]
            if b == UInt8(ascii: "%") {
                let h = bytes.index(after: i)
                if h != bytes.endIndex {
                    let l = bytes.index(after: h)
                    if l != bytes.endIndex, let hi = hexValue(bytes[h]), let lo = hexValue(bytes[l]) {
                        out.append(hi << 4 | lo)
                        i = bytes.index(after: l)
                        continue
                    }
                }
                out.append(b)
            } else if plusAsSpace && b == UInt8(ascii: "+") {
                out.append(0x20)
            } else {
                out.append(b)
            }
            i = bytes.index(after: i)
        }
        return out
    }

    /// Whether every `%` in `bytes` starts a `%XX` escape.
    static func isWellFormed(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        var i = 0
        while i < bytes.count {
            if bytes[i] == UInt8(ascii: "%") {
                guard i + 2 < bytes.count, hexValue(bytes[i + 1]) != nil, hexValue(bytes[i + 2]) != nil else {
                    return false
                }
                i += 3
            } else {
                i += 1
            }
        }
        return true
    }

    /// Whether each decoded `/`-separated segment of `path` is valid UTF-8
    /// without NUL. Call only on well-formed input.
    static func pathDecodesCleanly(_ path: UnsafeBufferPointer<UInt8>) -> Bool {
        for segment in path.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: true) {
            guard segment.contains(UInt8(ascii: "%")) else { continue }
            let decoded = decode(segment, plusAsSpace: false)
            if decoded.contains(0) { return false }
            var iterator = decoded.makeIterator()
            var utf8 = UTF8()
            loop: while true {
                switch utf8.decode(&iterator) {
                case .scalarValue: continue
                case .emptyInput: break loop
                case .error: return false
                }
            }
        }
        return true
    }
}
