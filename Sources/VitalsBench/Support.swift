import Foundation
#if canImport(Glibc)
import Glibc
#endif

struct UsageError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// The command line, consumed left to right.
struct Arguments {
    private var rest: ArraySlice<String>
    init(_ all: [String]) { rest = all[...] }

    mutating func next() -> String? { rest.popFirst() }

    mutating func value(_ flag: String) throws -> String {
        guard let value = rest.popFirst() else { throw UsageError("\(flag) needs a value") }
        return value
    }

    mutating func int(_ flag: String) throws -> Int {
        let text = try value(flag)
        guard let value = Int(text) else { throw UsageError("\(flag): not a whole number: \(text)") }
        return value
    }

    mutating func double(_ flag: String) throws -> Double {
        let text = try value(flag)
        guard let value = Double(text) else { throw UsageError("\(flag): not a number: \(text)") }
        return value
    }
}

enum FileStream {
    case standardError
    func write(_ text: String) {
        var text = text
        text.withUTF8 { bytes in _ = Glibc.write(2, bytes.baseAddress, bytes.count) }
    }
}

/// Fixed decimals, without a format string.
func fixed(_ value: Double, _ decimals: Int) -> String {
    String(format: "%.\(decimals)f", value)
}

/// Now on the monotonic clock, in nanoseconds.
@inline(__always)
func monotonicNanoseconds() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
}

func nanoseconds(_ duration: Duration) -> Int64 {
    let (seconds, attoseconds) = duration.components
    return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
}

func sleep(seconds: Double) {
    guard seconds > 0 else { return }
    var request = timespec(tv_sec: Int(seconds), tv_nsec: Int((seconds - Double(Int(seconds))) * 1e9))
    var remaining = timespec()
    while nanosleep(&request, &remaining) != 0 && errno == EINTR { request = remaining }
}

/// This process's CPU time (user + system, all threads) and peak RSS.
struct ProcessUsage {
    var cpuSeconds: Double
    var userSeconds: Double
    var systemSeconds: Double
    /// ru_maxrss: the high-water mark since the process started, in KiB.
    var maxRSSKiB: Int

    static func now() -> ProcessUsage {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        let user = Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6
        let system = Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
        return ProcessUsage(cpuSeconds: user + system, userSeconds: user, systemSeconds: system,
                            maxRSSKiB: Int(usage.ru_maxrss))
    }
}

/// Current RSS from /proc/self/statm, in KiB.
func currentRSSKiB() -> Int? {
    guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return nil }
    let fields = text.split(separator: " ")
    guard fields.count > 1, let pages = Int(fields[1]) else { return nil }
    return pages * Int(sysconf(Int32(_SC_PAGESIZE))) / 1024
}

/// CPU seconds (utime + stime) of a process and its direct children, from
/// /proc: used to show that the backend fleet is not the bottleneck.
func processTreeCPUSeconds(_ pid: Int32) -> Double? {
    func cpu(of pid: Int32) -> Double? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = text.lastIndex(of: ")") else { return nil }
        // Fields after the command: state is field 3; utime and stime are 14 and 15.
        let fields = text[text.index(after: close)...].split(separator: " ")
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }
    guard var total = cpu(of: pid) else { return nil }
    let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
    for task in tasks {
        guard let children = try? String(contentsOfFile: "/proc/\(pid)/task/\(task)/children", encoding: .utf8) else { continue }
        for child in children.split(separator: " ").compactMap({ Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }) {
            total += cpu(of: child) ?? 0
        }
    }
    return total
}

/// Nearest-rank percentile of sorted values.
func percentile(_ sorted: [Int64], _ p: Double) -> Int64 {
    guard !sorted.isEmpty else { return 0 }
    let index = min(sorted.count - 1, max(0, Int((p * Double(sorted.count)).rounded(.up)) - 1))
    return sorted[index]
}

func milliseconds(_ nanoseconds: Int64) -> String {
    fixed(Double(nanoseconds) / 1e6, 3)
}

func loadAverage() -> String {
    (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))?
        .trimmingCharacters(in: .whitespacesAndNewlines) ?? "?"
}

/// Descriptors of this process that are sockets.
func openSocketCount() -> Int {
    let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
    var count = 0
    var buffer = [CChar](repeating: 0, count: 64)
    for entry in entries {
        let length = readlink("/proc/self/fd/\(entry)", &buffer, buffer.count - 1)
        if length > 7, String(decoding: buffer[0..<7].map { UInt8(bitPattern: $0) }, as: UTF8.self) == "socket:" { count += 1 }
    }
    return count
}
