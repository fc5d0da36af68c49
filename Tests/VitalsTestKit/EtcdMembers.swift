#if canImport(Glibc)
import Glibc
#endif
import Foundation
import VitalsCurl

/// Debian's etcd (`etcd-server`), which `scripts/install-deps.sh test` installs.
public let etcdBinary = "/usr/bin/etcd"
public let haveEtcd = FileManager.default.isExecutableFile(atPath: etcdBinary)

/// etcd members of the test's own: loopback ports the kernel picked, data in
/// a scratch folder, never the system's service (which may hold 2379).
/// `stop()` kills them all and removes the folder.
public final class EtcdMembers: @unchecked Sendable {
    public struct Member {
        public var name: String
        public var clientURL: String
        public var peerURL: String
        public var process: Process
        public var arguments: [String]
    }

    public let scratch: Scratch
    public private(set) var members: [Member] = []
    /// Client TLS files that reach the members, when they serve https.
    public let tls: CurlRequest.TLSFiles?
    /// How long the members took to answer a linearizable read.
    public private(set) var startup: Duration = .zero

    public var endpoints: [String] { members.map(\.clientURL) }

    /// Starts `count` members as one cluster and waits until each answers a
    /// read (which needs a raft leader), within `limit`. With `serverTLS`,
    /// clients speak https and must show a certificate the CA signed.
    /// - Parameter alsoOn: more local addresses the members serve clients on
    ///   (same port as on 127.0.0.1), for agents in other network namespaces.
    public init(count: Int = 1, serverTLS: TestCertificates? = nil, alsoOn hosts: [String] = [],
                limit: Duration = .seconds(20)) async throws {
        scratch = try Scratch()
        tls = serverTLS.map { CurlRequest.TLSFiles(caFile: $0.caFile, certificateFile: $0.clientCertificate, keyFile: $0.clientKey) }
        let scheme = serverTLS == nil ? "http" : "https"
        var ports: [(client: UInt16, peer: UInt16)] = []
        for _ in 0..<count { ports.append((try LoopbackPort.unused(), try LoopbackPort.unused())) }
        let names = (1...count).map { "m\($0)" }
        let cluster = zip(names, ports).map { "\($0)=http://127.0.0.1:\($1.peer)" }.joined(separator: ",")
        let token = "vitals-test-\(UUID().uuidString.prefix(8))"
        let started = ContinuousClock.now
        do {
            for (name, port) in zip(names, ports) {
                let client = "\(scheme)://127.0.0.1:\(port.client)"
                let peer = "http://127.0.0.1:\(port.peer)"
                var arguments = [
                    "--name", name, "--data-dir", scratch.file(name), "--logger=zap", "--log-outputs=stderr",
                    "--listen-client-urls", ([client] + hosts.map { "\(scheme)://\($0):\(port.client)" }).joined(separator: ","),
                    "--advertise-client-urls", client,
                    "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                    "--initial-cluster", cluster, "--initial-cluster-state", "new", "--initial-cluster-token", token,
                ]
                if let serverTLS {
                    arguments += ["--client-cert-auth", "--trusted-ca-file", serverTLS.caFile,
                                  "--cert-file", serverTLS.serverCertificate, "--key-file", serverTLS.serverKey]
                }
                _ = FileManager.default.createFile(atPath: scratch.file("\(name).log"), contents: nil)
                let process = try Self.launch(name, arguments, log: scratch.file("\(name).log"))
                members.append(Member(name: name, clientURL: client, peerURL: peer, process: process,
                                      arguments: arguments))
            }
            for member in members {
                try await waitUntilReady(member, deadline: started + limit)
            }
        } catch {
            stop()
            throw error
        }
        startup = ContinuousClock.now - started
    }

    private static func launch(_ name: String, _ arguments: [String], log path: String) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: etcdBinary)
        process.arguments = arguments
        let log = FileHandle(forWritingAtPath: path)
        log?.seekToEndOfFile()
        process.standardOutput = log
        process.standardError = log
        try process.run()
        return process
    }

    /// Starts member `index` again, with its data, after `kill`; waits until it answers.
    public func restart(_ index: Int, limit: Duration = .seconds(20)) async throws {
        let member = members[index]
        members[index].process = try Self.launch(member.name, member.arguments, log: scratch.file("\(member.name).log"))
        try await waitUntilReady(members[index], deadline: ContinuousClock.now + limit)
    }

    public struct NotReady: Error, CustomStringConvertible {
        public var description: String
    }

    private func waitUntilReady(_ member: Member, deadline: ContinuousClock.Instant) async throws {
        var last = ""
        while ContinuousClock.now < deadline {
            guard member.process.isRunning else {
                throw NotReady(description: "etcd \(member.name) exited: \(log(member.name).suffix(1500))")
            }
            let answer = raw(member.clientURL, "/v3/kv/range", #"{"key":"AA=="}"#, timeout: .seconds(1))
            switch answer {
            case .success(let response) where response.status == 200: return
            case .success(let response): last = "HTTP \(response.status)"
            case .failure(let error): last = error.description
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw NotReady(description: "etcd \(member.name) not ready in time (\(last)): \(log(member.name).suffix(1500))")
    }

    /// One POST straight to a member, outside the client under test.
    public func raw(_ endpoint: String, _ path: String, _ body: String, timeout: Duration = .seconds(5),
             headers: [(name: String, value: String)] = []) -> Result<CurlRequest.Response, CurlError> {
        CurlRequest(method: "POST", url: endpoint + path, headers: headers, body: Array(body.utf8), timeout: timeout,
                    http11Only: true, tls: tls).perform()
    }

    public func log(_ name: String) -> String { scratch.read("\(name).log") ?? "" }

    /// SIGKILLs member `index` and waits for it to be gone.
    public func kill(_ index: Int) {
        let process = members[index].process
        if process.isRunning { Glibc.kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    /// Kills every member and removes their data.
    public func stop() {
        for index in members.indices { kill(index) }
        scratch.remove()
    }
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate it
/// signed, and a second CA that signed nothing of the server's; made with
/// `openssl` in `folder`.
public struct TestCertificates: Sendable {
    public var caFile: String
    public var serverCertificate: String
    public var serverKey: String
    public var clientCertificate: String
    public var clientKey: String
    public var otherCAFile: String

    public struct Failed: Error, CustomStringConvertible {
        public var description: String
    }

    public init(in folder: Scratch) throws {
        func openssl(_ arguments: [String]) throws {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
            process.arguments = arguments
            process.currentDirectoryURL = URL(fileURLWithPath: folder.path)
            let output = Pipe()
            process.standardOutput = output
            process.standardError = output
            try process.run()
            let text = output.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            guard process.terminationStatus == 0 else {
                throw Failed(description: "openssl \(arguments.joined(separator: " ")): \(String(decoding: text, as: UTF8.self))")
            }
        }
        let key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        for ca in ["ca", "other-ca"] {
            try openssl(["req", "-x509"] + key + ["-keyout", "\(ca).key", "-out", "\(ca).pem", "-days", "2",
                                                  "-subj", "/CN=vitals test \(ca)"])
        }
        // clientAuth too: etcd's JSON gateway dials the member's own gRPC
        // listener with the server certificate, and --client-cert-auth checks it.
        try "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n".write(toFile: folder.file("server.ext"), atomically: true, encoding: .utf8)
        try "extendedKeyUsage=clientAuth\n".write(toFile: folder.file("client.ext"), atomically: true, encoding: .utf8)
        for (name, subject) in [("server", "/CN=127.0.0.1"), ("client", "/CN=vitals-agent")] {
            try openssl(["req"] + key + ["-keyout", "\(name).key", "-out", "\(name).csr", "-subj", subject])
            try openssl(["x509", "-req", "-in", "\(name).csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                         "-out", "\(name).pem", "-days", "2", "-extfile", "\(name).ext"])
        }
        caFile = folder.file("ca.pem")
        serverCertificate = folder.file("server.pem")
        serverKey = folder.file("server.key")
        clientCertificate = folder.file("client.pem")
        clientKey = folder.file("client.key")
        otherCAFile = folder.file("other-ca.pem")
    }
}

