#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Synchronization
import Testing
@testable import VitalsHTTP

/// A handler that answers `/later` from another thread when the test says
/// so, and everything else at once through `TestHandler`.
final class HeldHandler: HTTPDeferringHandler {
    private let held = Mutex<[HTTPResponder]>([])
    private let arrived = DispatchSemaphore(value: 0)

    func handle(_ request: HTTPRequest, deferral: HTTPDeferral) -> HTTPResponse? {
        guard request.path == "/later" else { return TestHandler().handle(request) }
        let responder = deferral.responder()
        held.withLock { $0.append(responder) }
        arrived.signal()
        return nil
    }

    /// Waits until a `/later` request is held.
    func waitForRequest(timeout: Double = 5) -> Bool {
        arrived.wait(timeout: .now() + timeout) == .success
    }

    /// Answers the oldest held request, from a thread other than the loop's.
    func answer(_ text: String) {
        let responder = held.withLock { $0.removeFirst() }
        let done = DispatchSemaphore(value: 0)
        Thread {
            responder.respond(.text(body: text))
            responder.respond(.text(body: "a second answer is ignored"))
            done.signal()
        }.start()
        done.wait()
    }
}

func withDeferringServer<R>(_ handler: HeldHandler, timeout: Duration = .seconds(30),
                            _ body: (HTTPServer) throws -> R) throws -> R {
    let configuration = HTTPServerConfiguration(listenAddresses: [.loopbackIPv4()], deferredResponseTimeout: timeout)
    let server = HTTPServer(configuration: configuration, deferringHandler: handler)
    try server.start()
    defer { server.stop() }
    return try body(server)
}

@Suite("HTTPServer: deferred responses", .serialized)
struct DeferredResponseTests {
    @Test("a deferred answer arrives, and the connection stays usable")
    func deferredAnswerArrives() throws {
        let handler = HeldHandler()
        try withDeferringServer(handler) { server in
            let client = try TestClient(server.localAddresses[0])
            try client.send("GET /later HTTP/1.1\r\nHost: t\r\n\r\n")
            #expect(handler.waitForRequest())
            handler.answer("done later")
            let r = try client.readResponse()
            #expect(r.status == 200)
            #expect(r.bodyText == "done later")
            // Synchronous answers still come straight back on the same connection.
            try client.send("GET /v1/status HTTP/1.1\r\nHost: t\r\n\r\n")
            #expect(try client.readResponse().body == TestHandler.statusBody.bytes)
        }
    }

    @Test("a request pipelined after a deferred one is answered after it")
    func pipelinedRequestWaitsItsTurn() throws {
        let handler = HeldHandler()
        try withDeferringServer(handler) { server in
            let client = try TestClient(server.localAddresses[0])
            try client.send("GET /later HTTP/1.1\r\nHost: t\r\n\r\nGET /echo?n=2 HTTP/1.1\r\nHost: t\r\n\r\n")
            #expect(handler.waitForRequest())
            // Nothing may come before the deferred answer, not even the echo.
            #expect(try client.waitForClose(timeout: 0.2) == false)
            #expect(client.bufferedBytes.isEmpty)
            handler.answer("first")
            let first = try client.readResponse()
            #expect(first.bodyText == "first")
            let second = try client.readResponse()
            #expect(second.bodyText.contains("query=n:2"))
        }
    }

    @Test("a client that closes before the answer: the late answer is dropped")
    func clientClosesFirst() throws {
        let handler = HeldHandler()
        try withDeferringServer(handler) { server in
            var client: TestClient? = try TestClient(server.localAddresses[0])
            try client?.send("GET /later HTTP/1.1\r\nHost: t\r\n\r\n")
            #expect(handler.waitForRequest())
            client = nil // closes the socket
            usleep(50_000) // let the loop see the close while it waits
            handler.answer("too late")
            #expect(waitUntil { server.openConnections == 0 })
            // The server still serves others.
            let other = try TestClient(server.localAddresses[0])
            try other.send("GET /v1/status HTTP/1.1\r\nHost: t\r\n\r\n")
            #expect(try other.readResponse().status == 200)
        }
    }

    @Test("no answer in time: 503 and close; the late answer is dropped")
    func answerTimesOut() throws {
        let handler = HeldHandler()
        try withDeferringServer(handler, timeout: .milliseconds(200)) { server in
            let client = try TestClient(server.localAddresses[0])
            try client.send("GET /later HTTP/1.1\r\nHost: t\r\n\r\n")
            #expect(handler.waitForRequest())
            let r = try client.readResponse()
            #expect(r.status == 503)
            #expect(r.header("Connection") == "close")
            handler.answer("too late")
            #expect(try client.waitForClose(timeout: 5))
        }
    }
}

/// Polls `condition` for up to `timeout` seconds.
private func waitUntil(timeout: Double = 5, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if condition() { return true }
        usleep(10_000)
    }
    return condition()
}
