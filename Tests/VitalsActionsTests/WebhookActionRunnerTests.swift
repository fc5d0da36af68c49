import Foundation
import Testing
@testable import VitalsActions
import VitalsCore
import VitalsTestKit

@Suite("webhook actions")
struct WebhookActionRunnerTests {
    @Test("500, 500, then 200: success after 3 attempts, each body the event JSON")
    func retriesUntilSuccess() async throws {
        let server = try WebhookServer(statuses: [500, 500, 200])
        defer { server.stop() }
        let backoff = BackoffRecorder()
        let runner = WebhookActionRunner(retry: backoff.policy(base: .milliseconds(10)))
        let action = ActionConfig(name: "notify", kind: .webhook(.to(server.url, method: "POST", body: nil,
                                                                 headers: [HTTPHeaderField(name: "X-Token", value: "abc")])),
                                  timeout: .seconds(5), retries: 3)
        let event = sampleEvent()
        let outcome = await runner.run(event, action: action)

        #expect(outcome.result == .ok)
        #expect(outcome.attempts == 3)
        #expect(outcome.kind == "webhook")
        #expect(backoff.recorded == [.milliseconds(10), .milliseconds(20)])
        let requests = server.requests
        #expect(requests.count == 3)
        for request in requests {
            #expect(request.method == "POST")
            #expect(request.path == "/hooks/secret-token?key=s3cret")
            #expect(request.body == event.json)
            #expect(request.headers["content-type"] == "application/json")
            #expect(request.headers["x-token"] == "abc")
            #expect(request.headers["expect"] == nil)
        }
    }

    @Test("a refused port: an error in words, retried, the URL's secret not shown")
    func connectRefused() async throws {
        let refusing = try RefusingPort()
        let backoff = BackoffRecorder()
        let runner = WebhookActionRunner(retry: backoff.policy(base: .milliseconds(5)))
        let url = "http://127.0.0.1:\(refusing.port)/hooks/secret-token"
        let action = ActionConfig(name: "notify", kind: .webhook(.to(url, method: "POST", body: nil, headers: [])),
                                  timeout: .seconds(5), retries: 1)
        let outcome = await runner.run(sampleEvent(), action: action)
        #expect(outcome.result == .error("connect refused (http://127.0.0.1:\(refusing.port))"))
        #expect(outcome.attempts == 2)
        #expect(!outcome.result.description.contains("secret"))
    }

    @Test("a non-2xx answer keeps the status and the first 512 bytes of the body")
    func failedStatus() async throws {
        let body = String(repeating: "overloaded ", count: 200) // 2200 bytes
        let server = try WebhookServer(statuses: [503], responseBody: body)
        defer { server.stop() }
        let runner = WebhookActionRunner(retry: BackoffRecorder().policy(base: .milliseconds(5)))
        let action = ActionConfig(name: "notify", kind: .webhook(.to(server.url, method: "POST", body: nil, headers: [])),
                                  retries: 1)
        let outcome = await runner.run(sampleEvent(), action: action)
        #expect(outcome.result == .failed(.httpStatus(503)))
        #expect(outcome.result.description == "HTTP 503")
        #expect(outcome.attempts == 2)
        let captured = try #require(outcome.output.responseBody)
        #expect(captured.capturedBytes == 512)
        #expect(captured.totalBytes == 2200)
        #expect(captured.truncated)
        #expect(captured.text == String(body.prefix(512)))
    }

    @Test("a server that never answers: timeout after the action's timeout")
    func timeout() async throws {
        let server = try WebhookServer(answers: [.hang])
        defer { server.stop() }
        let runner = WebhookActionRunner()
        let action = ActionConfig(name: "notify", kind: .webhook(.to(server.url, method: "POST", body: nil, headers: [])),
                                  timeout: .milliseconds(300))
        let outcome = await runner.run(sampleEvent(), action: action)
        #expect(outcome.result == .timedOut(after: .milliseconds(300)))
        #expect(outcome.result.description == "timeout after 300ms")
        #expect(outcome.duration < .seconds(20))
    }

    @Test("a configured body is a template, filled JSON-escaped, sent with the configured method and content type")
    func templateBody() async throws {
        let server = try WebhookServer(statuses: [204])
        defer { server.stop() }
        let runner = WebhookActionRunner()
        let literal = #"{"text":"failover $VITALS_GROUP {{group}}: {{reason}}"}"#
        let action = ActionConfig(name: "chat", kind: .webhook(.to(server.url, method: "put", body: literal,
            headers: [HTTPHeaderField(name: "content-type", value: "application/vnd.chat+json")])))
        let outcome = await runner.run(sampleEvent(), action: action)
        #expect(outcome.result == .ok)
        let request = try #require(server.requests.first)
        #expect(request.method == "PUT")
        #expect(String(decoding: request.body, as: UTF8.self)
            == #"{"text":"failover $VITALS_GROUP web: web-1 down (status 503); chose web-2"}"#)
        #expect(request.headers["content-type"] == "application/vnd.chat+json")
    }

    @Test("cancelling aborts the request")
    func cancelled() async throws {
        let server = try WebhookServer(answers: [.hang])
        defer { server.stop() }
        let runner = WebhookActionRunner()
        let action = ActionConfig(name: "notify", kind: .webhook(.to(server.url, method: "POST", body: nil, headers: [])),
                                  timeout: .seconds(60), retries: 2)
        let task = Task { await runner.run(sampleEvent(), action: action) }
        let deadline = ContinuousClock.now + .seconds(5)
        while server.requests.isEmpty && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
        #expect(!server.requests.isEmpty)
        task.cancel()
        let outcome = await task.value
        #expect(outcome.result == .cancelled)
        #expect(outcome.attempts == 1)
        #expect(outcome.duration < .seconds(10))
    }

    @Test("origins hide paths, queries and credentials", arguments: [
        ("https://hooks.example/services/T000/B000/XXXX", "https://hooks.example"),
        ("http://user:pw@127.0.0.1:8080/x?token=1", "http://127.0.0.1:8080"),
        ("http://[::1]:9/x", "http://[::1]:9"),
        ("not a url", "webhook URL"),
    ])
    func origin(url: String, expected: String) {
        #expect(WebhookRequest.origin(of: url) == expected)
    }
}
