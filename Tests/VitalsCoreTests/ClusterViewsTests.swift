import Foundation
import Testing
@testable import VitalsCore

/// The observer quorum on scripted views and instants.
@Suite struct ClusterViewsTests {
    static let t0 = Date(timeIntervalSince1970: 1_800_000_000)
    static let ttl: Duration = .seconds(15)
    static func at(_ s: Int64) -> MonotonicTime { .seconds(s) }

    static func view(_ state: HealthState, _ reason: String = "") -> ServiceView {
        ServiceView(state: state, since: t0, reason: reason)
    }

    static func report(_ agent: String, web1: HealthState, web2: HealthState = .up,
                       reason: String = "") -> AgentReport {
        AgentReport(agent: agent, time: t0, views: ["web-1": view(web1, reason), "web-2": view(web2)])
    }

    /// The decision of a real engine: web-1 fails, web-2 takes over.
    static func failover() -> GroupEvent {
        let group = GroupConfig(name: "web", mode: .activePassive(failback: .manual, failbackDelay: .seconds(10)),
                                members: ["web-1", "web-2"], cooldown: .zero)
        var engine = GroupEngine(group: group, startedAt: t0)
        _ = engine.update(states: ["web-1": view(.up), "web-2": view(.up)], at: t0)
        let events = engine.update(states: ["web-1": view(.down, "timeout"), "web-2": view(.up)],
                                   at: t0.addingTimeInterval(5))
        #expect(events.map(\.kind) == [.failover])
        return events[0]
    }

    /// The verdict on the failover, with web-1 active before it.
    static func judge(_ views: ClusterViews, own: AgentReport, at now: MonotonicTime) -> QuorumVerdict {
        views.judge(failover(), activeBefore: ["web-1"], own: own, at: now)
    }

    /// The `failover_withheld` event, or nil when the failover was not withheld.
    static func withheld(_ views: ClusterViews, own: AgentReport, at now: MonotonicTime) -> GroupEvent? {
        if case .withheld(let event) = judge(views, own: own, at: now) { event } else { nil }
    }

    // MARK: arithmetic

    @Test(arguments: [(1, 1), (2, 2), (3, 2), (4, 3), (5, 3)])
    func aMajorityOfTheLiveAgents(_ agents: Int, _ quorum: Int) {
        #expect(ClusterViews.majority(of: agents) == quorum)
    }

    @Test func oneAgentIsItsOwnQuorum() {
        let views = ClusterViews(ttl: Self.ttl)
        let own = Self.report("a", web1: .down)
        #expect(views.quorum(own: own, at: Self.at(0)) == 1)
        #expect(views.agree(member: "web-1", unusable: true, own: own, at: Self.at(0)) == ["a"])
        #expect(Self.judge(views, own: own, at: Self.at(0))
                == .allowed(agreeing: ["a"]))
    }

    @Test func twoAgentsMustBothAgree() {
        var views = ClusterViews(ttl: Self.ttl)
        views.observe(Self.report("b", web1: .down), at: Self.at(0))
        let own = Self.report("a", web1: .down)
        #expect(views.quorum(own: own, at: Self.at(1)) == 2)
        #expect(views.agree(member: "web-1", unusable: true, own: own, at: Self.at(1)) == ["a", "b"])
        #expect(Self.judge(views, own: own, at: Self.at(1))
                == .allowed(agreeing: ["a", "b"]))
    }

    /// Three agents, then one dies: its last view (web-1 down) stays in the
    /// table but does not count once its lease is gone or it has not been
    /// heard of for a ttl; the quorum shrinks with the live agents.
    @Test func aDeadAgentsStaleViewDoesNotCount() throws {
        var views = ClusterViews(ttl: Self.ttl)
        views.observe(Self.report("b", web1: .up), at: Self.at(0))
        views.observe(Self.report("c", web1: .down, reason: "timeout"), at: Self.at(0))
        let own = Self.report("a", web1: .down, reason: "timeout")
        #expect(views.quorum(own: own, at: Self.at(1)) == 2)
        #expect(views.agree(member: "web-1", unusable: true, own: own, at: Self.at(1)) == ["a", "c"])
        #expect(views.agree(member: "web-1", unusable: false, own: own, at: Self.at(1)) == ["b"])

        // c is heard of no more: at exactly ttl it still counts, after it does not.
        views.observe(Self.report("b", web1: .up), at: Self.at(16))
        #expect(views.isLive("c", at: Self.at(15)))
        #expect(!views.isLive("c", at: Self.at(16)))
        #expect(views.quorum(own: own, at: Self.at(16)) == 2)
        #expect(views.agree(member: "web-1", unusable: true, own: own, at: Self.at(16)) == ["a"])
        let event = try #require(Self.withheld(views, own: own, at: Self.at(16)))
        #expect(event.reason == "web-1 unusable for 1 of 2 live agents, quorum 2; failover to web-2 withheld "
            + "(a: down (timeout); b: up; not counted (lease gone or not heard within 15s): c)")

        // Its key deleted: not live even when just heard of.
        views.observe(Self.report("c", web1: .down), at: Self.at(17))
        views.leaseEnded(agent: "c")
        #expect(!views.isLive("c", at: Self.at(17)))
    }

    @Test func aConfiguredQuorumStandsWhateverIsAlive() {
        var views = ClusterViews(ttl: Self.ttl, quorum: 3)
        views.observe(Self.report("b", web1: .down), at: Self.at(0))
        let own = Self.report("a", web1: .down)
        #expect(views.quorum(own: own, at: Self.at(0)) == 3)
        #expect(Self.judge(views, own: own, at: Self.at(0)) != .notGated)
        if case .allowed = Self.judge(views, own: own, at: Self.at(0)) {
            Issue.record("2 agents cannot meet a quorum of 3")
        }
    }

    /// An agent that does not know the member yet confirms nothing.
    @Test func anUnknownViewIsNoAgreement() {
        var views = ClusterViews(ttl: Self.ttl)
        views.observe(AgentReport(agent: "b", time: Self.t0, views: [:]), at: Self.at(0))
        let own = Self.report("a", web1: .down)
        #expect(views.agree(member: "web-1", unusable: true, own: own, at: Self.at(0)) == ["a"])
        #expect(views.agree(member: "web-1", unusable: false, own: own, at: Self.at(0)) == [])
    }

    // MARK: the rule

    /// Partitioned from the backends, with etcd still reachable: this agent
    /// (the leader here) sees everything down; the two others see web-1 up.
    /// No failover, and the withheld event says who saw what.
    @Test func aPartitionedAgentCannotCauseAFailover() throws {
        var views = ClusterViews(ttl: Self.ttl)
        views.observe(Self.report("b", web1: .up), at: Self.at(0))
        views.observe(Self.report("c", web1: .up), at: Self.at(0))
        let own = Self.report("a", web1: .down, web2: .down, reason: "connect: network unreachable")
        let event = try #require(Self.withheld(views, own: own, at: Self.at(1)))
        #expect(event.kind == .failoverWithheld)
        #expect(event.from == "web-1")
        #expect(event.to == "web-2")
        #expect(event.active == ["web-1"], "traffic stays where it is")
        #expect(event.reason == "web-1 unusable for 1 of 3 live agents, quorum 2; failover to web-2 withheld "
            + "(a: down (connect: network unreachable); b: up; c: up)")
        // A withheld event is not a move: `on: move` lists do not run for it.
        let group = GroupConfig(name: "web", mode: .activePassive(failback: .manual, failbackDelay: .seconds(10)),
                                members: ["web-1", "web-2"], on: [.failoverWithheld: ["page"]])
        #expect(!group.isMove(.group(event, id: 9)))
        #expect(EventKind(rawValue: "failover_withheld") == .group(.failoverWithheld))
    }

    /// The same partition with the cut-off agent as a follower: its view is one of three.
    @Test func aPartitionedFollowerCannotTipTheQuorum() {
        var views = ClusterViews(ttl: Self.ttl)
        views.observe(Self.report("b", web1: .down, web2: .down), at: Self.at(0))
        views.observe(Self.report("c", web1: .up), at: Self.at(0))
        let own = Self.report("a", web1: .up)
        #expect(views.agree(member: "web-1", unusable: true, own: own, at: Self.at(1)) == ["b"])
        if case .allowed = Self.judge(views, own: own, at: Self.at(1)) {
            Issue.record("one agent's view moved the group")
        }
    }

    /// Two agents: the leader alone sees web-1 fail.
    @Test func aLeaderAloneSeeingAFailureCannotMoveTheGroup() throws {
        var views = ClusterViews(ttl: Self.ttl)
        views.observe(Self.report("b", web1: .up), at: Self.at(0))
        let own = Self.report("a", web1: .down, reason: "timeout")
        let event = try #require(Self.withheld(views, own: own, at: Self.at(1)))
        #expect(event.reason == "web-1 unusable for 1 of 2 live agents, quorum 2; failover to web-2 withheld "
            + "(a: down (timeout); b: up)")
        // b sees it too a moment later: now the move is allowed.
        views.observe(Self.report("b", web1: .down), at: Self.at(2))
        #expect(Self.judge(views, own: own, at: Self.at(2))
                == .allowed(agreeing: ["a", "b"]))
    }

    /// A dependency failure counts: each agent's view is judged with `depends_on`.
    @Test func aBlockedMemberIsUnusableInEveryView() {
        var views = ClusterViews(ttl: Self.ttl)
        var blocked = Self.report("b", web1: .up)
        blocked.views["db"] = Self.view(.down)
        views.observe(blocked, at: Self.at(0))
        var own = Self.report("a", web1: .up)
        own.views["db"] = Self.view(.down)
        #expect(views.agree(member: "web-1", unusable: true, own: own, dependsOn: ["web-1": ["db"]],
                            at: Self.at(0)) == ["a", "b"])
    }

    @Test func movesThatAreNotAboutAFailureAreNotGated() {
        var failover = Self.failover()
        let views = ClusterViews(ttl: Self.ttl)
        let own = Self.report("a", web1: .up)
        failover.evidence["web-1"] = .maintenance
        #expect(views.judge(failover, activeBefore: ["web-1"], own: own, at: Self.at(0)) == .notGated)
        for kind in [GroupEventKind.switchover, .failback, .groupRecovered, .activated] {
            var event = Self.failover()
            event.kind = kind
            #expect(views.judge(event, activeBefore: ["web-1"], own: own, at: Self.at(0)) == .notGated)
        }
        var down = Self.failover()
        down.kind = .groupDown
        #expect(views.judge(down, activeBefore: ["web-1"], own: own, at: Self.at(0)) != .notGated)
    }
}
