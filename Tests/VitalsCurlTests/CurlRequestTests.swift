import Testing
import CCurl
import VitalsCurl
import VitalsHTTP

/// One-off requests against a real server on loopback.
@Suite("CurlRequest", .serialized)
struct CurlRequestTests {
    /// Answers with the method and body it received.
    static func withEchoServer(_ body: (String) throws -> Void) throws {
        let server = HTTPServer(handler: HTTPClosureHandler { request in
            .text(body: "\(request.method.rawValue) \(String(decoding: request.body, as: UTF8.self))")
        })
        try server.start()
        defer { server.stop() }
        try body("http://127.0.0.1:\(server.ports[0])/echo")
    }

    @Test("each method arrives as itself, with or without a body", arguments: [
        ("GET", nil, "GET "),
        ("POST", nil, "POST "),
        ("POST", "payload", "POST payload"),
        ("PUT", "payload", "PUT payload"),
        ("DELETE", nil, "DELETE "),
    ] as [(String, String?, String)])
    func methods(method: String, body: String?, seen: String) throws {
        try Self.withEchoServer { url in
            let response = try CurlRequest(method: method, url: url, body: body.map { Array($0.utf8) }).perform().get()
            #expect(response.status == 200)
            #expect(String(decoding: response.body, as: UTF8.self) == seen)
        }
    }

    @Test func theAnswerIsCappedAndCounted() throws {
        try Self.withEchoServer { url in
            let response = try CurlRequest(method: "POST", url: url, body: Array("0123456789".utf8),
                                           maxResponseBytes: 4).perform().get()
            #expect(response.body == Array("POST".utf8))
            #expect(response.totalBytes == 15)
        }
    }

    @Test func aFailureNamesTheURL() throws {
        let url = "http://127.0.0.1:1/nothing"
        let result = CurlRequest(url: url, timeout: .seconds(2)).perform()
        guard case .failure(let error) = result else {
            Issue.record("port 1 answered")
            return
        }
        #expect(error.code == CURLE_COULDNT_CONNECT)
        #expect(error.description.hasPrefix("\(url): "))
        #expect(error.text == Curl.text(CURLE_COULDNT_CONNECT))
    }
}
