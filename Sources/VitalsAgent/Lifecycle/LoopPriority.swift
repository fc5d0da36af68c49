import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Whether the agent's loop threads (the status server's `vitals-http`, the
/// prober's `vitals-probe`) run at the priority the operator gave the
/// process. They take it when they start, but a thread started at nice 0
/// cannot go below 0 without privilege: under systemd with `User=` and a
/// negative `Nice=`, that needs `LimitNICE=` too. Said once, at start.
enum LoopPriority {
    static let loopNames: Set<String> = ["vitals-http", "vitals-probe"]

    /// The warning to log, or nil when every loop runs at the process's nice.
    static func warning(processNice: Int32, loops: [String: Int32]) -> String? {
        let off = loops.filter { $0.value != processNice }.sorted { $0.key < $1.key }
        guard !off.isEmpty else { return nil }
        let list = off.map { "\($0.key) runs at nice \($0.value)" }.joined(separator: ", ")
        return "the agent was started at nice \(processNice) but \(list): lowering a thread's nice value "
            + "needs CAP_SYS_NICE or a matching RLIMIT_NICE (under systemd, add LimitNICE=\(processNice) next to Nice=)"
    }

    /// The nice value of the process (its main thread), as the operator set it.
    static var processNice: Int32 {
        getpriority(__priority_which_t(PRIO_PROCESS.rawValue), id_t(getpid()))
    }

    /// The nice value of each of this process's threads named in `names`.
    static func threadNice(names: Set<String> = loopNames) -> [String: Int32] {
        var found: [String: Int32] = [:]
        for tid in (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? [] {
            guard let comm = try? String(contentsOfFile: "/proc/self/task/\(tid)/comm", encoding: .utf8) else { continue }
            let name = comm.trimmingCharacters(in: .whitespacesAndNewlines)
            guard names.contains(name), let id = id_t(tid) else { continue }
            errno = 0
            let nice = getpriority(__priority_which_t(PRIO_PROCESS.rawValue), id)
            if errno == 0 { found[name] = nice }
        }
        return found
    }
}
