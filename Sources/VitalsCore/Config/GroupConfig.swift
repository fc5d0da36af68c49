/// One entry under `groups:`.
public struct GroupConfig: Sendable, Equatable {
    public var name: String
    public var mode: GroupMode
    /// In priority order for active-passive.
    public var members: [String]
    /// Which actions run on which events, in order.
    public var on: [GroupEventKind: [String]]
    /// `on: { move: [...] }` — actions for every change of the active member,
    /// whatever caused it (see `isMove(_:)`). Active-passive groups only.
    public var onMove: [String] = []
    /// `on: { any: [...] }` — actions for every event of the group, of any kind.
    public var onAny: [String] = []
    /// Minimum time between two failovers of this group. Default 30s.
    public var cooldown: Duration
    /// At most this many failovers within `failoverWindow`; then the group is held.
    public var maxFailovers: Int
    public var failoverWindow: Duration
    /// `balance:` — how `/pick` chooses one serving member for a client (see
    /// `Balancer`). Default: `priority` for active-passive groups,
    /// `round-robin` for active-active ones (`BalancePolicy.default(for:)`),
    /// resolved at init from `mode`.
    public var balance: BalancePolicy
    /// `weights: { web-1: 5, web-2: 1 }` — relative weight of each member,
    /// 1...1000, for `hash` and `weighted`. A member not listed weighs 1.
    public var weights: [String: Int]
    /// `latency_tolerance: 10%` — for `least-latency`: members whose recent
    /// latency is at most the lowest one plus this share of it are taken as
    /// equal and share the traffic. A fraction, 0...1. Default 0.1 (10%).
    public var latencyTolerance: Double
    /// `degraded_weight: 0.5` — the share of its weight a degraded member keeps
    /// (0.01...1). Default 0.5. Not used by `priority`.
    public var degradedWeight: Double

    public init(name: String, mode: GroupMode, members: [String], on: [GroupEventKind: [String]] = [:],
                cooldown: Duration = .seconds(30), maxFailovers: Int = 3, failoverWindow: Duration = .seconds(600),
                balance: BalancePolicy? = nil, weights: [String: Int] = [:],
                latencyTolerance: Double = 0.1, degradedWeight: Double = 0.5) {
        self.name = name
        self.mode = mode
        self.members = members
        self.on = on
        self.cooldown = cooldown
        self.maxFailovers = maxFailovers
        self.failoverWindow = failoverWindow
        self.balance = balance ?? .default(for: mode)
        self.weights = weights
        self.latencyTolerance = latencyTolerance
        self.degradedWeight = degradedWeight
    }

    /// Whether `event` made a member the active one of this active-passive
    /// group: it names a `to` member that is now the only active one. So
    /// failover, failback, switchover (a maintenance move is a failover),
    /// activated and group_recovered are moves, and a failover_suppressed or
    /// group_down is not — decided from the event, not from a list of kinds,
    /// so kinds added later follow the same rule.
    public func isMove(_ event: AgentEvent) -> Bool {
        guard case .activePassive = mode, let to = event.to else { return false }
        return event.active == [to]
    }

    /// The configured weight of `member`: its `weights:` entry, else 1.
    public func weight(of member: String) -> Int { weights[member] ?? 1 }
}

/// `balance:` — how `/pick` chooses one serving member of a group for a
/// client. Only serving members (`up`, `degraded`) are ever chosen; see
/// `Balancer` for each policy's exact rule.
public enum BalancePolicy: String, Sendable, Equatable, Hashable, Codable, CaseIterable {
    /// Weighted rendezvous hashing on the client's key (usually its IP): a
    /// client sticks to its member, and only the clients of a member that
    /// leaves move.
    case hash
    /// Every serving member in turn, weights ignored (degraded ones less often).
    case roundRobin = "round-robin"
    /// Smooth weighted round-robin, as nginx does it, by `weights:`.
    case weighted
    /// The member with the lowest recent probe latency; members within
    /// `latency_tolerance` of it take turns.
    case leastLatency = "least-latency"
    /// The first serving member in member order.
    case priority

    /// `priority` for active-passive groups, `round-robin` for active-active ones.
    public static func `default`(for mode: GroupMode) -> BalancePolicy {
        switch mode {
        case .activePassive: .priority
        case .activeActive: .roundRobin
        }
    }

    /// Whether `weights:` means anything under this policy.
    public var usesWeights: Bool {
        switch self {
        case .hash, .weighted: true
        case .roundRobin, .leastLatency, .priority: false
        }
    }

    /// Whether `degraded_weight:` means anything under this policy.
    public var usesDegradedWeight: Bool {
        switch self {
        case .hash, .roundRobin, .weighted, .leastLatency: true
        case .priority: false
        }
    }
}

public enum GroupMode: Sendable, Equatable {
    /// One active member; backups in priority order.
    /// `failback` defaults to `manual`; `failbackDelay` (how long a recovered
    /// higher-priority member must stay healthy before an automatic failback)
    /// defaults to 10s. `mode:` itself defaults to active-passive.
    case activePassive(failback: Failback, failbackDelay: Duration)
    /// Every healthy member serves; degraded below `minHealthy` (default 1, at most the member count).
    case activeActive(minHealthy: Int)

    public var name: String {
        switch self {
        case .activePassive: "active-passive"
        case .activeActive: "active-active"
        }
    }
}

public enum Failback: String, Sendable, Equatable {
    case auto, manual
}

/// Events a group emits, named as in `on:`.
public enum GroupEventKind: String, Sendable, Equatable, CaseIterable, Hashable {
    case failover
    case failback
    case switchover
    case groupDown = "group_down"
    case groupRecovered = "group_recovered"
    case groupDegraded = "group_degraded"
    case memberAdded = "member_added"
    case memberRemoved = "member_removed"
    case failoverSuppressed = "failover_suppressed"
    case isolated
    /// The isolation guard no longer believes the agent is cut off.
    case isolationEnded = "isolation_ended"
    /// The first choice of active member(s) after a fresh start.
    case activated
    /// An operator paused automatic decisions for the group.
    case held
    /// An operator resumed automatic decisions for the group.
    case released
    /// The active member of a held group (held by an operator or by the
    /// failover limit) failed: traffic stays on it and nothing will move it
    /// until an operator acts. One per outage; its actions run.
    case activeDownWhileHeld = "active_down_while_held"
    /// Clustered agents: the leader would have moved the group away from a
    /// member, but fewer than `quorum` live agents see that member unusable.
    /// Nothing moves; the reason gives each agent's view. Its actions run.
    case failoverWithheld = "failover_withheld"
}
