/// Head parsing: the head is complete and its characters valid; these turn
/// it into a request line, fields and the body's length.
extension HTTPRequestParser {
    static func isTokenByte(_ b: UInt8) -> Bool {
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

    static func string(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> String {
        String(decoding: UnsafeBufferPointer(rebasing: bytes[range]), as: UTF8.self)
    }

    static func parseHead(_ head: UnsafeBufferPointer<UInt8>, requestLineLength: Int, limits: HTTPParserLimits) throws(HTTPParseError) -> PendingBody {
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
    static func parseContentLength(_ bytes: UnsafeBufferPointer<UInt8>) -> Int?? {
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

    static func parseVersion(_ bytes: UnsafeBufferPointer<UInt8>) throws(HTTPParseError) -> HTTPVersion {
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

    static func parseTarget(_ head: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, method: HTTPMethod) throws(HTTPParseError) -> (path: String, query: String?) {
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
