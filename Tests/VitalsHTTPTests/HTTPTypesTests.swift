import Testing
@testable import VitalsHTTP

@Suite("HTTP types")
struct HTTPTypesTests {
    @Test("error documents are JSON with the status and an escaped message")
    func errorDocument() {
        let r = HTTPResponse.error(status: .notFound, message: "no \"svc\"\n\\ \u{01}")
        #expect(r.status.code == 404)
        #expect(r.headers["content-type"] == "application/json")
        #expect(r.body.description == #"{"error":{"status":404,"message":"no \"svc\"\n\\ \u0001"}}"#)
    }

    @Test("listen addresses parse IPv4 and bracketed IPv6, and reject the rest")
    func listenAddresses() {
        #expect(HTTPListenAddress("127.0.0.1:8080") == HTTPListenAddress(host: "127.0.0.1", port: 8080))
        #expect(HTTPListenAddress("[::1]:9000") == HTTPListenAddress(host: "::1", port: 9000))
        #expect(HTTPListenAddress("[::]:0")?.description == "[::]:0")
        #expect(HTTPListenAddress("::1:80") == nil)
        #expect(HTTPListenAddress("localhost:80") == nil)
        #expect(HTTPListenAddress("127.0.0.1:99999") == nil)
        #expect(HTTPListenAddress("127.0.0.1") == nil)
    }

    @Test("headers: case-insensitive lookup, tokens, replace")
    func headers() {
        var h: HTTPHeaders = ["Content-Type": "a", "X-Multi": "1", "x-multi": "2"]
        #expect(h["content-TYPE"] == "a")
        #expect(h.values(for: "X-MULTI") == ["1", "2"])
        h.replaceOrAdd(name: "x-multi", value: "3")
        #expect(h.values(for: "X-Multi") == ["3"])
        h.add(name: "Connection", value: "Keep-Alive , Upgrade")
        #expect(h.containsToken("keep-alive", inField: "connection"))
        #expect(h.containsToken("upgrade", inField: "connection"))
        #expect(!h.containsToken("close", inField: "connection"))
    }

    @Test("response heads: framing owned by the server, unsafe fields dropped")
    func responseHead() {
        var out: [UInt8] = []
        ResponseHead.write(
            into: &out, status: .ok,
            headers: ["Content-Type": "text/plain", "Content-Length": "999", "X-Bad": "a\r\nInjected: 1", "Server": "other"],
            contentLength: 12, connection: .close, date: Array("Thu, 01 Jan 1970 00:00:00 GMT".utf8))
        #expect(String(decoding: out, as: UTF8.self) ==
            "HTTP/1.1 200 OK\r\nServer: vitals\r\nDate: Thu, 01 Jan 1970 00:00:00 GMT\r\nContent-Length: 12\r\n"
            + "Content-Type: text/plain\r\nConnection: close\r\n\r\n")
    }

    @Test("dates are IMF-fixdate")
    func dates() {
        #expect(String(decoding: HTTPDateCache.format(784_111_777), as: UTF8.self) == "Sun, 06 Nov 1994 08:49:37 GMT")
        #expect(String(decoding: HTTPDateCache.format(0), as: UTF8.self) == "Thu, 01 Jan 1970 00:00:00 GMT")
    }

    @Test("shared bodies compare by content")
    func bodies() {
        #expect(HTTPBody(string: "abc") == HTTPBody(bytes: Array("abc".utf8)))
        #expect(HTTPBody.empty.isEmpty)
        #expect(HTTPBody(string: "abc").bytes == Array("abc".utf8))
    }
}
