import Foundation
import Testing
import VitalsCore

// Scripted views of every service; all times are passed in.

private let t0 = Date(timeIntervalSince1970: 1_800_000_000)
private func at(_ seconds: Double) -> Date { t0.addingTimeInterval(seconds) }

private let services = ["a", "b", "c", "d", "e", "f"]

/// An isolation guard plus the world it watches.
private struct Watch {
    var guardian: IsolationGuard
    var world: [String: ServiceView]

    init(_ settings: IsolationSettings = .init(), dependsOn: [String: [String]] = [:],
         services names: [String] = services, witness: String? = nil) {
        guardian = IsolationGuard(settings: settings, dependsOn: dependsOn)
        var all = names
        if let witness { all.append(witness) }
        world = Dictionary(uniqueKeysWithValues: all.map { ($0, ServiceView(state: .up, since: t0)) })
        _ = guardian.update(states: world, at: t0)
    }

    @discardableResult
    mutating func set(_ names: [String], _ state: HealthState, at seconds: Double) -> IsolationChange? {
        for name in names {
            world[name] = ServiceView(state: state, since: at(seconds), reason: "timeout")
        }
        return guardian.update(states: world, at: at(seconds))
    }
}

@Suite struct IsolationGuardTests {
    @Test func thresholdIsAShareOfProbedServicesButNeverOne() {
        let guardian = IsolationGuard(settings: IsolationSettings(share: 0.5))
        #expect(guardian.threshold(probed: 6) == 3)
        #expect(guardian.threshold(probed: 5) == 3)
        #expect(guardian.threshold(probed: 2) == 2)
        #expect(guardian.threshold(probed: 1) == 2)
        #expect(IsolationGuard(settings: IsolationSettings(share: 0.1)).threshold(probed: 6) == 2)
        #expect(IsolationGuard(settings: IsolationSettings(share: 1)).threshold(probed: 6) == 6)
    }

    @Test func majorityFailingInOneRoundIsolatesUntilItReturns() {
        var watch = Watch()
        #expect(watch.set(["a", "b"], .down, at: 10) == nil)
        let began = watch.set(["c"], .down, at: 12)
        #expect(began == .began(reason: "3 of 6 services failed within 5s (isolation at 3): a, b, c; holding automatic failover"))
        #expect(watch.guardian.isIsolated)
        #expect(watch.guardian.isolatedSince == at(12))
        // Still cut off while at least three fail, however long ago.
        #expect(watch.set(["d"], .down, at: 40) == nil)
        #expect(watch.set(["a"], .up, at: 50) == nil)
        let ended = watch.set(["b"], .up, at: 51)
        #expect(ended == .ended(reason: "2 of 6 services failing (isolation at 3)"))
        #expect(!watch.guardian.isIsolated)
    }

    @Test func failuresSpreadOverMoreThanTheWindowAreNotIsolation() {
        var watch = Watch(IsolationSettings(window: .seconds(5)))
        #expect(watch.set(["a"], .down, at: 10) == nil)
        #expect(watch.set(["b"], .down, at: 20) == nil)
        #expect(watch.set(["c"], .flapping, at: 30) == nil)
        #expect(watch.set(["d"], .down, at: 40) == nil)
        #expect(!watch.guardian.isIsolated)
    }

    @Test func oneFailingServiceIsNeverIsolation() {
        var watch = Watch(services: ["a", "b", "c", "d"])
        #expect(watch.set(["a"], .down, at: 10) == nil)
        #expect(watch.set(["b"], .down, at: 11) != nil) // two of four at once is
    }

    /// With two or three probed services "the agent is cut off" and "they are
    /// all down" look the same: the share rule is not used, only a witness
    /// can say the agent is isolated.
    @Test func tooFewServicesForTheShareRuleNeedAWitness() {
        #expect(IsolationGuard.minimumProbedForShare == 4)
        var pair = Watch(services: ["a", "b"])
        #expect(pair.set(["a", "b"], .down, at: 10) == nil)
        var three = Watch(services: ["a", "b", "c"])
        #expect(three.set(["a", "b", "c"], .down, at: 10) == nil)
        #expect(!three.guardian.canIsolate)

        var witnessed = Watch(IsolationSettings(witness: "gw"), services: ["a", "b"], witness: "gw")
        #expect(witnessed.guardian.canIsolate)
        #expect(witnessed.set(["a", "b"], .down, at: 10) == nil)
        #expect(witnessed.set(["gw"], .down, at: 11) == .began(reason: "witness gw is down; holding automatic failover"))
    }

    @Test func failuresExplainedByADependencyDoNotCount() {
        var watch = Watch(dependsOn: ["b": ["a"], "c": ["a"], "d": ["a"]])
        #expect(watch.set(["a", "b", "c", "d"], .down, at: 10) == nil) // a is the root cause
        #expect(!watch.guardian.isIsolated)
    }

    @Test func maintenanceAndStartupFailuresAreLeftOut() {
        var fresh = IsolationGuard()
        let unknown = Dictionary(uniqueKeysWithValues: services.map {
            ($0, ServiceView(state: .unknown, since: t0))
        })
        #expect(fresh.update(states: unknown, at: t0) == nil)
        let allDown = services.reduce(into: unknown) { $0[$1] = ServiceView(state: .down, since: at(2)) }
        #expect(fresh.update(states: allDown, at: at(2)) == nil) // unknown -> down did not go from serving

        var watch = Watch()
        watch.set(["a", "b", "c"], .maintenance, at: 5)
        #expect(watch.set(["a", "b", "c"], .down, at: 10) == nil)
    }

    @Test func witnessDownIsolatesAndItsReturnEndsIt() {
        var watch = Watch(IsolationSettings(witness: "gw"), witness: "gw")
        let began = watch.set(["gw"], .down, at: 10)
        #expect(began == .began(reason: "witness gw is down; holding automatic failover"))
        #expect(watch.set(["a"], .down, at: 11) == nil)
        let ended = watch.set(["gw"], .up, at: 20)
        #expect(ended == .ended(reason: "witness gw is up; 1 of 7 services failing (isolation at 4)"))
    }

    @Test func witnessInMaintenanceOrUnknownDoesNotIsolate() {
        var watch = Watch(IsolationSettings(witness: "gw"), witness: "gw")
        #expect(watch.set(["gw"], .maintenance, at: 10) == nil)
        #expect(watch.set(["gw"], .unknown, at: 11) == nil)
        #expect(!watch.guardian.isIsolated)
    }

    @Test func dismissEndsItUntilFreshFailures() {
        var watch = Watch(IsolationSettings(witness: "gw"), witness: "gw")
        watch.set(["a", "b", "c", "gw"], .down, at: 10)
        #expect(watch.guardian.isIsolated)
        #expect(watch.guardian.dismiss(reason: "checked by hand", at: at(20))
            == .ended(reason: "dismissed by operator: checked by hand"))
        #expect(watch.guardian.dismiss(reason: "", at: at(21)) == nil)
        #expect(watch.set(["d"], .down, at: 30) == nil) // old failures and the dismissed witness stay forgotten
        watch.set(["gw"], .up, at: 40)
        #expect(watch.set(["gw"], .down, at: 50) != nil) // a fresh witness failure counts again
    }

    @Test func disabledNeverIsolates() {
        var watch = Watch(IsolationSettings(enabled: false, witness: "gw"), witness: "gw")
        #expect(watch.set(services + ["gw"], .down, at: 10) == nil)
        #expect(!watch.guardian.isIsolated)
    }

    @Test func isolatedCoordinatorMakesNoFailoverAndResumesAfterTheWitnessReturns() {
        let names = ["web-1", "web-2", "gw"]
        let config = VitalsConfig(
            agent: AgentSettings(isolation: IsolationSettings(witness: "gw")),
            services: names.map { ServiceConfig(name: $0, check: .tcp(TCPCheck(host: "10.0.0.1", port: 80))) },
            groups: [GroupConfig(name: "web", mode: .activePassive(failback: .manual, failbackDelay: .seconds(10)),
                                 members: ["web-1", "web-2"], cooldown: .zero)])
        var coordinator = FailoverCoordinator(config: config, startedAt: t0)
        var world = Dictionary(uniqueKeysWithValues: names.map { ($0, ServiceView(state: .up, since: at(1))) })
        _ = coordinator.update(states: world, at: at(1))

        world["gw"] = ServiceView(state: .down, since: at(10), reason: "timeout")
        world["web-1"] = ServiceView(state: .down, since: at(10), reason: "timeout")
        let cut = coordinator.update(states: world, at: at(10))
        #expect(cut.map(\.kind) == [.isolated])
        #expect(coordinator.isolation.isIsolated)
        #expect(coordinator.engine(named: "web")?.activeMember == "web-1")
        #expect(coordinator.tick(at: at(60)).isEmpty)

        world["gw"] = ServiceView(state: .up, since: at(70))
        let back = coordinator.update(states: world, at: at(70))
        #expect(back.map(\.kind) == [.isolationEnded]) // web-1 still down: settle first
        let settled = coordinator.tick(at: at(71.1))
        #expect(settled.map(\.kind) == [.failover])
        #expect(settled.last?.to == "web-2")
    }

    @Test func dismissingIsolationThroughTheCoordinatorResumesEveryGroup() {
        let names = ["web-1", "web-2", "gw"]
        let config = VitalsConfig(
            agent: AgentSettings(isolation: IsolationSettings(witness: "gw")),
            services: names.map { ServiceConfig(name: $0, check: .tcp(TCPCheck(host: "10.0.0.1", port: 80))) },
            groups: [GroupConfig(name: "web", mode: .activePassive(failback: .manual, failbackDelay: .seconds(10)),
                                 members: ["web-1", "web-2"], cooldown: .zero)])
        var coordinator = FailoverCoordinator(config: config, startedAt: t0)
        var world = Dictionary(uniqueKeysWithValues: names.map { ($0, ServiceView(state: .up, since: at(1))) })
        _ = coordinator.update(states: world, at: at(1))
        world["gw"] = ServiceView(state: .down, since: at(10))
        world["web-1"] = ServiceView(state: .down, since: at(10))
        _ = coordinator.update(states: world, at: at(10))
        let resumed = coordinator.dismissIsolation(reason: "gw is being replaced", at: at(20))
        #expect(resumed.map(\.kind) == [.isolationEnded, .failover])
        #expect(coordinator.update(states: world, at: at(21)).isEmpty)
    }
}
