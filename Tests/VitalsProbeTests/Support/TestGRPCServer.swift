import Foundation
import VitalsTestKit

/// A gRPC server of the test's own on a free loopback port, running the
/// standard health service (Python `grpcio` and `grpcio-health-checking`,
/// installed into `.build/peers-venv` by `scripts/install-deps.sh test`).
/// `set(_:_:)` flips a service's status at run time and returns once the
/// server has applied it.
final class TestGRPCServer: @unchecked Sendable {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// `VITALS_PEERS_PYTHON`, else the package's `.build/peers-venv`.
    static let python: String? = {
        if let path = ProcessInfo.processInfo.environment["VITALS_PEERS_PYTHON"] { return path }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent()
        return root.appendingPathComponent(".build/peers-venv/bin/python").path
    }()

    static let available: Bool = {
        guard let python, FileManager.default.isExecutableFile(atPath: python) else { return false }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = ["-c", "import grpc, grpc_health.v1.health"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return false }
        process.waitUntilExit()
        return process.terminationStatus == 0
    }()

    static let script = #"""
    import sys
    from concurrent import futures
    import grpc
    from grpc_health.v1 import health, health_pb2, health_pb2_grpc

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    if len(sys.argv) > 1:
        with open(sys.argv[1], "rb") as f: cert = f.read()
        with open(sys.argv[2], "rb") as f: key = f.read()
        port = server.add_secure_port("127.0.0.1:0", grpc.ssl_server_credentials([(key, cert)]))
    else:
        port = server.add_insecure_port("127.0.0.1:0")
    servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    server.start()
    print("port", port, flush=True)
    for line in sys.stdin:
        name, status = line.split()
        servicer.set("" if name == "-" else name, getattr(health_pb2.HealthCheckResponse, status))
        print("ok", flush=True)
    server.stop(0)
    """#

    let port: UInt16
    private let process: Process
    private let input: FileHandle
    private let output: FileHandle
    private let scratch: Scratch

    /// - Parameter certificate: PEM certificate and key files to serve TLS with; nil: cleartext (h2c).
    init(certificate: (cert: String, key: String)? = nil) throws {
        guard let python = Self.python else { throw Failure(description: "no python for the gRPC server") }
        scratch = try Scratch()
        let path = scratch.file("health_server.py")
        try Self.script.write(toFile: path, atomically: true, encoding: .utf8)
        process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [path] + (certificate.map { [$0.cert, $0.key] } ?? [])
        let stdin = Pipe()
        let stdout = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = FileHandle.nullDevice
        try process.run()
        input = stdin.fileHandleForWriting
        output = stdout.fileHandleForReading
        let line = Self.readLine(output)
        guard let line, line.hasPrefix("port "), let port = UInt16(line.dropFirst(5)), port > 0 else {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            scratch.remove()
            throw Failure(description: "the gRPC health server did not start: \(line ?? "no output")")
        }
        self.port = port
    }

    /// Sets `service` ("" for the server as a whole) to `status`:
    /// `SERVING`, `NOT_SERVING`, `SERVICE_UNKNOWN`.
    func set(_ service: String, _ status: String) throws {
        input.write(Data("\(service.isEmpty ? "-" : service) \(status)\n".utf8))
        guard Self.readLine(output) == "ok" else { throw Failure(description: "the gRPC server did not set \(service)") }
    }

    func stop() {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        scratch.remove()
    }

    /// One line from `handle`, without its newline; nil at end of file.
    private static func readLine(_ handle: FileHandle) -> String? {
        var bytes: [UInt8] = []
        while true {
            guard let byte = try? handle.read(upToCount: 1), let first = byte.first else {
                return bytes.isEmpty ? nil : String(decoding: bytes, as: UTF8.self)
            }
            if first == UInt8(ascii: "\n") { return String(decoding: bytes, as: UTF8.self) }
            bytes.append(first)
        }
    }
}
