import Foundation

/// Probe results folded into per-minute buckets in memory, until the
/// history writer takes them (once a minute, and at shutdown).
///
/// A result lands in the minute of its own timestamp, in UTC. A wall clock
/// stepped backwards puts later results in an earlier minute: that minute is
/// drained like any other, and the store adds it to what it already holds.
public struct HistoryAggregator: Sendable {
    private struct Key: Hashable {
        var service: String
        var start: Int64
    }

    private var open: [Key: HistoryBucket] = [:]

    public init() {}

    /// Buckets not yet drained.
    public var pendingCount: Int { open.count }

    public mutating func record(_ result: ProbeResult, service: String) {
        guard result.outcome != .unknown else { return }
        let start = HistoryBucket.start(of: result.time, length: HistoryBucket.minute)
        let key = Key(service: service, start: start)
        let latency = result.latency.map { max(0, Int64(($0.seconds * 1e6).rounded())) }
        open[key, default: HistoryBucket(service: service, start: start, length: HistoryBucket.minute)]
            .add(result.outcome, latencyUs: latency)
    }

    /// Takes every bucket except those of the minute `now` is in, which may
    /// still grow; with `all`, that one too (at shutdown). Ordered by start,
    /// then service.
    public mutating func drain(now: Date, all: Bool = false) -> [HistoryBucket] {
        let current = HistoryBucket.start(of: now, length: HistoryBucket.minute)
        var out: [HistoryBucket] = []
        out.reserveCapacity(open.count)
        if all {
            out.append(contentsOf: open.values)
            open.removeAll(keepingCapacity: true)
        } else {
            for (key, bucket) in open where key.start != current {
                out.append(bucket)
            }
            for bucket in out { open[Key(service: bucket.service, start: bucket.start)] = nil }
        }
        out.sort { ($0.start, $0.service) < ($1.start, $1.service) }
        return out
    }
}
