import Testing
@testable import VitalsHTTP

/// Feeds `text` in one piece and returns every event until the parser
/// needs more bytes.
private func parseAll(_ bytes: [UInt8], limits: HTTPParserLimits = .default) throws(HTTPParseError) -> [HTTPParserEvent] {
    var parser = HTTPRequestParser(limits: limits)
    parser.feed(bytes)
    var events: [HTTPParserEvent] = []
    while let event = try parser.next() { events.append(event) }
    return events
}

private func requests(_ text: String, limits: HTTPParserLimits = .default) throws(HTTPParseError) -> [HTTPRequest] {
    try parseAll(Array(text.utf8), limits: limits).compactMap {
        if case .request(let r) = $0 { return r }
        return nil
    }
}

private func parseError(_ bytes: [UInt8], limits: HTTPParserLimits = .default) -> HTTPParseError? {
    do {
        _ = try parseAll(bytes, limits: limits)
        return nil
    } catch {
        return error
    }
}

@Suite("HTTPRequestParser")
struct HTTPRequestParserTests {
    @Test("a simple GET: method, path, query, version, headers")
    func simpleGet() throws {
        let r = try #require(try requests("GET /v1/status?verbose=1&x=a+b%21 HTTP/1.1\r\nHost: localhost\r\nX-Thing:  spaced value \t\r\n\r\n").first)
        #expect(r.method == .get)
        #expect(r.target == "/v1/status?verbose=1&x=a+b%21")
        #expect(r.path == "/v1/status")
        #expect(r.query == "verbose=1&x=a+b%21")
        #expect(r.queryItems == [HTTPQueryItem(name: "verbose", value: "1"), HTTPQueryItem(name: "x", value: "a b!")])
        #expect(r.queryValue("verbose") == "1")
        #expect(r.pathSegments == ["v1", "status"])
        #expect(r.version == .http1_1)
        #expect(r.headers["host"] == "localhost")
        #expect(r.headers["HOST"] == "localhost")
        #expect(r.headers["x-thing"] == "spaced value")
        #expect(r.body.isEmpty)
        #expect(r.keepAlive)
    }

    @Test("percent-decoded path segments")
    func pathSegments() throws {
        let r = try #require(try requests("GET /v1/services/web%20a/caf%C3%A9/a%2Fb/ HTTP/1.1\r\nHost: h\r\n\r\n").first)
        #expect(r.path == "/v1/services/web%20a/caf%C3%A9/a%2Fb/")
        #expect(r.pathSegments == ["v1", "services", "web a", "café", "a/b", ""])
        let root = try #require(try requests("GET / HTTP/1.1\r\nHost: h\r\n\r\n").first)
        #expect(root.pathSegments == [])
        #expect(root.query == nil)
    }

    @Test("fed one byte at a time, the request appears only when complete")
    func byteByByte() throws {
        let text = Array("POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello".utf8)
        var parser = HTTPRequestParser()
        for (i, byte) in text.enumerated() {
            parser.feed([byte])
            let event = try parser.next()
            if i < text.count - 1 {
                #expect(event == nil, "complete too early at byte \(i)")
                #expect(parser.phase == (i < text.count - 6 ? .head : .body))
            } else {
                guard case .request(let r) = event else {
                    Issue.record("no request after the last byte")
                    return
                }
                #expect(r.method == .post)
                #expect(r.body == Array("hello".utf8))
            }
        }
        #expect(parser.phase == .idle)
        #expect(try parser.next() == nil)
    }

    @Test("pipelined requests come out in order, bodies included")
    func pipelined() throws {
        let rs = try requests(
            "GET /a HTTP/1.1\r\nHost: h\r\n\r\n"
            + "POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nxyz"
            + "HEAD /c HTTP/1.1\r\nHost: h\r\n\r\n"
            + "GET /partial HTTP/1.1\r\nHo")
        #expect(rs.map(\.path) == ["/a", "/b", "/c"])
        #expect(rs.map(\.method) == [.get, .post, .head])
        #expect(rs[1].body == Array("xyz".utf8))
    }

    @Test("a body split across feeds")
    func splitBody() throws {
        var parser = HTTPRequestParser()
        parser.feed(Array("PUT /x HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n0123".utf8))
        #expect(try parser.next() == nil)
        #expect(parser.phase == .body)
        parser.feed(Array("456789GET".utf8))
        guard case .request(let r) = try parser.next() else {
            Issue.record("expected a request")
            return
        }
        #expect(r.body == Array("0123456789".utf8))
        #expect(parser.phase == .head)
        #expect(parser.bufferedByteCount == 3)
    }

    @Test("Expect: 100-continue asks for a 100 once, then yields the request")
    func expectContinue() throws {
        var parser = HTTPRequestParser()
        parser.feed(Array("POST /x HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\nContent-Length: 2\r\n\r\n".utf8))
        guard case .continueExpected = try parser.next() else {
            Issue.record("expected continueExpected")
            return
        }
        #expect(try parser.next() == nil)
        parser.feed(Array("ok".utf8))
        guard case .request(let r) = try parser.next() else {
            Issue.record("expected the request")
            return
        }
        #expect(r.body == Array("ok".utf8))
    }

    @Test("HTTP/1.0: no Host needed, close unless keep-alive; Connection: close on 1.1")
    func versionsAndConnection() throws {
        let r10 = try #require(try requests("GET / HTTP/1.0\r\n\r\n").first)
        #expect(r10.version == .http1_0)
        #expect(!r10.keepAlive)
        let r10ka = try #require(try requests("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").first)
        #expect(r10ka.keepAlive)
        let r11close = try #require(try requests("GET / HTTP/1.1\r\nHost: h\r\nConnection: foo, close\r\n\r\n").first)
        #expect(!r11close.keepAlive)
    }

    @Test("accepted oddities: leading CRLF, absolute-form, OPTIONS *, equal Content-Length list")
    func acceptedForms() throws {
        let lead = try #require(try requests("\r\nGET /a HTTP/1.1\r\nHost: h\r\n\r\n").first)
        #expect(lead.path == "/a")
        let absolute = try #require(try requests("GET http://example.com:8080/v1/x?y=1 HTTP/1.1\r\nHost: example.com\r\n\r\n").first)
        #expect(absolute.path == "/v1/x")
        #expect(absolute.query == "y=1")
        let bare = try #require(try requests("GET http://example.com HTTP/1.1\r\nHost: example.com\r\n\r\n").first)
        #expect(bare.path == "/")
        let star = try #require(try requests("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n").first)
        #expect(star.path == "*")
        let list = try #require(try requests("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2, 2\r\nContent-Length: 2\r\n\r\nab").first)
        #expect(list.body == Array("ab".utf8))
        let tab = try #require(try requests("GET / HTTP/1.1\r\nHost: h\r\nX-Tab: a\tb\r\n\r\n").first)
        #expect(tab.headers["x-tab"] == "a\tb")
    }

    static let rejections: [Rejection] = [
        Rejection("GET /\r\n\r\n", .malformedRequestLine),
        Rejection("GET  / HTTP/1.1\r\nHost: h\r\n\r\n", .malformedRequestLine),
        Rejection("GET / HTTP/1.1 x\r\nHost: h\r\n\r\n", .malformedRequestLine),
        Rejection(" GET / HTTP/1.1\r\nHost: h\r\n\r\n", .malformedRequestLine),
        Rejection("GET / http/1.1\r\nHost: h\r\n\r\n", .malformedRequestLine),
        Rejection("GET / HTTP/1.10\r\nHost: h\r\n\r\n", .malformedRequestLine),
        Rejection("\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", .malformedRequestLine),
        Rejection("G(T / HTTP/1.1\r\nHost: h\r\n\r\n", .invalidMethod),
        Rejection("BREW / HTTP/1.1\r\nHost: h\r\n\r\n", .unknownMethod),
        Rejection("get / HTTP/1.1\r\nHost: h\r\n\r\n", .unknownMethod),
        Rejection("GET foo HTTP/1.1\r\nHost: h\r\n\r\n", .invalidTarget),
        Rejection("GET /a#frag HTTP/1.1\r\nHost: h\r\n\r\n", .invalidTarget),
        Rejection("GET * HTTP/1.1\r\nHost: h\r\n\r\n", .invalidTarget),
        Rejection("GET /caf\u{E9} HTTP/1.1\r\nHost: h\r\n\r\n", .invalidTarget),
        Rejection("GET http:///x HTTP/1.1\r\nHost: h\r\n\r\n", .invalidTarget),
        Rejection("GET /a%zz HTTP/1.1\r\nHost: h\r\n\r\n", .badPercentEncoding),
        Rejection("GET /a%2 HTTP/1.1\r\nHost: h\r\n\r\n", .badPercentEncoding),
        Rejection("GET /a?q=% HTTP/1.1\r\nHost: h\r\n\r\n", .badPercentEncoding),
        Rejection("GET /%C3%28 HTTP/1.1\r\nHost: h\r\n\r\n", .badPercentEncoding),
        Rejection("GET /a%00b HTTP/1.1\r\nHost: h\r\n\r\n", .badPercentEncoding),
        Rejection("GET / HTTP/2.0\r\nHost: h\r\n\r\n", .unsupportedVersion),
        Rejection("GET / HTTP/1.2\r\nHost: h\r\n\r\n", .unsupportedVersion),
        Rejection("GET / HTTP/0.9\r\nHost: h\r\n\r\n", .unsupportedVersion),
        Rejection("GET / HTTP/1.1\r\nHost h\r\n\r\n", .malformedHeader),
        Rejection("GET / HTTP/1.1\r\nHost : h\r\n\r\n", .malformedHeader),
        Rejection("GET / HTTP/1.1\r\n: h\r\nHost: h\r\n\r\n", .malformedHeader),
        Rejection("GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n  folded\r\n\r\n", .malformedHeader),
        Rejection("GET / HTTP/1.1\r\nHost: h\r\nX(y): a\r\n\r\n", .malformedHeader),
        Rejection("GET /\0 HTTP/1.1\r\nHost: h\r\n\r\n", .nulByte),
        Rejection("GET / HTTP/1.1\r\nHost: h\r\nX: a\0b\r\n\r\n", .nulByte),
        Rejection("GET / HTTP/1.1\r\nHost: h\r\nX: a\rb\r\n\r\n", .bareCarriageReturn),
        Rejection("GET / HTTP/1.1\rHost: h\r\n\r\n", .bareCarriageReturn),
        Rejection("GET / HTTP/1.1\nHost: h\n\n", .bareLineFeed),
        Rejection("GET / HTTP/1.1\r\nHost: h\nX: y\r\n\r\n", .bareLineFeed),
        Rejection("GET / HTTP/1.1\r\nHost: h\r\nX: a\u{01}b\r\n\r\n", .controlCharacter),
        Rejection("GET / HTTP/1.1\r\nHost: h\r\nX: a\u{7F}b\r\n\r\n", .controlCharacter),
        Rejection("GET / HTTP/1.1\r\n\r\n", .missingHost),
        Rejection("GET / HTTP/1.1\r\nX: y\r\n\r\n", .missingHost),
        Rejection("GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n", .multipleHosts),
        Rejection("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: abc\r\n\r\n", .invalidContentLength),
        Rejection("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n", .invalidContentLength),
        Rejection("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +5\r\n\r\n", .invalidContentLength),
        Rejection("POST / HTTP/1.1\r\nHost: h\r\nContent-Length:\r\n\r\n", .invalidContentLength),
        Rejection("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5,\r\n\r\n", .invalidContentLength),
        Rejection("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", .conflictingContentLength),
        Rejection("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 6\r\n\r\n", .conflictingContentLength),
        Rejection("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", .transferEncodingNotSupported),
        Rejection("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", .transferEncodingNotSupported),
        Rejection("POST / HTTP/1.1\r\nHost: h\r\nExpect: the-unexpected\r\nContent-Length: 1\r\n\r\nx", .unsupportedExpectation),
        Rejection("GET /" + String(repeating: "a", count: 9000) + " HTTP/1.1\r\nHost: h\r\n\r\n", .requestLineTooLong),
        Rejection("GET / HTTP/1.1\r\nHost: h\r\nX: " + String(repeating: "a", count: 17000) + "\r\n\r\n", .headersTooLarge),
        Rejection("GET / HTTP/1.1\r\nHost: h\r\n" + String(repeating: "X: y\r\n", count: 100) + "\r\n", .tooManyHeaders),
        Rejection("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1048577\r\n\r\n", .bodyTooLarge),
        Rejection("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999999\r\n\r\n", .bodyTooLarge),
    ]

    @Test("each rejection is reported as its exact case", arguments: rejections)
    func rejection(_ rejection: Rejection) {
        #expect(parseError(Array(rejection.text.utf8)) == rejection.expected, "\(rejection)")
    }

    @Test("every error case is covered by the rejection table")
    func everyCaseCovered() {
        let covered = Set(HTTPRequestParserTests.rejections.map(\.expected))
        #expect(covered == Set(HTTPParseError.allCases))
    }

    @Test("each rejection maps to its status")
    func statuses() {
        let expected: [HTTPParseError: Int] = [
            .malformedRequestLine: 400, .invalidMethod: 400, .unknownMethod: 400, .invalidTarget: 400,
            .badPercentEncoding: 400, .unsupportedVersion: 505, .malformedHeader: 400, .nulByte: 400,
            .bareCarriageReturn: 400, .bareLineFeed: 400, .controlCharacter: 400, .missingHost: 400,
            .multipleHosts: 400, .invalidContentLength: 400, .conflictingContentLength: 400,
            .transferEncodingNotSupported: 501, .unsupportedExpectation: 417, .requestLineTooLong: 414,
            .headersTooLarge: 431, .tooManyHeaders: 431, .bodyTooLarge: 413,
        ]
        for error in HTTPParseError.allCases {
            #expect(error.status.code == expected[error], "\(error)")
        }
        #expect(HTTPParseError.bodyTooLarge.response.body.description == #"{"error":{"status":413,"message":"request body too large"}}"#)
    }

    @Test("limits are enforced while bytes arrive, before the line or head ends")
    func limitsEnforcedEarly() {
        var parser = HTTPRequestParser()
        parser.feed(Array(("GET /" + String(repeating: "a", count: 8200)).utf8))
        #expect(throws: HTTPParseError.requestLineTooLong) { try parser.next() }

        var headers = HTTPRequestParser()
        headers.feed(Array(("GET / HTTP/1.1\r\nHost: h\r\nX: " + String(repeating: "a", count: 16400)).utf8))
        #expect(throws: HTTPParseError.headersTooLarge) { try headers.next() }

        // Exactly at the limits is fine.
        let limits = HTTPParserLimits(maxRequestLineBytes: 20, maxHeaderBytes: 30, maxHeaderCount: 2, maxBodyBytes: 4)
        let line = "GET /" + String(repeating: "a", count: 6) + " HTTP/1.1"  // 20 bytes
        #expect(line.utf8.count == 20)
        let ok = "\(line)\r\nHost: h\r\nContent-Length: 4\r\n\r\nabcd"  // header block 9 + 19 = 28
        #expect(parseError(Array(ok.utf8), limits: limits) == nil)
        #expect(parseError(Array(("GET /" + String(repeating: "a", count: 7) + " HTTP/1.1\r\nHost: h\r\n\r\n").utf8), limits: limits) == .requestLineTooLong)
        #expect(parseError(Array("\(line)\r\nHost: h\r\nA: 1\r\nB: 2\r\n\r\n".utf8), limits: limits) == .tooManyHeaders)
        #expect(parseError(Array("\(line)\r\nHost: h\r\nContent-Length: 5\r\n\r\nabcde".utf8), limits: limits) == .bodyTooLarge)
        #expect(parseError(Array("\(line)\r\nHost: h\r\nX-Long: 0123456789abcdefghij\r\n\r\n".utf8), limits: limits) == .headersTooLarge)
    }

    @Test("after an error the parser stays failed")
    func errorIsSticky() {
        var parser = HTTPRequestParser()
        parser.feed(Array("BREW / HTTP/1.1\r\nHost: h\r\n\r\n".utf8))
        #expect(throws: HTTPParseError.unknownMethod) { try parser.next() }
        parser.feed(Array("GET / HTTP/1.1\r\nHost: h\r\n\r\n".utf8))
        #expect(throws: HTTPParseError.unknownMethod) { try parser.next() }
        #expect(parser.error == .unknownMethod)
    }

    @Test("a CR at the end of a feed waits for the next byte")
    func crAtFeedBoundary() throws {
        var parser = HTTPRequestParser()
        parser.feed(Array("GET / HTTP/1.1\r".utf8))
        #expect(try parser.next() == nil)
        parser.feed(Array("\nHost: h\r".utf8))
        #expect(try parser.next() == nil)
        parser.feed(Array("\n\r".utf8))
        #expect(try parser.next() == nil)
        parser.feed(Array("\n".utf8))
        #expect(try parser.next() != nil)
    }
}

/// A table row; described by a short excerpt, not the (long) request.
struct Rejection: Sendable, CustomTestStringConvertible {
    let text: String
    let expected: HTTPParseError

    init(_ text: String, _ expected: HTTPParseError) {
        self.text = text
        self.expected = expected
    }

    var testDescription: String {
        let excerpt = text.prefix(48).unicodeScalars.map { $0.isASCII && $0.value >= 0x20 ? String($0) : "\\u{\(String($0.value, radix: 16))}" }.joined()
        return "\(expected) ← \(excerpt)\(text.count > 48 ? "…" : "")"
    }
}
