import Foundation
import Testing
@testable import VitalsCore

/// Which actions an event runs: one rule (`VitalsConfig.actions(for:)`) for
/// the agent's effects and for marking interrupted actions after a restart.
@Suite struct EventActionsTests {
    static let yaml = """
    services:
      web-1: { tcp: { host: h, port: 1 } }
      web-2: { tcp: { host: h, port: 2 } }
      job: { heartbeat: { every: 1h }, on: { missed: [page], late: [nudge], down: [notify], up: [notify], degraded: [log-it] } }
      lone: { tcp: { host: h, port: 3 }, on: { any: [notify] } }
    groups:
      web:
        members: [web-1, web-2]
        on: { failover: [promote, notify], move: [promote], any: [log-it] }
      pool:
        mode: active-active
        members: [web-1, web-2]
        on: { any: [notify] }
    actions:
      promote: { exec: [/bin/true] }
      notify: { log: {} }
      page: { log: {} }
      nudge: { log: {} }
      log-it: { log: {} }
    """

    static func group(_ kind: GroupEventKind, _ group: String = "web", from: String? = nil, to: String? = nil,
                      active: [String]) -> AgentEvent {
        AgentEvent(id: 1, time: Date(timeIntervalSince1970: 0), kind: .group(kind), group: group, from: from, to: to,
                   reason: "test", active: active)
    }

    static func change(_ service: String, _ from: HealthState, _ to: HealthState,
                       rule: String = "fall 3/3") -> AgentEvent {
        AgentEvent(id: 1, time: Date(timeIntervalSince1970: 0), kind: .stateChange, service: service,
                   from: from.rawValue, to: to.rawValue, reason: "test", rule: rule)
    }

    static let table: [(String, AgentEvent, [String])] = [
        ("failover: its own list, then move's, then any's, each once",
         group(.failover, from: "web-1", to: "web-2", active: ["web-2"]), ["promote", "notify", "log-it"]),
        ("switchover is a move", group(.switchover, from: "web-1", to: "web-2", active: ["web-2"]), ["promote", "log-it"]),
        ("failback is a move", group(.failback, from: "web-2", to: "web-1", active: ["web-1"]), ["promote", "log-it"]),
        ("the first choice is a move", group(.activated, to: "web-1", active: ["web-1"]), ["promote", "log-it"]),
        ("recovery from none is a move", group(.groupRecovered, to: "web-1", active: ["web-1"]), ["promote", "log-it"]),
        ("a suppressed failover moves nothing",
         group(.failoverSuppressed, from: "web-1", to: "web-2", active: ["web-1"]), ["log-it"]),
        ("group_down moves to nobody", group(.groupDown, from: "web-1", active: []), ["log-it"]),
        ("held", group(.held, active: ["web-1"]), ["log-it"]),
        ("active-active has no move", group(.memberAdded, "pool", to: "web-1", active: ["web-1", "web-2"]), ["notify"]),
        ("a missed heartbeat", change("job", .unknown, .down, rule: "heartbeat deadline"), ["page", "notify"]),
        ("a failed job is down, not missed", change("job", .up, .down, rule: "failure report"), ["notify"]),
        ("a heartbeat back", change("job", .down, .up, rule: "heartbeat"), ["notify"]),
        ("a late heartbeat: late's list, then degraded's", change("job", .up, .degraded, rule: "late"), ["nudge", "log-it"]),
        ("late after a restart", change("job", .unknown, .degraded, rule: "late"), ["nudge", "log-it"]),
        ("degraded for another reason is not late", change("job", .up, .degraded, rule: "restored after a restart"),
         ["log-it"]),
        ("missed after late", change("job", .degraded, .down, rule: "heartbeat deadline"), ["page", "notify"]),
        ("back from late", change("job", .degraded, .up, rule: "heartbeat"), ["notify"]),
        ("the first up after start is no news", change("job", .unknown, .up, rule: "heartbeat"), []),
        ("any on a service outside every group", change("lone", .up, .degraded), ["notify"]),
        ("a service with no on:", change("web-1", .up, .down), []),
        ("a reload", AgentEvent(id: 1, time: Date(timeIntervalSince1970: 0), kind: .configReloaded, reason: "r"), []),
    ]

    @Test(arguments: table)
    func anEventRunsTheListsThatNameIt(_ description: String, _ event: AgentEvent, _ expected: [String]) throws {
        let config = try ConfigLoader.load(yaml: Self.yaml)
        #expect(config.actions(for: event).map(\.name) == expected, "\(description)")
    }

    /// `any` needs no list of kinds: a kind added later is covered too.
    @Test(arguments: GroupEventKind.allCases)
    func anyCoversEveryGroupEventKind(_ kind: GroupEventKind) throws {
        let config = try ConfigLoader.load(yaml: Self.yaml)
        #expect(config.actions(for: Self.group(kind, "pool", active: [])).map(\.name) == ["notify"])
    }

    @Test func aServiceEventInterruptedByARestartIsMarkedNotRunAgain() throws {
        let config = try ConfigLoader.load(yaml: Self.yaml)
        let missed = AgentEvent(id: 5, time: Date(timeIntervalSince1970: 10), kind: .stateChange, service: "job",
                                from: "up", to: "down", reason: "no heartbeat for 1h", rule: "heartbeat deadline")
        var core = AgentCore(config: config, startedAt: Date(timeIntervalSince1970: 100), recentEvents: [missed],
                             firstEventID: 6)
        _ = try core.apply(.restarted(journal: [missed]), at: Date(timeIntervalSince1970: 100))
        let marked = core.recentEvents.event(5)?.actions ?? []
        #expect(marked.map(\.action) == ["page", "notify"])
        #expect(marked.allSatisfy { $0.result == .skipped(AgentCore.interruptedReason) })
    }
}
