/// Why the parser rejected a request. Each case maps to one response status
/// and message; after a rejection the server answers with
/// `HTTPResponse.error(status:message:)` and closes the connection.
public enum HTTPParseError: Error, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// The request line is not `method SP target SP version`. 400.
    case malformedRequestLine
    /// The method is not a token (RFC 9110 §9.1). 400.
    case invalidMethod
    /// The method is a token but not one of `HTTPMethod`. 400 (a choice:
    /// this server knows its methods, so an unknown one is a client error).
    case unknownMethod
    /// The target has bytes outside visible ASCII, a fragment, or a form the
    /// method does not allow (`*` outside OPTIONS). 400.
    case invalidTarget
    /// A `%` not followed by two hex digits, or a path segment that decodes
    /// to invalid UTF-8 or to a NUL. 400.
    case badPercentEncoding
    /// `HTTP/x.y` other than 1.0 and 1.1. 505.
    case unsupportedVersion
    /// A header line without a colon, with an empty or non-token name,
    /// whitespace before the colon, or obsolete line folding. 400.
    case malformedHeader
    /// A NUL byte in the request line or a header. 400.
    case nulByte
    /// A CR not followed by LF. 400.
    case bareCarriageReturn
    /// An LF not preceded by CR. 400.
    case bareLineFeed
    /// A control character other than HTAB in the request line or a header. 400.
    case controlCharacter
    /// An HTTP/1.1 request without `Host`. 400.
    case missingHost
    /// More than one `Host` field. 400.
    case multipleHosts
    /// A `Content-Length` that is not a decimal number. 400.
    case invalidContentLength
    /// `Content-Length` fields (or list elements) that disagree. 400.
    case conflictingContentLength
    /// Any `Transfer-Encoding` (chunked bodies). 501: send `Content-Length`.
    /// Chosen over 411 because the client did announce a body, in a framing
    /// this server does not implement; the connection is then closed, since
    /// the rest of the stream cannot be framed.
    case transferEncodingNotSupported
    /// An `Expect` other than `100-continue`. 417.
    case unsupportedExpectation
    /// The request line exceeds `maxRequestLineBytes`. 414.
    case requestLineTooLong
    /// The header block exceeds `maxHeaderBytes`. 431.
    case headersTooLarge
    /// More than `maxHeaderCount` fields. 431.
    case tooManyHeaders
    /// `Content-Length` exceeds `maxBodyBytes`. 413.
    case bodyTooLarge

    /// The status the server answers with.
    public var status: HTTPStatus {
        switch self {
        case .malformedRequestLine, .invalidMethod, .unknownMethod, .invalidTarget, .badPercentEncoding,
             .malformedHeader, .nulByte, .bareCarriageReturn, .bareLineFeed, .controlCharacter,
             .missingHost, .multipleHosts, .invalidContentLength, .conflictingContentLength:
            return .badRequest
        case .unsupportedVersion: return .httpVersionNotSupported
        case .transferEncodingNotSupported: return .notImplemented
        case .unsupportedExpectation: return .expectationFailed
        case .requestLineTooLong: return .uriTooLong
        case .headersTooLarge, .tooManyHeaders: return .requestHeaderFieldsTooLarge
        case .bodyTooLarge: return .contentTooLarge
        }
    }

    /// A sentence for the client.
    public var message: String {
        switch self {
        case .malformedRequestLine: return "malformed request line: expected 'METHOD /target HTTP/1.1'"
        case .invalidMethod: return "invalid method token"
        case .unknownMethod: return "unknown method"
        case .invalidTarget: return "invalid request target"
        case .badPercentEncoding: return "bad percent-encoding in request target"
        case .unsupportedVersion: return "HTTP version not supported: use HTTP/1.1 or HTTP/1.0"
        case .malformedHeader: return "malformed header field"
        case .nulByte: return "NUL byte in request head"
        case .bareCarriageReturn: return "bare CR in request head: lines end with CRLF"
        case .bareLineFeed: return "bare LF in request head: lines end with CRLF"
        case .controlCharacter: return "control character in request head"
        case .missingHost: return "missing Host header (required in HTTP/1.1)"
        case .multipleHosts: return "more than one Host header"
        case .invalidContentLength: return "invalid Content-Length"
        case .conflictingContentLength: return "conflicting Content-Length values"
        case .transferEncodingNotSupported: return "Transfer-Encoding (chunked request bodies) is not supported: send Content-Length"
        case .unsupportedExpectation: return "unsupported Expect: only 100-continue is supported"
        case .requestLineTooLong: return "request line too long"
        case .headersTooLarge: return "request header block too large"
        case .tooManyHeaders: return "too many request header fields"
        case .bodyTooLarge: return "request body too large"
        }
    }

    public var description: String { "\(status.code): \(message)" }

    /// The error document sent for this rejection.
    public var response: HTTPResponse { .error(status: status, message: message) }
}
