import Foundation
import Testing
import VitalsCore
@testable import VitalsProbe
import VitalsSystem
import VitalsTestKit

func dnsService(_ name: String, type: DNSRecordType = .a, port: UInt16, expect: [String] = [],
                rcode: DNSResponseCode = .noError, service: String = "dns",
                timeout: Duration = .seconds(2)) -> ServiceConfig {
    ServiceConfig(name: service,
                  check: .dns(DNSCheck(name: name, type: type, server: DNSServer(host: "127.0.0.1", port: port),
                                       expect: expect.map { DNSRecordValue.parse($0, type: type)! }, rcode: rcode)),
                  timing: ProbeTiming(timeout: timeout))
}

typealias Entry = TestDNSServer.Entry

@Suite("dns checks against a dnslib server of the test's own",
       .enabled(if: TestDNSServer.available, "needs python3-dnslib: scripts/install-deps.sh test installs it"))
struct DNSLibProbeTests {
    static let zone: [String: Entry] = [
        "www.vitals.test": Entry(a: ["10.0.0.7", "10.0.0.8"], aaaa: ["2001:db8::7"]),
        "alias.vitals.test": Entry(cname: ["www.vitals.test"]),
        "vitals.test": Entry(mx: [(10, "mail.vitals.test"), (20, "backup.vitals.test")],
                             txt: [["v=spf1 ", "mx -all"]], ns: ["ns1.vitals.test"],
                             soa: ("ns1.vitals.test", "hostmaster.vitals.test", 2026120201, 3600, 600, 86400, 60)),
        "_sip._udp.vitals.test": Entry(srv: [(10, 5, 5060, "sip.vitals.test")]),
        "refused.vitals.test": Entry(rcode: "REFUSED"),
        "broken.vitals.test": Entry(rcode: "SERVFAIL"),
        "silent.vitals.test": Entry(silent: true),
        "big.vitals.test": Entry(txt: [[String(repeating: "a", count: 200), String(repeating: "b", count: 200),
                                        String(repeating: "c", count: 200)]]),
        "tc.vitals.test": Entry(a: ["10.0.0.9"], truncateOverUDP: true),
    ]

    @Test func eachTypeIsAnsweredAndMatched() throws {
        let server = try TestDNSServer(zone: Self.zone)
        defer { server.stop() }
        let cases: [(String, DNSRecordType, [String])] = [
            ("www.vitals.test", .a, ["10.0.0.8", "10.0.0.7"]),
            ("www.vitals.test", .aaaa, ["2001:DB8:0::7"]),
            ("alias.vitals.test", .cname, ["WWW.vitals.test."]),
            ("vitals.test", .mx, ["backup.vitals.test", "10 mail.vitals.test"]),
            ("vitals.test", .txt, ["v=spf1 mx -all"]),
            ("vitals.test", .ns, ["ns1.vitals.test"]),
            ("vitals.test", .soa, ["ns1.vitals.test hostmaster.vitals.test 2026120201 3600 600 86400 60"]),
            ("_sip._udp.vitals.test", .srv, ["10 5 5060 sip.vitals.test"]),
        ]
        for (name, type, expect) in cases {
            let result = probe(dnsService(name, type: type, port: server.port, expect: expect))
            #expect(result.outcome == .ok, "\(type) \(name): \(result.reason)")
            #expect(result.latency != nil)
        }
    }

    @Test func aWrongAnswerNamesWhatWasAnswered() throws {
        let server = try TestDNSServer(zone: Self.zone)
        defer { server.stop() }
        let result = probe(dnsService("www.vitals.test", port: server.port, expect: ["10.0.0.9"]))
        #expect(result.outcome == .failed)
        // dnslib answers in zone order.
        #expect(result.reason == "A 10.0.0.7, 10.0.0.8, expected 10.0.0.9")
        let mx = probe(dnsService("vitals.test", type: .mx, port: server.port, expect: ["30 mail.vitals.test"]))
        #expect(mx.reason == "MX 10 mail.vitals.test, 20 backup.vitals.test, expected 30 mail.vitals.test")
    }

    @Test func aChangedAnswerIsSeenByTheNextProbe() throws {
        let server = try TestDNSServer(zone: Self.zone)
        defer { server.stop() }
        let prober = CurlMultiProber()
        let service = dnsService("www.vitals.test", port: server.port, expect: ["10.0.0.7"])
        #expect(probeRepeatedly(service, times: 1, prober: prober).map(\.outcome) == [.ok])

        var moved = Self.zone
        moved["www.vitals.test"] = Entry(a: ["10.0.0.8"])
        try server.setZone(moved)
        let after = probeRepeatedly(service, times: 1, prober: prober)
        #expect(after.map(\.reason) == ["A 10.0.0.8, expected 10.0.0.7"])

        try server.setZone(Self.zone)
        #expect(probeRepeatedly(service, times: 1, prober: prober).map(\.outcome) == [.ok])
    }

    @Test func refusalsAndMissingNamesFailWithTheirCode() throws {
        let server = try TestDNSServer(zone: Self.zone)
        defer { server.stop() }
        #expect(probe(dnsService("refused.vitals.test", port: server.port)).reason == "rcode REFUSED, expected NOERROR")
        #expect(probe(dnsService("broken.vitals.test", port: server.port)).reason == "rcode SERVFAIL, expected NOERROR")
        #expect(probe(dnsService("nowhere.vitals.test", port: server.port, expect: ["10.0.0.7"])).reason
            == "rcode NXDOMAIN, expected NOERROR")
        // A REFUSED is the server's answer: asked once, not again (NOCHECKRESP).
        #expect(server.waitForQueries(3).filter { $0.hasSuffix("refused.vitals.test") }.count == 1)
    }

    @Test func anExpectedNXDOMAINIsUp() throws {
        let server = try TestDNSServer(zone: Self.zone)
        defer { server.stop() }
        #expect(probe(dnsService("nowhere.vitals.test", port: server.port, rcode: .nxDomain)).outcome == .ok)
        #expect(probe(dnsService("www.vitals.test", port: server.port, rcode: .nxDomain)).reason
            == "rcode NOERROR, expected NXDOMAIN")
    }

    @Test func noRecordsOfTheTypeIsAFailure() throws {
        let server = try TestDNSServer(zone: Self.zone)
        defer { server.stop() }
        #expect(probe(dnsService("www.vitals.test", type: .mx, port: server.port)).reason == "no MX records for www.vitals.test")
    }

    @Test func aServerThatNeverAnswersTimesOut() throws {
        let server = try TestDNSServer(zone: Self.zone)
        defer { server.stop() }
        let started = MonotonicInstant.now()
        let result = probe(dnsService("silent.vitals.test", port: server.port, timeout: .milliseconds(600)))
        let elapsed = MonotonicInstant.now() - started
        #expect(result.outcome == .failed)
        #expect(result.reason == "timeout after 600ms: no answer from 127.0.0.1:\(server.port)")
        #expect(result.latency == nil)
        #expect(elapsed >= .milliseconds(550) && elapsed < .seconds(2), "\(elapsed)")
        // c-ares sent it again within the timeout (two tries).
        #expect(server.waitForQueries(2).filter { $0 == "udp A silent.vitals.test" }.count == 2)
    }

    @Test func aTruncatedAnswerIsAskedAgainOverTCP() throws {
        let server = try TestDNSServer(zone: Self.zone)
        defer { server.stop() }
        let forced = probe(dnsService("tc.vitals.test", port: server.port, expect: ["10.0.0.9"]))
        #expect(forced.outcome == .ok, "\(forced.reason)")
        #expect(server.waitForQueries(2) == ["udp A tc.vitals.test", "tcp A tc.vitals.test"])

        let text = String(repeating: "a", count: 200) + String(repeating: "b", count: 200) + String(repeating: "c", count: 200)
        let big = probe(dnsService("big.vitals.test", type: .txt, port: server.port, expect: [text]))
        #expect(big.outcome == .ok, "\(big.reason)")
        #expect(server.waitForQueries(4).suffix(2) == ["udp TXT big.vitals.test", "tcp TXT big.vitals.test"])
    }

    @Test func dnsHttpAndTcpProbesShareTheLoop() throws {
        let server = try TestDNSServer(zone: Self.zone)
        defer { server.stop() }
        let listener = try TestTCPServer(banner: [])
        defer { listener.stop() }
        let services = [
            dnsService("www.vitals.test", port: server.port, expect: ["10.0.0.7"], service: "dns-1"),
            dnsService("vitals.test", type: .mx, port: server.port, expect: ["mail.vitals.test"], service: "dns-2"),
            dnsService("silent.vitals.test", port: server.port, service: "dns-3", timeout: .milliseconds(400)),
            tcpService(port: listener.port),
        ]
        let results = ProbeScheduler.probeOnceBlocking(services: services, prober: CurlMultiProber())
        #expect(results["dns-1"]?.outcome == .ok)
        #expect(results["dns-2"]?.outcome == .ok)
        #expect(results["dns-3"]?.reason == "timeout after 400ms: no answer from 127.0.0.1:\(server.port)")
        #expect(results["tcp"]?.outcome == .ok)
    }

    @Test func aCancelledProbeReportsNothingAndTheSlotProbesAgain() throws {
        let server = try TestDNSServer(zone: Self.zone)
        defer { server.stop() }
        let prober = CurlMultiProber()
        let silent = dnsService("silent.vitals.test", port: server.port, timeout: .seconds(5))
        prober.start(silent, slot: 0)
        var finished: [ProbeCompletion] = []
        prober.poll(timeout: .milliseconds(50), into: &finished)
        prober.cancel(slot: 0, forget: true)
        prober.poll(timeout: .milliseconds(50), into: &finished)
        #expect(finished.isEmpty)
        let answered = dnsService("www.vitals.test", port: server.port, expect: ["10.0.0.7"])
        #expect(probeRepeatedly(answered, times: 2, prober: prober).map(\.outcome) == [.ok, .ok])
    }
}

@Suite("dns checks with no server of their own")
struct DNSUnansweredProbeTests {
    @Test func aPortWhereNothingListensIsUnreachable() throws {
        // A UDP port nobody has bound: the kernel answers port unreachable.
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                _ = bind(fd, $0, length)
                _ = getsockname(fd, $0, &length)
            }
        }
        let port = UInt16(bigEndian: address.sin_port)
        close(fd)
        let started = MonotonicInstant.now()
        let result = probe(dnsService("www.vitals.test", port: port, timeout: .seconds(3)))
        #expect(result.reason == "cannot connect to DNS server 127.0.0.1:\(port): refused or unreachable")
        // Decided by the refusal, not the timeout.
        #expect(MonotonicInstant.now() - started < .seconds(2))
    }

    @Test func aSocketThatNeverReadsTimesOut() throws {
        // Bound and never read: the query is queued and never answered.
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                _ = bind(fd, $0, length)
                _ = getsockname(fd, $0, &length)
            }
        }
        let port = UInt16(bigEndian: address.sin_port)
        let result = probe(dnsService("www.vitals.test", port: port, timeout: .milliseconds(300)))
        #expect(result.reason == "timeout after 300ms: no answer from 127.0.0.1:\(port)")
    }
}

@Suite("dns checks against dnsmasq",
       .enabled(if: TestDnsmasq.available, "needs dnsmasq: scripts/install-deps.sh test installs dnsmasq-base"))
struct DnsmasqProbeTests {
    static let parts = [String(repeating: "a", count: 200), String(repeating: "b", count: 200),
                        String(repeating: "c", count: 200)]

    static func start() throws -> TestDnsmasq {
        try TestDnsmasq(records: [
            "--address=/www.vitals.test/10.0.0.7",
            "--mx-host=vitals.test,mail.vitals.test,10",
            "--txt-record=big.vitals.test," + parts.joined(separator: ","),
        ])
    }

    @Test func answersItsRecords() throws {
        let dnsmasq = try Self.start()
        defer { dnsmasq.stop() }
        #expect(probe(dnsService("www.vitals.test", port: dnsmasq.port, expect: ["10.0.0.7"])).outcome == .ok)
        #expect(probe(dnsService("vitals.test", type: .mx, port: dnsmasq.port, expect: ["10 mail.vitals.test"])).outcome == .ok)
        #expect(probe(dnsService("www.vitals.test", port: dnsmasq.port, expect: ["10.0.0.8"])).reason
            == "A 10.0.0.7, expected 10.0.0.8")
    }

    @Test func manyQueriesAreInFlightAtOnceOnOneLoop() throws {
        let dnsmasq = try Self.start()
        defer { dnsmasq.stop() }
        let services = (0..<100).map { index in
            index.isMultiple(of: 2)
                ? dnsService("www.vitals.test", port: dnsmasq.port, expect: ["10.0.0.7"], service: "a-\(index)")
                : dnsService("vitals.test", type: .mx, port: dnsmasq.port, expect: ["mail.vitals.test"], service: "mx-\(index)")
        }
        let results = ProbeScheduler.probeOnceBlocking(services: services, prober: CurlMultiProber())
        #expect(results.count == 100)
        #expect(results.values.filter { $0.outcome != .ok }.map(\.reason) == [])
    }

    @Test func refusesNamesItDoesNotServe() throws {
        let dnsmasq = try Self.start()
        defer { dnsmasq.stop() }
        // No upstream (--no-resolv): dnsmasq refuses what it cannot answer.
        #expect(probe(dnsService("elsewhere.example", port: dnsmasq.port)).reason == "rcode REFUSED, expected NOERROR")
    }

    @Test func aTXTRecordOver512BytesComesOverTCP() throws {
        let dnsmasq = try Self.start()
        defer { dnsmasq.stop() }
        // Over UDP without EDNS dnsmasq answers this truncated, with no records:
        // the whole text can only have come over TCP.
        let result = probe(dnsService("big.vitals.test", type: .txt, port: dnsmasq.port,
                                      expect: [Self.parts.joined()]))
        #expect(result.outcome == .ok, "\(result.reason)")
    }
}
