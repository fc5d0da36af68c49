#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// A real SMTP server on 127.0.0.1 for the e-mail tests: Python's aiosmtpd,
/// from the virtual environment `scripts/install-deps.sh test` makes under
/// `.build/test-python` (or a `python3` that already has it). It listens on
/// a port of its own choosing, prints it, then prints one JSON line per
/// message it accepts. Optional: STARTTLS with a certificate, a required
/// login, and refusing the first N messages with `451` (to see retries).
public final class SMTPServer: @unchecked Sendable {
    /// One accepted message.
    public struct Message: Sendable, Decodable {
        public var from: String
        public var to: [String]
        /// The message as received (headers and body, CRLF line ends).
        public var data: String
        /// The login name when the client authenticated, else nil.
        public var login: String?
        /// Whether the session was over TLS (after STARTTLS).
        public var tls: Bool
    }

    public let port: UInt16
    private let process = Process()
    private let received = Locked<[Message]>([])
    private let lines = Locked<[String]>([])

    /// The interpreter with aiosmtpd, or nil when there is none (the tests are then skipped).
    public static let python: String? = {
        var candidates: [String] = []
        var dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        while dir.path != "/" {
            let venv = dir.appendingPathComponent(".build/test-python/bin/python3").path
            if FileManager.default.isExecutableFile(atPath: venv) { candidates.append(venv) }
            dir = dir.deletingLastPathComponent()
        }
        candidates.append("/usr/bin/python3")
        for candidate in candidates where FileManager.default.isExecutableFile(atPath: candidate) {
            let probe = Process()
            probe.executableURL = URL(fileURLWithPath: candidate)
            probe.arguments = ["-c", "import aiosmtpd"]
            probe.standardOutput = FileHandle.nullDevice
            probe.standardError = FileHandle.nullDevice
            guard (try? probe.run()) != nil else { continue }
            probe.waitUntilExit()
            if probe.terminationStatus == 0 { return candidate }
        }
        return nil
    }()

    public static var available: Bool { python != nil }

    /// - Parameters:
    ///   - certificate: PEM certificate and key files: offer STARTTLS with them.
    ///   - login: require this user name and password (over TLS only when `certificate` is given).
    ///   - refuseFirst: answer `451` to this many messages before accepting.
    public init(certificate: (cert: String, key: String)? = nil, login: (user: String, password: String)? = nil,
                refuseFirst: Int = 0, in scratch: Scratch) throws {
        guard let python = Self.python else { throw Failure("aiosmtpd is not installed (scripts/install-deps.sh test)") }
        let script = try scratch.script("smtp_server.py", Self.script, executable: false)
        process.executableURL = URL(fileURLWithPath: python)
        var arguments = [script, "--refuse-first", String(refuseFirst)]
        if let certificate { arguments += ["--cert", certificate.cert, "--key", certificate.key] }
        if let login { arguments += ["--user", login.user, "--password", login.password] }
        process.arguments = arguments
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.standardError
        try process.run()
        let handle = out.fileHandleForReading
        let firstLine = DispatchSemaphore(value: 0)
        let lines = self.lines
        let received = self.received
        Thread.detachNewThread {
            var pending = Data()
            var signalled = false
            while true {
                let chunk = handle.availableData
                if chunk.isEmpty { break }
                pending.append(chunk)
                while let newline = pending.firstIndex(of: 10) {
                    let line = String(decoding: pending[pending.startIndex..<newline], as: UTF8.self)
                    pending.removeSubrange(pending.startIndex...newline)
                    lines.withLock { $0.append(line) }
                    if let message = try? JSONDecoder().decode(Message.self, from: Data(line.utf8)) {
                        received.withLock { $0.append(message) }
                    }
                    if !signalled {
                        signalled = true
                        firstLine.signal()
                    }
                }
            }
            if !signalled { firstLine.signal() }
        }
        guard firstLine.wait(timeout: .now() + 20) == .success,
              let first = lines.withLock({ $0.first }), first.hasPrefix("PORT "), let port = UInt16(first.dropFirst(5)) else {
            kill(process.processIdentifier, SIGKILL)
            throw Failure("the SMTP server did not start: \(lines.withLock { $0 })")
        }
        self.port = port
    }

    public var messages: [Message] { received.withLock { $0 } }

    /// The first `count` messages, waiting for them at most `limit`.
    public func waitForMessages(_ count: Int, within limit: Duration = .seconds(10)) async -> [Message] {
        let deadline = ContinuousClock.now + limit
        while received.withLock({ $0.count }) < count, ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(10))
        }
        return messages
    }

    /// Kills the server. Foundation reaps it; this waits for that at most 5 s
    /// (`waitUntilExit` spins a run loop, which a test's task must not).
    public func stop() {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGKILL)
        let deadline = ContinuousClock.now + .seconds(5)
        while process.isRunning, ContinuousClock.now < deadline { usleep(5_000) }
    }

    deinit { stop() }

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
        public init(_ description: String) { self.description = description }
    }

    /// A self-signed certificate for 127.0.0.1 and localhost, made with openssl; nil without openssl.
    public static func makeCertificate(in scratch: Scratch) -> (cert: String, key: String)? {
        let cert = scratch.file("smtp-cert.pem"), key = scratch.file("smtp-key.pem")
        let openssl = Process()
        openssl.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        openssl.arguments = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                             "-days", "1", "-subj", "/CN=localhost",
                             "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"]
        openssl.standardOutput = FileHandle.nullDevice
        openssl.standardError = FileHandle.nullDevice
        guard (try? openssl.run()) != nil else { return nil }
        openssl.waitUntilExit()
        return openssl.terminationStatus == 0 ? (cert, key) : nil
    }

    static let script = #"""
    import argparse, asyncio, json, ssl, sys
    from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

    p = argparse.ArgumentParser()
    p.add_argument("--refuse-first", type=int, default=0)
    p.add_argument("--cert"); p.add_argument("--key")
    p.add_argument("--user"); p.add_argument("--password")
    a = p.parse_args()

    class Handler:
        def __init__(self):
            self.count = 0
        async def handle_DATA(self, server, session, envelope):
            self.count += 1
            if self.count <= a.refuse_first:
                return "451 4.3.0 try again later"
            login = session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword) else None
            print(json.dumps({"from": envelope.mail_from, "to": envelope.rcpt_tos,
                              "data": envelope.original_content.decode("utf-8", "replace"),
                              "login": login, "tls": session.ssl is not None}), flush=True)
            return "250 2.0.0 accepted"

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = (isinstance(auth_data, LoginPassword) and auth_data.login.decode() == a.user
              and auth_data.password.decode() == a.password)
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    async def main():
        context = None
        if a.cert:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(a.cert, a.key)
        handler = Handler()
        def factory():
            kwargs = dict(hostname="vitals-test", tls_context=context, require_starttls=bool(context))
            if a.user:
                kwargs.update(authenticator=authenticator, auth_required=True, auth_require_tls=bool(context))
            return SMTP(handler, **kwargs)
        server = await asyncio.get_running_loop().create_server(factory, "127.0.0.1", 0)
        print("PORT %d" % server.sockets[0].getsockname()[1], flush=True)
        await server.serve_forever()

    asyncio.run(main())
    """#
}
