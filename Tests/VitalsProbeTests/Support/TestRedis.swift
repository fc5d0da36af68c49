import Foundation
import VitalsTestKit

/// A `redis-server` of the test's own on a free loopback port, with nothing
/// saved (`--save '' --appendonly no`) and its files in a scratch directory.
/// Never the system's service.
final class TestRedis: @unchecked Sendable {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    static let binary = ["/usr/bin/redis-server", "/usr/local/bin/redis-server"]
        .first { FileManager.default.isExecutableFile(atPath: $0) }
    static var available: Bool { binary != nil }

    let port: UInt16
    private let process: Process
    private let directory: String

    init() throws {
        guard let binary = Self.binary else { throw Failure(description: "redis-server is not installed") }
        let scratch = try Scratch()
        directory = scratch.path
        var lastOutput = ""
        // A port read back as unused can be taken before redis binds it: try a few.
        for _ in 0..<3 {
            let port = try LoopbackPort.unused()
            let process = Process()
            process.executableURL = URL(fileURLWithPath: binary)
            process.arguments = ["--port", "\(port)", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                                 "--daemonize", "no", "--dir", directory, "--logfile", ""]
            let output = Pipe()
            process.standardOutput = output
            process.standardError = output
            try process.run()
            // Redis logs "Ready to accept connections" once it listens, and exits when it cannot bind.
            var text = ""
            while !text.contains("Ready to accept connections") {
                let data = output.fileHandleForReading.availableData
                if data.isEmpty { break }
                text += String(decoding: data, as: UTF8.self)
            }
            if text.contains("Ready to accept connections") {
                self.port = port
                self.process = process
                let handle = output.fileHandleForReading
                Thread { while !handle.availableData.isEmpty {} }.start()
                return
            }
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            lastOutput = text
        }
        scratch.remove()
        throw Failure(description: "redis-server did not start: \(lastOutput)")
    }

    func stop() {
        // SIGKILL: see TestTLSServer.stop. Nothing is saved anyway.
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        try? FileManager.default.removeItem(atPath: directory)
    }
}
