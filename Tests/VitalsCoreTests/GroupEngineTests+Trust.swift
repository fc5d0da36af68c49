import Foundation
import Testing
import VitalsCore

// Decisions an operator can trust: what counts toward max_failovers, what the
// cooldown may delay, what a held group says when its active member fails,
// and how a restored group reads. The timeline, group and summary helpers are
// in GroupEngineTests.swift.

private let t0 = Date(timeIntervalSince1970: 1_800_000_000)
private func at(_ seconds: Double) -> Date { t0.addingTimeInterval(seconds) }

extension GroupEngineTests {
    // MARK: - What counts toward max_failovers

    /// A maintenance move, the failback after it and an operator's switchover
    /// are harmless: none of them uses the failover budget, so the next real
    /// outage still fails over.
    @Test func onlyFailoversAwayFromAFailedMemberCount() throws {
        var line = Timeline(activePassive(failback: .auto, failbackDelay: .zero, maxFailovers: 1))
        line.allUp()
        #expect(summary(line.set(["web-1": .maintenance], at: 10)) == ["failover web-1>web-2"])
        #expect(summary(line.set(["web-1": .up], at: 20)) == ["failback web-2>web-1"])
        _ = try line.engine.switchover(to: "web-2", at: at(30)).get()
        #expect(line.engine.recentMoves.isEmpty)

        let outage = line.set(["web-2": .down], at: 40)
        #expect(summary(outage) == ["failover web-2>web-1"])
        #expect(!line.engine.isHeld)
        #expect(line.engine.recentMoves == [at(40)])
    }

    /// With the budget used up, a due failback waits until a counted
    /// failover leaves the window; the group is not held, so a later real
    /// failure still fails over.
    @Test func aFailbackTheLimitStopsIsDeferredNeverAHold() {
        var line = Timeline(activePassive(["web-1", "web-2"], failback: .auto, failbackDelay: .zero,
                                          maxFailovers: 1, window: .seconds(60)))
        line.allUp(["web-1", "web-2"])
        #expect(summary(line.set(["web-1": .down], at: 10)) == ["failover web-1>web-2"])
        #expect(line.set(["web-1": .up], at: 20).isEmpty)
        #expect(!line.engine.isHeld)
        #expect(line.engine.pending?.kind == .failback)
        #expect(line.engine.pending?.notBefore == at(70))
        #expect(line.engine.nextWakeup == at(70))
        #expect(line.engine.condition == .ok)

        #expect(summary(line.tick(70)) == ["failback web-2>web-1"])
        #expect(summary(line.set(["web-1": .down], at: 80)) == ["failover web-1>web-2"])
    }

    // MARK: - Cooldown

    /// Right after a failback the primary fails again: traffic leaves it at
    /// once. Only the failback itself waited for the cooldown.
    @Test func cooldownNeverKeepsTrafficOnAFailedMember() {
        var line = Timeline(activePassive(["web-1", "web-2"], failback: .auto, failbackDelay: .zero,
                                          cooldown: .seconds(30)))
        line.allUp(["web-1", "web-2"], at: 0)
        #expect(summary(line.set(["web-1": .down], at: 1)) == ["failover web-1>web-2"])
        #expect(line.set(["web-1": .up], at: 2).isEmpty) // elective: waits for the cooldown
        #expect(line.engine.pending?.kind == .failback)
        #expect(summary(line.tick(31)) == ["failback web-2>web-1"])

        let again = line.set(["web-1": .down], at: 32)
        #expect(summary(again) == ["failover web-1>web-2"])
        #expect(line.engine.activeMember == "web-2")
    }

    // MARK: - Held with a failed active member

    @Test func aHeldGroupWhoseActiveMemberFailsIsAnEmergency() {
        var line = Timeline(activePassive())
        line.allUp()
        _ = line.engine.hold(reason: "db migration", at: at(5))
        #expect(line.engine.condition == .ok)

        let down = line.set(["web-1": .down], at: 10)
        #expect(summary(down) == ["active_down_while_held web-1>-"])
        #expect(down.first?.service == "web-1")
        #expect(down.first?.reason.contains("held") == true)
        #expect(line.engine.condition == .down)
        #expect(line.engine.activeMember == "web-1") // held: nothing moves
        #expect(line.set(["web-2": .down], at: 11).isEmpty, "one event per outage")

        line.set(["web-1": .up], at: 20)
        #expect(line.engine.condition == .ok)
        #expect(summary(line.set(["web-1": .down], at: 30)) == ["active_down_while_held web-1>-"])
    }

    @Test func aSuppressedFailoverNamesNoMoveAndIsAnEmergency() {
        var line = Timeline(activePassive(["web-1", "web-2"], maxFailovers: 1))
        line.allUp(["web-1", "web-2"])
        #expect(summary(line.set(["web-1": .down], at: 10)) == ["failover web-1>web-2"])
        line.set(["web-1": .up], at: 15)

        let events = line.set(["web-2": .down], at: 20)
        #expect(summary(events) == ["failover_suppressed web-2>-", "active_down_while_held web-2>-"])
        #expect(events.first?.reason.contains("chose") == false)
        #expect(events.first?.reason.contains("web-2 down") == true)
        #expect(line.engine.condition == .down)
        #expect(line.engine.activeMember == "web-2")
    }

    // MARK: - Restore

    @Test func aRestoredHeldGroupIsNotStarting() throws {
        let hold = GroupHold(cause: .operatorRequest, reason: "planned work", since: at(-50))
        var line = Timeline(activePassive(), restoring: GroupEngine.Persisted(active: ["web-1"], hold: hold))
        #expect(line.set(["web-1": .up, "web-2": .up, "web-3": .up], at: 1).isEmpty)
        #expect(line.engine.condition == .ok)
        #expect(!line.engine.isStarting)
        // An operator can move a held, restored group.
        #expect(summary(try line.engine.switchover(to: "web-2", at: at(2)).get()) == ["switchover web-1>web-2"])
    }
}
