import Foundation
import Testing
import VitalsCore
@testable import VitalsAgent

/// `explain`'s `rules.check`: what one probe of a tcp or tls check must see.
@Suite struct ExplainCheckRuleTests {
    private func rule(_ check: TCPCheck, timeout: Duration = .milliseconds(500)) -> String? {
        StatusView.checkRule(.tcp(check), timeout: timeout)
    }

    @Test func tcpConnectOnly() {
        #expect(rule(TCPCheck(host: "127.0.0.1", port: 5432)) == "connect to 127.0.0.1:5432 within 500ms")
    }

    @Test func sendAndExpectShowTheBytesEscaped() {
        #expect(rule(TCPCheck(host: "127.0.0.1", port: 6379, send: Array("PING\r\n".utf8),
                              expect: .prefix(Array("+PONG".utf8))))
            == #"connect to 127.0.0.1:6379, send "PING\r\n", expect a reply starting with "+PONG", all within 500ms"#)
        #expect(rule(TCPCheck(host: "::1", port: 25, expect: .regex("^220 ")), timeout: .seconds(2))
            == "connect to [::1]:25, expect a reply matching /^220 /, all within 2s")
    }

    @Test func tlsNamesTheCAServerNameAndDays() {
        #expect(rule(TCPCheck(host: "10.0.0.5", port: 636,
                              tls: TLSOptions(serverName: "ldap.example.com", certMinDays: 14, caFile: "/etc/ca.pem")))
            == "TLS handshake with 10.0.0.5:636 within 500ms; the certificate must verify against the CA in "
            + "/etc/ca.pem for ldap.example.com and have at least 14 days left")
        #expect(rule(TCPCheck(host: "10.0.0.6", port: 465, tls: TLSOptions()))
            == "TLS handshake with 10.0.0.6:465 within 500ms; the certificate must verify against the system's CAs "
            + "for 10.0.0.6")
    }

    @Test func otherKindsHaveNone() {
        #expect(StatusView.checkRule(.http(HTTPCheck(url: "http://127.0.0.1/")), timeout: .seconds(1)) == nil)
        #expect(StatusView.checkRule(.exec(ExecCheck(argv: ["true"])), timeout: .seconds(1)) == nil)
    }

    @Test func explainCarriesTheRule() throws {
        let service = ServiceConfig(name: "cache", check: .tcp(TCPCheck(host: "127.0.0.1", port: 6379,
                                                                        send: Array("PING\r\n".utf8),
                                                                        expect: .prefix(Array("+PONG".utf8)))))
        let document = StatusView.explain(service, ServiceHealth(service: service, startedAt: Date()), nil)
        #expect(document.rules.check == StatusView.checkRule(service.check, timeout: service.timing.timeout))
        #expect(document.service.kind == "tcp")
    }
}
