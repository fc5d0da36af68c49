import Foundation
import Testing
import VitalsCore
@testable import VitalsProbe
import VitalsTestKit
import VitalsSystem

@Suite("HTTP probes against a local server")
struct HTTPProbeTests {
    @Test func okWithBody() throws {
        let server = try TestHTTPServer()
        defer { server.stop() }
        let result = probe(httpService(server.url("/ok")) { $0.bodyContains = "ok" })
        #expect(result.outcome == .ok)
        #expect(result.reason == "")
        #expect(result.latency != nil)
    }

    @Test func probeOnceProbesEveryServiceConcurrently() async throws {
        let server = try TestHTTPServer()
        defer { server.stop() }
        let refused = try LoopbackPort.unused()
        let services = [
            httpService(server.url("/ok"), name: "ok"),
            httpService(server.url("/503"), name: "unavailable"),
            httpService(server.url("/hang"), name: "hung", timeout: .milliseconds(300)),
            tcpService(port: refused, name: "closed"),
            ServiceConfig(name: "beat", check: .heartbeat(HeartbeatCheck(every: .seconds(10)))),
        ]
        let results = await ProbeScheduler.probeOnce(services: services)
        #expect(results.mapValues(\.reason) == [
            "ok": "",
            "unavailable": "status 503, expected 200-299",
            "hung": "timeout after 300ms",
            "closed": "connect refused",
        ])
    }

    @Test func serviceUnavailable() throws {
        let server = try TestHTTPServer()
        defer { server.stop() }
        let result = probe(httpService(server.url("/503")))
        #expect(result.outcome == .failed)
        #expect(result.reason == "status 503, expected 200-299")
    }

    @Test func bodyLacksText() throws {
        let server = try TestHTTPServer()
        defer { server.stop() }
        let result = probe(httpService(server.url("/text")) { $0.bodyContains = "ok" })
        #expect(result.outcome == .failed)
        #expect(result.reason == #"body lacks "ok""#)
    }

    @Test func bodyRegex() throws {
        let server = try TestHTTPServer()
        defer { server.stop() }
        let matching = probe(httpService(server.url("/text")) { $0.bodyRegex = "^hello w.rld$" })
        #expect(matching.outcome == .ok)
        let failing = probe(httpService(server.url("/text")) { $0.bodyRegex = "^ok" })
        #expect(failing.outcome == .failed)
        #expect(failing.reason == "body does not match /^ok/")
    }

    @Test func jsonFieldDiffers() throws {
        let server = try TestHTTPServer()
        defer { server.stop() }
        let expectUp = [JSONExpectation(path: "status", expected: .string("UP"))]
        let up = probe(httpService(server.url("/json/up")) { $0.json = expectUp })
        #expect(up.outcome == .ok)
        let down = probe(httpService(server.url("/json/down")) { $0.json = expectUp })
        #expect(down.outcome == .failed)
        #expect(down.reason == #"$.status is "DOWN", expected "UP""#)
    }

    @Test func jsonFieldMissing() throws {
        let server = try TestHTTPServer()
        defer { server.stop() }
        let result = probe(httpService(server.url("/json/partial")) {
            $0.json = [JSONExpectation(path: "checks.db.state", expected: .string("ok"))]
        })
        #expect(result.outcome == .failed)
        #expect(result.reason == "$.checks.db.state missing")
    }

    @Test func bodyIsNotJSON() throws {
        let server = try TestHTTPServer()
        defer { server.stop() }
        let result = probe(httpService(server.url("/text")) {
            $0.json = [JSONExpectation(path: "status", expected: .string("UP"))]
        })
        #expect(result.outcome == .failed)
        #expect(result.reason == "body is not JSON")
    }

    @Test func answersAfterTheTimeout() throws {
        let server = try TestHTTPServer()
        defer { server.stop() }
        let started = MonotonicInstant.now()
        let result = probe(httpService(server.url("/slow?ms=1500"), timeout: .milliseconds(300)))
        let elapsed = MonotonicInstant.now() - started
        #expect(result.outcome == .failed)
        #expect(result.reason == "timeout after 300ms")
        #expect(elapsed < .milliseconds(1200)) // the timeout bounds the probe, not the server
    }

    @Test func neverAnswers() throws {
        let server = try TestHTTPServer()
        defer { server.stop() }
        let result = probe(httpService(server.url("/hang"), timeout: .milliseconds(300)))
        #expect(result.outcome == .failed)
        #expect(result.reason == "timeout after 300ms")
    }

    @Test func closedMidResponse() throws {
        let server = try TestHTTPServer()
        defer { server.stop() }
        let result = probe(httpService(server.url("/truncated")))
        #expect(result.outcome == .failed)
        #expect(result.reason == "connection closed mid-response")
    }

    @Test func emptyReply() throws {
        let server = try TestHTTPServer()
        defer { server.stop() }
        let result = probe(httpService(server.url("/empty")))
        #expect(result.outcome == .failed)
        #expect(result.reason == "empty reply")
    }

    @Test func connectRefused() throws {
        let port = try LoopbackPort.unused()
        let result = probe(httpService("http://127.0.0.1:\(port)/health"))
        #expect(result.outcome == .failed)
        #expect(result.reason == "connect refused")
        #expect(result.latency == nil)
    }

    @Test func hardLatencyLimit() throws {
        let server = try TestHTTPServer()
        defer { server.stop() }
        let result = probe(httpService(server.url("/slow?ms=120"), timeout: .seconds(2)) {
            $0.maxLatency = .milliseconds(50)
        })
        #expect(result.outcome == .failed)
        let latency = try #require(result.latency)
        #expect(latency >= .milliseconds(120))
        #expect(result.reason == "latency \(DurationText.format(latency)) over limit 50ms")
    }

    @Test func softLatencyLimit() throws {
        let server = try TestHTTPServer()
        defer { server.stop() }
        let result = probe(httpService(server.url("/slow?ms=120"), timeout: .seconds(2)) {
            $0.slowLatency = .milliseconds(50)
            $0.maxLatency = .seconds(1)
        })
        #expect(result.outcome == .degraded)
        let latency = try #require(result.latency)
        #expect(result.reason == "slow: latency \(DurationText.format(latency)) over 50ms")
    }

    @Test func redirectsAreNotFollowedUnlessAsked() throws {
        let server = try TestHTTPServer()
        defer { server.stop() }
        let off = probe(httpService(server.url("/redirect")))
        #expect(off.outcome == .failed)
        #expect(off.reason == "status 301, expected 200-299")
        let on = probe(httpService(server.url("/redirect")) {
            $0.followRedirects = true
            $0.bodyContains = "ok"
        })
        #expect(on.outcome == .ok)
    }

    @Test func methodAndHeaders() throws {
        let server = try TestHTTPServer()
        defer { server.stop() }
        let post = probe(httpService(server.url("/method")) {
            $0.method = "POST"
            $0.bodyContains = "POST"
        })
        #expect(post.outcome == .ok)
        let head = probe(httpService(server.url("/method")) { $0.method = "HEAD" })
        #expect(head.outcome == .ok)
        let anonymous = probe(httpService(server.url("/auth")))
        #expect(anonymous.reason == "status 401, expected 200-299")
        let authorized = probe(httpService(server.url("/auth")) {
            $0.headers = [HTTPHeaderField(name: "X-Token", value: "s3cret")]
        })
        #expect(authorized.outcome == .ok)
    }

    @Test func bodyIsReadOnlyUpToTheLimit() throws {
        let server = try TestHTTPServer()
        defer { server.stop() }
        // "start" + 100 KiB + "end": the end lies past a 64 KiB limit.
        let head = probe(httpService(server.url("/big?kb=100")) { $0.bodyContains = "start" })
        #expect(head.outcome == .ok)
        let tail = probe(httpService(server.url("/big?kb=100")) { $0.bodyContains = "end" })
        #expect(tail.outcome == .failed)
        #expect(tail.reason == #"body lacks "end""#)
        let wider = probe(httpService(server.url("/big?kb=100")) {
            $0.bodyContains = "end"
            $0.maxBodyBytes = 200_000
        })
        #expect(wider.outcome == .ok)
    }

    @Test func keepAliveReusesOneConnection() throws {
        let server = try TestHTTPServer()
        defer { server.stop() }
        let prober = CurlMultiProber()
        let results = probeRepeatedly(httpService(server.url("/ok")), times: 5, prober: prober)
        #expect(results.map(\.outcome) == Array(repeating: .ok, count: 5))
        #expect(server.requestCount == 5)
        #expect(server.acceptedConnections == 1)
    }

    @Test func aChangedCheckRebuildsTheHandle() throws {
        let server = try TestHTTPServer()
        defer { server.stop() }
        let prober = CurlMultiProber()
        let first = probeRepeatedly(httpService(server.url("/ok")), times: 1, prober: prober)
        let second = probeRepeatedly(httpService(server.url("/503")), times: 1, prober: prober)
        #expect(first.map(\.outcome) == [.ok])
        #expect(second.map(\.reason) == ["status 503, expected 200-299"])
    }

    @Test func aSlowEndpointDelaysNobody() throws {
        let server = try TestHTTPServer()
        defer { server.stop() }
        var services = [httpService(server.url("/hang"), name: "hung", timeout: .seconds(3))]
        for i in 0..<20 { services.append(httpService(server.url("/ok"), name: "fast-\(i)")) }
        let prober = CurlMultiProber()
        for (slot, service) in services.enumerated() { prober.start(service, slot: slot) }
        var finished: [ProbeCompletion] = []
        let started = MonotonicInstant.now()
        while finished.count < 20 && MonotonicInstant.now() - started < .seconds(2) {
            prober.poll(timeout: .milliseconds(100), into: &finished)
        }
        #expect(finished.count == 20)
        #expect(finished.allSatisfy { $0.slot != 0 && $0.result.outcome == .ok })
        #expect(MonotonicInstant.now() - started < .seconds(1))
        prober.cancel(slot: 0, forget: true)
    }
}
