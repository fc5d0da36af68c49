import Foundation
import Testing
import VitalsCore

// Scripted health timelines: every state and every tick carries its own time.
// Nothing here sleeps or reads the system clock.

private let t0 = Date(timeIntervalSince1970: 1_800_000_000)
private func at(_ seconds: Double) -> Date { t0.addingTimeInterval(seconds) }

let members = ["web-1", "web-2", "web-3"]

func activePassive(_ members: [String] = members, failback: Failback = .manual,
                           failbackDelay: Duration = .seconds(10), cooldown: Duration = .zero,
                           maxFailovers: Int = 3, window: Duration = .seconds(600)) -> GroupConfig {
    GroupConfig(name: "web", mode: .activePassive(failback: failback, failbackDelay: failbackDelay),
                members: members, cooldown: cooldown, maxFailovers: maxFailovers, failoverWindow: window)
}

func activeActive(_ members: [String] = members, minHealthy: Int) -> GroupConfig {
    GroupConfig(name: "web", mode: .activeActive(minHealthy: minHealthy), members: members)
}

/// An engine plus the world it watches. `set` changes states at a time and
/// feeds the whole view to the engine, as the agent does after each transition.
struct Timeline {
    var engine: GroupEngine
    var world: [String: ServiceView] = [:]

    init(_ group: GroupConfig, dependsOn: [String: [String]] = [:], startedAt: Double = 0,
         startupGrace: Duration = .seconds(30), restoring: GroupEngine.Persisted? = nil) {
        engine = GroupEngine(group: group, dependsOn: dependsOn, startedAt: at(startedAt),
                             startupGrace: startupGrace, restoring: restoring)
    }

    @discardableResult
    mutating func set(_ changes: [String: HealthState], at seconds: Double, reason: String = "") -> [GroupEvent] {
        for (name, state) in changes {
            let why = reason.isEmpty ? Self.defaultReason(state) : reason
            world[name] = ServiceView(state: state, since: at(seconds), reason: why)
        }
        return engine.update(states: world, at: at(seconds))
    }

    @discardableResult
    mutating func tick(_ seconds: Double) -> [GroupEvent] {
        engine.tick(at: at(seconds))
    }

    /// All members up at `seconds`: the usual start.
    @discardableResult
    mutating func allUp(_ names: [String] = members, at seconds: Double = 1) -> [GroupEvent] {
        set(Dictionary(uniqueKeysWithValues: names.map { ($0, HealthState.up) }), at: seconds)
    }

    static func defaultReason(_ state: HealthState) -> String {
        switch state {
        case .down: "status 503, expected 200-299"
        case .up: "2 consecutive successes"
        case .degraded: "slow"
        case .flapping: "6 state changes in 2m"
        case .maintenance: "kernel upgrade"
        case .unknown: "not probed yet"
        }
    }
}

/// `failover web-1>web-2`, `group_down web-2>-`.
func summary(_ events: [GroupEvent]) -> [String] {
    events.map { "\($0.kind.rawValue) \($0.from ?? "-")>\($0.to ?? "-")" }
}

@Suite struct GroupEngineTests {
    // MARK: - Start

    @Test func noDecisionWhileMembersAreUnknownThenOneActivatedEvent() {
        var line = Timeline(activePassive())
        #expect(line.set(["web-2": .up, "web-3": .up], at: 1).isEmpty)
        #expect(line.engine.isStarting)
        #expect(line.engine.condition == .starting)
        #expect(line.engine.nextWakeup == at(30)) // the startup grace
        let events = line.set(["web-1": .up], at: 2)
        #expect(summary(events) == ["activated ->web-1"])
        #expect(events[0].active == ["web-1"])
        #expect(line.engine.activeMember == "web-1")
        #expect(line.engine.condition == .ok)
        #expect(!line.engine.isStarting)
        #expect(line.engine.nextWakeup == nil)
    }

    @Test func startWalksPriorityOrderSkippingKnownDownMembers() {
        var line = Timeline(activePassive())
        #expect(line.set(["web-1": .down], at: 1).isEmpty) // web-2 still unknown: wait for it
        let events = line.set(["web-2": .up], at: 2)
        #expect(summary(events) == ["activated ->web-2"])
        #expect(line.set(["web-3": .up], at: 3).isEmpty)
    }

    @Test func startWithEveryMemberDownIsOneGroupDown() {
        var line = Timeline(activePassive())
        let events = line.set(["web-1": .down, "web-2": .down, "web-3": .maintenance], at: 1)
        #expect(summary(events) == ["group_down ->-"])
        #expect(events[0].reason.hasPrefix("no usable member at start: web-1 down (status 503"))
        #expect(line.engine.condition == .down)
        #expect(line.set(["web-1": .down], at: 2).isEmpty)
        #expect(summary(line.set(["web-2": .up], at: 3)) == ["group_recovered ->web-2"])
    }

    @Test func aMemberStuckUnknownIsWaitedForOnlyUntilTheStartupGrace() {
        var line = Timeline(activePassive(), startupGrace: .seconds(20))
        #expect(line.set(["web-2": .up], at: 1).isEmpty)
        #expect(line.engine.nextWakeup == at(20))
        #expect(line.tick(19.9).isEmpty)
        #expect(summary(line.tick(20)) == ["activated ->web-2"])
    }

    // MARK: - Failover, group down, recovery

    @Test func primaryDiesThenBackupTakesOver() {
        var line = Timeline(activePassive())
        line.allUp()
        let events = line.set(["web-1": .down], at: 10)
        #expect(summary(events) == ["failover web-1>web-2"])
        let event = events[0]
        #expect(event.group == "web")
        #expect(event.time == at(10))
        #expect(event.reason == "web-1 down (status 503, expected 200-299); chose web-2")
        #expect(event.evidence == ["web-1": .down, "web-2": .up, "web-3": .up])
        #expect(event.active == ["web-2"])
        #expect(event.rootCause == nil)
        #expect(line.engine.activeMember == "web-2")
        #expect(line.engine.lastFailoverAt == at(10))
        #expect(line.engine.recentMoves == [at(10)])
    }

    @Test func everyNonServingStateOfTheActiveMemberFailsOver() {
        for state in [HealthState.down, .flapping, .maintenance, .unknown] {
            var line = Timeline(activePassive())
            line.allUp()
            #expect(summary(line.set(["web-1": state], at: 10)) == ["failover web-1>web-2"], "\(state)")
        }
        var line = Timeline(activePassive())
        line.allUp()
        #expect(line.set(["web-1": .degraded], at: 10).isEmpty) // degraded still serves
    }

    @Test func failoverSkipsUnusableBackupsInPriorityOrder() {
        var line = Timeline(activePassive())
        line.allUp()
        line.set(["web-2": .flapping], at: 5)
        #expect(summary(line.set(["web-1": .down], at: 10)) == ["failover web-1>web-3"])
    }

    @Test func backupDyingTooIsGroupDownAndAReturnRecovers() {
        var line = Timeline(activePassive(["web-1", "web-2"]))
        line.allUp(["web-1", "web-2"])
        line.set(["web-1": .down], at: 10)
        let down = line.set(["web-2": .down], at: 20, reason: "connection refused")
        #expect(summary(down) == ["group_down web-2>-"])
        #expect(down[0].reason
            == "no usable member: web-1 down (status 503, expected 200-299), web-2 down (connection refused)")
        #expect(down[0].active.isEmpty)
        #expect(line.engine.activeMember == nil)
        #expect(line.engine.lastActive == "web-2")
        #expect(line.engine.condition == .down)

        let back = line.set(["web-1": .up], at: 30)
        #expect(summary(back) == ["group_recovered ->web-1"])
        #expect(line.engine.activeMember == "web-1")
        #expect(line.engine.recentMoves == [at(10)]) // recovery is not a move
    }

    // MARK: - Failback

    @Test func autoFailbackWaitsForFailbackDelay() {
        var line = Timeline(activePassive(failback: .auto, failbackDelay: .seconds(10)))
        line.allUp()
        line.set(["web-1": .down], at: 10)
        #expect(line.set(["web-1": .up], at: 20).isEmpty)
        #expect(line.engine.nextWakeup == at(30))
        #expect(line.tick(29.5).isEmpty)
        let events = line.tick(30)
        #expect(summary(events) == ["failback web-2>web-1"])
        #expect(events[0].reason == "web-1 usable for 10s (failback_delay 10s)")
        #expect(line.engine.activeMember == "web-1")
        #expect(line.engine.recentMoves == [at(10)]) // a failback uses no failover budget
    }

    @Test func aBounceRestartsTheFailbackDelay() {
        var line = Timeline(activePassive(failback: .auto, failbackDelay: .seconds(10)))
        line.allUp()
        line.set(["web-1": .down], at: 10)
        line.set(["web-1": .up], at: 20)
        line.set(["web-1": .down], at: 25)
        #expect(line.engine.nextWakeup == nil)
        line.set(["web-1": .up], at: 27)
        #expect(line.tick(30).isEmpty)
        #expect(line.engine.nextWakeup == at(37))
        #expect(summary(line.tick(37)) == ["failback web-2>web-1"])
    }

    @Test func degradedPrimaryIsStillUsableForFailback() {
        var line = Timeline(activePassive(failback: .auto, failbackDelay: .seconds(10)))
        line.allUp()
        line.set(["web-1": .down], at: 10)
        line.set(["web-1": .up], at: 20)
        line.set(["web-1": .degraded], at: 25) // up -> degraded keeps it usable without a break
        #expect(summary(line.tick(30)) == ["failback web-2>web-1"])
    }

    @Test func manualFailbackStaysOnTheBackup() {
        var line = Timeline(activePassive(failback: .manual))
        line.allUp()
        line.set(["web-1": .down], at: 10)
        #expect(line.set(["web-1": .up], at: 20).isEmpty)
        #expect(line.engine.nextWakeup == nil)
        #expect(line.tick(3600).isEmpty)
        #expect(line.engine.activeMember == "web-2")
    }

    // MARK: - Anti-flap

    /// The cooldown delays elective moves only: a failback waits for it, a
    /// failover away from a failed member never does.
    @Test func cooldownDefersAFailbackUntilItEnds() {
        var line = Timeline(activePassive(failback: .auto, failbackDelay: .zero, cooldown: .seconds(30)))
        line.allUp()
        line.set(["web-1": .down], at: 10)
        #expect(summary(line.set(["web-2": .down], at: 20)) == ["failover web-2>web-3"])
        #expect(line.set(["web-1": .up], at: 25).isEmpty)
        #expect(line.engine.activeMember == "web-3")
        #expect(line.engine.condition == .ok)
        #expect(line.engine.pending?.kind == .failback)
        #expect(line.engine.pending?.to == "web-1")
        #expect(line.engine.pending?.notBefore == at(50))
        #expect(line.engine.nextWakeup == at(50))
        #expect(line.tick(49).isEmpty)
        let events = line.tick(50)
        #expect(summary(events) == ["failback web-3>web-1"])
        #expect(line.engine.pending == nil)
    }

    @Test func aDeferredFailbackIsReEvaluatedFromTheStatesAtCooldownEnd() {
        var line = Timeline(activePassive(failback: .auto, failbackDelay: .zero, cooldown: .seconds(30)))
        line.allUp()
        line.set(["web-1": .down], at: 10)
        line.set(["web-1": .up], at: 20)
        #expect(line.engine.pending?.kind == .failback)
        line.set(["web-1": .down], at: 35) // down again before the cooldown ends
        #expect(line.engine.pending == nil)
        #expect(line.tick(40).isEmpty)
        #expect(line.engine.activeMember == "web-2")
    }

    @Test func groupDownAndRecoveryDoNotWaitForCooldown() {
        var line = Timeline(activePassive(["web-1", "web-2"], cooldown: .seconds(60)))
        line.allUp(["web-1", "web-2"])
        line.set(["web-1": .down], at: 10)
        #expect(summary(line.set(["web-2": .down], at: 11)) == ["group_down web-2>-"])
        #expect(summary(line.set(["web-1": .up], at: 12)) == ["group_recovered ->web-1"])
    }

    /// web-1 toggles every second for a minute with auto failback and a 5s
    /// cooldown: failovers at 1, 7 and 13 (each right away), failbacks when
    /// the cooldown allows (6, 12). The budget is then spent: the next
    /// failback waits until the first failover leaves the window, and the
    /// group is not held. A real failure of web-2 then is suppressed, held
    /// and reported as an emergency.
    @Test func flappingPrimaryIsSuppressedAfterMaxFailovers() {
        var line = Timeline(activePassive(["web-1", "web-2"], failback: .auto, failbackDelay: .zero,
                                          cooldown: .seconds(5), maxFailovers: 3, window: .seconds(600)))
        line.allUp(["web-1", "web-2"], at: 0)
        var events: [GroupEvent] = []
        for second in 1...60 {
            events += line.set(["web-1": second % 2 == 1 ? .down : .up], at: Double(second))
            if let wake = line.engine.nextWakeup, wake <= at(Double(second) + 0.5) {
                events += line.tick(Double(second) + 0.5)
            }
        }
        #expect(summary(events) == ["failover web-1>web-2", "failback web-2>web-1", "failover web-1>web-2",
                                    "failback web-2>web-1", "failover web-1>web-2"])
        #expect(line.engine.recentMoves == [at(1), at(7), at(13)])
        #expect(!line.engine.isHeld)
        #expect(line.engine.pending?.kind == .failback)
        #expect(line.engine.pending?.reason.contains("deferred: 3 failovers within 10m (max_failovers 3)") == true)
        #expect(line.engine.nextWakeup == at(601))

        let down = line.set(["web-2": .down], at: 61)
        #expect(summary(down) == ["failover_suppressed web-2>-", "active_down_while_held web-2>-"])
        #expect(down.first?.reason.contains("3 failovers within 10m (max_failovers 3)") == true)
        #expect(line.engine.hold?.cause == .failoverLimit)
        #expect(line.engine.nextWakeup == nil)

        // Releasing gives a fresh budget and decides at once.
        line.set(["web-2": .up, "web-1": .up], at: 62)
        let released = line.engine.release(at: at(70))
        #expect(summary(released) == ["released ->-", "failback web-2>web-1"])
        #expect(!line.engine.isHeld)
    }

    @Test func movesOutsideTheWindowNoLongerCount() {
        var line = Timeline(activePassive(["web-1", "web-2"], maxFailovers: 1, window: .seconds(60)))
        line.allUp(["web-1", "web-2"])
        #expect(summary(line.set(["web-1": .down], at: 10)) == ["failover web-1>web-2"])
        line.set(["web-1": .up], at: 20)
        #expect(summary(line.set(["web-2": .down], at: 70)) == ["failover web-2>web-1"])
        line.set(["web-2": .up], at: 75)
        #expect(summary(line.set(["web-1": .down], at: 80))
            == ["failover_suppressed web-1>-", "active_down_while_held web-1>-"])
    }

    // MARK: - Restore

    @Test func restoredActiveMemberIsKeptWithoutAnyEvent() throws {
        // Before the restart: web-1 failed, web-2 took over.
        var before = Timeline(activePassive(failback: .auto, failbackDelay: .seconds(10)))
        before.allUp()
        before.set(["web-1": .down], at: 10)
        let saved = before.engine.persisted
        #expect(saved.active == ["web-2"])
        let data = try JSONEncoder().encode(saved)
        let restored = try JSONDecoder().decode(GroupEngine.Persisted.self, from: data)
        #expect(restored == saved)

        // After a restart at 100s: every tracker starts unknown again.
        var line = Timeline(activePassive(failback: .auto, failbackDelay: .seconds(10)), startedAt: 100,
                            restoring: restored)
        #expect(line.engine.activeMember == "web-2")
        #expect(line.set(["web-3": .up], at: 100).isEmpty)
        #expect(line.set(["web-2": .up], at: 101).isEmpty) // the recorded choice stands
        #expect(!line.engine.isStarting)
        #expect(line.engine.recentMoves == [at(10)])
        // web-1 comes back after the restart: an ordinary failback, after the delay.
        #expect(line.set(["web-1": .up], at: 102).isEmpty)
        #expect(line.tick(111).isEmpty)
        let events = line.tick(112)
        #expect(summary(events) == ["failback web-2>web-1"])
        #expect(events[0].id == saved.nextEventID) // ids carry on
    }

    @Test func restoredActiveMemberThatIsDownFailsOverOnceMembersAreKnown() {
        let saved = GroupEngine.Persisted(active: ["web-2"], nextEventID: 7)
        var line = Timeline(activePassive(), restoring: saved)
        #expect(line.set(["web-2": .down], at: 1).isEmpty) // web-1 and web-3 unknown: wait
        #expect(line.set(["web-1": .down], at: 2).isEmpty)
        let events = line.set(["web-3": .up], at: 3)
        #expect(summary(events) == ["failover web-2>web-3"])
        #expect(events[0].id == 7)
    }

    @Test func restoredHoldAndActiveActiveSetStay() {
        let hold = GroupHold(cause: .operatorRequest, reason: "planned work", since: at(-50))
        var held = Timeline(activePassive(), restoring: GroupEngine.Persisted(active: ["web-1"], hold: hold))
        // Held, and the restored active member is down: reported, not moved.
        #expect(summary(held.set(["web-1": .down, "web-2": .up, "web-3": .up], at: 1))
            == ["active_down_while_held web-1>-"])
        #expect(held.engine.activeMember == "web-1")
        #expect(held.engine.heldReason == "planned work")

        var both = Timeline(activeActive(minHealthy: 1),
                            restoring: GroupEngine.Persisted(active: ["web-1", "web-3"]))
        #expect(both.set(["web-1": .up, "web-3": .up], at: 1).isEmpty)
        // Only the real difference is reported once every member is known.
        #expect(summary(both.set(["web-2": .up], at: 2)) == ["member_added ->web-2"])
    }

    @Test func restoredDownGroupRecoversOnlyWhenAMemberIsUsable() {
        let saved = GroupEngine.Persisted(active: [], lastActive: "web-2")
        var line = Timeline(activePassive(["web-1", "web-2"]), restoring: saved)
        #expect(line.set(["web-1": .down, "web-2": .down], at: 1).isEmpty) // still down: no repeat
        #expect(summary(line.set(["web-2": .up], at: 5)) == ["group_recovered ->web-2"])
    }

    @Test func eventIDsIncreaseAndDescriptionsRead() {
        var line = Timeline(activePassive())
        let start = line.allUp()
        let failover = line.set(["web-1": .down], at: 10)
        #expect(start[0].id == 1)
        #expect(failover[0].id == 2)
        #expect(failover[0].description == "web: failover web-1 -> web-2 (web-1 down (status 503, expected 200-299); chose web-2)")
    }
}
