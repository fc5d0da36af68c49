#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// A fresh directory for one test's scripts and marker files.
struct Scratch {
    let path: String

    init() throws {
        path = FileManager.default.temporaryDirectory
            .appendingPathComponent("vitals-process-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func file(_ name: String) -> String { path + "/" + name }

    /// Writes a `/bin/sh` script and makes it executable (unless told not to).
    @discardableResult
    func script(_ name: String, _ body: String, executable: Bool = true) throws -> String {
        let target = file(name)
        try ("#!/bin/sh\n" + body + "\n").write(toFile: target, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: executable ? 0o755 : 0o644], ofItemAtPath: target)
        return target
    }

    func remove() { try? FileManager.default.removeItem(atPath: path) }
}

/// Whether `pid` no longer runs: no such process, or a zombie waiting for
/// its (new) parent to reap it.
func isGone(_ pid: pid_t) -> Bool {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else { return true }
    guard let close = stat.lastIndex(of: ")") else { return true }
    let state = stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).first
    return state == "Z" || state == "X"
}

/// Polls until `pid` is gone or `limit` passes.
func waitUntilGone(_ pid: pid_t, within limit: Duration = .seconds(5)) async -> Bool {
    let deadline = ContinuousClock.now + limit
    while ContinuousClock.now < deadline {
        if isGone(pid) { return true }
        try? await Task.sleep(for: .milliseconds(20))
    }
    return isGone(pid)
}

/// Polls until `path` holds a pid, or `limit` passes.
func readPid(_ path: String, within limit: Duration = .seconds(5)) async -> pid_t? {
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

/// Reaped: `kill(pid, 0)` fails with ESRCH (a zombie would still answer).
func isReaped(_ pid: pid_t) -> Bool {
    kill(pid, 0) == -1 && errno == ESRCH
}

/// The children of this process that are zombies right now.
func zombieChildren() -> [pid_t] {
    let me = getpid()
    guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
    return entries.compactMap { entry -> pid_t? in
        guard let pid = pid_t(entry),
              let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 2, fields[0] == "Z", pid_t(fields[1]) == me else { return nil }
        return pid
    }
}

/// Runs `body` on a thread of its own (for tests that change the thread's signal mask).
func onOwnThread<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
        Thread { continuation.resume(returning: body()) }.start()
    }
}
