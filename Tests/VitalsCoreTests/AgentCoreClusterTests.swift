import Foundation
import Testing
@testable import VitalsCore

/// The cluster through the core's one entry: leadership, other agents'
/// views and a takeover arrive as `AgentInput.cluster`, and every group
/// decision passes the observer quorum. Scripted inputs, a fixed wall
/// clock and a manual monotonic clock.
@Suite struct AgentCoreClusterTests {
    static let t0 = Date(timeIntervalSince1970: 1_800_000_000)
    static func yaml(quorum: String = "") -> String {
        """
        defaults: { interval: 1s, timeout: 500ms, rise: 1, fall: 1, jitter: 0ms }
        services:
          web-1: { http: { url: http://127.0.0.1:8081/health } }
          web-2: { http: { url: http://127.0.0.1:8082/health } }
        groups:
          web:
            members: [web-1, web-2]
            failback: manual
            cooldown: 0s
            on: { failover: [promote] }
        actions:
          promote: { exec: [/bin/true] }
        cluster:
          etcd: [http://127.0.0.1:2379]
          scope: test
          name: a
          ttl: 10s
          \(quorum)
        """
    }

    /// A core named "a", started with both members up, holding the lease
    /// and the leader key at +0s.
    struct Harness {
        var core: AgentCore
        var wall: Date
        var mono: MonotonicTime = .seconds(100)

        init(quorum: String = "") throws {
            let config = try ConfigLoader.load(yaml: AgentCoreClusterTests.yaml(quorum: quorum))
            wall = AgentCoreClusterTests.t0
            core = AgentCore(config: config, startedAt: wall.addingTimeInterval(-60), clusterAgent: "a",
                             monotonic: mono)
            _ = try apply(.cluster(.leadership(.leaseGranted(id: 7, ttl: .seconds(10), sentAt: mono), at: mono)))
            _ = try apply(.cluster(.leadership(.acquired(lease: 7), at: mono)))
            probe("web-1", ok: true)
            probe("web-2", ok: true)
        }

        @discardableResult
        mutating func apply(_ input: AgentInput) throws -> [AgentEvent] {
            core.advance(to: mono)
            do {
                return try core.apply(input, at: wall)
            } catch {
                throw error.refusal
            }
        }

        @discardableResult
        mutating func probe(_ service: String, ok: Bool) -> [AgentEvent] {
            let result = ProbeResult(time: wall, latency: .milliseconds(3), outcome: ok ? .ok : .failed,
                                     reason: ok ? "200 OK" : "status 503")
            _ = try? core.apply(.probeResult(result, service: service), at: wall)
            return (try? core.apply(.roundEnded, at: wall)) ?? []
        }

        mutating func pass(_ seconds: Int64) {
            wall = wall.addingTimeInterval(TimeInterval(seconds))
            mono = mono + .seconds(seconds)
        }

        /// Another agent's report: its view of both members.
        mutating func report(_ agent: String, web1: HealthState, web2: HealthState = .up) throws -> [AgentEvent] {
            let views = ["web-1": ServiceView(state: web1, since: wall, reason: web1 == .up ? "200 OK" : "status 503"),
                         "web-2": ServiceView(state: web2, since: wall, reason: "200 OK")]
            return try apply(.cluster(.report(AgentReport(agent: agent, time: wall, views: views), at: mono)))
        }

        var active: [String] { core.coordinator.engine(named: "web")?.active ?? [] }
    }

    @Test func aloneInTheClusterTheLeaderNeedsOnlyItself() throws {
        var h = try Harness()
        #expect(h.core.cluster?.role == .leader)
        let events = h.probe("web-1", ok: false)
        #expect(events.contains { $0.kind == .group(.failover) }, "quorum of 1 live agent is 1")
        #expect(h.active == ["web-2"])
    }

    @Test func twoAgentsBothMustSeeIt_thenTheWithheldFailoverIsMadeWhenTheOtherAgrees() throws {
        var h = try Harness()
        _ = try h.report("b", web1: .up)
        let first = h.probe("web-1", ok: false)
        let withheld = try #require(first.first { $0.kind == .group(.failoverWithheld) })
        #expect(withheld.reason.contains("1 of 2 live agents, quorum 2"), "\(withheld.reason)")
        #expect(withheld.reason.contains("b: up"), "each agent's view is named: \(withheld.reason)")
        #expect(!first.contains { $0.kind == .group(.failover) })
        #expect(h.active == ["web-1"], "nothing moved")

        // Withheld again on every round: reported once.
        h.pass(1)
        #expect(h.probe("web-1", ok: false).isEmpty)
        #expect(try h.apply(.tick).isEmpty)

        // b now sees it too: the failover is made at once.
        let agreed = try h.report("b", web1: .down)
        #expect(agreed.contains { $0.kind == .group(.failover) && $0.to == "web-2" }, "\(agreed.map(\.kind))")
        #expect(h.active == ["web-2"])
    }

    @Test func threeAgentsTwoAreEnough_andAnAgentThatDiedStopsCounting() throws {
        var h = try Harness()
        _ = try h.report("b", web1: .up)
        _ = try h.report("c", web1: .down)
        let events = h.probe("web-1", ok: false)
        #expect(events.contains { $0.kind == .group(.failover) }, "a and c of 3: quorum 2")

        var h2 = try Harness()
        _ = try h2.report("b", web1: .up)
        _ = try h2.report("c", web1: .up)
        #expect(h2.probe("web-1", ok: false).contains { $0.kind == .group(.failoverWithheld) })
        // b's and c's leases end: only a is live, and a majority of 1 is 1.
        _ = try h2.apply(.cluster(.reportEnded(agent: "b", at: h2.mono)))
        let after = try h2.apply(.cluster(.reportEnded(agent: "c", at: h2.mono)))
        #expect(after.contains { $0.kind == .group(.failover) }, "\(after.map(\.kind))")
    }

    @Test func aReportNotHeardForATTLStopsCountingOnTheNextTick() throws {
        var h = try Harness()
        _ = try h.report("b", web1: .up)
        #expect(h.probe("web-1", ok: false).contains { $0.kind == .group(.failoverWithheld) })
        h.pass(5)
        // Keep our own lease alive: only b goes silent.
        _ = try h.apply(.cluster(.leadership(.renewed(remaining: .seconds(10), sentAt: h.mono), at: h.mono)))
        #expect(try h.apply(.tick).isEmpty, "b still counts 5 s after it was heard")
        h.pass(6)
        _ = try h.apply(.cluster(.leadership(.renewed(remaining: .seconds(10), sentAt: h.mono), at: h.mono)))
        let events = try h.apply(.tick)
        #expect(events.contains { $0.kind == .group(.failover) }, "\(events.map(\.kind))")
    }

    @Test func aConfiguredQuorumIsUsedWhateverTheNumberOfAgents() throws {
        var h = try Harness(quorum: "quorum: 1")
        _ = try h.report("b", web1: .up)
        _ = try h.report("c", web1: .up)
        #expect(h.probe("web-1", ok: false).contains { $0.kind == .group(.failover) })
    }

    @Test func theLeaderStopsActingAtItsFencingDeadlineNotAtTheLeaseExpiry() throws {
        var h = try Harness()
        let timeout = h.core.config.cluster!.requestTimeout
        #expect(h.core.cluster?.mayAct == true)
        _ = try h.apply(.cluster(.leadership(.requestFailed(reason: "connection refused"), at: h.mono)))
        #expect(h.core.cluster?.mayAct == true, "a failed request alone does not fence")
        h.mono = h.mono + (.seconds(10) - timeout - .milliseconds(1))
        h.core.advance(to: h.mono)
        #expect(h.core.cluster?.mayAct == true)
        h.mono = h.mono + .milliseconds(2)
        h.core.advance(to: h.mono)
        #expect(h.core.cluster?.mayAct == false, "fenced ttl - request_timeout after the last renewal was sent")
        guard case .noLeader(let reason)? = h.core.cluster?.role else {
            Issue.record("expected no leader, got \(String(describing: h.core.cluster?.role))")
            return
        }
        #expect(reason.contains("etcd unreachable since"), "\(reason)")
    }

    @Test func aFollowerNamesTheLeaderAndCountsLeaderChanges() throws {
        var h = try Harness()
        _ = try h.apply(.cluster(.leadership(.leaseLost(reason: "revoked"), at: h.mono)))
        _ = try h.apply(.cluster(.leaderKey(holder: "b", address: "http://10.0.0.2:9310", lease: 9, at: h.mono)))
        #expect(h.core.cluster?.role == .follower(leader: "b"))
        #expect(h.core.cluster?.leader == "b")
        #expect(h.core.cluster?.leaderAddress == "http://10.0.0.2:9310")
        #expect(h.core.cluster?.leaderChanges == 2, "a, then b")
    }

    /// A new leader continues from the stored state: the failover the old
    /// leader made stays made, its hold and maintenance stay, and a
    /// decision whose actions had not all reported is recorded as
    /// interrupted and never handed back to run.
    @Test func aTakeoverContinuesFromTheStoredStateAndRepeatsNothing() throws {
        var old = try Harness()
        _ = old.probe("web-1", ok: false)
        #expect(old.active == ["web-2"])
        let failover = try #require(old.core.recentEvents.all.last { $0.kind == .group(.failover) })
        let stored = DecisionState(group: "web", leader: "a", writtenAt: old.wall,
                                   engine: try #require(old.core.coordinator.persisted["web"]),
                                   maintenance: ["web-1": .init(reason: "disk swap", until: nil)],
                                   lastEventID: 500, decision: failover)

        // b never saw web-1 fail; it takes over.
        let config = try ConfigLoader.load(yaml: Self.yaml().replacingOccurrences(of: "name: a", with: "name: b"))
        var core = AgentCore(config: config, startedAt: Self.t0.addingTimeInterval(-60), clusterAgent: "b")
        for service in ["web-1", "web-2"] {
            _ = try? core.apply(.probeResult(ProbeResult(time: Self.t0, latency: .milliseconds(2), outcome: .ok,
                                                         reason: "200 OK"), service: service), at: Self.t0)
        }
        _ = try? core.apply(.roundEnded, at: Self.t0)
        #expect(core.coordinator.engine(named: "web")?.active == ["web-1"])
        let events = try core.apply(.cluster(.adopt([stored], at: .seconds(1))), at: Self.t0.addingTimeInterval(1))
        #expect(core.coordinator.engine(named: "web")?.active == ["web-2"], "the old leader's failover stands")
        #expect(!events.contains { $0.kind == .group(.failover) || $0.kind == .group(.failback) },
                "nothing is decided again: \(events.map(\.kind))")
        #expect(core.entry("web-1")?.health.isInMaintenance == true, "maintenance carried over")
        #expect(core.nextEventID > 500, "event ids go on from the stored state")
        let interrupted = try #require(core.cluster?.interrupted.first)
        #expect(interrupted.kind == .group(.failover))
        #expect(interrupted.actions.map(\.action) == ["promote"])
        #expect(interrupted.actions.allSatisfy { "\($0.result)".contains("not run again") })
        #expect(core.recentEvents.event(interrupted.id) != nil, "shown in /v1/events")
    }

    @Test func commandsAndInputsOutsideAClusterAreRefused() throws {
        let config = try ConfigLoader.load(yaml: """
        services:
          web-1: { http: { url: http://127.0.0.1:8081/health } }
        """)
        var core = AgentCore(config: config, startedAt: Self.t0)
        #expect(core.cluster == nil)
        #expect(throws: AgentCore.Refused.self) {
            try core.apply(.cluster(.reportEnded(agent: "b", at: .seconds(1))), at: Self.t0)
        }
    }
}
