import Foundation
import Testing
import VitalsCore
@testable import VitalsProbe
import VitalsSystem

/// One probe of `service` in `slot`, driving the prober's loop here.
private func probeSlot(_ service: ServiceConfig, slot: Int, prober: CurlMultiProber) -> ProbeResult? {
    var finished: [ProbeCompletion] = []
    prober.start(service, slot: slot)
    let deadline = MonotonicInstant.now() + service.timing.timeout + .seconds(2)
    while finished.isEmpty && MonotonicInstant.now() < deadline {
        prober.poll(timeout: .milliseconds(100), into: &finished)
    }
    #expect(finished.map(\.slot) == [slot])
    return finished.first?.result
}

@Suite("Pooled easy handles: no option carries over between services")
struct PooledHandleTests {
    @Test func headWithHeadersThenPlainGet() throws {
        let server = try TestHTTPServer()
        defer { server.stop() }
        let prober = CurlMultiProber()
        let head = httpService(server.url("/echo"), name: "head") {
            $0.method = "HEAD"
            $0.headers = [HTTPHeaderField(name: "X-Token", value: "s3cret")]
        }
        let get = httpService(server.url("/echo"), name: "get") { $0.bodyContains = "GET" }
        let post = httpService(server.url("/echo"), name: "post") {
            $0.method = "POST"
            $0.bodyContains = "POST"
        }
        var reasons: [String?] = []
        for _ in 0..<3 {
            reasons.append(probeSlot(head, slot: 0, prober: prober)?.reason)
            reasons.append(probeSlot(get, slot: 1, prober: prober)?.reason)
            reasons.append(probeSlot(post, slot: 2, prober: prober)?.reason)
        }
        #expect(reasons == Array(repeating: "", count: 9))
        let recorded = server.recorded
        #expect(recorded.map(\.method) == Array(repeating: ["HEAD", "GET", "POST"], count: 3).flatMap { $0 })
        for request in recorded {
            #expect((request.headers["x-token"] != nil) == (request.method == "HEAD"))
            #expect(request.headers["user-agent"] == "vitals")
        }
        // One handle served every probe, and one kept-alive connection too.
        #expect(prober.handleCount == 1)
        #expect(server.acceptedConnections == 1)
    }

    @Test func bodyLimitAndRedirectsDoNotCarryOver() throws {
        let server = try TestHTTPServer()
        defer { server.stop() }
        let prober = CurlMultiProber()
        let wide = httpService(server.url("/big?kb=100"), name: "wide") {
            $0.bodyContains = "end"
            $0.maxBodyBytes = 200_000
        }
        let narrow = httpService(server.url("/big?kb=100"), name: "narrow") { $0.bodyContains = "end" }
        let follow = httpService(server.url("/redirect"), name: "follow") {
            $0.followRedirects = true
            $0.bodyContains = "ok"
        }
        let stay = httpService(server.url("/redirect"), name: "stay")
        var reasons: [String?] = []
        for _ in 0..<2 {
            reasons.append(probeSlot(wide, slot: 0, prober: prober)?.reason)
            reasons.append(probeSlot(narrow, slot: 1, prober: prober)?.reason)
            reasons.append(probeSlot(follow, slot: 2, prober: prober)?.reason)
            reasons.append(probeSlot(stay, slot: 3, prober: prober)?.reason)
        }
        let round = ["", #"body lacks "end""#, "", "status 301, expected 200-299"]
        #expect(reasons == round + round)
        #expect(prober.handleCount == 1)
    }

    @Test func tcpConnectOnlyThenHTTPOnTheSameHandle() throws {
        let server = try TestHTTPServer()
        defer { server.stop() }
        let prober = CurlMultiProber()
        let tcp = tcpService(port: server.port)
        let http = httpService(server.url("/ok"), name: "web") { $0.bodyContains = "ok" }
        var outcomes: [ProbeOutcome?] = []
        for _ in 0..<3 {
            outcomes.append(probeSlot(tcp, slot: 0, prober: prober)?.outcome)
            outcomes.append(probeSlot(http, slot: 1, prober: prober)?.outcome)
        }
        #expect(outcomes == Array(repeating: .ok, count: 6))
        #expect(server.requestCount == 3) // the tcp probes sent nothing
        // Three fresh tcp connections plus one kept-alive HTTP connection.
        #expect(eventually { server.acceptedConnections == 4 })
        #expect(prober.handleCount == 1)
    }

    @Test func tlsVerifyOffThenOn() throws {
        let server = try TestTLSServer(days: 3)
        defer { server.stop() }
        let prober = CurlMultiProber()
        let lenient = httpService(server.url, name: "lenient", timeout: .seconds(2)) {
            $0.tlsVerify = false
            $0.certMinDays = 14
        }
        let strict = httpService(server.url, name: "strict", timeout: .seconds(2))
        var reasons: [String?] = []
        for _ in 0..<2 {
            reasons.append(probeSlot(lenient, slot: 0, prober: prober)?.reason)
            reasons.append(probeSlot(strict, slot: 1, prober: prober)?.reason)
        }
        let round = ["certificate expires in 2 days (minimum 14)",
                     "TLS: certificate verify failed: self-signed certificate"]
        #expect(reasons == round + round)
    }

    @Test func concurrentProbesGrowThePoolAndIdleHandlesAreBounded() throws {
        let server = try TestHTTPServer()
        defer { server.stop() }
        let prober = CurlMultiProber(configuration: .init(maxIdleHandles: 4))
        let services = (0..<10).map { httpService(server.url("/ok"), name: "web-\($0)") }
        for (slot, service) in services.enumerated() { prober.start(service, slot: slot) }
        #expect(prober.handleCount == 10)
        var finished: [ProbeCompletion] = []
        let deadline = MonotonicInstant.now() + .seconds(3)
        while finished.count < 10 && MonotonicInstant.now() < deadline {
            prober.poll(timeout: .milliseconds(100), into: &finished)
        }
        #expect(Set(finished.map(\.slot)) == Set(0..<10))
        #expect(finished.allSatisfy { $0.result.outcome == .ok })
        #expect(prober.handleCount == 4)
    }
}
