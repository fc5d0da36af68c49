/// The scheduler's counters, as a snapshot.
public struct ProbeStatistics: Sendable, Equatable {
    /// Probes started since the scheduler started.
    public var started: UInt64 = 0
    /// Probes whose result was delivered.
    public var completed: UInt64 = 0
    /// Probes still in flight when their next one fell due (never doubled).
    public var overruns: UInt64 = 0
    /// Overruns by service name; services without overruns are absent.
    public var overrunsByService: [String: UInt64] = [:]
    /// Probes in flight now.
    public var inFlight: Int = 0
    /// Actual start minus planned start.
    public var lateness = LatenessSummary()

    public init() {}
}

/// Percentiles of scheduling lateness over the most recent samples, and the
/// worst since start.
public struct LatenessSummary: Sendable, Equatable {
    /// How many recent samples p50 and p99 are taken over.
    public var samples: Int = 0
    public var p50: Duration = .zero
    public var p99: Duration = .zero
    /// The largest lateness since the scheduler started.
    public var max: Duration = .zero

    public init(samples: Int = 0, p50: Duration = .zero, p99: Duration = .zero, max: Duration = .zero) {
        self.samples = samples
        self.p50 = p50
        self.p99 = p99
        self.max = max
    }
}

/// The counters as the loop keeps them: a fixed ring of recent lateness samples.
struct StatisticsRecorder {
    static let sampleCapacity = 4096

    var started: UInt64 = 0
    var completed: UInt64 = 0
    var overruns: UInt64 = 0
    var overrunsByService: [String: UInt64] = [:]
    var inFlight = 0
    private var samples: [Int64] = []
    private var nextSample = 0
    private var maxLateness: Int64 = 0

    mutating func recordLateness(_ nanoseconds: Int64) {
        let value = Swift.max(0, nanoseconds)
        maxLateness = Swift.max(maxLateness, value)
        if samples.count < Self.sampleCapacity {
            samples.append(value)
        } else {
            samples[nextSample] = value
            nextSample = (nextSample + 1) % Self.sampleCapacity
        }
    }

    /// The raw samples, for summarizing outside the lock.
    var rawSamples: [Int64] { samples }

    func snapshot(sorted: [Int64]) -> ProbeStatistics {
        var s = ProbeStatistics()
        s.started = started
        s.completed = completed
        s.overruns = overruns
        s.overrunsByService = overrunsByService
        s.inFlight = inFlight
        s.lateness = Self.summarize(sorted: sorted, max: maxLateness)
        return s
    }

    /// p50 and p99 by nearest rank over sorted samples.
    static func summarize(sorted: [Int64], max: Int64) -> LatenessSummary {
        guard !sorted.isEmpty else { return LatenessSummary(max: .nanoseconds(max)) }
        func rank(_ p: Double) -> Duration {
            let index = Swift.min(sorted.count - 1, Swift.max(0, Int((p * Double(sorted.count)).rounded(.up)) - 1))
            return .nanoseconds(sorted[index])
        }
        return LatenessSummary(samples: sorted.count, p50: rank(0.5), p99: rank(0.99), max: .nanoseconds(max))
    }
}
