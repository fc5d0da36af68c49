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
