import Foundation

/// Certificates for TLS check tests, made with the `openssl` command in a
/// scratch directory: a CA, and server certificates it signs for
/// `vitals.test` and 127.0.0.1 with chosen validity. `openssl ca` sets both
/// dates, so a certificate can have expired already (`openssl req -days 0`
/// is refused). EC P-256 keys: quick to make.
final class TestPKI: @unchecked Sendable {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    static let openssl = "/usr/bin/openssl"
    static var available: Bool { FileManager.default.isExecutableFile(atPath: openssl) }

    /// The name every server certificate is made for (besides IP 127.0.0.1).
    static let serverName = "vitals.test"

    let directory: URL
    /// The CA's certificate (PEM): what a check's `ca_file` names.
    let caFile: String
    private let caKey: String
    private var serial = 0

    /// A new CA in a directory of its own.
    init(name: String = "Vitals Test CA") throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("vitals-pki-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        caFile = directory.appendingPathComponent("ca.pem").path
        caKey = directory.appendingPathComponent("ca.key").path
        try Self.run(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                      "-days", "30", "-subj", "/CN=\(name)", "-keyout", caKey, "-out", caFile])
        try "".write(toFile: path("index.txt"), atomically: true, encoding: .utf8)
        try "01\n".write(toFile: path("serial"), atomically: true, encoding: .utf8)
        try """
            [ ca ]
            default_ca = local
            [ local ]
            database = \(path("index.txt"))
            new_certs_dir = \(directory.path)
            serial = \(path("serial"))
            default_md = sha256
            policy = any
            copy_extensions = copy
            unique_subject = no
            [ any ]
            commonName = supplied
            """.write(toFile: path("ca.cnf"), atomically: true, encoding: .utf8)
    }

    /// How long a server certificate is valid.
    enum Validity {
        /// From now, for this many days.
        case days(Int)
        /// Both dates in the past (January 2020).
        case expired
    }

    /// A server certificate signed by this CA for `vitals.test` and
    /// 127.0.0.1: the paths of the certificate and its key.
    func serverCertificate(_ validity: Validity) throws -> (certificate: String, key: String) {
        serial += 1
        let key = path("server-\(serial).key")
        let request = path("server-\(serial).csr")
        let certificate = path("server-\(serial).pem")
        try Self.run(["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                      "-subj", "/CN=\(Self.serverName)",
                      "-addext", "subjectAltName=DNS:\(Self.serverName),IP:127.0.0.1",
                      "-keyout", key, "-out", request])
        var arguments = ["ca", "-batch", "-notext", "-config", path("ca.cnf"), "-cert", caFile, "-keyfile", caKey,
                         "-in", request, "-out", certificate]
        switch validity {
        case .days(let days): arguments += ["-days", "\(days)"]
        case .expired: arguments += ["-startdate", "20200101000000Z", "-enddate", "20200102000000Z"]
        }
        try Self.run(arguments)
        return (certificate, key)
    }

    /// `openssl s_server` serving a new certificate of this CA.
    func server(_ validity: Validity) throws -> TestTLSServer {
        let (certificate, key) = try serverCertificate(validity)
        return try TestTLSServer(certificate: certificate, key: key)
    }

    func remove() { try? FileManager.default.removeItem(at: directory) }

    private func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    private static func run(_ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: openssl)
        process.arguments = arguments
        let errors = Pipe()
        process.standardOutput = FileHandle.nullDevice
        process.standardError = errors
        try process.run()
        let text = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw Failure(description: "openssl \(arguments.first ?? "") failed: \(text)")
        }
    }
}
