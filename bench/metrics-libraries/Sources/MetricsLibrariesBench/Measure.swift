import CHeap
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Thread CPU time and monotonic wall time, in nanoseconds. CPU time is the
/// figure reported: the machine is shared, so wall time also counts waiting.
struct Stopwatch {
    static func cpu() -> UInt64 { read(CLOCK_THREAD_CPUTIME_ID) }
    static func wall() -> UInt64 { read(CLOCK_MONOTONIC) }

    private static func read(_ id: clockid_t) -> UInt64 {
        var ts = timespec()
        clock_gettime(id, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    /// Runs `body` and answers (cpu ns, wall ns).
    static func time(_ body: () -> Void) -> (cpu: UInt64, wall: UInt64) {
        let c0 = cpu(), w0 = wall()
        body()
        return (cpu() - c0, wall() - w0)
    }
}

/// Resident set size and heap bytes in use.
struct MemoryUse {
    var rss: Int
    var heap: Int

    static func now() -> MemoryUse {
        var rss = 0
        if let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) {
            let fields = text.split(separator: " ")
            if fields.count > 1, let pages = Int(fields[1]) { rss = pages * Int(sysconf(Int32(_SC_PAGESIZE))) }
        }
        return MemoryUse(rss: rss, heap: Int(cheap_heap_in_use()))
    }
}

func megabytes(_ bytes: Int) -> String { String(format: "%.1f", Double(bytes) / 1_048_576) }

func median(_ values: [UInt64]) -> UInt64 {
    let sorted = values.sorted()
    return sorted[sorted.count / 2]
}
