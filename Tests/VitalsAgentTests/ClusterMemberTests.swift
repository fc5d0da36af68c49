import Foundation
import Logging
import Testing
@testable import VitalsAgent
import VitalsCluster
import VitalsCore
import VitalsTestKit

/// The cluster edge against an etcd in memory, stepped by hand, with a
/// manual wall clock and a manual monotonic clock: when a leader's actions
/// may run, what it stores first, and what a lost lease or an unreachable
/// etcd stops.
@Suite struct ClusterMemberTests {
    static let yaml = """
    defaults: { interval: 1s, timeout: 500ms, rise: 1, fall: 1, jitter: 0ms }
    services:
      web-1: { http: { url: http://127.0.0.1:8081/health } }
      web-2: { http: { url: http://127.0.0.1:8082/health } }
    groups:
      web:
        members: [web-1, web-2]
        failback: manual
        cooldown: 0s
        on: { failover: [promote, notify] }
    actions:
      promote: { exec: [/bin/true] }
      notify: { log: {} }
    cluster:
      etcd: [http://127.0.0.1:1]
      scope: test
      name: a
      ttl: 10s
    """

    final class Harness: Sendable {
        let clock = ManualClock()
        let mono = Locked(MonotonicTime.seconds(1000))
        let etcd = FakeEtcd()
        let owner: StateOwner
        let member: ClusterMember

        init() throws {
            let config = try ConfigLoader.load(yaml: ClusterMemberTests.yaml)
            let mono = self.mono
            let monotonic: @Sendable () -> MonotonicTime = { mono.withLock { $0 } }
            owner = StateOwner(config: config, configPath: "test.yaml", clock: clock, refreshInterval: .zero,
                               clusterAgent: "a", monotonic: monotonic, publish: { _ in })
            member = ClusterMember(settings: config.cluster!, agent: "a", address: "http://127.0.0.1:9310",
                                   etcd: etcd, owner: owner, logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() },
                                   metrics: ClusterMetrics(), monotonic: monotonic)
            probe("web-1", ok: true)
            probe("web-2", ok: true)
        }

        func probe(_ service: String, ok: Bool) {
            owner.record(ProbeResult(time: clock.now(), latency: .milliseconds(2), outcome: ok ? .ok : .failed,
                                     reason: ok ? "200 OK" : "status 503"), for: service)
        }

        func pass(_ d: Duration) {
            clock.advance(by: d)
            mono.withLock { $0 = $0 + d }
        }

        var role: ClusterRole? { owner.clusterState()?.role }

        /// The failover made by failing web-1.
        func failover() throws -> AgentEvent {
            probe("web-1", ok: false)
            return try #require(owner.view.core.recentEvents.all.last { $0.kind == .group(.failover) })
        }

        func stored() throws -> DecisionState? {
            try etcd.value("/vitals/test/state/web").map { try DecisionState(json: $0) }
        }
    }

    @Test func aLeaderStoresEachDecisionBeforeItsActionsAndHowFarItGot() async throws {
        let h = try Harness()
        await h.member.step()
        #expect(h.role == .leader)
        #expect(h.etcd.value("/vitals/test/leader").map { String(decoding: $0, as: UTF8.self) }?.contains("\"name\":\"a\"") == true)
        await h.member.step() // stores the group's state as it is
        #expect(try h.stored()?.engine.active == ["web-1"])

        let failover = try h.failover()
        let refusal = await h.member.refusal(for: failover)
        #expect(refusal == nil, "the leader runs it")
        let started = try #require(try h.stored())
        #expect(started.decision?.id == failover.id, "stored before the actions start")
        #expect(started.engine.active == ["web-2"])
        #expect(started.leader == "a")

        let promote = ActionOutcome.notRun(try #require(h.owner.view.config.action(named: "promote")), event: failover,
                                           result: .skipped("test"), at: h.clock.now())
        await h.member.finished(failover, outcome: promote, last: false)
        #expect(try h.stored()?.decision?.actions.map(\.action) == ["promote"], "how far it got")
        let notify = ActionOutcome.notRun(try #require(h.owner.view.config.action(named: "notify")), event: failover,
                                          result: .skipped("test"), at: h.clock.now())
        await h.member.finished(failover, outcome: notify, last: true)
        #expect(try h.stored()?.decision == nil, "finished: nothing under way")
    }

    @Test func aLeaderThatLostItsKeyMidDecisionRunsNothing() async throws {
        let h = try Harness()
        await h.member.step()
        #expect(h.role == .leader)
        let lease = try #require(h.etcd.lease(of: "/vitals/test/leader"))
        let failover = try h.failover()
        // The lease expires in etcd (a long pause of this agent), and b takes the key.
        h.etcd.expire(lease)
        h.etcd.setKey("/vitals/test/leader", #"{"name":"b","address":"http://10.0.0.2:9310"}"#, lease: 555)
        let refusal = try #require(await h.member.refusal(for: failover))
        #expect(refusal.contains("no longer holds the leader key"), "\(refusal)")
        #expect(try h.stored()?.decision == nil, "nothing stored for it")
        #expect(h.role == .follower(leader: "b"))
    }

    @Test func withEtcdUnreachableNothingRunsAndTheLeaderFencesItselfOnTime() async throws {
        let h = try Harness()
        await h.member.step()
        #expect(h.role == .leader)
        h.etcd.unreachable = true
        let failover = try h.failover()
        let refusal = try #require(await h.member.refusal(for: failover))
        #expect(refusal.contains("could not be stored in etcd"), "\(refusal)")

        // ttl 10s, request timeout 2.5s: leader until 7.5s after the last renewal was sent.
        h.pass(.seconds(7))
        await h.member.step()
        #expect(h.owner.mayAct().0 == true)
        h.pass(.milliseconds(600))
        await h.member.step()
        #expect(h.owner.mayAct().0 == false)
        guard case .noLeader(let reason)? = h.role else {
            Issue.record("expected no leader, got \(String(describing: h.role))")
            return
        }
        #expect(reason.contains("etcd unreachable since"))
        let later = try #require(await h.member.refusal(for: failover))
        #expect(later.contains("does not lead"), "\(later)")

        // etcd returns with the lease still alive: the leader resumes from
        // what it stored, and the failover made while fenced is made again.
        h.etcd.unreachable = false
        await h.member.step()
        #expect(h.role == .leader)
        let again = try #require(h.owner.view.core.recentEvents.all.last { $0.kind == .group(.failover) })
        #expect(again.id > failover.id, "decided again after resuming, to run now")
        #expect(await h.member.refusal(for: again) == nil)
        #expect(await h.member.refusal(for: failover) != nil, "the one decided while fenced never runs")
    }

    @Test func aFollowerDecidesInShadowAndRunsNothing() async throws {
        let h = try Harness()
        h.etcd.setKey("/vitals/test/leader", #"{"name":"b","address":"http://10.0.0.2:9310"}"#, lease: 555)
        await h.member.step()
        #expect(h.role == .follower(leader: "b"))
        #expect(h.owner.clusterState()?.leaderAddress == "http://10.0.0.2:9310")
        let failover = try h.failover()
        let refusal = try #require(await h.member.refusal(for: failover))
        #expect(refusal.contains("follower") && refusal.contains("b leads"), "\(refusal)")
        #expect(h.etcd.guardedPuts.isEmpty, "a follower writes no decision state")
        // Its view is published for the leader's quorum.
        let report = try #require(h.etcd.value("/vitals/test/views/a"))
        #expect(String(decoding: report, as: UTF8.self).contains("web-1"))
    }

    @Test func aNewLeaderContinuesFromTheStoredState() async throws {
        let h = try Harness()
        var engine = try #require(h.owner.view.core.coordinator.persisted["web"])
        engine.active = ["web-2"]
        engine.hold = GroupHold(cause: .operatorRequest, reason: "held by an operator on b", since: h.clock.now())
        let stored = DecisionState(group: "web", leader: "b", writtenAt: h.clock.now(), engine: engine, lastEventID: 90)
        try await h.etcd.put("/vitals/test/state/web", value: stored.json, lease: 0)
        await h.member.step()
        #expect(h.role == .leader)
        let web = try #require(h.owner.view.core.coordinator.engine(named: "web"))
        #expect(web.active == ["web-2"], "the previous leader's choice stands")
        #expect(web.isHeld, "its hold too")
        #expect(h.owner.view.core.nextEventID > 90)
    }
}
