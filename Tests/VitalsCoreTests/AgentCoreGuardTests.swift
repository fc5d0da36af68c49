import Foundation
import Testing
import VitalsCore

// Guard rails on operator commands: the core refuses a maintenance or a hold
// that would leave a group with no serving member, unless forced, and a hold
// that replaces another's reason says so.

private let t0 = Date(timeIntervalSince1970: 1_800_000_000)
private func at(_ seconds: Double) -> Date { t0.addingTimeInterval(seconds) }

private let yaml = """
    defaults: { interval: 1s, timeout: 500ms, rise: 1, fall: 1, jitter: 0ms }
    services:
      web-1: { tcp: { host: 127.0.0.1, port: 8081 } }
      web-2: { tcp: { host: 127.0.0.1, port: 8082 } }
      web-3: { tcp: { host: 127.0.0.1, port: 8083 } }
    groups:
      web:
        mode: active-passive
        members: [web-1, web-2, web-3]
    """

private func result(_ ok: Bool, at seconds: Double) -> ProbeResult {
    ProbeResult(time: at(seconds), latency: .milliseconds(2), outcome: ok ? .ok : .failed,
                reason: ok ? "" : "connect refused")
}

/// A core after one round at 1s in which each member was up or not; the group has decided.
private func core(up: [String: Bool]) throws -> AgentCore {
    var core = AgentCore(config: try ConfigLoader.load(yaml: yaml), startedAt: t0)
    for name in ["web-1", "web-2", "web-3"] {
        _ = try core.apply(.probeResult(result(up[name] ?? true, at: 1), service: name), at: at(1))
    }
    _ = try core.apply(.roundEnded, at: at(1))
    return core
}

private func refusal(_ input: AgentInput, on core: inout AgentCore, at seconds: Double) -> String? {
    do {
        let events = try core.apply(input, at: at(seconds))
        Issue.record("accepted: \(events.map(\.kind))")
        return nil
    } catch {
        guard case .refused(let why) = error.refusal else { return "\(error.refusal)" }
        return why
    }
}

@Suite struct AgentCoreGuardTests {
    @Test func maintenanceOnTheLastServingMemberIsRefusedUnlessForced() throws {
        var core = try core(up: ["web-1": true, "web-2": false, "web-3": false])
        let why = refusal(.maintenance(service: "web-1", on: true, reason: "kernel"), on: &core, at: 5)
        #expect(why == #"maintenance on web-1 would leave group web with no serving member (web-2 down, web-3 down); "#
                + #"send "force": true to do it anyway"#)
        #expect(core.entry("web-1")?.health.state == .up, "refused: nothing changed")
        #expect(core.maintenanceUntil.isEmpty)

        // A member that serves nothing now takes nothing away.
        #expect(try core.apply(.maintenance(service: "web-2", on: true, reason: "rebuild"), at: at(6)).count == 1)

        let forced = try core.apply(.maintenance(service: "web-1", on: true, reason: "kernel", force: true), at: at(7))
        #expect(forced.map(\.kind.rawValue) == ["state_change", "group_down"])
    }

    @Test func maintenanceWithAnotherServingMemberNeedsNoForce() throws {
        var core = try core(up: ["web-1": true, "web-2": true, "web-3": false])
        let events = try core.apply(.maintenance(service: "web-1", on: true, reason: "kernel"), at: at(5))
        #expect(events.map(\.kind.rawValue) == ["state_change", "failover"])
    }

    /// Held, the group moves nothing: maintenance on its active member leaves
    /// its traffic on a member that does not serve, whoever else is up.
    @Test func maintenanceOnTheActiveMemberOfAHeldGroupIsRefusedUnlessForced() throws {
        var core = try core(up: [:])
        _ = try core.apply(.hold(group: "web", reason: "migration"), at: at(2))
        let why = refusal(.maintenance(service: "web-1", on: true, reason: "kernel"), on: &core, at: 5)
        #expect(why == #"maintenance on web-1 would leave group web with no serving member (held: its traffic "#
                + #"stays on web-1); send "force": true to do it anyway"#)
        #expect(try core.apply(.maintenance(service: "web-2", on: true, reason: "kernel"), at: at(6)).count == 1,
                "a standby of a held group is not in the way")
    }

    /// A hold pins traffic where it is. On a group whose active member does
    /// not serve, or that has none, it keeps the group without a serving
    /// member until released, whatever recovers meanwhile.
    @Test func aHoldThatPinsTrafficOnNoServingMemberIsRefusedUnlessForced() throws {
        var core = try core(up: ["web-1": false, "web-2": false, "web-3": false])
        #expect(core.coordinator.engine(named: "web")?.condition == .down)
        let why = refusal(.hold(group: "web", reason: "investigating"), on: &core, at: 5)
        #expect(why == #"hold on group web would leave it with no serving member until released "#
                + #"(web-1 down, web-2 down, web-3 down); send "force": true to do it anyway"#)
        #expect(core.coordinator.engine(named: "web")?.isHeld == false)

        let forced = try core.apply(.hold(group: "web", reason: "investigating", force: true), at: at(6))
        #expect(forced.map(\.kind.rawValue) == ["held"])
    }

    @Test func aSecondHoldThatChangesTheReasonRecordsIt() throws {
        var core = try core(up: [:])
        _ = try core.apply(.hold(group: "web", reason: "db migration"), at: at(2))
        let again = try core.apply(.hold(group: "web", reason: "db migration, day 2"), at: at(3))
        #expect(again.map(\.kind.rawValue) == ["held"])
        #expect(again.first?.reason == "db migration, day 2 (was: db migration, held since 2027-01-15T08:00:02Z)")
        #expect(core.coordinator.engine(named: "web")?.hold?.since == at(2), "still held since the first hold")
        #expect(try core.apply(.hold(group: "web", reason: "db migration, day 2"), at: at(4)).isEmpty,
                "the same reason again changes nothing")
    }
}
