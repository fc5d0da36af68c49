import Foundation
import Testing
@testable import VitalsCore

@Suite struct ByteEscapesTests {
    @Test(arguments: [
        (#"PING\r\n"#, Array("PING\r\n".utf8)),
        (#"\x00\x01\xff\xFF"#, [0x00, 0x01, 0xFF, 0xFF]),
        (#"a\\b"#, [0x61, 0x5C, 0x62]),
        (#"\0\t\""#, [0x00, 0x09, 0x22]),
        ("é", [0xC3, 0xA9]),
        ("+PONG", Array("+PONG".utf8)),
    ] as [(String, [UInt8])])
    func decodes(_ text: String, _ bytes: [UInt8]) throws {
        #expect(try ByteEscapes.decode(text) == bytes)
    }

    @Test(arguments: [
        (#"PING\q"#, ByteEscapes.Problem.unknownEscape("q")),
        (#"\x4"#, .badHexEscape("4")),
        (#"\xg0"#, .badHexEscape("g0")),
        (#"\x4\n"#, .badHexEscape("4")),
        (#"PING\"#, .trailingBackslash),
    ])
    func refuses(_ text: String, _ problem: ByteEscapes.Problem) {
        #expect(throws: problem) { try ByteEscapes.decode(text) }
    }

    @Test func problemsSayWhatToWrite() {
        #expect(ByteEscapes.Problem.unknownEscape("q").description
            == #"unknown escape "\q"; use \xHH, \r, \n, \t, \0, \" or \\"#)
    }

    @Test func quotedShowsEveryByte() {
        #expect(ByteEscapes.quoted(Array("-ERR x\r\n".utf8)) == #""-ERR x\r\n""#)
        #expect(ByteEscapes.quoted([0x00, 0x7F, 0xFF, 0x22, 0x5C, 0x09]) == #""\x00\x7f\xff\"\\\t""#)
        #expect(ByteEscapes.quoted([UInt8]()) == #""""#)
    }

    @Test func quotedCutsLongTextAndSaysHowLongItWas() {
        #expect(ByteEscapes.quoted(Array("abcdef".utf8), limit: 3) == #""abc"… (6 bytes)"#)
        #expect(ByteEscapes.quoted(Array("abc".utf8), limit: 3) == #""abc""#)
    }

    @Test func whatIsShownDecodesBackToTheSameBytes() throws {
        let every = (0...255).map(UInt8.init)
        let shown = ByteEscapes.quoted(every, limit: 256)
        #expect(try ByteEscapes.decode(String(shown.dropFirst().dropLast())) == every)
    }
}

@Suite struct TCPAndTLSConfigTests {
    private func check(_ yaml: String) throws -> Check {
        try #require(ConfigLoader.load(yaml: "services:\n" + yaml).services.first).check
    }

    @Test func sendAndExpectTakeEscapesOnceWhicheverQuotes() throws {
        let single = try check(#"  cache: { tcp: { host: 127.0.0.1, port: 6379, send: 'PING\r\n', expect: '+PONG' } }"#)
        let double = try check(#"  cache: { tcp: { host: 127.0.0.1, port: 6379, send: "PING\r\n", expect: "+PONG" } }"#)
        let expected = Check.tcp(TCPCheck(host: "127.0.0.1", port: 6379, send: Array("PING\r\n".utf8),
                                          expect: .prefix(Array("+PONG".utf8))))
        #expect(single == expected)
        #expect(double == expected)
        #expect(single.kind == "tcp")
        // In double quotes YAML decodes "\\x41" to \x41, which is then taken as it stands.
        let twice = try check(#"  bin: { tcp: { host: 127.0.0.1, port: 1, expect: "\\x41" } }"#)
        #expect(twice == .tcp(TCPCheck(host: "127.0.0.1", port: 1, expect: .prefix(Array(#"\x41"#.utf8)))))
        let binary = try check(#"  bin: { tcp: { host: 127.0.0.1, port: 1, send: '\x00\xff', expect: '\0' } }"#)
        #expect(binary == .tcp(TCPCheck(host: "127.0.0.1", port: 1, send: [0x00, 0xFF], expect: .prefix([0x00]))))
    }

    @Test func aBannerNeedsNoSend() throws {
        let banner = try check(#"  mail: { tcp: { host: 127.0.0.1, port: 25, expect_regex: "^220 .*ESMTP" } }"#)
        #expect(banner == .tcp(TCPCheck(host: "127.0.0.1", port: 25, expect: .regex("^220 .*ESMTP"))))
    }

    @Test func tlsIsATCPCheckWithTLSOptions() throws {
        let config = try ConfigLoader.load(yaml: """
            services:
              ldap:
                tls: { host: 10.0.0.5, port: 636, server_name: ldap.example.com, cert_min_days: 14, ca_file: /etc/ca.pem }
              smtps: { tls: { host: 10.0.0.6, port: 465 } }
            """)
        let ldap = try #require(config.service(named: "ldap"))
        #expect(ldap.check == .tcp(TCPCheck(host: "10.0.0.5", port: 636,
                                            tls: TLSOptions(serverName: "ldap.example.com", certMinDays: 14,
                                                            caFile: "/etc/ca.pem"))))
        #expect(ldap.check.kind == "tls")
        #expect(ldap.address == ListenAddress(host: "10.0.0.5", port: 636))
        #expect(config.service(named: "smtps")?.check == .tcp(TCPCheck(host: "10.0.0.6", port: 465, tls: TLSOptions())))
    }

    /// The example file documents `tls:` commented out; uncommented, it loads as documented.
    @Test func theExampleTLSServiceLoadsWhenUncommented() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("etc/vitals.yaml")
        let text = try String(contentsOf: url, encoding: .utf8)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        let start = try #require(lines.firstIndex { $0.hasPrefix("  # ldap:") })
        let block = lines[start...].prefix { $0.hasPrefix("  # ") }.map { "  " + $0.dropFirst(4) }
        let config = try ConfigLoader.load(yaml: "services:\n" + block.joined(separator: "\n"))
        let ldap = try #require(config.service(named: "ldap"))
        guard case .tcp(let tcp) = ldap.check, let tls = tcp.tls else {
            Issue.record("ldap is not a tls check: \(ldap.check)")
            return
        }
        #expect(tcp.port == 636)
        #expect(tls.serverName == "ldap.example.com")
        #expect(tls.certMinDays == 14)
        #expect(tls.caFile != nil)
    }

    @Test func theExampleCacheSendsPingAndExpectsPong() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("etc/vitals.yaml")
        let config = try ConfigLoader.load(yaml: String(contentsOf: url, encoding: .utf8))
        #expect(config.service(named: "cache")?.check == .tcp(TCPCheck(host: "127.0.0.1", port: 6379,
                                                                        send: Array("PING\r\n".utf8),
                                                                        expect: .prefix(Array("+PONG".utf8)))))
    }
}
