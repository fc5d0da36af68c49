#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// Whether `pid` no longer runs: no such process, or a zombie waiting for
/// its (new) parent to reap it.
public func isGone(_ pid: pid_t) -> Bool {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
          let close = stat.lastIndex(of: ")") else { return true }
    let state = stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).first
    return state == "Z" || state == "X"
}

/// Polls until `pid` is gone or `limit` passes.
public func waitUntilGone(_ pid: pid_t, within limit: Duration = .seconds(5)) async -> Bool {
    let deadline = ContinuousClock.now + limit
    while ContinuousClock.now < deadline {
        if isGone(pid) { return true }
        try? await Task.sleep(for: .milliseconds(20))
    }
    return isGone(pid)
}

/// Polls until `path` holds a pid (a script wrote `$$` there), or `limit` passes.
public func readPid(_ path: String, within limit: Duration = .seconds(5)) async -> pid_t? {
    let deadline = ContinuousClock.now + limit
    while ContinuousClock.now < deadline {
        if let text = try? String(contentsOfFile: path, encoding: .utf8),
           let pid = pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines)) {
            return pid
        }
        try? await Task.sleep(for: .milliseconds(20))
    }
    return nil
}

/// Runs `body` on a thread of its own: for blocking calls, and for tests
/// that change the thread's signal mask.
public func onOwnThread<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
        Thread { continuation.resume(returning: body()) }.start()
    }
}

/// A command that exited with a status other than 0: the command line and
/// what it printed.
public struct CommandFailed: Error, CustomStringConvertible {
    public var description: String
}

/// Runs `arguments` (an absolute path first) to completion, stdout and stderr
/// together; throws `CommandFailed` with both when it exits other than 0,
/// unless `allowFailure`.
@discardableResult
public func runCommand(_ arguments: [String], allowFailure: Bool = false) throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: arguments[0])
    process.arguments = Array(arguments.dropFirst())
    let output = Pipe()
    process.standardOutput = output
    process.standardError = output
    try process.run()
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    let text = String(decoding: data, as: UTF8.self)
    guard allowFailure || process.terminationStatus == 0 else {
        throw CommandFailed(description: "\(arguments.joined(separator: " ")): \(text)")
    }
    return (process.terminationStatus, text)
}
