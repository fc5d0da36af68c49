import Foundation

/// A service's uptime over a span: the share of minutes *with data* that
/// were serving. Minutes with no probe result (the agent was stopped, the
/// service not yet configured) count neither up nor down; they are
/// reported as `noDataSeconds` and, at minute resolution, as `gaps`.
public struct UptimeFigure: Sendable, Equatable {
    /// A run of minutes without data.
    public struct Gap: Sendable, Equatable {
        public var from: Int64
        public var to: Int64
        public init(from: Int64, to: Int64) {
            self.from = from
            self.to = to
        }
    }

    /// The span, in seconds since the epoch, aligned to the buckets used.
    public var from: Int64
    public var to: Int64
    /// upSeconds / observedSeconds; nil when no minute has data.
    public var ratio: Double?
    public var observedSeconds: Int64
    public var upSeconds: Double
    public var noDataSeconds: Int64
    /// At minute resolution; nil when computed from hours.
    public var gaps: [Gap]?

    public var downSeconds: Double { Double(observedSeconds) - upSeconds }
}

public enum Uptime {
    /// Uptime over `[from, to)` from buckets of `length` seconds (60 or
    /// 3600), for one service. `from` is aligned down to the bucket length
    /// (so a bucket is never half in); `to` is taken as given, so the hour
    /// in progress does not count its future as no data. Buckets starting
    /// outside are ignored.
    public static func compute(_ buckets: [HistoryBucket], from: Int64, to: Int64, length: Int64) -> UptimeFigure {
        let start = HistoryBucket.floorStart(from, length: length)
        let end = max(start, to)
        var minutes: Int64 = 0
        var up: Double = 0
        var covered = Set<Int64>()
        for bucket in buckets where bucket.start >= start && bucket.start < end && bucket.minutes > 0 {
            minutes += bucket.minutes
            up += bucket.upMinutes
            if length == HistoryBucket.minute { covered.insert(bucket.start) }
        }
        let observed = minutes * 60
        var gaps: [UptimeFigure.Gap]?
        if length == HistoryBucket.minute {
            var runs: [UptimeFigure.Gap] = []
            var t = start
            while t < end {
                if !covered.contains(t) {
                    if let last = runs.last, last.to == t { runs[runs.count - 1].to = t + 60 } else { runs.append(.init(from: t, to: t + 60)) }
                }
                t += 60
            }
            gaps = runs
        }
        return UptimeFigure(from: start, to: end, ratio: minutes > 0 ? up / Double(minutes) : nil,
                            observedSeconds: observed, upSeconds: up * 60,
                            noDataSeconds: max(0, end - start - observed), gaps: gaps)
    }
}

/// One point of a history series: the buckets of `[time, time + step)` merged.
public struct HistoryPoint: Sendable, Equatable {
    public var time: Int64
    public var step: Int64
    public var bucket: HistoryBucket

    public var state: BucketState { bucket.state }
    /// Serving share of the minutes with data; nil without data.
    public var uptime: Double? { bucket.minutes > 0 ? bucket.upMinutes / Double(bucket.minutes) : nil }
    /// The `q` quantile of latency, in microseconds.
    public func latencyUs(_ q: Double) -> Double? {
        bucket.histogram.quantile(q, minUs: bucket.latencyMinUs, maxUs: bucket.latencyMaxUs)
    }
    public var latencyAverageUs: Double? {
        bucket.latencyCount > 0 ? Double(bucket.latencySumUs) / Double(bucket.latencyCount) : nil
    }
}

public enum HistorySeries {
    /// Points every `step` seconds over `[from, to)` (aligned down to `step`),
    /// one per step even where there is no data, from buckets of one
    /// service. `step` should be a multiple of the buckets' length.
    public static func points(_ buckets: [HistoryBucket], service: String, from: Int64, to: Int64, step: Int64) -> [HistoryPoint] {
        let start = HistoryBucket.floorStart(from, length: step)
        guard step > 0, to > start else { return [] }
        let count = Int((to - start + step - 1) / step)
        var points = (0..<count).map { i in
            let t = start + Int64(i) * step
            return HistoryPoint(time: t, step: step, bucket: HistoryBucket(service: service, start: t, length: step))
        }
        for bucket in buckets where bucket.start >= start && bucket.start < to {
            let i = Int((bucket.start - start) / step)
            points[i].bucket = points[i].bucket.merged(with: bucket)
        }
        return points
    }
}

extension Uptime {
    /// A group's buckets from its members': the group serves while its best
    /// member serves, so each bucket takes the highest serving share among
    /// the members with data then (and their latest latency figures are not
    /// kept). Exact for minutes; for hours, the best member's hour, which
    /// can only overstate a group whose members failed at different minutes.
    public static func group(_ members: [[HistoryBucket]], name: String) -> [HistoryBucket] {
        var best: [Int64: HistoryBucket] = [:]
        for buckets in members {
            for b in buckets where b.minutes > 0 {
                let share = b.upMinutes / Double(b.minutes)
                if let current = best[b.start], current.upMinutes / Double(current.minutes) >= share { continue }
                best[b.start] = HistoryBucket(service: name, start: b.start, length: b.length, probes: b.probes,
                                              failures: b.failures, degraded: b.degraded, minutes: b.minutes,
                                              upMinutes: b.upMinutes)
            }
        }
        return best.values.sorted { $0.start < $1.start }
    }
}
