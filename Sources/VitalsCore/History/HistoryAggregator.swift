import Foundation

/// Probe results folded into per-minute buckets in memory, until the
/// history writer takes them (once a minute, and at shutdown).
///
/// A result lands in the minute of its own timestamp, in UTC. A wall clock
/// stepped backwards puts later results in an earlier minute: that minute is
/// drained like any other, and the store adds it to what it already holds.
///
/// Buckets are kept per minute, so taking the finished minutes (under the
/// lock the probe loop also takes) moves a few dictionaries and copies no
/// bucket; flattening and sorting them happen after the lock is released.
public struct HistoryAggregator: Sendable {
    /// Minute start → service → bucket.
    private var minutes: [Int64: [String: HistoryBucket]] = [:]

    public init() {}

    /// Buckets not yet drained.
    public var pendingCount: Int { minutes.values.reduce(0) { $0 + $1.count } }

    public mutating func record(_ result: ProbeResult, service: String) {
        guard result.outcome != .unknown else { return }
        let start = HistoryBucket.start(of: result.time, length: HistoryBucket.minute)
        let latency = result.latency.map { max(0, Int64(($0.seconds * 1e6).rounded())) }
        minutes[start, default: [:]][service, default: HistoryBucket(service: service, start: start, length: HistoryBucket.minute)]
            .add(result.outcome, latencyUs: latency)
    }

    /// The finished minutes, taken out: every minute except the one `now`
    /// is in, which may still grow; with `all`, that one too (at shutdown).
    /// Cheap enough to call under a lock; `flatten` them afterwards.
    public mutating func takeFinished(now: Date, all: Bool = false) -> [[String: HistoryBucket]] {
        let current = HistoryBucket.start(of: now, length: HistoryBucket.minute)
        var taken: [[String: HistoryBucket]] = []
        for start in Array(minutes.keys) where all || start != current {
            if let buckets = minutes.removeValue(forKey: start) { taken.append(buckets) }
        }
        return taken
    }

    /// Taken minutes as one list, ordered by start, then service.
    public static func flatten(_ taken: [[String: HistoryBucket]]) -> [HistoryBucket] {
        var out: [HistoryBucket] = []
        out.reserveCapacity(taken.reduce(0) { $0 + $1.count })
        for buckets in taken { out.append(contentsOf: buckets.values) }
        out.sort { ($0.start, $0.service) < ($1.start, $1.service) }
        return out
    }

    /// `takeFinished` and `flatten` in one step.
    public mutating func drain(now: Date, all: Bool = false) -> [HistoryBucket] {
        Self.flatten(takeFinished(now: now, all: all))
    }
}
