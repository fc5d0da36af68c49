#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
import VitalsHTTP
import VitalsTestKit

/// The built `vitals` binary, next to the test bundle.
enum VitalsBinary {
    static var url: URL {
        let dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for candidate in [dir, dir.deletingLastPathComponent()] {
            let url = candidate.appendingPathComponent("vitals")
            if FileManager.default.isExecutableFile(atPath: url.path) { return url }
        }
        // swift test builds every product into the same folder as the test bundle.
        return Bundle.main.bundleURL.appendingPathComponent("vitals")
    }

    /// Runs `vitals args…` to completion (bounded) and returns exit status, stdout and stderr.
    static func run(_ args: [String], in directory: URL? = nil, timeout: Double = 30) throws -> (status: Int32, out: String, err: String) {
        let process = Process()
        process.executableURL = url
        process.arguments = args
        if let directory { process.currentDirectoryURL = directory }
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        // Read both pipes fully before waiting, so a large output cannot block the child.
        let group = DispatchGroup()
        let outData = Locked(Data()), errData = Locked(Data())
        DispatchQueue.global().async(group: group) {
            let data = out.fileHandleForReading.readDataToEndOfFile()
            outData.withLock { $0 = data }
        }
        DispatchQueue.global().async(group: group) {
            let data = err.fileHandleForReading.readDataToEndOfFile()
            errData.withLock { $0 = data }
        }
        if group.wait(timeout: .now() + timeout) == .timedOut {
            process.terminate()
            throw TestFailure("vitals \(args.joined(separator: " ")) did not finish within \(timeout)s")
        }
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: outData.withLock { $0 }, as: UTF8.self),
                String(decoding: errData.withLock { $0 }, as: UTF8.self))
    }
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// A running `vitals run` whose stderr lines the test can wait for.
final class AgentProcess: @unchecked Sendable {
    let process = Process()
    private let lines = Locked<[String]>([])
    private let arrived = NSCondition()
    private let reader: Thread

    /// - Parameter launcher: a command that runs the agent (`["/usr/bin/nice", "-n", "5"]`).
    init(config: URL, extraArgs: [String] = [], directory: URL, environment: [String: String] = [:],
         launcher: [String] = []) throws {
        if let command = launcher.first {
            process.executableURL = URL(fileURLWithPath: command)
            process.arguments = Array(launcher.dropFirst()) + [VitalsBinary.url.path, "run", "-c", config.path] + extraArgs
        } else {
            process.executableURL = VitalsBinary.url
            process.arguments = ["run", "-c", config.path] + extraArgs
        }
        process.currentDirectoryURL = directory
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        }
        let err = Pipe()
        process.standardError = err
        process.standardOutput = FileHandle.nullDevice
        let handle = err.fileHandleForReading
        let lines = self.lines
        let arrived = self.arrived
        reader = Thread {
            var pending = Data()
            while true {
                let chunk = handle.availableData
                if chunk.isEmpty { break }
                pending.append(chunk)
                while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                    let line = String(decoding: pending[pending.startIndex..<newline], as: UTF8.self)
                    pending.removeSubrange(pending.startIndex...newline)
                    arrived.lock()
                    lines.withLock { $0.append(line) }
                    arrived.broadcast()
                    arrived.unlock()
                }
            }
            arrived.lock(); arrived.broadcast(); arrived.unlock()
        }
        try process.run()
        reader.start()
    }

    var output: [String] { lines.withLock { $0 } }

    /// Waits until a stderr line contains `text`; returns it. Fails after `timeout`.
    @discardableResult
    func waitForLine(containing text: String, after start: Int = 0, timeout: Double = 15) throws -> String {
        let deadline = Date().addingTimeInterval(timeout)
        arrived.lock()
        defer { arrived.unlock() }
        while true {
            let all = output
            if all.count > start, let line = all[start...].first(where: { $0.contains(text) }) { return line }
            if !process.isRunning && all == output {
                throw TestFailure("agent exited (\(process.terminationStatus)) before logging \"\(text)\"; it logged:\n\(all.joined(separator: "\n"))")
            }
            if !arrived.wait(until: min(deadline, Date().addingTimeInterval(0.2))) && Date() >= deadline {
                throw TestFailure("no log line containing \"\(text)\" within \(timeout)s; the agent logged:\n\(output.joined(separator: "\n"))")
            }
        }
    }

    /// The status API's base URL, read from the start-up line.
    func baseURL() throws -> String {
        let line = try waitForLine(containing: "status API on ")
        guard let range = line.range(of: "status API on ") else { throw TestFailure(line) }
        let address = line[range.upperBound...].prefix { $0 != ";" && $0 != "," }
        return "http://\(address)"
    }

    func stop() -> Int32 {
        if process.isRunning { process.interrupt() }
        process.waitUntilExit()
        return process.terminationStatus
    }

    deinit {
        if process.isRunning { process.terminate() }
    }
}

/// A real HTTP backend on loopback whose health answer the test can change.
final class Backend: Sendable {
    let server: HTTPServer
    private let status = Locked<Int>(200)

    /// - Parameter alsoOn: more local addresses to listen on, with the same port as on 127.0.0.1.
    init(alsoOn hosts: [String] = []) throws {
        let status = self.status
        var configuration = HTTPServerConfiguration()
        if !hosts.isEmpty {
            let port = try LoopbackPort.unused()
            configuration.listenAddresses = ([HTTPListenAddress.loopbackIPv4().host] + hosts)
                .map { HTTPListenAddress(host: $0, port: port) }
        }
        server = HTTPServer(configuration: configuration, handler: HTTPClosureHandler { _ in
            let code = status.withLock { $0 }
            return .json(status: HTTPStatus(code: code), body: code == 200 ? #"{"status":"UP"}"# : #"{"status":"DOWN"}"#)
        })
        try server.start()
    }

    var port: UInt16 { server.ports[0] }
    func answer(_ code: Int) { status.withLock { $0 = code } }
    func stop() { server.stop() }
}

/// The nice value of each thread of process `pid`, by thread name.
func threadNice(of pid: pid_t) -> [String: [Int32]] {
    var nice: [String: [Int32]] = [:]
    for tid in (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? [] {
        let name = ((try? String(contentsOfFile: "/proc/\(pid)/task/\(tid)/comm", encoding: .utf8)) ?? "")
            .trimmingCharacters(in: .whitespacesAndNewlines)
        guard let id = id_t(tid) else { continue }
        errno = 0
        let value = getpriority(__priority_which_t(PRIO_PROCESS.rawValue), id)
        if errno == 0 { nice[name, default: []].append(value) }
    }
    return nice
}

/// The nice value of process `pid` (its main thread), nil if it is gone.
func processNice(of pid: pid_t) -> Int32? {
    errno = 0
    let value = getpriority(__priority_which_t(PRIO_PROCESS.rawValue), id_t(pid))
    return errno == 0 ? value : nil
}

/// A fresh temporary folder, removed by the caller.
func makeTemporaryDirectory() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("vitals-test-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}
