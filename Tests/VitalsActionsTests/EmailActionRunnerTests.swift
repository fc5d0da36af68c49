import Foundation
import Testing
import VitalsActions
import VitalsCore
import VitalsTestKit

/// `email` actions against a real SMTP server (aiosmtpd) on loopback.
@Suite(.enabled(if: SMTPServer.available, "needs Python's aiosmtpd: scripts/install-deps.sh test"))
struct EmailActionRunnerTests {
    static let event = AgentEvent(id: 42, time: Date(timeIntervalSince1970: 1_800_000_000.25), kind: .stateChange,
                                  service: "nightly-backup", from: "up", to: "down", reason: "job reported failure (exit 3)",
                                  rule: "failure report")

    static func withBody() -> AgentEvent {
        var event = Self.event
        event.pingBody = PingBody(text: "disk full\n", totalBytes: 4096, keptBytes: 10)
        return event
    }

    func action(_ port: UInt16, starttls: EmailAction.StartTLS = .never, username: String? = nil,
                password: SecretText? = nil, caFile: String? = nil, retries: Int = 0) -> ActionConfig {
        ActionConfig(name: "mail", kind: .email(EmailAction(
            url: "smtp://127.0.0.1:\(port)", from: "vitals@example.com", to: ["ops@example.com", "oncall@example.com"],
            starttls: starttls, username: username, password: password, caFile: caFile)),
                     timeout: .seconds(10), retries: retries)
    }

    @Test("the server receives the envelope, the headers and the plain-text body")
    func plainMessage() async throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let server = try SMTPServer(in: scratch)
        defer { server.stop() }
        let runner = EmailActionRunner(hostName: "agent.example")
        let outcome = await runner.run(Self.withBody(), action: action(server.port))
        #expect(outcome.result == .ok, "\(outcome.result)")
        #expect(outcome.kind == "email")
        let message = try #require(await server.waitForMessages(1).first)
        #expect(message.from == "vitals@example.com")
        #expect(message.to == ["ops@example.com", "oncall@example.com"])
        #expect(message.tls == false)
        #expect(message.data == """
            From: vitals@example.com\r
            To: ops@example.com, oncall@example.com\r
            Subject: [vitals] nightly-backup is down (was up)\r
            Date: Fri, 15 Jan 2027 08:00:00 +0000\r
            Message-ID: <vitals.42.1800000000250@agent.example>\r
            MIME-Version: 1.0\r
            Content-Type: text/plain; charset=utf-8\r
            Content-Transfer-Encoding: 8bit\r
            Auto-Submitted: auto-generated\r
            \r
            nightly-backup is down (was up)\r
            \r
            job reported failure (exit 3)\r
            \r
            time:     2027-01-15T08:00:00.250Z\r
            event:    42 (state_change)\r
            service:  nightly-backup\r
            from:     up\r
            to:       down\r
            rule:     failure report\r
            \r
            ping body (the last 10 of 4096 bytes):\r
            disk full\r
            \r

            """)
    }

    @Test("STARTTLS with the server's certificate, and a login whose password comes from a file")
    func startTLSAndLogin() async throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let certificate = try #require(SMTPServer.makeCertificate(in: scratch), "openssl could not make a certificate")
        let server = try SMTPServer(certificate: certificate, login: ("vitals", "pa55-w0rd-from-file"), in: scratch)
        defer { server.stop() }
        try "pa55-w0rd-from-file\n".write(toFile: scratch.file("smtp-password"), atomically: true, encoding: .utf8)
        let runner = EmailActionRunner()
        let outcome = await runner.run(Self.event, action: action(server.port, starttls: .required, username: "vitals",
                                                                  password: .file(scratch.file("smtp-password")),
                                                                  caFile: certificate.cert))
        #expect(outcome.result == .ok, "\(outcome.result)")
        let message = try #require(await server.waitForMessages(1).first)
        #expect(message.tls)
        #expect(message.login == "vitals")
        #expect(message.data.contains("Subject: [vitals] nightly-backup is down (was up)\r\n"))
    }

    @Test("a wrong password is refused, and the password appears in no message")
    func wrongPassword() async throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let certificate = try #require(SMTPServer.makeCertificate(in: scratch), "openssl could not make a certificate")
        let server = try SMTPServer(certificate: certificate, login: ("vitals", "right-password"), in: scratch)
        defer { server.stop() }
        let runner = EmailActionRunner(secrets: SecretResolver(environment: ["SMTP_PASSWORD": "wrong-password"]))
        let outcome = await runner.run(Self.event, action: action(server.port, starttls: .required, username: "vitals",
                                                                  password: .text("${SMTP_PASSWORD}"),
                                                                  caFile: certificate.cert))
        guard case .error(let message) = outcome.result else {
            Issue.record("expected an error, got \(outcome.result)")
            return
        }
        #expect(message.hasPrefix("login denied"), "\(message)")
        #expect(!message.contains("wrong-password"))
        #expect(!String(decoding: try JSONEncoder.vitals().encode(outcome), as: UTF8.self).contains("wrong-password"))
        #expect(server.messages.isEmpty)
    }

    @Test("starttls: required fails against a server that does not offer it")
    func startTLSRequired() async throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let server = try SMTPServer(in: scratch)
        defer { server.stop() }
        let outcome = await EmailActionRunner().run(Self.event, action: action(server.port, starttls: .required))
        #expect(outcome.result == .error("the server does not offer STARTTLS (starttls: required) (smtp://127.0.0.1:\(server.port))"))
        #expect(server.messages.isEmpty)
    }

    @Test("a message refused for now (451) is sent again after the backoff")
    func retriesWithBackoff() async throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let server = try SMTPServer(refuseFirst: 2, in: scratch)
        defer { server.stop() }
        let backoff = BackoffRecorder()
        let runner = EmailActionRunner(retry: backoff.policy(base: .milliseconds(10)))
        let outcome = await runner.run(Self.event, action: action(server.port, retries: 3))
        #expect(outcome.result == .ok, "\(outcome.result)")
        #expect(outcome.attempts == 3)
        #expect(backoff.recorded == [.milliseconds(10), .milliseconds(20)])
        #expect(await server.waitForMessages(1).count == 1)
    }

    @Test("a password variable that is not set is an error naming it, and nothing is sent")
    func missingVariable() async throws {
        let outcome = await EmailActionRunner(secrets: SecretResolver(environment: [:]))
            .run(Self.event, action: action(1, username: "vitals", password: .text("${SMTP_PASSWORD}")))
        #expect(outcome.result == .error("password: environment variable SMTP_PASSWORD is not set"))
        #expect(outcome.attempts == 1)
    }
}
