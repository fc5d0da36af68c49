import Foundation
import Testing
import VitalsCore

// The timeline, group and summary helpers are in GroupEngineTests.swift.

private let t0 = Date(timeIntervalSince1970: 1_800_000_000)
private func at(_ seconds: Double) -> Date { t0.addingTimeInterval(seconds) }

extension GroupEngineTests {
    // MARK: - Hold and release

    @Test func holdPausesAndReleaseDecidesAtOnce() {
        var line = Timeline(activePassive())
        line.allUp()
        let held = line.engine.hold(reason: "db migration", at: at(5))
        #expect(summary(held) == ["held ->-"])
        #expect(held[0].reason == "db migration")
        #expect(line.engine.heldReason == "db migration")
        let again = line.engine.hold(reason: "db migration, day 2", at: at(6))
        #expect(summary(again) == ["held ->-"], "a new reason is recorded")
        #expect(again.first?.reason.contains("(was: db migration, held since") == true)
        #expect(line.engine.hold(reason: "db migration, day 2", at: at(7)).isEmpty, "the same reason changes nothing")
        #expect(line.engine.heldReason == "db migration, day 2")

        // Held with a failed active member: an emergency, but nothing moves.
        #expect(summary(line.set(["web-1": .down], at: 10)) == ["active_down_while_held web-1>-"])
        #expect(line.engine.activeMember == "web-1")
        #expect(line.engine.condition == .down)

        let released = line.engine.release(at: at(20))
        #expect(summary(released) == ["released ->-", "failover web-1>web-2"])
        #expect(released[0].reason.contains("db migration, day 2"))
        #expect(line.engine.release(at: at(21)).isEmpty)
    }

    /// An operator's hold over the failover limit's: the operator takes
    /// charge, the event names the limit's reason, and the counted moves are
    /// forgotten as a release of the limit's hold would.
    @Test func holdingAGroupTheFailoverLimitHoldsMakesItAnOperatorHold() {
        var line = Timeline(activePassive(["web-1", "web-2"], maxFailovers: 1, window: .seconds(600)))
        line.allUp(["web-1", "web-2"])
        line.set(["web-1": .down], at: 10)
        line.set(["web-1": .up], at: 20)
        line.set(["web-2": .down], at: 30)
        #expect(line.engine.hold?.cause == .failoverLimit)
        let held = line.engine.hold(reason: "investigating", at: at(40))
        #expect(summary(held) == ["held ->-"])
        #expect(held.first?.reason.hasPrefix("investigating (was held by the failover limit since ") == true)
        #expect(line.engine.hold?.cause == .operatorRequest)
        #expect(line.engine.recentMoves.isEmpty)
    }

    // MARK: - Switchover

    @Test func switchoverIsRefusedWithAReason() {
        var line = Timeline(activePassive(), dependsOn: ["web-3": ["db"]])
        #expect(line.engine.switchover(to: "web-2", at: at(0)) == .failure(.starting(group: "web")))
        line.allUp()
        line.set(["web-2": .down, "db": .down], at: 5, reason: "connection refused")

        let down = line.engine.switchover(to: "web-2", at: at(6))
        #expect(down == .failure(.notServing(member: "web-2", state: .down, reason: "connection refused")))
        if case .failure(let refusal) = down {
            #expect(refusal.description
                == "web-2 is down (connection refused); a switchover needs a target that is up or degraded")
        }
        #expect(line.engine.switchover(to: "web-1", at: at(6)) == .failure(.alreadyActive(member: "web-1")))
        #expect(line.engine.switchover(to: "api", at: at(6))
            == .failure(.notAMember(member: "api", group: "web")))
        #expect(line.engine.switchover(to: "web-3", at: at(6))
            == .failure(.blocked(member: "web-3", rootCause: "db", rootState: .down)))

        var both = Timeline(activeActive(minHealthy: 1))
        both.allUp()
        #expect(both.engine.switchover(to: "web-2", at: at(6)) == .failure(.notActivePassive(group: "web")))
        #expect(line.engine.activeMember == "web-1")
    }

    @Test func switchoverMovesAndAutoFailbackRespectsIt() throws {
        var line = Timeline(activePassive(failback: .auto, failbackDelay: .seconds(10), cooldown: .seconds(30)))
        line.allUp()
        let events = try line.engine.switchover(to: "web-2", at: at(5)).get()
        #expect(summary(events) == ["switchover web-1>web-2"])
        #expect(events[0].reason == "operator switchover from web-1 to web-2 (web-2 up (2 consecutive successes))")
        #expect(line.engine.recentMoves.isEmpty) // not counted
        #expect(line.tick(100).isEmpty) // web-1 usable long enough, but the operator chose web-2
        #expect(line.engine.activeMember == "web-2")

        // An automatic failover (not deferred: switchovers start no cooldown) lifts the pin.
        #expect(summary(line.set(["web-2": .down], at: 110)) == ["failover web-2>web-1"])
    }

    @Test func switchoverWorksWhileHeld() throws {
        var line = Timeline(activePassive())
        line.allUp()
        _ = line.engine.hold(reason: "planned", at: at(2))
        let events = try line.engine.switchover(to: "web-3", at: at(3)).get()
        #expect(summary(events) == ["switchover web-1>web-3"])
        #expect(line.engine.isHeld)
    }

    // MARK: - Isolation

    @Test func isolationHoldsDecisionsAndItsEndDecidesAtOnce() {
        var line = Timeline(activePassive())
        line.allUp()
        let isolated = line.engine.isolate(reason: "witness gw is down", at: at(5))
        #expect(summary(isolated) == ["isolated ->-"])
        #expect(line.engine.isPaused)
        #expect(line.set(["web-1": .down], at: 6).isEmpty)
        let ended = line.engine.endIsolation(reason: "witness gw is up", at: at(9))
        #expect(summary(ended) == ["isolation_ended ->-", "failover web-1>web-2"])
        #expect(line.engine.endIsolation(reason: "again", at: at(10)).isEmpty)
    }

    // MARK: - Re-check before the action

    @Test func confirmTargetPicksTheNextCandidateWhenTheTargetIsGone() {
        var line = Timeline(activePassive())
        line.allUp()
        let failover = line.set(["web-1": .down], at: 10)[0]

        #expect(line.engine.confirmTarget(of: failover, states: line.world, at: at(10.1)) == .confirmed)

        line.world["web-2"] = ServiceView(state: .down, since: at(10.2), reason: "timeout")
        let check = line.engine.confirmTarget(of: failover, states: line.world, at: at(10.3))
        guard case .replaced(let events) = check else {
            Issue.record("expected a replacement, got \(check)")
            return
        }
        #expect(summary(events) == ["failover web-1>web-3"])
        #expect(events[0].reason == "web-2 no longer up, now down (timeout); chose web-3")
        #expect(events[0].id == failover.id + 1)
        #expect(line.engine.activeMember == "web-3")
        #expect(line.engine.recentMoves == [at(10)]) // the same decision, not a second move
        // The original event is now stale.
        #expect(line.engine.confirmTarget(of: failover, states: line.world, at: at(10.4)) == .superseded)
    }

    @Test func confirmTargetReportsGroupDownWhenNothingIsLeft() {
        var line = Timeline(activePassive(["web-1", "web-2"]))
        line.allUp(["web-1", "web-2"])
        let failover = line.set(["web-1": .down], at: 10)[0]
        line.world["web-2"] = ServiceView(state: .down, since: at(10.2), reason: "timeout")
        let check = line.engine.confirmTarget(of: failover, states: line.world, at: at(10.3))
        guard case .replaced(let events) = check else {
            Issue.record("expected a replacement, got \(check)")
            return
        }
        #expect(summary(events) == ["group_down web-1>-"])
        #expect(events[0].reason.hasPrefix("web-2 no longer up, now down (timeout); no usable member"))
        #expect(line.engine.activeMember == nil)
    }

    @Test func confirmTargetCancelsAFailbackWhenThePrimaryDiesAgain() {
        var line = Timeline(activePassive(failback: .auto, failbackDelay: .zero))
        line.allUp()
        line.set(["web-1": .down], at: 10)
        let failback = line.set(["web-1": .up], at: 20)[0]
        #expect(failback.kind == .failback)
        line.world["web-1"] = ServiceView(state: .down, since: at(20.5), reason: "timeout")
        let check = line.engine.confirmTarget(of: failback, states: line.world, at: at(21))
        #expect(check == .cancelled(reason: "web-1 no longer up, now down (timeout); staying on web-2"))
        #expect(line.engine.activeMember == "web-2")
    }

    @Test func confirmTargetDoesNotApplyToEventsWithoutATarget() {
        var line = Timeline(activeActive(minHealthy: 1))
        line.allUp()
        let removed = line.set(["web-1": .down], at: 10)[0]
        #expect(line.engine.confirmTarget(of: removed, states: line.world, at: at(11)) == .notApplicable)
    }

    // MARK: - Coordinator

    @Test func coordinatorIsolatesBeforeAnyGroupCanFailOver() {
        let services = ["web-1", "web-2", "api-1", "api-2"].map {
            ServiceConfig(name: $0, check: .tcp(TCPCheck(host: "127.0.0.1", port: 80)))
        }
        let config = VitalsConfig(services: services, groups: [
            GroupConfig(name: "web", mode: .activePassive(failback: .manual, failbackDelay: .seconds(10)),
                        members: ["web-1", "web-2"], cooldown: .zero),
            GroupConfig(name: "api", mode: .activePassive(failback: .manual, failbackDelay: .seconds(10)),
                        members: ["api-1", "api-2"], cooldown: .zero),
        ])
        var coordinator = FailoverCoordinator(config: config, startedAt: t0)
        var world = Dictionary(uniqueKeysWithValues: services.map {
            ($0.name, ServiceView(state: .up, since: at(1)))
        })
        #expect(summary(coordinator.update(states: world, at: at(1))) == ["activated ->web-1", "activated ->api-1"])

        // This agent loses its network: web-1 and api-1 fail in the same round.
        world["web-1"] = ServiceView(state: .down, since: at(10), reason: "timeout")
        world["api-1"] = ServiceView(state: .down, since: at(10), reason: "timeout")
        let cut = coordinator.update(states: world, at: at(10))
        #expect(summary(cut) == ["isolated ->-", "isolated ->-"])
        #expect(coordinator.engine(named: "web")?.activeMember == "web-1")

        // The majority returns; web-1 stays down, so web fails over now, api has nothing to do.
        world["api-1"] = ServiceView(state: .up, since: at(20))
        // It waits `settle` (default: interval 1s + jitter 100ms) for the rest of the round first.
        let back = coordinator.update(states: world, at: at(20))
        #expect(summary(back) == ["isolation_ended ->-", "isolation_ended ->-"])
        #expect(coordinator.settle == .milliseconds(1100))
        #expect(coordinator.nextWakeup == at(21.1))
        #expect(coordinator.tick(at: at(21)).isEmpty)
        #expect(summary(coordinator.tick(at: at(21.1))) == ["failover web-1>web-2"])
        #expect(coordinator.persisted["web"]?.active == ["web-2"])
    }
}
