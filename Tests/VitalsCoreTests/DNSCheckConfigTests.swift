import Foundation
import Testing
@testable import VitalsCore

/// `dns:` in the config, and the values it compares: addresses, names,
/// expected records.
@Suite struct DNSCheckConfigTests {
    private func check(_ yaml: String) throws -> DNSCheck {
        let config = try ConfigLoader.load(yaml: "services:\n  svc: \(yaml)\n")
        guard case .dns(let dns) = config.services[0].check else {
            Issue.record("not a dns check: \(config.services[0].check)")
            return DNSCheck(name: "")
        }
        return dns
    }

    @Test func defaultsAreTypeANoErrorAndTheSystemsServers() throws {
        let dns = try check("{ dns: { name: www.example.com } }")
        #expect(dns == DNSCheck(name: "www.example.com", type: .a, server: nil, expect: [], rcode: .noError))
        #expect(dns.target == "www.example.com A")
    }

    @Test func readsEveryKeyAndNormalisesTheValues() throws {
        let dns = try check(#"{ dns: { name: Example.COM., type: mx, server: "[2001:DB8:0::2]:5353", "#
            + #"expect: [mail.example.com, 20 Backup.Example.com., mail.example.com], rcode: noerror } }"#)
        #expect(dns.type == .mx)
        #expect(dns.server == DNSServer(host: "2001:db8::2", port: 5353))
        // A value written twice is kept once; names lose case and the trailing dot.
        #expect(dns.expect == [DNSRecordValue(type: .mx, fields: ["mail.example.com"]),
                               DNSRecordValue(type: .mx, fields: ["20", "backup.example.com"])])
        #expect(dns.target == "Example.COM. MX @[2001:db8::2]:5353")
    }

    @Test func aSingleExpectedValueNeedsNoList() throws {
        let dns = try check(#"{ dns: { name: www.example.com, type: AAAA, server: 10.0.0.2, expect: "2001:0DB8:0:0:0:0:0:7" } }"#)
        #expect(dns.expect == [DNSRecordValue(type: .aaaa, fields: ["2001:db8::7"])])
        #expect(dns.server == DNSServer(host: "10.0.0.2", port: 53))
    }

    @Test func txtKeepsItsTextAsWritten() throws {
        let dns = try check(#"{ dns: { name: example.com, type: TXT, expect: ["v=spf1 MX -all", ""] } }"#)
        #expect(dns.expect.map(\.fields) == [["v=spf1 MX -all"], [""]])
    }

    @Test func theServiceAddressIsTheServer() throws {
        let config = try ConfigLoader.load(yaml: """
        services:
          a: { dns: { name: www.example.com, server: "10.0.0.2:5353" } }
          b: { dns: { name: www.example.com } }
        """)
        #expect(config.services[0].address == ListenAddress(host: "10.0.0.2", port: 5353))
        #expect(config.services[1].address == nil)
        #expect(config.services[0].check.kind == "dns")
    }

    @Test func aReloadKeepsStateWhenOnlyTheExpectationChanges() {
        let before = Check.dns(DNSCheck(name: "www.example.com", server: DNSServer(host: "10.0.0.2"),
                                        expect: [DNSRecordValue(type: .a, fields: ["10.0.0.7"])]))
        let after = Check.dns(DNSCheck(name: "WWW.example.com.", server: DNSServer(host: "10.0.0.2")))
        let elsewhere = Check.dns(DNSCheck(name: "www.example.com", server: DNSServer(host: "10.0.0.3")))
        let otherType = Check.dns(DNSCheck(name: "www.example.com", type: .aaaa, server: DNSServer(host: "10.0.0.2")))
        #expect(before.probeTarget == after.probeTarget)
        #expect(before.probeTarget != elsewhere.probeTarget)
        #expect(before.probeTarget != otherType.probeTarget)
    }

    /// The example file documents `dns:` commented out; uncommented, it loads as documented.
    @Test func theExampleDNSServiceLoadsWhenUncommented() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("etc/vitals.yaml")
        let lines = try String(contentsOf: url, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false)
        let start = try #require(lines.firstIndex { $0.hasPrefix("  # www-dns:") })
        let block = lines[start...].prefix { $0.hasPrefix("  # ") }.map { "  " + $0.dropFirst(4) }
        let config = try ConfigLoader.load(yaml: "services:\n" + block.joined(separator: "\n"))
        let service = try #require(config.service(named: "www-dns"))
        #expect(service.check == .dns(DNSCheck(name: "www.example.com", type: .a, server: DNSServer(host: "10.0.0.2"),
                                               expect: [DNSRecordValue(type: .a, fields: ["10.0.0.7"]),
                                                        DNSRecordValue(type: .a, fields: ["10.0.0.8"])],
                                               rcode: .noError)))
    }

    // MARK: values

    @Test(arguments: [
        (DNSRecordType.a, "10.0.0.7", ["10.0.0.7"]),
        (.a, "010.0.0.7", nil),
        (.a, "10.0.0", nil),
        (.aaaa, "2001:db8::7", ["2001:db8::7"]),
        (.aaaa, "::ffff:10.0.0.7", ["::ffff:10.0.0.7"]),
        (.aaaa, "10.0.0.7", nil),
        (.cname, "Web.Example.com.", ["web.example.com"]),
        (.cname, "two words", nil),
        (.ns, "ns1.example.com", ["ns1.example.com"]),
        (.mx, "10 mail.example.com", ["10", "mail.example.com"]),
        (.mx, "mail.example.com", ["mail.example.com"]),
        (.mx, "70000 mail.example.com", nil),
        (.srv, "10 5 5060 sip.example.com", ["10", "5", "5060", "sip.example.com"]),
        (.srv, "sip.example.com", ["sip.example.com"]),
        (.srv, "10 5 sip.example.com", nil),
        (.soa, "ns1.example.com. hostmaster.example.com. 2024010101 3600 600 86400 60",
         ["ns1.example.com", "hostmaster.example.com", "2024010101", "3600", "600", "86400", "60"]),
        (.soa, "ns1.example.com", ["ns1.example.com"]),
        (.txt, " spaces  kept ", [" spaces  kept "]),
    ] as [(DNSRecordType, String, [String]?)])
    func parsesExpectedValues(type: DNSRecordType, text: String, fields: [String]?) {
        #expect(DNSRecordValue.parse(text, type: type)?.fields == fields)
    }

    @Test func aNameAloneMatchesAnyOtherFields() {
        let answered = DNSRecordValue(type: .mx, fields: ["10", "mail.example.com"])
        #expect(DNSRecordValue(type: .mx, fields: ["mail.example.com"]).isSatisfied(by: answered))
        #expect(DNSRecordValue(type: .mx, fields: ["10", "mail.example.com"]).isSatisfied(by: answered))
        #expect(!DNSRecordValue(type: .mx, fields: ["20", "mail.example.com"]).isSatisfied(by: answered))
        #expect(!DNSRecordValue(type: .mx, fields: ["backup.example.com"]).isSatisfied(by: answered))
        let srv = DNSRecordValue(type: .srv, fields: ["10", "5", "5060", "sip.example.com"])
        #expect(DNSRecordValue(type: .srv, fields: ["sip.example.com"]).isSatisfied(by: srv))
        #expect(!DNSRecordValue(type: .srv, fields: ["10", "5", "5061", "sip.example.com"]).isSatisfied(by: srv))
    }

    @Test func showsValuesAsDigDoes() {
        #expect("\(DNSRecordValue(type: .mx, fields: ["10", "mail.example.com"]))" == "10 mail.example.com")
        #expect("\(DNSRecordValue(type: .txt, fields: ["v=spf1 \"x\" -all"]))" == #""v=spf1 \"x\" -all""#)
    }

    @Test(arguments: [
        ("::", "::"), ("::1", "::1"), ("2001:DB8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),
        ("2001:db8:0:0:0:0:2:1", "2001:db8::2:1"), ("2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"),
        ("fe80::1:2", "fe80::1:2"), ("0:0:0:0:0:ffff:a00:7", "::ffff:10.0.0.7"), ("1::", "1::"),
    ])
    func formatsIPv6AsRFC5952(text: String, canonical: String) throws {
        let bytes = try #require(IPAddressText.ipv6(text))
        #expect(IPAddressText.format(ipv6: bytes) == canonical)
    }

    @Test(arguments: ["", ":", ":::", "1:2:3:4:5:6:7:8:9", "1::2::3", "12345::", "g::1", "1:2:3:4:5:6:7", "::1.2.3"])
    func refusesMalformedIPv6(text: String) {
        #expect(IPAddressText.ipv6(text) == nil)
    }

    @Test(arguments: [
        ("10.0.0.2", DNSServer(host: "10.0.0.2", port: 53)), ("10.0.0.2:5353", DNSServer(host: "10.0.0.2", port: 5353)),
        ("::1", DNSServer(host: "::1", port: 53)), ("[::1]:5353", DNSServer(host: "::1", port: 5353)),
    ])
    func parsesServers(text: String, server: DNSServer) {
        #expect(DNSServer.parse(text) == server)
    }

    @Test(arguments: ["ns1.example.com", "10.0.0.2:0", "10.0.0.2:", "[::1]", "::1:5353x", "[10.0.0.2]:53"])
    func refusesServersThatAreNotAnAddress(text: String) {
        #expect(DNSServer.parse(text) == nil)
    }

    @Test func responseCodesByName() {
        #expect(DNSResponseCode(name: "nxdomain") == .nxDomain)
        #expect(DNSResponseCode(name: "NOTZONE")?.code == 10)
        #expect(DNSResponseCode(name: "GONE") == nil)
        #expect("\(DNSResponseCode(code: 12))" == "RCODE12")
    }

    @Test func domainNames() {
        #expect(DNSName.isValid("_sip._tcp.example.com"))
        #expect(DNSName.isValid("example.com."))
        #expect(DNSName.isValid("."))
        #expect(!DNSName.isValid("a..b"))
        #expect(!DNSName.isValid(String(repeating: "a", count: 64) + ".com"))
        #expect(!DNSName.isValid("bad name"))
    }
}
