#if canImport(Glibc)
import Glibc
#endif
import Foundation
import VitalsTestKit

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
