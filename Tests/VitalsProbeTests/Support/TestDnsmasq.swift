import Foundation
import VitalsTestKit

/// Debian's dnsmasq as a DNS server of the test's own on 127.0.0.1, UDP and
/// TCP, answering only the records given on its command line (no upstream,
/// no /etc/hosts, no config file). Never the system's service.
final class TestDnsmasq: @unchecked Sendable {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    static let binary = ["/usr/sbin/dnsmasq", "/usr/local/sbin/dnsmasq"]
        .first { FileManager.default.isExecutableFile(atPath: $0) }
    static var available: Bool { binary != nil }

    let port: UInt16
    private let process: Process

    /// `records`: dnsmasq options such as `--address=/www.vitals.test/10.0.0.7`,
    /// `--txt-record=name,text`, `--mx-host=name,host,preference`.
    init(records: [String]) throws {
        guard let binary = Self.binary else { throw Failure(description: "dnsmasq is not installed") }
        var lastOutput = ""
        // A port read back as unused can be taken before dnsmasq binds it: try a few.
        for _ in 0..<3 {
            let port = try LoopbackPort.unused()
            let process = Process()
            process.executableURL = URL(fileURLWithPath: binary)
            process.arguments = ["--no-daemon", "--port=\(port)", "--listen-address=127.0.0.1", "--bind-interfaces",
                                 "--no-resolv", "--no-hosts", "--conf-file=/dev/null", "--pid-file",
                                 "--log-facility=-"] + records
            let output = Pipe()
            process.standardOutput = output
            process.standardError = output
            try process.run()
            // dnsmasq binds its sockets, then logs "started"; it exits when it cannot bind.
            var text = ""
            while !text.contains("started") {
                let data = output.fileHandleForReading.availableData
                if data.isEmpty { break }
                text += String(decoding: data, as: UTF8.self)
            }
            if text.contains("started") {
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
        throw Failure(description: "dnsmasq did not start: \(lastOutput)")
    }

    func stop() {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }
}
