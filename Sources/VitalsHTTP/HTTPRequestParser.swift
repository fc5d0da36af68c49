/// What the parser produced.
public enum HTTPParserEvent: Sendable, Equatable {
    /// A complete request, body included.
    case request(HTTPRequest)
    /// The head of an HTTP/1.1 request with `Expect: 100-continue` is
    /// complete and its body has not all arrived: the server should send
    /// `100 Continue` now. Reported once per request.
    case continueExpected
}

/// An incremental, strict HTTP/1.1 request parser with no I/O: feed it bytes
/// as they arrive, then call `next()` until it returns nil (more bytes
/// needed). Pipelined requests come out one per call, in order.
///
/// Strict by design: lines end with CRLF (bare CR or LF is rejected), no
/// NUL or control characters in the head, no obsolete line folding, no
/// whitespace before a header colon, no `Transfer-Encoding`, and every
/// limit in `HTTPParserLimits` is enforced while bytes arrive, so a limit
/// is reported as soon as it is crossed, not after buffering the excess.
///
/// After `next()` throws, the parser is finished: every later call throws
/// the same error. The connection must be answered and closed.
public struct HTTPRequestParser: Sendable {
    /// Which part of a request the parser is waiting for.
    public enum Phase: Sendable, Equatable {
        /// No byte of a next request is buffered.
        case idle
        /// Some of a request head is buffered.
        case head
        /// The head is complete; the body is arriving.
        case body
    }

    public let limits: HTTPParserLimits

    private var buffer: [UInt8] = []
    /// Absolute index of the first byte of the current message (or of its
    /// body, once the head is parsed). Everything before is consumed.
    private var start = 0
    /// Head scanning state, relative to `start`.
    private var scanOffset = 0
    private var lineStartOffset = 0
    /// Length of the request line once its CRLF was seen.
    private var requestLineLength: Int?
    private var headerCount = 0
    private var leadingEmptyLines = 0
    private var pending: PendingBody?
    private var failure: HTTPParseError?

    private struct PendingBody: Sendable {
        var request: HTTPRequest
        var contentLength: Int
        var expectContinue: Bool
    }

    /// How many leading empty lines before a request line are skipped
    /// (RFC 9112 §2.2: some clients send a CRLF after a POST body).
    private static let maxLeadingEmptyLines = 2

    public init(limits: HTTPParserLimits = .default) {
        self.limits = limits
    }

    /// Where the parser stands.
    public var phase: Phase {
        if pending != nil { return .body }
        return buffer.count > start ? .head : .idle
    }

    /// Bytes fed and not yet returned as part of a request.
    public var bufferedByteCount: Int { buffer.count - start }

    /// The error this parser failed with, if it did.
    public var error: HTTPParseError? { failure }

    /// Appends bytes read from the connection.
    public mutating func feed(_ bytes: UnsafeRawBufferPointer) {
        compact()
        bytes.withMemoryRebound(to: UInt8.self) { buffer.append(contentsOf: $0) }
    }

    /// Appends bytes read from the connection.
    public mutating func feed(_ bytes: some Sequence<UInt8>) {
        compact()
        buffer.append(contentsOf: bytes)
    }

    /// Forgets everything buffered (used when the server stops reading a
    /// connection it is closing).
    public mutating func discardBufferedBytes() {
        buffer = []
        start = 0
        pending = nil
        resetHeadState()
    }

    private mutating func compact() {
        if start == buffer.count {
            // Let a connection that once received a large body give the
            // memory back instead of keeping it for its lifetime.
            if buffer.capacity > 256 * 1024 { buffer = [] } else { buffer.removeAll(keepingCapacity: true) }
            start = 0
        } else if start > 0 && start >= buffer.count - start {
            buffer.removeSubrange(0..<start)
            start = 0
        }
    }

    /// The next event, or nil when more bytes are needed.
    public mutating func next() throws(HTTPParseError) -> HTTPParserEvent? {
        if let failure { throw failure }
        do {
            return try parseNext()
        } catch {
            failure = error
            throw error
        }
    }

    private mutating func parseNext() throws(HTTPParseError) -> HTTPParserEvent? {
        if pending == nil {
            guard let headLength = try scanHead() else { return nil }
            let (headStart, lineLength, limits) = (start, requestLineLength!, self.limits)
            let head = try buffer.withUnsafeBufferPointer { (all) throws(HTTPParseError) -> PendingBody in
                let bytes = UnsafeBufferPointer(rebasing: all[headStart..<(headStart + headLength)])
                return try HTTPRequestParser.parseHead(bytes, requestLineLength: lineLength, limits: limits)
            }
            start += headLength
            resetHeadState()
            if head.contentLength == 0 {
                // No body: hand the request out without parking it.
                return .request(head.request)
            }
            pending = head
        }
        let available = buffer.count - start
        if available < pending!.contentLength {
            if pending!.expectContinue {
                pending!.expectContinue = false
                return .continueExpected
            }
            return nil
        }
        var request = pending!.request
        let length = pending!.contentLength
        pending = nil
        if length > 0 {
            request.body = Array(buffer[start..<(start + length)])
            start += length
        }
        return .request(request)
    }

    private mutating func resetHeadState() {
        scanOffset = 0
        lineStartOffset = 0
        requestLineLength = nil
        headerCount = 0
        leadingEmptyLines = 0
    }

    /// Scans newly arrived head bytes, validating characters and limits.
    /// Returns the head's length (through the blank line) once complete.
    private mutating func scanHead() throws(HTTPParseError) -> Int? {
        let cr: UInt8 = 0x0D, lf: UInt8 = 0x0A, htab: UInt8 = 0x09
        let limits = self.limits
        // Work on copies: the closure reads `buffer` while the scan moves
        // the other fields, and the copies are written back once.
        var start = self.start
        var i = start + scanOffset
        var lineStart = start + lineStartOffset
        var requestLineLength = self.requestLineLength
        var headerCount = self.headerCount
        var leadingEmptyLines = self.leadingEmptyLines
        let result = try buffer.withUnsafeBufferPointer { (all) throws(HTTPParseError) -> Int? in
            while i < all.count {
                let byte = all[i]
                if byte == cr {
                    guard i + 1 < all.count else { return nil }  // wait for the LF
                    guard all[i + 1] == lf else { throw .bareCarriageReturn }
                    let lineLength = i - lineStart
                    if let requestLineLength {
                        if lineLength == 0 { return i + 2 - start }
                        headerCount += 1
                        if headerCount > limits.maxHeaderCount { throw .tooManyHeaders }
                        if i + 2 - (start + requestLineLength + 2) > limits.maxHeaderBytes { throw .headersTooLarge }
                    } else {
                        if lineLength == 0 {
                            leadingEmptyLines += 1
                            if leadingEmptyLines > HTTPRequestParser.maxLeadingEmptyLines { throw .malformedRequestLine }
                            start = i + 2
                            i = start
                            lineStart = start
                            continue
                        }
                        if lineLength > limits.maxRequestLineBytes { throw .requestLineTooLong }
                        requestLineLength = lineLength
                    }
                    i += 2
                    lineStart = i
                    continue
                }
                if byte < 0x20 || byte == 0x7F {
                    if byte == lf { throw .bareLineFeed }
                    if byte == 0 { throw .nulByte }
                    if byte != htab { throw .controlCharacter }
                }
                i += 1
                if let requestLineLength {
                    if i - (start + requestLineLength + 2) > limits.maxHeaderBytes { throw .headersTooLarge }
                } else if i - lineStart > limits.maxRequestLineBytes {
                    throw .requestLineTooLong
                }
            }
            return nil
        }
        self.start = start
        self.scanOffset = i - start
        self.lineStartOffset = lineStart - start
        self.requestLineLength = requestLineLength
        self.headerCount = headerCount
        self.leadingEmptyLines = leadingEmptyLines
        return result
    }

    // MARK: - Head parsing (the head is complete and its characters valid)

    private static func isTokenByte(_ b: UInt8) -> Bool {
        switch b {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"),
             UInt8(ascii: "'"), UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."),
             UInt8(ascii: "^"), UInt8(ascii: "_"), UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
            return true
        default:
            return false
        }
    }

    private static func string(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> String {
        String(decoding: UnsafeBufferPointer(rebasing: bytes[range]), as: UTF8.self)
    }

    private static func parseHead(_ head: UnsafeBufferPointer<UInt8>, requestLineLength: Int, limits: HTTPParserLimits) throws(HTTPParseError) -> PendingBody {
        let space = UInt8(ascii: " ")
        // Request line: method SP target SP version, single spaces.
        let line = 0..<requestLineLength
        guard let sp1 = head[line].firstIndex(of: space), sp1 > 0 else { throw .malformedRequestLine }
        guard let sp2 = head[(sp1 + 1)..<line.upperBound].firstIndex(of: space), sp2 > sp1 + 1 else {
            throw .malformedRequestLine
        }
        let versionRange = (sp2 + 1)..<line.upperBound
        guard !head[versionRange].contains(space) else { throw .malformedRequestLine }

        let methodBytes = UnsafeBufferPointer(rebasing: head[0..<sp1])
        guard methodBytes.allSatisfy(isTokenByte) else { throw .invalidMethod }
        let version = try parseVersion(UnsafeBufferPointer(rebasing: head[versionRange]))
        guard let method = HTTPMethod.match(methodBytes) else { throw .unknownMethod }

        let targetRange = (sp1 + 1)..<sp2
        let (path, query) = try parseTarget(head, targetRange, method: method)

        // Header fields.
        var headers = HTTPHeaders(reservingCapacity: 8)
        var hostCount = 0
        var contentLength: Int?
        var contentLengthError: HTTPParseError?
        var hasTransferEncoding = false
        var expectation: String?
        var lineStart = requestLineLength + 2
        let end = head.count - 2  // the blank line's CRLF
        while lineStart < end {
            var lineEnd = lineStart
            while head[lineEnd] != 0x0D { lineEnd += 1 }
            let first = head[lineStart]
            if first == space || first == 0x09 { throw .malformedHeader }  // obsolete line folding
            guard let colon = head[lineStart..<lineEnd].firstIndex(of: UInt8(ascii: ":")), colon > lineStart else {
                throw .malformedHeader
            }
            for i in lineStart..<colon where !isTokenByte(head[i]) { throw .malformedHeader }
            var valueStart = colon + 1
            var valueEnd = lineEnd
            while valueStart < valueEnd && (head[valueStart] == space || head[valueStart] == 0x09) { valueStart += 1 }
            while valueEnd > valueStart && (head[valueEnd - 1] == space || head[valueEnd - 1] == 0x09) { valueEnd -= 1 }
            let nameBytes = UnsafeBufferPointer(rebasing: head[lineStart..<colon])
            let valueBytes = UnsafeBufferPointer(rebasing: head[valueStart..<valueEnd])

            switch nameBytes.count {
            case 4 where HTTPHeaders.equalsIgnoringCase(nameBytes, "host".utf8):
                hostCount += 1
            case 14 where HTTPHeaders.equalsIgnoringCase(nameBytes, "content-length".utf8):
                switch parseContentLength(valueBytes) {
                case .none:
                    contentLengthError = contentLengthError ?? .invalidContentLength
                case .some(.none):
                    contentLengthError = contentLengthError ?? .conflictingContentLength
                case .some(.some(let value)):
                    if let contentLength, contentLength != value {
                        contentLengthError = contentLengthError ?? .conflictingContentLength
                    }
                    contentLength = value
                }
            case 17 where HTTPHeaders.equalsIgnoringCase(nameBytes, "transfer-encoding".utf8):
                hasTransferEncoding = true
            case 6 where HTTPHeaders.equalsIgnoringCase(nameBytes, "expect".utf8):
                expectation = string(head, valueStart..<valueEnd)
            default:
                break
            }
            headers.add(name: string(head, lineStart..<colon), value: string(head, valueStart..<valueEnd))
            lineStart = lineEnd + 2
        }

        if hostCount > 1 { throw .multipleHosts }
        if hostCount == 0 && version == .http1_1 { throw .missingHost }
        if hasTransferEncoding { throw .transferEncodingNotSupported }
        if let contentLengthError { throw contentLengthError }
        let length = contentLength ?? 0
        if length > limits.maxBodyBytes { throw .bodyTooLarge }
        var expectContinue = false
        if let expectation, version == .http1_1 {
            guard HTTPHeaders.equalsIgnoringCase(expectation, "100-continue") else { throw .unsupportedExpectation }
            expectContinue = length > 0
        }

        let request = HTTPRequest(
            method: method, target: string(head, targetRange), path: path, query: query,
            version: version, headers: headers, body: [])
        return PendingBody(request: request, contentLength: length, expectContinue: expectContinue)
    }

    /// `1*DIGIT` possibly as a list of equal values (`5, 5`); the value
    /// saturates at `Int.max` so that a huge length is "too large", not
    /// "invalid". nil when not a number or a list that disagrees.
    private static func parseContentLength(_ bytes: UnsafeBufferPointer<UInt8>) -> Int?? {
        var result: Int?
        for element in bytes.split(separator: UInt8(ascii: ","), omittingEmptySubsequences: false) {
            let trimmed = element.drop { $0 == 0x20 || $0 == 0x09 }.reversed().drop { $0 == 0x20 || $0 == 0x09 }.reversed()
            guard !trimmed.isEmpty else { return .none }
            var value = 0
            for digit in trimmed {
                guard digit >= UInt8(ascii: "0") && digit <= UInt8(ascii: "9") else { return .none }
                let (times10, o1) = value.multipliedReportingOverflow(by: 10)
                let (sum, o2) = times10.addingReportingOverflow(Int(digit - UInt8(ascii: "0")))
                value = (o1 || o2) ? Int.max : sum
            }
            if let result, result != value { return .some(nil) }
            result = value
        }
        return .some(result)
    }

    private static func parseVersion(_ bytes: UnsafeBufferPointer<UInt8>) throws(HTTPParseError) -> HTTPVersion {
        guard bytes.count == 8,
              bytes[0] == UInt8(ascii: "H"), bytes[1] == UInt8(ascii: "T"), bytes[2] == UInt8(ascii: "T"),
              bytes[3] == UInt8(ascii: "P"), bytes[4] == UInt8(ascii: "/"), bytes[6] == UInt8(ascii: "."),
              (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[5]),
              (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[7])
        else { throw .malformedRequestLine }
        let version = HTTPVersion(major: Int(bytes[5] - UInt8(ascii: "0")), minor: Int(bytes[7] - UInt8(ascii: "0")))
        guard version == .http1_1 || version == .http1_0 else { throw .unsupportedVersion }
        return version
    }

    private static func parseTarget(_ head: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, method: HTTPMethod) throws(HTTPParseError) -> (path: String, query: String?) {
        let target = UnsafeBufferPointer(rebasing: head[range])
        for byte in target where byte <= 0x20 || byte >= 0x7F || byte == UInt8(ascii: "#") {
            throw .invalidTarget
        }
        guard PercentEncoding.isWellFormed(target) else { throw .badPercentEncoding }

        if method == .connect {
            // authority-form (host:port); nothing to decode.
            return (string(head, range), nil)
        }
        if target.count == 1 && target[0] == UInt8(ascii: "*") {
            guard method == .options else { throw .invalidTarget }
            return ("*", nil)
        }
        var pathStart = range.lowerBound
        if target[0] != UInt8(ascii: "/") {
            // absolute-form: http://authority/path?query
            let lower = target.prefix(8).map(HTTPHeaders.asciiLower)
            let schemeLength: Int
            if lower.starts(with: "http://".utf8) { schemeLength = 7 }
            else if lower.starts(with: "https://".utf8) { schemeLength = 8 }
            else { throw .invalidTarget }
            pathStart = range.lowerBound + schemeLength
            while pathStart < range.upperBound && head[pathStart] != UInt8(ascii: "/") && head[pathStart] != UInt8(ascii: "?") {
                pathStart += 1
            }
            if pathStart == range.lowerBound + schemeLength { throw .invalidTarget }  // empty authority
        }
        let question = head[pathStart..<range.upperBound].firstIndex(of: UInt8(ascii: "?"))
        let pathEnd = question ?? range.upperBound
        let pathBytes = UnsafeBufferPointer(rebasing: head[pathStart..<pathEnd])
        guard PercentEncoding.pathDecodesCleanly(pathBytes) else { throw .badPercentEncoding }
        let path = pathBytes.isEmpty ? "/" : string(head, pathStart..<pathEnd)
        let query = question.map { string(head, ($0 + 1)..<range.upperBound) }
        return (path, query)
    }
}
