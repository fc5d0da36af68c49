import Foundation
import Testing
import VitalsCore
@testable import VitalsProbe
import VitalsTestKit

func tlsService(port: UInt16, host: String = "127.0.0.1", name: String = "ldaps",
                timeout: Duration = .seconds(2), _ options: TLSOptions) -> ServiceConfig {
    ServiceConfig(name: name, check: .tcp(TCPCheck(host: host, port: port, tls: options)),
                  timing: ProbeTiming(timeout: timeout))
}

@Suite("TLS checks against openssl s_server",
       .enabled(if: TestPKI.available, "needs /usr/bin/openssl: scripts/install-deps.sh test installs it"))
struct TLSCheckProbeTests {
    @Test func validCertificateForTheServerNameIsUp() throws {
        let pki = try TestPKI()
        defer { pki.remove() }
        let server = try pki.server(.days(30))
        defer { server.stop() }
        let result = probe(tlsService(port: server.port, TLSOptions(serverName: TestPKI.serverName, certMinDays: 14,
                                                                    caFile: pki.caFile)))
        #expect(result.outcome == .ok)
        #expect(result.reason == "")
        #expect(result.latency != nil)
    }

    @Test func withoutServerNameTheHostIsVerified() throws {
        let pki = try TestPKI()
        defer { pki.remove() }
        let server = try pki.server(.days(30))
        defer { server.stop() }
        // The certificate names IP 127.0.0.1 too.
        let result = probe(tlsService(port: server.port, TLSOptions(caFile: pki.caFile)))
        #expect(result.outcome == .ok)
    }

    @Test func certificateUnderCertMinDaysIsDown() throws {
        let pki = try TestPKI()
        defer { pki.remove() }
        let server = try pki.server(.days(3))
        defer { server.stop() }
        let result = probe(tlsService(port: server.port, TLSOptions(serverName: TestPKI.serverName, certMinDays: 14,
                                                                    caFile: pki.caFile)))
        #expect(result.outcome == .failed)
        // Three days from the moment it was signed: two whole days and some hours left.
        #expect(result.reason == "certificate expires in 2 days, less than cert_min_days 14")
    }

    @Test func everyProbeSeesTheCertificate() throws {
        let pki = try TestPKI()
        defer { pki.remove() }
        let server = try pki.server(.days(3))
        defer { server.stop() }
        let service = tlsService(port: server.port, TLSOptions(serverName: TestPKI.serverName, certMinDays: 14,
                                                               caFile: pki.caFile))
        // A fresh connection and handshake each time: the expiry is read on every probe.
        let results = probeRepeatedly(service, times: 3, prober: CurlMultiProber())
        #expect(results.map(\.reason) == Array(repeating: "certificate expires in 2 days, less than cert_min_days 14",
                                               count: 3))
    }

    @Test func expiredCertificateFailsVerification() throws {
        let pki = try TestPKI()
        defer { pki.remove() }
        let server = try pki.server(.expired)
        defer { server.stop() }
        let result = probe(tlsService(port: server.port, TLSOptions(serverName: TestPKI.serverName, certMinDays: 14,
                                                                    caFile: pki.caFile)))
        #expect(result.outcome == .failed)
        #expect(result.reason == "TLS: certificate verify failed: certificate has expired")
    }

    @Test func certificateOfAnotherCAFailsVerification() throws {
        let pki = try TestPKI()
        let other = try TestPKI(name: "Someone Else's CA")
        defer {
            pki.remove()
            other.remove()
        }
        let server = try other.server(.days(30))
        defer { server.stop() }
        let result = probe(tlsService(port: server.port, TLSOptions(serverName: TestPKI.serverName,
                                                                    caFile: pki.caFile)))
        #expect(result.outcome == .failed)
        #expect(result.reason == "TLS: certificate verify failed: unable to get local issuer certificate")
    }

    @Test func withoutCAFileTheSystemStoreDoesNotKnowTheTestCA() throws {
        let pki = try TestPKI()
        defer { pki.remove() }
        let server = try pki.server(.days(30))
        defer { server.stop() }
        let result = probe(tlsService(port: server.port, TLSOptions(serverName: TestPKI.serverName)))
        #expect(result.outcome == .failed)
        #expect(result.reason == "TLS: certificate verify failed: unable to get local issuer certificate")
    }

    @Test func wrongServerNameFailsVerification() throws {
        let pki = try TestPKI()
        defer { pki.remove() }
        let server = try pki.server(.days(30))
        defer { server.stop() }
        let result = probe(tlsService(port: server.port, TLSOptions(serverName: "wrong.vitals.test",
                                                                    caFile: pki.caFile)))
        #expect(result.outcome == .failed)
        #expect(result.reason == "TLS: certificate verify failed: "
            + "no alternative certificate subject name matches target host name 'wrong.vitals.test'")
    }

    @Test func missingCAFileIsNamed() throws {
        let pki = try TestPKI()
        defer { pki.remove() }
        let server = try pki.server(.days(30))
        defer { server.stop() }
        let result = probe(tlsService(port: server.port, TLSOptions(caFile: pki.directory.path + "/missing.pem")))
        #expect(result.outcome == .failed)
        #expect(result.reason.hasPrefix("TLS: cannot use the CA file"), "\(result.reason)")
        #expect(result.reason.contains("missing.pem"), "\(result.reason)")
    }

    @Test func aPortThatDoesNotSpeakTLSFailsTheHandshake() throws {
        let server = try TestTCPServer(banner: Array("hello, this is not TLS\r\n".utf8), then: .close)
        defer { server.stop() }
        let result = probe(tlsService(port: server.port, TLSOptions()))
        #expect(result.outcome == .failed)
        #expect(result.reason.hasPrefix("TLS: handshake failed"), "\(result.reason)")
    }

    @Test func refusedIsAConnectFailure() throws {
        let refusing = try RefusingPort()
        let result = probe(tlsService(port: refusing.port, TLSOptions()))
        #expect(result.outcome == .failed)
        #expect(result.reason == "connect refused")
    }
}

@Suite("TLS check verdicts")
struct TLSConditionsTests {
    let now = Date(timeIntervalSince1970: 1_800_000_000)

    @Test(arguments: [
        (30.0, nil),
        (14.0, nil),
        (13.99, "certificate expires in 13 days, less than cert_min_days 14"),
        (3.5, "certificate expires in 3 days, less than cert_min_days 14"),
        (1.2, "certificate expires in 1 day, less than cert_min_days 14"),
        (0.5, "certificate expires in less than a day, less than cert_min_days 14"),
        (-1.0, "certificate has expired"),
    ] as [(Double, String?)])
    func expiryAgainstCertMinDays(_ daysLeft: Double, _ reason: String?) {
        let expiry = now.addingTimeInterval(daysLeft * 86_400)
        #expect(TLSConditions.expiryReason(expiry: expiry, now: now, minimumDays: 14) == reason)
        let verdict = TLSConditions(TLSOptions(certMinDays: 14)).evaluate(certificateExpiry: expiry, now: now)
        #expect(verdict == (reason.map(ProbeVerdict.failed) ?? .ok))
    }

    @Test func withoutCertMinDaysTheExpiryIsNotLookedAt() {
        let conditions = TLSConditions(TLSOptions())
        #expect(conditions.evaluate(certificateExpiry: now.addingTimeInterval(60), now: now) == .ok)
        #expect(conditions.evaluate(certificateExpiry: nil, now: now) == .ok)
    }

    @Test func anUnknownExpiryIsAFailureWhenCertMinDaysIsSet() {
        let verdict = TLSConditions(TLSOptions(certMinDays: 14)).evaluate(certificateExpiry: nil, now: now)
        #expect(verdict.outcome == .failed)
        #expect(verdict.reason.hasPrefix("certificate expiry unknown"))
    }
}
