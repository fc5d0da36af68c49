import Foundation
import Testing
@testable import VitalsCore

/// The decision state a leader leaves in etcd, and a new leader taking over from it.
@Suite struct ClusterHandoverTests {
    static let t0 = Date(timeIntervalSince1970: 1_800_000_000)
    static let yaml = """
    services:
      web-1: { http: { url: http://127.0.0.1:8081/health } }
      web-2: { http: { url: http://127.0.0.1:8082/health } }
      web-3: { http: { url: http://127.0.0.1:8083/health } }
    groups:
      web:
        members: [web-1, web-2, web-3]
        cooldown: 30s
        on: { failover: [promote, notify] }
    actions:
      promote: { exec: [/bin/true] }
      notify: { log: {} }
    """

    static func view(_ state: HealthState, _ reason: String = "") -> ServiceView {
        ServiceView(state: state, since: t0, reason: reason)
    }

    /// The old leader: web-1 fails at t0+5s and web-2 takes over; it writes
    /// the state before the failover's actions start, then dies.
    static func oldLeaderFailsOver(_ config: VitalsConfig) throws -> (DecisionState, AgentEvent) {
        var coordinator = FailoverCoordinator(config: config, startedAt: t0)
        _ = coordinator.update(states: ["web-1": view(.up), "web-2": view(.up), "web-3": view(.up)], at: t0)
        let events = coordinator.update(states: ["web-1": view(.down, "timeout"), "web-2": view(.up),
                                                 "web-3": view(.up)],
                                        at: t0.addingTimeInterval(5))
        let failover = AgentEvent.group(try #require(events.first { $0.kind == .failover }), id: 41)
        // promote reported; notify had not when the leader died.
        var started = failover
        started.actions = [ActionOutcome.notRun(try #require(config.action(named: "promote")), event: failover,
                                                result: .skipped("test: stands for a finished run"),
                                                at: t0.addingTimeInterval(5))]
        let state = DecisionState(group: "web", leader: "a", writtenAt: t0.addingTimeInterval(5),
                                  engine: try #require(coordinator.persisted["web"]),
                                  maintenance: ["web-3": .init(reason: "kernel upgrade", until: nil)],
                                  lastEventID: 41, decision: started)
        return (state, failover)
    }

    @Test func theStateRoundTripsThroughJSON() throws {
        let config = try ConfigLoader.load(yaml: Self.yaml)
        let (state, _) = try Self.oldLeaderFailsOver(config)
        let text = String(decoding: state.json, as: UTF8.self)
        #expect(text.contains("\"active\":[\"web-2\"]"))
        #expect(text.contains("\"writtenAt\":\"2027-01-15T08:00:05.000Z\""))
        #expect(try DecisionState(json: state.json) == state)
        #expect(state.engine.lastMoveAt == Self.t0.addingTimeInterval(5))
        #expect(state.engine.recentMoves == [Self.t0.addingTimeInterval(5)])
    }

    /// The new leader's own engine never saw the failover (it started late,
    /// with web-1 still active in its mind). From the stored state it keeps
    /// web-2, makes no failover of its own, and the old leader's move still
    /// counts toward the failover budget.
    @Test func aNewLeaderDoesNotRepeatTheFailover() throws {
        let config = try ConfigLoader.load(yaml: Self.yaml)
        let (state, _) = try Self.oldLeaderFailsOver(config)
        let stored = try DecisionState(json: state.json)
        let shadow = AgentSnapshot(savedAt: Self.t0, groups: ["web": GroupEngine.Persisted(active: ["web-1"])],
                                   lastEventID: 12)
        let takeover = DecisionState.takeover([stored], base: shadow, config: config)
        #expect(takeover.snapshot.groups["web"]?.active == ["web-2"])
        #expect(takeover.snapshot.lastEventID == 41)

        let start = Self.t0.addingTimeInterval(8)
        var coordinator = FailoverCoordinator(config: config, startedAt: start,
                                              restoring: takeover.snapshot.groups)
        let states = ["web-1": Self.view(.down, "timeout"), "web-2": Self.view(.up),
                      "web-3": Self.view(.maintenance)]
        #expect(coordinator.update(states: states, at: start) == [])
        #expect(coordinator.engine(named: "web")?.active == ["web-2"])
        // A new failure after the takeover is a new failover, made once, and
        // the window holds both moves.
        var failing = states
        failing["web-1"] = Self.view(.up)
        failing["web-2"] = Self.view(.down, "timeout")
        let events = coordinator.update(states: failing, at: Self.t0.addingTimeInterval(10))
        #expect(events.map(\.description) == ["web: failover web-2 -> web-1 (web-2 down (timeout); chose web-1)"])
        #expect(coordinator.persisted["web"]?.recentMoves == [Self.t0.addingTimeInterval(5),
                                                             Self.t0.addingTimeInterval(10)])
    }

    @Test func holdsAndMaintenanceSurviveTheHandover() throws {
        let config = try ConfigLoader.load(yaml: Self.yaml)
        var (state, _) = try Self.oldLeaderFailsOver(config)
        state.engine.hold = GroupHold(cause: .operatorRequest, reason: "db migration", since: Self.t0)
        let base = AgentSnapshot(savedAt: Self.t0, maintenance: ["web-1": .init(reason: "stale", until: nil)])
        let takeover = DecisionState.takeover([try DecisionState(json: state.json)], base: base, config: config)
        #expect(takeover.snapshot.maintenance == ["web-3": .init(reason: "kernel upgrade", until: nil)])

        let start = Self.t0.addingTimeInterval(8)
        let core = AgentCore(config: config, startedAt: start, restoring: takeover.snapshot, firstEventID: 42)
        #expect(core.views["web-3"]?.state == .maintenance)
        #expect(core.views["web-1"]?.state != .maintenance)
        let engine = try #require(core.coordinator.engine(named: "web"))
        #expect(engine.hold?.reason == "db migration")
        #expect(engine.active == ["web-2"])
    }

    /// The failover's `notify` never reported: the new leader records it as
    /// interrupted and runs nothing of that decision again; `promote`, which
    /// did report, keeps its outcome.
    @Test func anInterruptedDecisionIsReportedNotRunTwice() throws {
        let config = try ConfigLoader.load(yaml: Self.yaml)
        let (state, failover) = try Self.oldLeaderFailsOver(config)
        let takeover = DecisionState.takeover([try DecisionState(json: state.json)],
                                              base: AgentSnapshot(savedAt: Self.t0), config: config)
        #expect(takeover.interrupted.map(\.id) == [failover.id])

        let start = Self.t0.addingTimeInterval(8)
        var core = AgentCore(config: config, startedAt: start, restoring: takeover.snapshot,
                             recentEvents: takeover.interrupted)
        #expect(try core.apply(.restarted(journal: takeover.interrupted), at: start) == [])
        let actions = core.recentEvents.event(failover.id)?.actions ?? []
        #expect(actions.map(\.action) == ["promote", "notify"])
        #expect(actions.last?.result == .skipped(AgentCore.interruptedReason))
        #expect(core.nextEventID == 42)
        // The replayed decision did not move anything again.
        #expect(core.coordinator.engine(named: "web")?.active == ["web-2"])

        // Once every action reported, nothing is handed back.
        var done = state
        done.decision?.actions += actions.suffix(1)
        #expect(DecisionState.takeover([done], base: AgentSnapshot(savedAt: Self.t0), config: config).interrupted == [])
    }
}
