#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Synchronization
import VitalsCore
import VitalsHistory

/// `vitals-bench history`: the history store under N services probed every
/// second, on simulated time (a clock the bench moves), so a day's file
/// growth is measured in seconds. Per minute: the CPU the probe loop spends
/// handing results over, and the flush's wall and CPU time; then the file's
/// growth per day, measured across a close (which checkpoints the WAL).
struct HistoryBench {
    struct Options {
        var services = 1000
        /// Simulated minutes measured, after `warmup` minutes.
        var minutes = 20
        var warmup = 5
        var resultsPerMinute = 60
        var directory = "/tmp"
    }

    final class BenchClock: VitalsClock, Sendable {
        private let current = Mutex(Date(timeIntervalSince1970: 1_800_007_200))
        func now() -> Date { current.withLock { $0 } }
        func set(_ date: Date) { current.withLock { $0 = date } }
    }

    let options: Options
    init(_ options: Options) { self.options = options }

    func run() throws {
        let dir = "\(options.directory)/vitals-history-bench-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let clock = BenchClock()
        let names = (0..<options.services).map { String(format: "svc-%05d", $0) }
        let start = clock.now()
        var minute = 0

        func simulate(_ recorder: HistoryRecorder, minutes: Int, measure: Bool) -> (recordCPU: [Double], flushWall: [Double], flushCPU: [Double]) {
            var recordCPU: [Double] = [], flushWall: [Double] = [], flushCPU: [Double] = []
            for _ in 0..<minutes {
                let base = start.addingTimeInterval(Double(minute * 60))
                let c0 = ProcessUsage.now().cpuSeconds
                for r in 0..<options.resultsPerMinute {
                    let t = base.addingTimeInterval(Double(r) * 60 / Double(options.resultsPerMinute))
                    clock.set(t)
                    for (i, name) in names.enumerated() {
                        let failed = (i + minute) % 97 == 0
                        recorder.record(ProbeResult(time: t, latency: .milliseconds(Int64(1 + (i + r) % 40)),
                                                    outcome: failed ? .failed : .ok), service: name)
                    }
                }
                let c1 = ProcessUsage.now().cpuSeconds
                minute += 1
                clock.set(start.addingTimeInterval(Double(minute * 60) + 1))
                let w0 = monotonicNanoseconds()
                recorder.flush()
                let w1 = monotonicNanoseconds()
                let c2 = ProcessUsage.now().cpuSeconds
                if measure {
                    recordCPU.append(c1 - c0)
                    flushWall.append(Double(w1 - w0) / 1e9)
                    flushCPU.append(c2 - c1)
                }
            }
            return (recordCPU, flushWall, flushCPU)
        }

        let baselineRSS = Self.statusKiB("VmRSS")
        let warm = HistoryRecorder(stateDir: dir, clock: clock, warn: { FileStream.standardError.write("history: \($0)\n") })
        warm.open()
        _ = simulate(warm, minutes: options.warmup, measure: false)
        warm.stop()
        let before = Self.size(dir)

        let recorder = HistoryRecorder(stateDir: dir, clock: clock, warn: { FileStream.standardError.write("history: \($0)\n") })
        recorder.open()
        let figures = simulate(recorder, minutes: options.minutes, measure: true)
        recorder.stop()
        let after = Self.size(dir)

        func median(_ v: [Double]) -> Double { v.isEmpty ? 0 : v.sorted()[v.count / 2] }
        let growthPerDay = Double(after - before) / Double(options.minutes) * 1440
        let resultsPerMinute = Double(options.services * options.resultsPerMinute)
        print("services=\(options.services) minutes=\(options.minutes)"
              + " record_cpu_ms_per_min=\(fixed(median(figures.recordCPU) * 1000, 1))"
              + " record_ns_per_result=\(fixed(median(figures.recordCPU) / resultsPerMinute * 1e9, 0))"
              + " flush_ms_p50=\(fixed(median(figures.flushWall) * 1000, 1))"
              + " flush_ms_max=\(fixed((figures.flushWall.max() ?? 0) * 1000, 1))"
              + " flush_cpu_ms_p50=\(fixed(median(figures.flushCPU) * 1000, 1))"
              + " cpu_pct_of_core=\(fixed((median(figures.recordCPU) + median(figures.flushCPU)) / 60 * 100, 2))"
              + " file_mb=\(fixed(Double(after) / 1_048_576, 1))"
              + " growth_mb_per_day=\(fixed(growthPerDay / 1_048_576, 1))"
              + " bytes_per_service_minute=\(fixed(Double(after - before) / Double(options.minutes * options.services), 0))"
              + " rss_peak_added_mb=\(fixed(Double(Self.statusKiB("VmHWM") - baselineRSS) / 1024, 1))")
    }

    /// A `/proc/self/status` figure in KiB (`VmRSS`, `VmHWM`).
    static func statusKiB(_ field: String) -> Int {
        let text = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
        for line in text.split(separator: "\n") where line.hasPrefix(field + ":") {
            return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") ?? 0
        }
        return 0
    }

    static func size(_ dir: String) -> Int {
        var total = 0
        for suffix in ["", "-wal"] {
            var info = stat()
            if stat("\(dir)/history.sqlite\(suffix)", &info) == 0 { total += Int(info.st_size) }
        }
        return total
    }
}
