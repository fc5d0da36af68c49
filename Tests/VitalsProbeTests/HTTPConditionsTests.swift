import CCurl
import Foundation
import Testing
import VitalsCore
@testable import VitalsProbe

@Suite("HTTP conditions (pure)")
struct HTTPConditionsTests {
    let now = Date(timeIntervalSince1970: 1_800_000_000)

    func verdict(_ check: HTTPCheck, status: Int = 200, body: String = "ok",
                 latency: Duration = .milliseconds(10), expiry: Date? = nil) -> ProbeVerdict {
        HTTPConditions(check).evaluate(status: status, body: Array(body.utf8), latency: latency,
                                       certificateExpiry: expiry, now: now)
    }

    @Test func defaultAcceptsAny2xx() {
        #expect(verdict(HTTPCheck(url: "u")) == .ok)
        #expect(verdict(HTTPCheck(url: "u"), status: 204) == .ok)
    }

    @Test("status outside the ranges names every range",
          arguments: [
              ([StatusRange(200, 299)], 503, "status 503, expected 200-299"),
              ([StatusRange(200), StatusRange(300, 399)], 404, "status 404, expected 200, 300-399"),
              ([StatusRange(204)], 200, "status 200, expected 204"),
          ])
    func statusRanges(ranges: [StatusRange], status: Int, reason: String) {
        #expect(verdict(HTTPCheck(url: "u", status: ranges), status: status) == .failed(reason))
    }

    @Test func bodyContains() {
        let check = HTTPCheck(url: "u", bodyContains: "ok")
        #expect(verdict(check, body: "all ok here") == .ok)
        #expect(verdict(check, body: "nope") == .failed(#"body lacks "ok""#))
        #expect(verdict(check, body: "") == .failed(#"body lacks "ok""#))
        #expect(verdict(check, body: "o") == .failed(#"body lacks "ok""#))
        #expect(verdict(check, body: "ooook") == .ok)
    }

    @Test func bodyRegex() {
        let check = HTTPCheck(url: "u", bodyRegex: "^up [0-9]+$")
        #expect(verdict(check, body: "up 42") == .ok)
        #expect(verdict(check, body: "down 42") == .failed("body does not match /^up [0-9]+$/"))
    }

    @Test func jsonFields() {
        let body = #"{"status":"DOWN","checks":{"db":{"state":"ok"}},"count":3,"live":true,"items":[{"n":"a"}],"gone":null}"#
        func json(_ path: String, _ value: JSONScalar) -> ProbeVerdict {
            verdict(HTTPCheck(url: "u", json: [JSONExpectation(path: path, expected: value)]), body: body)
        }
        #expect(json("status", .string("UP")) == .failed(#"$.status is "DOWN", expected "UP""#))
        #expect(json("status", .string("DOWN")) == .ok)
        #expect(json("checks.db.state", .string("ok")) == .ok)
        #expect(json("checks.cache.state", .string("ok")) == .failed("$.checks.cache.state missing"))
        #expect(json("status.deeper", .string("x")) == .failed("$.status.deeper missing"))
        #expect(json("count", .number(3)) == .ok)
        #expect(json("count", .number(4)) == .failed("$.count is 3, expected 4"))
        #expect(json("count", .string("3")) == .failed(#"$.count is 3, expected "3""#))
        #expect(json("live", .bool(true)) == .ok)
        #expect(json("live", .number(1)) == .failed("$.live is true, expected 1"))
        #expect(json("items.0.n", .string("a")) == .ok)
        #expect(json("items.1.n", .string("a")) == .failed("$.items.1.n missing"))
        #expect(json("gone", .null) == .ok)
        #expect(json("checks", .string("UP")) == .failed(#"$.checks is an object, expected "UP""#))
        let check = HTTPCheck(url: "u", json: [JSONExpectation(path: "status", expected: .string("UP"))])
        #expect(verdict(check, body: "<html>") == .failed("body is not JSON"))
        #expect(verdict(check, body: #"{"status":"U"#) == .failed("body is not JSON"))
    }

    @Test func latency() {
        let hard = HTTPCheck(url: "u", maxLatency: .milliseconds(300))
        #expect(verdict(hard, latency: .milliseconds(300)) == .ok)
        #expect(verdict(hard, latency: .milliseconds(412)) == .failed("latency 412ms over limit 300ms"))
        let soft = HTTPCheck(url: "u", slowLatency: .milliseconds(100))
        #expect(verdict(soft, latency: .milliseconds(150)) == .degraded("slow: latency 150ms over 100ms"))
        let both = HTTPCheck(url: "u", maxLatency: .seconds(1), slowLatency: .milliseconds(100))
        #expect(verdict(both, latency: .milliseconds(1500)) == .failed("latency 1s500ms over limit 1s"))
        #expect(verdict(both, latency: .microseconds(150_900)) == .degraded("slow: latency 150ms over 100ms"))
    }

    @Test func certificateExpiry() {
        let check = HTTPCheck(url: "u", certMinDays: 14)
        let day: TimeInterval = 86_400
        #expect(verdict(check, expiry: now.addingTimeInterval(30 * day)) == .ok)
        #expect(verdict(check, expiry: now.addingTimeInterval(14 * day)) == .ok)
        #expect(verdict(check, expiry: now.addingTimeInterval(3.5 * day))
                == .degraded("certificate expires in 3 days (minimum 14)"))
        #expect(verdict(check, expiry: now.addingTimeInterval(1.2 * day))
                == .degraded("certificate expires in 1 day (minimum 14)"))
        #expect(verdict(check, expiry: now.addingTimeInterval(day - 1))
                == .degraded("certificate expires in less than a day (minimum 14)"))
        #expect(verdict(check, expiry: now.addingTimeInterval(-day))
                == .degraded("certificate expired (minimum 14 days)"))
        // Unknown expiry (plain HTTP): nothing to judge.
        #expect(verdict(check, expiry: nil) == .ok)
        // Without cert_min_days the expiry is not looked at.
        #expect(verdict(HTTPCheck(url: "u"), expiry: now) == .ok)
    }

    @Test func hardConditionsComeBeforeSoftOnes() {
        let check = HTTPCheck(url: "u", bodyContains: "ok", slowLatency: .milliseconds(1), certMinDays: 14)
        #expect(verdict(check, body: "bad", latency: .seconds(1), expiry: now) == .failed(#"body lacks "ok""#))
        #expect(verdict(check, status: 500, body: "bad") == .failed("status 500, expected 200-299"))
    }

    @Test func needsBodyOnlyForBodyConditions() {
        #expect(!HTTPConditions(HTTPCheck(url: "u")).needsBody)
        #expect(HTTPConditions(HTTPCheck(url: "u", bodyContains: "x")).needsBody)
        #expect(HTTPConditions(HTTPCheck(url: "u", bodyRegex: "x")).needsBody)
        #expect(HTTPConditions(HTTPCheck(url: "u", json: [.init(path: "a", expected: .null)])).needsBody)
    }
}

@Suite("Failure reasons (pure)")
struct FailureReasonTests {
    @Test func curlCodes() {
        let t = Duration.milliseconds(500)
        #expect(CurlFailure.reason(code: CURLE_COULDNT_CONNECT, osErrno: ECONNREFUSED, detail: "x", timeout: t) == "connect refused")
        #expect(CurlFailure.reason(code: CURLE_COULDNT_CONNECT, osErrno: EHOSTUNREACH, detail: "", timeout: t) == "cannot connect: No route to host")
        #expect(CurlFailure.reason(code: CURLE_OPERATION_TIMEDOUT, osErrno: 0, detail: "Operation timed out after 501 ms", timeout: t) == "timeout after 500ms")
        #expect(CurlFailure.reason(code: CURLE_COULDNT_RESOLVE_HOST, osErrno: 0, detail: "Could not resolve host: nope", timeout: t) == "cannot resolve host")
        #expect(CurlFailure.reason(code: CURLE_PEER_FAILED_VERIFICATION, osErrno: 0,
                                   detail: "SSL certificate problem: self-signed certificate", timeout: t)
                == "TLS: certificate verify failed: self-signed certificate")
        #expect(CurlFailure.reason(code: CURLE_PEER_FAILED_VERIFICATION, osErrno: 0, detail: "", timeout: t)
                == "TLS: certificate verify failed")
        #expect(CurlFailure.reason(code: CURLE_GOT_NOTHING, osErrno: 0, detail: "", timeout: t) == "empty reply")
        #expect(CurlFailure.reason(code: CURLE_RECV_ERROR, osErrno: 0, detail: "", timeout: t) == "connection closed mid-response")
        #expect(CurlFailure.reason(code: CURLE_PARTIAL_FILE, osErrno: 0, detail: "", timeout: t) == "connection closed mid-response")
        #expect(CurlFailure.reason(code: CURLE_TOO_MANY_REDIRECTS, osErrno: 0, detail: "Maximum (10) redirects followed", timeout: t)
                == "Number of redirects hit maximum amount: Maximum (10) redirects followed")
    }

    @Test func certificateDates() {
        let date = CertificateDates.parse("Nov  8 21:01:48 2026 GMT")
        #expect(date == Date(timeIntervalSince1970: 1_794_171_708))
        #expect(CertificateDates.parse("Feb 29 00:00:00 2028 GMT") == Date(timeIntervalSince1970: 1_835_395_200))
        #expect(CertificateDates.parse("garbage") == nil)
        let earliest = CertificateDates.earliestExpiry(in: [
            "Subject:CN = leaf", "Expire date:Dec 31 00:00:00 2030 GMT",
            "Expire date:Jan  1 00:00:00 2030 GMT", "Start date:Jan  1 00:00:00 2020 GMT",
        ])
        #expect(earliest == Date(timeIntervalSince1970: 1_893_456_000))
    }

    @Test("Nagios exit codes", arguments: [
        (Int32(0), "OK - fine | load=1", ProbeVerdict.ok),
        (1, "WARNING - disk 85% | disk=85", .degraded("WARNING - disk 85%")),
        (2, "CRITICAL - down\nmore detail", .failed("CRITICAL - down")),
        (3, "cannot reach agent", .unknown("cannot reach agent")),
        (3, "UNKNOWN: ? | tries=1", .unknown("UNKNOWN: ?")),
        (3, "", .unknown("exit status 3")),
        (4, "weird", .failed("weird")),
        (1, "", .degraded("exit status 1")),
        (2, "\n\n  \nlate line", .failed("late line")),
    ])
    func execExitCodes(code: Int32, output: String, expected: ProbeVerdict) {
        #expect(ExecVerdict.verdict(waitStatus: code << 8, output: Array(output.utf8)) == expected)
    }

    @Test func execSignals() {
        #expect(ExecVerdict.verdict(waitStatus: 9, output: []) == .failed("killed by signal 9"))
        #expect(ExecVerdict.verdict(waitStatus: 11 | 0x80, output: Array("segv\n".utf8)) == .failed("segv"))
    }
}
