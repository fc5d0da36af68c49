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

    struct PendingBody: Sendable {
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
}
