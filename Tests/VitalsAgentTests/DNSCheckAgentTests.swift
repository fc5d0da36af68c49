import Foundation
import Testing
import VitalsCore
@testable import VitalsAgent

/// What the agent says about dns checks: `explain`'s rule, the status
/// target, and the class `/metrics` counts their failures under.
@Suite struct DNSCheckAgentTests {
    private func check(_ name: String = "www.example.com", type: DNSRecordType = .a, server: DNSServer? = nil,
                       expect: [String] = [], rcode: DNSResponseCode = .noError) -> Check {
        .dns(DNSCheck(name: name, type: type, server: server,
                      expect: expect.map { DNSRecordValue.parse($0, type: type)! }, rcode: rcode))
    }

    @Test func explainSaysWhatTheAnswerMustHold() {
        let server = DNSServer(host: "10.0.0.2", port: 53)
        #expect(StatusView.checkRule(check(server: server, expect: ["10.0.0.7"]), timeout: .milliseconds(500))
            == "ask 10.0.0.2:53 for www.example.com A (UDP, TCP when truncated); the answer must have rcode NOERROR "
            + "and include 10.0.0.7 (other records may be there too), all within 500ms")
        #expect(StatusView.checkRule(check(server: server, expect: ["10.0.0.7", "10.0.0.8"]), timeout: .seconds(1))
            == "ask 10.0.0.2:53 for www.example.com A (UDP, TCP when truncated); the answer must have rcode NOERROR "
            + "and include 10.0.0.7 and 10.0.0.8 (in any order; other records may be there too), all within 1s")
        #expect(StatusView.checkRule(check("example.com", type: .mx, expect: ["mail.example.com", "20 backup.example.com"]),
                                     timeout: .seconds(1))
            == "ask the system's DNS servers (/etc/resolv.conf) for example.com MX (UDP, TCP when truncated); the answer "
            + "must have rcode NOERROR and include mail.example.com (any preference) and 20 backup.example.com "
            + "(in any order; other records may be there too), all within 1s")
        #expect(StatusView.checkRule(check(server: server), timeout: .seconds(1))
            == "ask 10.0.0.2:53 for www.example.com A (UDP, TCP when truncated); the answer must have rcode NOERROR "
            + "and at least one A record, all within 1s")
        #expect(StatusView.checkRule(check("old.example.com", server: server, rcode: .nxDomain), timeout: .seconds(1))
            == "ask 10.0.0.2:53 for old.example.com A (UDP, TCP when truncated); the answer must have rcode NXDOMAIN, "
            + "all within 1s")
    }

    @Test func statusNamesTheQuestionAndTheServer() throws {
        let service = ServiceConfig(name: "www-dns", check: check(server: DNSServer(host: "::1", port: 5353)))
        let document = StatusView.explain(service, ServiceHealth(service: service, startedAt: Date()), nil)
        #expect(document.service.kind == "dns")
        #expect(document.service.target == "www.example.com A @[::1]:5353")
        #expect(document.rules.check == StatusView.checkRule(service.check, timeout: service.timing.timeout))
    }

    @Test(arguments: [
        ("rcode NXDOMAIN, expected NOERROR", ProbeFailureClass.dns),
        ("rcode NOERROR, expected NXDOMAIN", .dns),
        ("A 10.0.0.7, expected 10.0.0.8", .dns),
        ("AAAA 2001:db8::7, expected 2001:db8::8", .dns),
        (#"TXT "timeout after TLS certificate", expected "v=spf1 -all""#, .dns),
        ("MX 10 mail.example.com, expected 20 backup.example.com", .dns),
        ("no A records for www.example.com", .dns),
        ("no MX records, expected mail.example.com", .dns),
        ("malformed DNS answer from 10.0.0.2:53: Misformatted DNS reply", .dns),
        ("DNS query failed: Out of memory", .dns),
        ("timeout after 500ms: no answer from 10.0.0.2:53", .timeout),
        ("cannot connect to DNS server 10.0.0.2:53: refused or unreachable", .connect),
        ("status 503, expected 200-299", .status),
    ])
    func classifiesDNSReasons(reason: String, expected: ProbeFailureClass) {
        #expect(ProbeFailureClass.classify(reason) == expected)
    }
}
