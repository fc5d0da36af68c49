import Foundation

/// What one agent publishes under its own lease: its view of every service,
/// as its probes see them. Stored as JSON at `<prefix>views/<agent>`.
public struct AgentReport: Codable, Sendable, Equatable {
    public var agent: String
    /// When the agent published it, by its own wall clock: shown, never
    /// compared with another agent's clock.
    public var time: Date
    public var views: [String: ServiceView]
    /// The agent's status address (`http://host:port`), for operators.
    public var address: String?

    public init(agent: String, time: Date, views: [String: ServiceView], address: String? = nil) {
        self.agent = agent
        self.time = time
        self.views = views
        self.address = address
    }
}

/// How an automatic move away from a member fares against the other agents' views.
public enum QuorumVerdict: Sendable, Equatable {
    /// Enough live agents see the member unusable: these agents.
    case allowed(agreeing: [String])
    /// The event moves nothing away from a member for its health (a
    /// switchover, a failback, a member in maintenance, a first choice):
    /// the quorum does not apply.
    case notGated
    /// Too few agree: nothing moves, and this `failover_withheld` event says
    /// why, with each agent's view.
    case withheld(GroupEvent)
}

/// Every agent's published view, as this agent last heard it, and the
/// observer-quorum rule.
///
/// **Live.** A report counts while its agent's lease was alive when this
/// agent last heard of it, and that was no longer than `ttl` ago on this
/// agent's monotonic clock. A dead agent's last view (its lease gone, or
/// nothing heard for longer than a lease lives) does not count, however
/// alarming it was.
///
/// **Quorum.** `quorum:` when configured; otherwise a majority of the live
/// agents: 1 → 1, 2 → 2, 3 → 2, 4 → 3, 5 → 3. This agent is always live.
///
/// **Unusable.** As the group engine judges it, from that agent's own view
/// (state not serving, or a `depends_on` ancestor down or flapping). An
/// agent that does not know the member (`unknown`, or absent from its
/// report) does not count as seeing it unusable.
///
/// **Rule.** A `failover`, `group_down` or `member_removed` away from a
/// member that is not in maintenance is allowed only when at least
/// `quorum` live agents see that member unusable; otherwise it is withheld.
public struct ClusterViews: Sendable, Equatable {
    public struct Heard: Sendable, Equatable {
        public var report: AgentReport
        public var leaseAlive: Bool
        /// When this agent last heard of it (a read, a watch event, a lease check).
        public var heardAt: MonotonicTime
    }

    public let ttl: Duration
    /// `quorum:`; nil: a majority of the live agents.
    public let configuredQuorum: Int?
    public private(set) var heard: [String: Heard] = [:]

    public init(ttl: Duration, quorum: Int? = nil) {
        self.ttl = ttl
        self.configuredQuorum = quorum
    }

    public init(settings: ClusterSettings) {
        self.init(ttl: settings.ttl, quorum: settings.quorum)
    }

    // MARK: Inputs

    /// An agent's report as read or watched at `now`, and whether its lease
    /// was alive then.
    public mutating func observe(_ report: AgentReport, leaseAlive: Bool = true, at now: MonotonicTime) {
        heard[report.agent] = Heard(report: report, leaseAlive: leaseAlive, heardAt: now)
    }

    /// The agent's key was deleted (its lease expired or was revoked).
    public mutating func leaseEnded(agent: String) {
        heard[agent]?.leaseAlive = false
    }

    // MARK: Arithmetic

    /// A majority of `agents`: more than half.
    public static func majority(of agents: Int) -> Int { max(1, agents / 2 + 1) }

    public func isLive(_ agent: String, at now: MonotonicTime) -> Bool {
        guard let h = heard[agent] else { return false }
        return h.leaseAlive && now - h.heardAt <= ttl
    }

    /// The live reports, `own` (this agent's current view) in place of what
    /// it published, by agent name.
    public func liveReports(own: AgentReport, at now: MonotonicTime) -> [AgentReport] {
        var reports = heard.values.filter { $0.report.agent != own.agent && isLive($0.report.agent, at: now) }
            .map(\.report)
        reports.append(own)
        return reports.sorted { $0.agent < $1.agent }
    }

    /// The agreement needed at `now`.
    public func quorum(own: AgentReport, at now: MonotonicTime) -> Int {
        configuredQuorum ?? Self.majority(of: liveReports(own: own, at: now).count)
    }

    /// The live agents that see `member` unusable (`unusable: true`) or
    /// usable (`false`); agents that do not know it are in neither.
    public func agree(member: String, unusable: Bool, own: AgentReport, dependsOn: [String: [String]] = [:],
                      at now: MonotonicTime) -> [String] {
        liveReports(own: own, at: now).filter { report in
            let snap = Snapshot(views: report.views, dependsOn: dependsOn)
            guard snap.state(member) != .unknown else { return false }
            return snap.isUsable(member) != unusable
        }.map(\.agent)
    }

    // MARK: The rule

    /// Whether the leader may make `event`. `own` is the leader's current
    /// view; `activeBefore` the group's active member(s) before the event,
    /// which a withheld event keeps.
    public func judge(_ event: GroupEvent, activeBefore: [String], own: AgentReport,
                      dependsOn: [String: [String]] = [:], at now: MonotonicTime) -> QuorumVerdict {
        guard Self.isGated(event), let member = event.from else { return .notGated }
        let agreeing = agree(member: member, unusable: true, own: own, dependsOn: dependsOn, at: now)
        let needed = quorum(own: own, at: now)
        if agreeing.count >= needed { return .allowed(agreeing: agreeing) }
        let live = liveReports(own: own, at: now)
        let views = live.map { "\($0.agent): " + Snapshot(views: $0.views, dependsOn: dependsOn).condition(member) }
        let dead = heard.keys.filter { name in !live.contains { $0.agent == name } }.sorted()
        let deadText = dead.isEmpty ? "" : "; not counted (lease gone or not heard within \(DurationText.format(ttl))): "
            + dead.joined(separator: ", ")
        let move = "\(event.kind.rawValue)\(event.to.map { " to \($0)" } ?? "") withheld"
        let reason = "\(member) unusable for \(agreeing.count) of \(live.count) live agents, quorum \(needed); "
            + "\(move) (\(views.joined(separator: "; "))\(deadText))"
        return .withheld(GroupEvent(id: event.id, time: event.time, group: event.group, kind: .failoverWithheld,
                                    from: member, to: event.to, service: event.service, reason: reason,
                                    rootCause: event.rootCause, evidence: event.evidence, active: activeBefore))
    }

    /// Events that take traffic away from a member because of its health:
    /// a failover, a group going down, an active-active member removed, unless
    /// the member is in maintenance (an operator's planned move).
    public static func isGated(_ event: GroupEvent) -> Bool {
        guard let from = event.from, event.evidence[from] != .maintenance else { return false }
        switch event.kind {
        case .failover, .groupDown, .memberRemoved:
            return true
        case .failback, .switchover, .groupRecovered, .groupDegraded, .memberAdded, .failoverSuppressed, .isolated,
             .isolationEnded, .activated, .held, .released, .activeDownWhileHeld, .failoverWithheld:
            return false
        }
    }
}
