/// A response from a handler. The server owns framing: it always sends
/// `Content-Length` (except for 1xx and 204), `Date`, `Server: vitals` and,
/// when it closes the connection, `Connection: close`; handler headers with
/// those names (and `Transfer-Encoding`) are dropped. A handler that sets
/// `Connection: close` gets the connection closed after the response.
///
/// For a pre-rendered document, build the whole `HTTPResponse` once and
/// return that value: the headers array and the body are shared, so
/// serving it allocates nothing per request. Better still, keep
/// `response.prepared()`: its head (status line, `Server`,
/// `Content-Length` and the handler's fields) is validated and encoded once,
/// and the server only adds `Date` and the connection field per request.
public struct HTTPResponse: Sendable {
    // Any change drops the prepared head, so it can never disagree with
    // the fields it was rendered from.
    public var status: HTTPStatus { didSet { preparedHead = nil } }
    public var headers: HTTPHeaders { didSet { preparedHead = nil } }
    public var body: HTTPBody { didSet { preparedHead = nil } }
    /// The encoded head, when this response was prepared.
    private(set) var preparedHead: PreparedHead?

    public init(status: HTTPStatus = .ok, headers: HTTPHeaders = [:], body: HTTPBody = .empty) {
        self.status = status
        self.headers = headers
        self.body = body
        self.preparedHead = nil
    }

    /// This response with its head validated and encoded once, for a
    /// response served many times: the server then writes the cached head
    /// bytes, `Date` and the connection field, and the shared body, with no
    /// per-request formatting or header validation. The bytes on the wire
    /// are the same as for the unprepared response. Changing `status`,
    /// `headers` or `body` afterwards drops the prepared head.
    public func prepared() -> HTTPResponse {
        var copy = self
        copy.preparedHead = PreparedHead(status: status, headers: headers, bodyCount: body.count)
        return copy
    }

    /// Whether the head is pre-rendered (see `prepared()`).
    public var isPrepared: Bool { preparedHead != nil }

    /// Whether the handler's own headers ask to close the connection.
    var closesConnection: Bool {
        if let preparedHead { return preparedHead.closesConnection }
        return headers.containsToken("close", inField: "Connection")
    }

    public init(status: HTTPStatus = .ok, headers: HTTPHeaders = [:], body: [UInt8]) {
        self.init(status: status, headers: headers, body: HTTPBody(bytes: body))
    }

    /// `Content-Type: application/json` with `body`.
    public static func json(status: HTTPStatus = .ok, body: HTTPBody) -> HTTPResponse {
        HTTPResponse(status: status, headers: ["Content-Type": "application/json"], body: body)
    }

    /// `Content-Type: application/json` with `body`.
    public static func json(status: HTTPStatus = .ok, body: [UInt8]) -> HTTPResponse {
        json(status: status, body: HTTPBody(bytes: body))
    }

    /// `Content-Type: application/json` with `body`.
    public static func json(status: HTTPStatus = .ok, body: String) -> HTTPResponse {
        json(status: status, body: HTTPBody(string: body))
    }

    /// `Content-Type: text/plain; charset=utf-8` with `body`.
    public static func text(status: HTTPStatus = .ok, body: String) -> HTTPResponse {
        HTTPResponse(status: status, headers: ["Content-Type": "text/plain; charset=utf-8"], body: HTTPBody(string: body))
    }

    /// The house error document:
    /// `{"error":{"status":404,"message":"no such service"}}`.
    public static func error(status: HTTPStatus, message: String) -> HTTPResponse {
        var text = #"{"error":{"status":"#
        text += String(status.code)
        text += #","message":"#
        JSON.appendQuoted(message, to: &text)
        text += "}}"
        return json(status: status, body: text)
    }
}

enum JSON {
    /// Appends `string` as a JSON string literal, quotes included.
    static func appendQuoted(_ string: String, to out: inout String) {
        out += "\""
        for scalar in string.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20 || scalar.value == 0x7F:
                let hex = Array("0123456789abcdef")
                out += "\\u00"
                out.append(hex[Int(scalar.value >> 4)])
                out.append(hex[Int(scalar.value & 0xF)])
            default:
                out.unicodeScalars.append(scalar)
            }
        }
        out += "\""
    }
}
