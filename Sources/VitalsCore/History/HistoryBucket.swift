import Foundation

/// Probe latencies counted into fixed buckets, so percentiles of a minute,
/// an hour or a month are a sum of counts away. Bucket `i` holds latencies
/// up to `boundsUs[i]` microseconds; the last holds everything above the
/// last bound. Microseconds, because a probe on loopback or a LAN takes
/// well under a millisecond.
public struct LatencyHistogram: Sendable, Equatable {
    /// Upper bounds in microseconds (1 ms to 10 s). Twelve buckets: a few
    /// bytes a row, and p50/p95/p99 within one bucket's width, which is what
    /// a chart needs.
    public static let boundsUs: [Int64] = [1000, 5000, 10000, 25000, 50000, 100_000, 250_000, 500_000,
                                           1_000_000, 2_500_000, 10_000_000]
    public static let bucketCount = boundsUs.count + 1

    public var counts: [Int64]

    public init(counts: [Int64] = Array(repeating: 0, count: LatencyHistogram.bucketCount)) {
        precondition(counts.count == Self.bucketCount, "a latency histogram has \(Self.bucketCount) buckets")
        self.counts = counts
    }

    public static func bucket(ofUs us: Int64) -> Int {
        var i = 0
        while i < boundsUs.count, us > boundsUs[i] { i += 1 }
        return i
    }

    public mutating func add(us: Int64) {
        counts[Self.bucket(ofUs: us)] += 1
    }

    public mutating func merge(_ other: LatencyHistogram) {
        for i in 0..<Self.bucketCount { counts[i] += other.counts[i] }
    }

    public var total: Int64 { counts.reduce(0, +) }

    /// The `q` quantile (0...1), interpolated within its bucket and kept
    /// within the observed `minUs...maxUs`. Nil without latencies.
    public func quantile(_ q: Double, minUs: Int64, maxUs: Int64) -> Double? {
        let total = self.total
        guard total > 0 else { return nil }
        let rank = max(1, (q * Double(total)).rounded(.up))
        var seen: Int64 = 0
        for i in 0..<Self.bucketCount {
            let count = counts[i]
            guard count > 0 else { continue }
            if Double(seen + count) >= rank {
                let lower = Double(i == 0 ? 0 : Self.boundsUs[i - 1])
                let upper = Double(i < Self.boundsUs.count ? Self.boundsUs[i] : maxUs)
                let within = (rank - Double(seen)) / Double(count)
                let value = lower + (upper - lower) * within
                return min(Double(maxUs), max(Double(minUs), value))
            }
            seen += count
        }
        return Double(maxUs)
    }
}

/// What one service's probes said during one minute or one hour (UTC, so
/// daylight saving never folds or skips a bucket).
///
/// `minutes` counts the minutes with at least one probe result, and
/// `upMinutes` sums each such minute's share of results that were serving
/// (ok or degraded): a minute of 4 results with 1 failure is 0.75 of an up
/// minute. Minutes without results are no data: neither up nor down.
public struct HistoryBucket: Sendable, Equatable {
    public var service: String
    /// Seconds since the Unix epoch, a multiple of `length`.
    public var start: Int64
    /// 60 (a minute bucket) or 3600 (an hour bucket).
    public var length: Int64
    public var probes: Int64
    public var failures: Int64
    public var degraded: Int64
    public var minutes: Int64
    public var upMinutes: Double
    /// Latencies of serving results (ok or degraded); a failure's latency
    /// is the timeout more often than not and says nothing of speed.
    public var latencyCount: Int64
    public var latencyMinUs: Int64
    public var latencyMaxUs: Int64
    public var latencySumUs: Int64
    public var histogram: LatencyHistogram

    public static let minute: Int64 = 60
    public static let hour: Int64 = 3600

    public init(service: String, start: Int64, length: Int64, probes: Int64 = 0, failures: Int64 = 0,
                degraded: Int64 = 0, minutes: Int64 = 0, upMinutes: Double = 0, latencyCount: Int64 = 0,
                latencyMinUs: Int64 = 0, latencyMaxUs: Int64 = 0, latencySumUs: Int64 = 0,
                histogram: LatencyHistogram = LatencyHistogram()) {
        self.service = service
        self.start = start
        self.length = length
        self.probes = probes
        self.failures = failures
        self.degraded = degraded
        self.minutes = minutes
        self.upMinutes = upMinutes
        self.latencyCount = latencyCount
        self.latencyMinUs = latencyMinUs
        self.latencyMaxUs = latencyMaxUs
        self.latencySumUs = latencySumUs
        self.histogram = histogram
    }

    /// The start of the bucket of `length` seconds that holds `time`. Floors
    /// toward the past for times before 1970 too.
    public static func start(of time: Date, length: Int64) -> Int64 {
        let seconds = Int64(time.timeIntervalSince1970.rounded(.down))
        return floorStart(seconds, length: length)
    }

    public static func floorStart(_ seconds: Int64, length: Int64) -> Int64 {
        let r = seconds % length
        return r < 0 ? seconds - r - length : seconds - r
    }

    /// Adds one result. Unknown outcomes say nothing of the service and are
    /// not counted (the caller drops them).
    mutating func add(_ outcome: ProbeOutcome, latencyUs: Int64?) {
        switch outcome {
        case .ok: break
        case .degraded: degraded += 1
        case .failed: failures += 1
        case .unknown: return
        }
        probes += 1
        if outcome != .failed, let us = latencyUs {
            addLatency(us)
        }
        sealMinute()
    }

    private mutating func addLatency(_ us: Int64) {
        latencyMinUs = latencyCount == 0 ? us : min(latencyMinUs, us)
        latencyMaxUs = latencyCount == 0 ? us : max(latencyMaxUs, us)
        latencyCount += 1
        latencySumUs += us
        histogram.add(us: us)
    }

    /// For a minute bucket: `minutes` and `upMinutes` from its counts.
    mutating func sealMinute() {
        minutes = probes > 0 ? 1 : 0
        upMinutes = probes > 0 ? Double(probes - failures) / Double(probes) : 0
    }

    /// Adds `other`'s counts and latencies (not `minutes` and `upMinutes`).
    mutating func addCounts(_ other: HistoryBucket) {
        probes += other.probes
        failures += other.failures
        degraded += other.degraded
        if other.latencyCount > 0 {
            latencyMinUs = latencyCount == 0 ? other.latencyMinUs : min(latencyMinUs, other.latencyMinUs)
            latencyMaxUs = latencyCount == 0 ? other.latencyMaxUs : max(latencyMaxUs, other.latencyMaxUs)
            latencyCount += other.latencyCount
            latencySumUs += other.latencySumUs
            histogram.merge(other.histogram)
        }
    }

    /// Two buckets of the same span (hours into a day, say): everything adds.
    public func merged(with other: HistoryBucket) -> HistoryBucket {
        var out = self
        out.addCounts(other)
        out.minutes += other.minutes
        out.upMinutes += other.upMinutes
        return out
    }

    /// The same minute seen twice (a restart within the minute, or a clock
    /// stepped back into a minute already written): the counts add, and the
    /// minute is still one minute.
    public func mergedMinute(with other: HistoryBucket) -> HistoryBucket {
        var out = self
        out.addCounts(other)
        out.sealMinute()
        return out
    }

    /// Writing minute bucket `new` over `stored` (nil when the minute is new):
    /// the minute row to keep, and what to add to its hour row so the hour
    /// stays the sum of its minutes without reading them back.
    public static func write(_ new: HistoryBucket, over stored: HistoryBucket?) -> (minute: HistoryBucket, hourDelta: HistoryBucket) {
        let minute = stored.map { $0.mergedMinute(with: new) } ?? new
        var delta = HistoryBucket(service: new.service, start: floorStart(new.start, length: hour), length: hour)
        delta.addCounts(new)
        delta.minutes = minute.minutes - (stored?.minutes ?? 0)
        delta.upMinutes = minute.upMinutes - (stored?.upMinutes ?? 0)
        return (minute, delta)
    }

    /// How the bucket looks on a bar: no data, all serving, some failures, all failed.
    public var state: BucketState {
        if probes == 0 { return .noData }
        if failures == probes { return .down }
        if failures > 0 { return .partial }
        if degraded > 0 { return .degraded }
        return .up
    }
}

/// One bar of a history bar.
public enum BucketState: String, Sendable, Equatable, Codable {
    case noData = "no_data"
    case up, degraded, partial, down
}
