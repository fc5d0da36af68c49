import Foundation

/// What the etcd edge tells the core about the cluster. Each input carries
/// the instant on the agent's monotonic clock at which it was true.
public enum ClusterInput: Sendable, Equatable {
    /// This agent's lease and its hold on the leader key.
    case leadership(LeadershipInput, at: MonotonicTime)
    /// The leader key as read or watched: its holder, the status address it
    /// published, and its lease; all nil when nobody holds it.
    case leaderKey(holder: String?, address: String?, lease: Int64?, at: MonotonicTime)
    /// An agent's report as read or watched (its key exists, so its lease lives).
    case report(AgentReport, at: MonotonicTime)
    /// An agent's report key went away: its lease ended.
    case reportEnded(agent: String, at: MonotonicTime)
    /// Lease time left of each agent, as etcd answered (for the status).
    case leaseRemaining([String: Duration], at: MonotonicTime)
    /// This agent became the leader: it continues from the decision state
    /// the previous leader stored (`DecisionState.takeover`).
    case adopt([DecisionState], at: MonotonicTime)
}

/// The cluster as this agent's core knows it: its leadership, every agent's
/// view, and what the status shows about them. Nil in `AgentCore.cluster`
/// without `cluster:`.
public struct ClusterState: Sendable {
    public let settings: ClusterSettings
    /// This agent's name in the cluster.
    public let agent: String
    public internal(set) var leadership: Leadership
    public internal(set) var views: ClusterViews
    /// The latest instant the core was given on the monotonic clock.
    public internal(set) var now: MonotonicTime
    /// The leader's status address, from the leader key.
    public internal(set) var leaderAddress: String?
    /// Lease time left per agent, as last asked, and when.
    public internal(set) var leaseRemaining: [String: (left: Duration, at: MonotonicTime)] = [:]
    /// How often the leader changed, as seen here.
    public internal(set) var leaderChanges: UInt64 = 0
    /// Decisions a previous leader had started and not finished, adopted at
    /// a takeover: recorded as interrupted, never run here.
    public internal(set) var interrupted: [AgentEvent] = []

    public init(settings: ClusterSettings, agent: String, now: MonotonicTime) {
        self.settings = settings
        self.agent = agent
        self.now = now
        leadership = Leadership(agent: agent, requestTimeout: settings.requestTimeout)
        views = ClusterViews(settings: settings)
    }

    /// This agent's role now.
    public var role: ClusterRole { leadership.role(at: now) }

    /// Whether this agent may run actions now.
    public var mayAct: Bool { leadership.mayAct(at: now) }

    /// The leading agent's name, or nil.
    public var leader: String? {
        switch role {
        case .leader: agent
        case .follower(let leader): leader
        case .noLeader: nil
        }
    }

    /// Lease time left of `agent` now, from the last answer.
    public func leaseLeft(of agent: String) -> Duration? {
        guard let known = leaseRemaining[agent] else { return nil }
        let left = known.left - (now - known.at)
        return left > .zero ? left : .zero
    }
}

extension AgentCore {
    /// The services whose views other agents need: every group member and
    /// the services they depend on.
    public var reportedServices: [String] {
        var names: [String] = []
        var seen: Set<String> = []
        func add(_ name: String) {
            guard seen.insert(name).inserted else { return }
            names.append(name)
            for parent in dependsOn[name] ?? [] { add(parent) }
        }
        for group in config.groups {
            for member in group.members { add(member) }
        }
        return names
    }

    /// This agent's report: its view of each service the groups consult.
    public func ownReport(at now: Date) -> AgentReport {
        var views: [String: ServiceView] = [:]
        for name in reportedServices {
            if let entry = entry(name) { views[name] = entry.view }
        }
        return AgentReport(agent: cluster?.agent ?? "", time: now, views: views)
    }

    /// Moves the core's monotonic clock (the owner passes it with every input).
    public mutating func advance(to instant: MonotonicTime) {
        guard let now = cluster?.now, instant > now else { return }
        let before = cluster!.role
        cluster!.now = instant
        // A lease that ran out of time changes the role without any input.
        if cluster!.role != before { stateVersion &+= 1 }
    }

    /// The observer-quorum gate for the group engines; nil outside a cluster.
    func quorumGate(at now: Date) -> FailoverCoordinator.Gate? {
        guard let cluster else { return nil }
        let own = ownReport(at: now)
        let dependsOn = self.dependsOn
        return { event, activeBefore in
            cluster.views.judge(event, activeBefore: activeBefore, own: own, dependsOn: dependsOn, at: cluster.now)
        }
    }

    mutating func apply(cluster input: ClusterInput, at now: Date) throws(AgentRefusal) -> [AgentEvent] {
        guard var cluster else { throw .refused("this agent is not in a cluster (no cluster: in its config)") }
        let before = (role: cluster.role, leader: cluster.leader)
        var regroup = false
        var adopted: [DecisionState]?
        switch input {
        case .leadership(let leadership, let at):
            cluster.now = max(cluster.now, at)
            cluster.leadership.apply(leadership, wall: now)
        case .leaderKey(let holder, let address, let lease, let at):
            cluster.now = max(cluster.now, at)
            cluster.leadership.apply(.leaderObserved(holder: holder, lease: lease), wall: now)
            cluster.leaderAddress = holder == nil ? nil : address
        case .report(let report, let at):
            cluster.now = max(cluster.now, at)
            if report.agent != cluster.agent {
                let changed = cluster.views.heard[report.agent].map { $0.report.views != report.views || !$0.leaseAlive } ?? true
                cluster.views.observe(report, at: at)
                regroup = changed
            }
        case .reportEnded(let agent, let at):
            cluster.now = max(cluster.now, at)
            cluster.views.leaseEnded(agent: agent)
            cluster.leaseRemaining[agent] = nil
            regroup = true
        case .leaseRemaining(let remaining, let at):
            cluster.now = max(cluster.now, at)
            for (agent, left) in remaining { cluster.leaseRemaining[agent] = (left, at) }
        case .adopt(let states, let at):
            cluster.now = max(cluster.now, at)
            adopted = states
        }
        let after = (role: cluster.role, leader: cluster.leader)
        if after.leader != before.leader, after.leader != nil { cluster.leaderChanges &+= 1 }
        self.cluster = cluster
        version &+= 1
        if after.role != before.role || after.leader != before.leader || adopted != nil { stateVersion &+= 1 }
        if let adopted { return adopt(adopted, at: now) }
        // Another agent's view changed: a withheld decision may now have its quorum.
        guard regroup else { return [] }
        let groupEvents = coordinator.update(states: views, at: now, gate: quorumGate(at: now))
        return events(transitions: [], groupEvents: groupEvents)
    }

    /// A new leader continues from what the previous one stored: each
    /// stored group's engine state, its members' maintenance, the event
    /// numbering. A decision whose actions had not all reported is kept
    /// (renumbered here) with each missing action recorded as interrupted:
    /// never run a second time.
    mutating func adopt(_ states: [DecisionState], at now: Date) -> [AgentEvent] {
        let takeover = DecisionState.takeover(states, base: persistentSnapshot(at: now), config: config)
        let current = views
        for state in states where config.group(named: state.group) != nil {
            coordinator.adopt(state.engine, group: state.group, startedAt: startedAt, states: current, at: now)
            for member in config.group(named: state.group)?.members ?? [] {
                guard let i = index[member] else { continue }
                let stored = takeover.snapshot.maintenance[member]
                if let stored {
                    _ = entries[i].health.setMaintenance(true, reason: stored.reason, at: now)
                    maintenanceUntil[member] = stored.until
                    maintenanceReasons[member] = stored.reason
                } else if entries[i].health.isInMaintenance {
                    _ = entries[i].health.setMaintenance(false, reason: "maintenance ended by the leader", at: now)
                    maintenanceUntil[member] = nil
                    maintenanceReasons[member] = nil
                }
            }
        }
        if let last = takeover.snapshot.lastEventID { nextEventID = max(nextEventID, last + 1) }
        var kept: [AgentEvent] = []
        for var decision in takeover.interrupted {
            decision.id = nextEventID
            nextEventID += 1
            decision.actions = decision.actions.map { var o = $0; o.eventID = decision.id; return o }
            decision.reason += " (decided by \(leaderOf(states, group: decision.group)), which stopped leading before its actions finished)"
            recentEvents.append(contentsOf: [decision])
            _ = markInterrupted([decision], at: now, reason: Self.takeoverInterruptedReason)
            kept.append(recentEvents.event(decision.id) ?? decision)
        }
        cluster?.interrupted += kept
        // The adopted engines see the current states; what they decide is made (or withheld) now.
        let groupEvents = coordinator.update(states: views, at: now, gate: quorumGate(at: now))
        stateVersion &+= 1
        return events(transitions: [], groupEvents: groupEvents)
    }

    private func leaderOf(_ states: [DecisionState], group: String?) -> String {
        states.first { $0.group == group }?.leader ?? "the previous leader"
    }

    /// The result of an action a previous leader had not run when it stopped leading.
    public static let takeoverInterruptedReason =
        "interrupted: the leader that decided it stopped leading before it ran; not run again"
}
