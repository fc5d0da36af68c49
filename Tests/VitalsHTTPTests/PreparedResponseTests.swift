#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
@testable import VitalsHTTP

/// Prepared responses: the head is rendered once and must be byte-identical
/// to what the server writes for the same unprepared response.
@Suite("Prepared responses")
struct PreparedResponseTests {
    private static let date = Array("Thu, 01 Jan 1970 00:00:00 GMT".utf8)

    private func ordinaryHead(_ r: HTTPResponse, _ connection: ResponseHead.ConnectionField) -> String {
        var out: [UInt8] = []
        ResponseHead.write(
            into: &out, status: r.status, headers: r.headers,
            contentLength: r.status.forbidsContentLength ? nil : r.body.count,
            connection: connection, date: Self.date)
        return String(decoding: out, as: UTF8.self)
    }

    private func preparedHead(_ r: HTTPResponse, _ connection: ResponseHead.ConnectionField) -> String? {
        guard let head = r.prepared().preparedHead else { return nil }
        var out: [UInt8] = []
        head.write(into: &out, date: Self.date, connection: connection)
        return String(decoding: out, as: UTF8.self)
    }

    @Test("the prepared head is the ordinary head, unsafe and reserved fields dropped")
    func sameBytes() {
        let responses: [HTTPResponse] = [
            .json(body: #"{"ok":true}"#),
            .text(status: .serviceUnavailable, body: "down\n"),
            HTTPResponse(status: .noContent),
            HTTPResponse(status: .notModified, headers: ["ETag": "\"x\""]),
            HTTPResponse(status: .ok, headers: [
                "Content-Type": "text/plain", "Content-Length": "999", "X-Bad": "a\r\nInjected: 1",
                "Server": "other", "Bad Name": "x", "": "empty", "Date": "never", "Transfer-Encoding": "chunked",
            ], body: Array("hello".utf8)),
            HTTPResponse(status: HTTPStatus(code: 299), body: .empty),
            .error(status: .notFound, message: "no such path: /x"),
        ]
        for response in responses {
            for connection in [ResponseHead.ConnectionField.none, .close, .keepAlive] {
                #expect(preparedHead(response, connection) == ordinaryHead(response, connection))
            }
        }
        let tricky = HTTPResponse(status: .ok, headers: ["X-Bad": "a\r\nInjected: 1", "X-Ok": "fine"], body: [])
        let text = preparedHead(tricky, .none) ?? ""
        #expect(!text.contains("Injected"))
        #expect(text.contains("X-Ok: fine\r\n"))
    }

    @Test("changing a prepared response drops its head")
    func mutationDropsHead() {
        let base = HTTPResponse.json(body: "{}").prepared()
        #expect(base.isPrepared)
        #expect(!HTTPResponse.json(body: "{}").isPrepared)
        var a = base
        a.headers.replaceOrAdd(name: "X-Extra", value: "1")
        #expect(!a.isPrepared)
        var b = base
        b.body = HTTPBody(string: "{\"longer\":1}")
        #expect(!b.isPrepared)
        var c = base
        c.status = .notFound
        #expect(!c.isPrepared)
        #expect(base.isPrepared)
    }

    @Test("Connection: close on a prepared response is honoured")
    func closeFlag() {
        #expect(HTTPResponse(headers: ["Connection": "close"]).prepared().closesConnection)
        #expect(!HTTPResponse.json(body: "{}").prepared().closesConnection)
    }
}

/// Serves the test handler's routes with every response prepared.
private struct PreparedHandler: HTTPHandler {
    static let status = TestHandler.statusResponse.prepared()
    static let close = HTTPResponse(status: .ok, headers: ["Connection": "close"], body: Array("bye".utf8)).prepared()
    static let small = HTTPResponse.text(body: "small\n").prepared()

    func handle(_ request: HTTPRequest) -> HTTPResponse {
        switch request.path {
        case "/v1/status": return Self.status
        case "/close": return Self.close
        case "/small": return Self.small
        default: return TestHandler().handle(request)
        }
    }
}

@Suite("HTTPServer with prepared responses", .serialized)
struct PreparedResponseServerTests {
    private func withoutDate(_ r: ClientResponse) -> [String] {
        r.headers.filter { $0.0.lowercased() != "date" }.map { "\($0.0): \($0.1)" }
    }

    @Test("GET, HEAD and pipelined requests answer as for the unprepared response")
    func sameAnswers() throws {
        var ordinary: [ClientResponse] = []
        try withServer { server in
            let client = try TestClient(server.localAddresses[0])
            try client.send("GET /v1/status HTTP/1.1\r\nHost: t\r\n\r\nGET /echo HTTP/1.1\r\nHost: t\r\n\r\n")
            ordinary.append(try client.readResponse())
            ordinary.append(try client.readResponse())
        }
        try withServer(handler: PreparedHandler()) { server in
            let client = try TestClient(server.localAddresses[0])
            try client.send("GET /v1/status HTTP/1.1\r\nHost: t\r\n\r\nGET /echo HTTP/1.1\r\nHost: t\r\n\r\n")
            let first = try client.readResponse()
            let second = try client.readResponse()
            #expect(first.status == 200)
            #expect(first.body == TestHandler.statusBody.bytes)
            #expect(withoutDate(first) == withoutDate(ordinary[0]))
            #expect(first.header("Date")?.hasSuffix(" GMT") == true)
            #expect(second.status == ordinary[1].status)

            try client.send("HEAD /v1/status HTTP/1.1\r\nHost: t\r\n\r\n")
            let head = try client.readResponse(bodyExpected: false)
            #expect(head.status == 200)
            #expect(head.header("Content-Length") == String(TestHandler.statusBody.count))
            // Had a body been sent, the next response would not parse.
            try client.send("GET /small HTTP/1.1\r\nHost: t\r\n\r\n")
            let small = try client.readResponse()
            #expect(small.bodyText == "small\n")
            #expect(small.header("Content-Type") == "text/plain; charset=utf-8")
        }
    }

    @Test("HTTP/1.0 keep-alive and Connection: close")
    func connectionFields() throws {
        try withServer(handler: PreparedHandler()) { server in
            let client = try TestClient(server.localAddresses[0])
            try client.send("GET /v1/status HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            let kept = try client.readResponse()
            #expect(kept.header("Connection") == "keep-alive")
            #expect(kept.body == TestHandler.statusBody.bytes)
            try client.send("GET /close HTTP/1.1\r\nHost: t\r\n\r\n")
            let closed = try client.readResponse()
            #expect(closed.header("Connection") == "close")
            #expect(closed.bodyText == "bye")
            #expect(try client.waitForClose(timeout: 5))
        }
        try withServer(handler: PreparedHandler()) { server in
            let client = try TestClient(server.localAddresses[0])
            try client.send("GET /v1/status HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            let r = try client.readResponse()
            #expect(r.header("Connection") == "close")
            #expect(r.body == TestHandler.statusBody.bytes)
            #expect(try client.waitForClose(timeout: 5))
        }
    }
}
