import Foundation

/// `openssl s_server -www` as a real child process on a kernel-chosen port:
/// with a fresh self-signed certificate for 127.0.0.1 valid for `days`, or
/// with a certificate and key the test made (`TestPKI`).
final class TestTLSServer: @unchecked Sendable {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    let port: UInt16
    /// Removed by `stop`, when the server made its own certificate.
    let directory: URL?
    private let process: Process

    convenience init(days: Int = 1) throws {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("vitals-tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let cert = directory.appendingPathComponent("cert.pem").path
        let key = directory.appendingPathComponent("key.pem").path

        let generate = Process()
        generate.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        generate.arguments = ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "\(days)",
                              "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                              "-keyout", key, "-out", cert]
        generate.standardOutput = FileHandle.nullDevice
        generate.standardError = FileHandle.nullDevice
        try generate.run()
        generate.waitUntilExit()
        guard generate.terminationStatus == 0 else { throw Failure(description: "openssl req failed") }
        try self.init(certificate: cert, key: key, directory: directory)
    }

    /// Serves `certificate` (PEM) with `key`; `directory`, if given, is removed by `stop`.
    init(certificate cert: String, key: String, directory: URL? = nil) throws {
        self.directory = directory
        process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = ["s_server", "-accept", "127.0.0.1:0", "-cert", cert, "-key", key, "-www"]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()

        // s_server prints `ACCEPT 127.0.0.1:PORT` once it listens.
        var text = ""
        var found: UInt16?
        while found == nil {
            let data = output.fileHandleForReading.availableData
            if data.isEmpty { break }
            text += String(decoding: data, as: UTF8.self)
            if let line = text.split(separator: "\n").first(where: { $0.hasPrefix("ACCEPT ") }),
               let colon = line.lastIndex(of: ":") {
                found = UInt16(line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
            }
        }
        guard let found else {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            throw Failure(description: "openssl s_server did not start: \(text)")
        }
        port = found
        // Keep reading so s_server never blocks on a full pipe.
        let handle = output.fileHandleForReading
        Thread { while !handle.availableData.isEmpty {} }.start()
    }

    var url: String { "https://127.0.0.1:\(port)/" }

    func stop() {
        // SIGKILL, not terminate(): Foundation's Process does not reset the
        // signal mask, and a child spawned from a dispatch worker thread
        // inherits SIGTERM blocked.
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        if let directory { try? FileManager.default.removeItem(at: directory) }
    }
}
