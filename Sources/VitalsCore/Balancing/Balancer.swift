import Foundation

/// One member `Balancer.pick` may choose, as the caller sees it right now.
public struct BalanceCandidate: Sendable, Equatable {
    public var name: String
    /// The configured weight (`weights:`), 1...1000; anything lower counts as 1.
    public var weight: Int
    public var state: HealthState
    /// Recent probe latency (see `Balancer.recentLatency(of:last:)`); nil until one is measured.
    public var latency: Duration?

    public init(name: String, weight: Int = 1, state: HealthState, latency: Duration? = nil) {
        self.name = name
        self.weight = weight
        self.state = state
        self.latency = latency
    }
}

/// The member chosen for one client, and why.
public struct BalancePick: Sendable, Equatable {
    public var member: String
    public var policy: BalancePolicy
    /// Why, in an operator's words: "hash of key 10.0.0.7", "lowest latency 3.1ms".
    public var reason: String

    public init(member: String, policy: BalancePolicy, reason: String) {
        self.member = member
        self.policy = policy
        self.reason = reason
    }
}

/// Chooses one serving member of a group for a client, by the group's
/// `balance:` policy. Pure: the caller supplies states and latencies, and the
/// only state kept is the rotation counters of the rotating policies.
///
/// **Candidates.** Only serving members (`up`, `degraded`) are chosen; the
/// others are skipped. Order matters: it is the priority order, and ties go
/// to the earlier candidate. A name seen again after its first occurrence is
/// ignored. No serving candidate: nil.
///
/// **Effective weight.** A member's base weight is its configured weight
/// under `hash` and `weighted`, and 1 under `round-robin` and
/// `least-latency`. A degraded member keeps `degradedWeight` of it, never
/// less than `minimumDegradedShare` (so it still sees some traffic and its
/// recovery shows). Weights are counted in thousandths, so the rotation is
/// exact integer arithmetic.
///
/// **Policies.**
/// - `hash`: weighted rendezvous hashing (`RendezvousHash`) on the key: the
///   same key goes to the same member while that member serves, and only the
///   keys of a member that stops serving move. Without a key (nil or empty)
///   it falls back to the `weighted` rotation.
/// - `weighted`: smooth weighted round-robin exactly as nginx does it: on
///   each pick every candidate's counter grows by its effective weight, the
///   highest counter wins (the earliest on a tie), and the winner's counter
///   drops by the sum of the weights. Weights 5, 1, 1 give `a a b a c a a`.
///   Counters belong to member names and, as in nginx, a member out of the
///   candidate set keeps its counter until it is back.
/// - `round-robin`: the same rotation with every base weight 1, so serving
///   members take turns in order (degraded ones less often).
/// - `least-latency`: among candidates with a measured latency, those at most
///   `latencyTolerance` above the lowest (lowest × (1 + tolerance)) are taken
///   as equal and take turns as in `round-robin`. Members without a latency
///   come last: they are chosen (taking turns) only when no candidate has one.
/// - `priority`: the first serving candidate.
public struct Balancer: Sendable, Equatable {
    public let policy: BalancePolicy
    /// For `least-latency`: the share above the lowest latency still taken as equal.
    public let latencyTolerance: Double
    /// The share of its weight a degraded member keeps; at least `minimumDegradedShare`.
    public let degradedWeight: Double

    /// A degraded member always keeps at least 1% of its weight.
    public static let minimumDegradedShare = 0.01
    /// Weights are counted in thousandths of a configured weight.
    static let weightScale = 1000

    /// Smooth weighted round-robin counters, by member name.
    private var current: [String: Int] = [:]

    public init(policy: BalancePolicy, latencyTolerance: Double = 0.1, degradedWeight: Double = 0.5) {
        self.policy = policy
        self.latencyTolerance = latencyTolerance.isFinite ? max(0, latencyTolerance) : 0
        self.degradedWeight = degradedWeight.isFinite
            ? min(1, max(Self.minimumDegradedShare, degradedWeight)) : Self.minimumDegradedShare
    }

    /// A balancer with the group's `balance`, `latency_tolerance` and `degraded_weight`.
    public init(group: GroupConfig) {
        self.init(policy: group.balance, latencyTolerance: group.latencyTolerance,
                  degradedWeight: group.degradedWeight)
    }

    /// Whether `group` asks for exactly this balancer's settings: a reload that
    /// changed none of them should keep this balancer (and its counters).
    public func matches(_ group: GroupConfig) -> Bool {
        let fresh = Balancer(group: group)
        return policy == fresh.policy && latencyTolerance == fresh.latencyTolerance
            && degradedWeight == fresh.degradedWeight
    }

    /// The member for a client with `key` (usually its IP), by the policy
    /// (see the type's contract). Nil when no candidate serves.
    public mutating func pick(key: String?, candidates: [BalanceCandidate]) -> BalancePick? {
        var seen: Set<String> = []
        let serving = candidates.filter { $0.state.isServing && seen.insert($0.name).inserted }
        guard !serving.isEmpty else { return nil }

        switch policy {
        case .priority:
            return pickByPriority(serving: serving, all: candidates)
        case .hash:
            if let key, !key.isEmpty {
                return pickByHash(key: key, serving: serving)
            }
            return pickWeighted(serving, baseWeights: true, prefix: "no key given; ")
        case .weighted:
            return pickWeighted(serving, baseWeights: true, prefix: "")
        case .roundRobin:
            return pickRoundRobin(serving, prefix: "")
        case .leastLatency:
            return pickByLatency(serving)
        }
    }

    /// The latency `least-latency` should use for a member: the median of the
    /// latencies of its last `count` probes that did not fail (a failed probe
    /// timed out or was refused, and an unknown one could not tell, which says
    /// nothing of how fast the member serves). Nil when none of them measured one.
    public static func recentLatency(of results: [ProbeResult], last count: Int = 5) -> Duration? {
        let latencies = results.filter { result in
            switch result.outcome {
            case .ok, .degraded: true
            case .failed, .unknown: false
            }
        }.suffix(max(1, count)).compactMap(\.latency).sorted()
        guard !latencies.isEmpty else { return nil }
        let middle = latencies.count / 2
        if latencies.count % 2 == 1 { return latencies[middle] }
        return (latencies[middle - 1] + latencies[middle]) / 2
    }

    // MARK: Policies

    private func pickByPriority(serving: [BalanceCandidate], all: [BalanceCandidate]) -> BalancePick {
        let chosen = serving[0]
        var skipped: [String] = []
        var named: Set<String> = []
        for candidate in all {
            if candidate.name == chosen.name { break }
            if named.insert(candidate.name).inserted {
                skipped.append("\(candidate.name) (\(candidate.state.rawValue))")
            }
        }
        var reason = "first serving member in priority order"
        if !skipped.isEmpty { reason += "; skipped \(skipped.joined(separator: ", "))" }
        if chosen.state == .degraded { reason += "; it is degraded" }
        return BalancePick(member: chosen.name, policy: policy, reason: reason)
    }

    private func pickByHash(key: String, serving: [BalanceCandidate]) -> BalancePick {
        var best = serving[0]
        var bestScore = -Double.infinity
        for candidate in serving {
            let weight = Double(effectiveWeight(candidate, base: candidate.weight))
            let score = RendezvousHash.score(key: key, member: candidate.name, weight: weight)
            if score > bestScore {
                best = candidate
                bestScore = score
            }
        }
        return BalancePick(member: best.name, policy: policy, reason: "hash of key \(key)")
    }

    private mutating func pickWeighted(_ serving: [BalanceCandidate], baseWeights: Bool,
                                       prefix: String) -> BalancePick {
        let pool = serving.map { ($0, effectiveWeight($0, base: baseWeights ? $0.weight : 1)) }
        let (index, total) = rotate(pool)
        let (chosen, weight) = pool[index]
        var reason = "\(prefix)weighted round-robin, weight \(Self.formatWeight(weight)) of \(Self.formatWeight(total))"
        if chosen.state == .degraded { reason += " (degraded)" }
        return BalancePick(member: chosen.name, policy: policy, reason: reason)
    }

    private mutating func pickRoundRobin(_ serving: [BalanceCandidate], prefix: String) -> BalancePick {
        let pool = serving.map { ($0, effectiveWeight($0, base: 1)) }
        let (index, _) = rotate(pool)
        let chosen = pool[index].0
        let count = serving.count
        var reason = "\(prefix)round-robin over \(count) serving member\(count == 1 ? "" : "s")"
        if chosen.state == .degraded { reason += " (degraded: weight \(Self.formatWeight(pool[index].1)))" }
        return BalancePick(member: chosen.name, policy: policy, reason: reason)
    }

    private mutating func pickByLatency(_ serving: [BalanceCandidate]) -> BalancePick {
        let measured = serving.compactMap { candidate in candidate.latency.map { (candidate, $0) } }
        guard let lowest = measured.map(\.1).min() else {
            return pickRoundRobin(serving, prefix: "no latency measured yet; ")
        }
        let limit = Self.seconds(lowest) * (1 + latencyTolerance)
        let near = measured.filter { Self.seconds($0.1) <= limit }.map(\.0)
        let tolerance = Self.formatPercent(latencyTolerance)
        guard near.count > 1 else {
            return BalancePick(member: near[0].name, policy: policy,
                               reason: "lowest latency \(Self.formatLatency(lowest))")
        }
        let pool = near.map { ($0, effectiveWeight($0, base: 1)) }
        let chosen = pool[rotate(pool).index].0
        let others = near.count - 1
        let latency = chosen.latency ?? lowest
        let reason = latency == lowest
            ? "lowest latency \(Self.formatLatency(lowest)), taking turns with \(others) other\(others == 1 ? "" : "s") within \(tolerance)"
            : "latency \(Self.formatLatency(latency)), within \(tolerance) of the lowest \(Self.formatLatency(lowest))"
        return BalancePick(member: chosen.name, policy: policy, reason: reason)
    }

    // MARK: Rotation

    /// One step of nginx's smooth weighted round-robin over `pool` (non-empty):
    /// the index chosen and the sum of the weights.
    private mutating func rotate(_ pool: [(BalanceCandidate, Int)]) -> (index: Int, total: Int) {
        var total = 0
        var best = 0
        var bestCounter = Int.min
        for (index, (candidate, weight)) in pool.enumerated() {
            let counter = current[candidate.name, default: 0] + weight
            current[candidate.name] = counter
            total += weight
            // Strictly greater: a tie goes to the earlier candidate, as in nginx.
            if counter > bestCounter {
                best = index
                bestCounter = counter
            }
        }
        current[pool[best].0.name, default: 0] -= total
        return (best, total)
    }

    /// `base` (at least 1) in thousandths, cut to `degradedWeight` for a degraded member.
    private func effectiveWeight(_ candidate: BalanceCandidate, base: Int) -> Int {
        let full = max(1, base) * Self.weightScale
        switch candidate.state {
        case .degraded:
            return max(1, Int((Double(full) * degradedWeight).rounded()))
        case .up, .unknown, .down, .maintenance, .flapping:
            return full
        }
    }

    // MARK: Formatting

    static func seconds(_ duration: Duration) -> Double {
        let (seconds, attoseconds) = duration.components
        return Double(seconds) + Double(attoseconds) / 1e18
    }

    /// `3.1ms`, `10ms`, `10.5ms`, `1.25s`.
    static func formatLatency(_ duration: Duration) -> String {
        let milliseconds = seconds(duration) * 1000
        if milliseconds >= 1000 {
            return trimmed(Int((milliseconds / 10).rounded()), decimals: 2) + "s"
        }
        return trimmed(Int((milliseconds * 10).rounded()), decimals: 1) + "ms"
    }

    /// `10%`, `12.5%`.
    static func formatPercent(_ fraction: Double) -> String {
        trimmed(Int((fraction * 1000).rounded()), decimals: 1) + "%"
    }

    /// A weight in thousandths as configured weights read: `5`, `2.5`, `0.333`.
    static func formatWeight(_ thousandths: Int) -> String {
        trimmed(thousandths, decimals: 3)
    }

    /// `value / 10^decimals` without trailing zeros: (105, 1) is `10.5`, (100, 1) is `10`.
    private static func trimmed(_ value: Int, decimals: Int) -> String {
        var scale = 1
        for _ in 0..<decimals { scale *= 10 }
        let whole = value / scale
        var fraction = String(value % scale)
        guard fraction != "0" else { return String(whole) }
        fraction = String(repeating: "0", count: decimals - fraction.count) + fraction
        while fraction.hasSuffix("0") { fraction.removeLast() }
        return "\(whole).\(fraction)"
    }
}
