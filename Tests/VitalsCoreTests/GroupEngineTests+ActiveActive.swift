import Foundation
import Testing
import VitalsCore

// The timeline, group and summary helpers are in GroupEngineTests.swift.

private let t0 = Date(timeIntervalSince1970: 1_800_000_000)
private func at(_ seconds: Double) -> Date { t0.addingTimeInterval(seconds) }

extension GroupEngineTests {
    // MARK: - Active-active

    @Test func activeActiveReportsMembersAndLevels() {
        var line = Timeline(activeActive(minHealthy: 2))
        #expect(line.set(["web-1": .up, "web-2": .up], at: 1).isEmpty) // web-3 unknown
        let start = line.set(["web-3": .up], at: 2)
        #expect(summary(start) == ["activated ->-"])
        #expect(start[0].active == members)

        #expect(summary(line.set(["web-1": .down], at: 10)) == ["member_removed web-1>-"])
        #expect(line.engine.condition == .ok)

        let degraded = line.set(["web-2": .down], at: 20)
        #expect(summary(degraded) == ["member_removed web-2>-", "group_degraded web-2>-"])
        #expect(degraded[1].reason == "1 of 3 members usable, below min_healthy 2: web-2 down (status 503, expected 200-299)")
        #expect(line.engine.condition == .degraded)

        let down = line.set(["web-3": .down], at: 30)
        #expect(summary(down) == ["group_down web-3>-"]) // the last member's leaving is the group_down
        #expect(line.engine.active.isEmpty)

        let back = line.set(["web-1": .up], at: 40)
        #expect(summary(back) == ["member_added ->web-1", "group_degraded ->web-1"])

        let recovered = line.set(["web-2": .degraded], at: 50)
        #expect(summary(recovered) == ["member_added ->web-2", "group_recovered ->web-2"])
        #expect(recovered[1].active == ["web-1", "web-2"])
        #expect(line.engine.condition == .ok)
    }

    @Test func activeActiveStartsDegradedOrDown() {
        var degraded = Timeline(activeActive(minHealthy: 2))
        #expect(summary(degraded.set(["web-1": .up, "web-2": .down, "web-3": .down], at: 1))
            == ["group_degraded ->web-1"])
        var down = Timeline(activeActive(minHealthy: 1))
        #expect(summary(down.set(["web-1": .down, "web-2": .down, "web-3": .down], at: 1)) == ["group_down ->-"])
    }

    @Test func activeActiveIgnoresCooldownAndLimit() {
        var line = Timeline(GroupConfig(name: "web", mode: .activeActive(minHealthy: 1), members: members,
                                        cooldown: .seconds(600), maxFailovers: 1))
        line.allUp()
        var events: [GroupEvent] = []
        for second in 1...10 {
            events += line.set(["web-1": second % 2 == 1 ? .down : .up], at: Double(10 + second))
        }
        #expect(events.count == 10)
        #expect(!line.engine.isHeld)
    }

    // MARK: - Dependencies

    @Test func rootCauseFollowsTheDeepestFailingAncestor() {
        let deps = ["web": ["app"], "app": ["db", "cache"], "db": ["disk"]]
        func view(_ states: [String: HealthState]) -> [String: ServiceView] {
            states.mapValues { ServiceView(state: $0, since: t0) }
        }
        #expect(rootCause(of: "web", states: view(["app": .up, "db": .up, "cache": .up]), dependsOn: deps) == nil)
        #expect(rootCause(of: "web", states: view(["app": .down, "db": .up]), dependsOn: deps) == "app")
        #expect(rootCause(of: "web", states: view(["app": .down, "db": .down]), dependsOn: deps) == "db")
        // app still answers, but its own parent is down: web is blocked through it.
        #expect(rootCause(of: "web", states: view(["app": .up, "db": .flapping]), dependsOn: deps) == "db")
        #expect(rootCause(of: "web", states: view(["app": .up, "db": .down, "disk": .down]), dependsOn: deps) == "disk")
        #expect(rootCause(of: "app", states: view(["db": .up, "cache": .down]), dependsOn: deps) == "cache")
        // Maintenance and unknown explain nothing.
        #expect(rootCause(of: "web", states: view(["app": .maintenance]), dependsOn: deps) == nil)
        #expect(rootCause(of: "web", states: view([:]), dependsOn: deps) == nil)
        // A service's own state is not its root cause; cycles end.
        #expect(rootCause(of: "db", states: view(["db": .down]), dependsOn: deps) == nil)
        let cycle = ["a": ["b"], "b": ["a"]]
        #expect(rootCause(of: "a", states: view(["a": .down, "b": .down]), dependsOn: cycle) == "b")
    }

    @Test func dependencyFailureIsOneGroupDownNamingTheRootCause() {
        let deps = ["web-1": ["db"], "web-2": ["db"]]
        var line = Timeline(activePassive(["web-1", "web-2"]), dependsOn: deps)
        line.set(["db": .up, "web-1": .up, "web-2": .up], at: 1)
        #expect(line.engine.activeMember == "web-1")

        let events = line.set(["db": .down], at: 10, reason: "connection refused")
        #expect(summary(events) == ["group_down web-1>-"])
        #expect(events[0].reason.hasPrefix("root cause: db is down; no usable member"))
        #expect(events[0].reason == "root cause: db is down; no usable member: web-1 blocked by db, web-2 blocked by db")
        #expect(events[0].rootCause == "db")
        #expect(events[0].evidence["db"] == .down)
        #expect(line.engine.rootCause(of: "web-2") == "db")

        // The dependents' own failures a moment later add nothing.
        #expect(line.set(["web-1": .down], at: 11).isEmpty)
        #expect(line.set(["web-2": .down], at: 12).isEmpty)

        line.set(["db": .up], at: 20)
        #expect(summary(line.set(["web-1": .up, "web-2": .up], at: 22)) == ["group_recovered ->web-1"])
    }

    @Test func dependencyFailureInActiveActiveIsOneEvent() {
        let deps = ["web-1": ["db"], "web-2": ["db"], "web-3": ["db"]]
        var line = Timeline(activeActive(minHealthy: 2), dependsOn: deps)
        line.set(["db": .up, "web-1": .up, "web-2": .up, "web-3": .up], at: 1)
        let events = line.set(["db": .down], at: 10)
        #expect(summary(events) == ["group_down ->-"])
        #expect(events[0].reason.hasPrefix("root cause: db is down; no usable member"))
        #expect(events[0].rootCause == "db")
    }

    @Test func blockedMembersFoldIntoTheDegradedEvent() {
        var line = Timeline(activeActive(minHealthy: 2), dependsOn: ["web-2": ["db"], "web-3": ["db"]])
        line.set(["db": .up, "web-1": .up, "web-2": .up, "web-3": .up], at: 1)
        let events = line.set(["db": .down], at: 10)
        #expect(summary(events) == ["group_degraded ->-"])
        #expect(events[0].reason.hasPrefix("root cause: db is down; 1 of 3 members usable, below min_healthy 2"))
    }

    @Test func aFailoverAwayFromABlockedMemberNamesTheRootCause() {
        var line = Timeline(activePassive(["web-1", "web-2"]), dependsOn: ["web-1": ["db-a"], "web-2": ["db-b"]])
        line.set(["db-a": .up, "db-b": .up, "web-1": .up, "web-2": .up], at: 1)
        let events = line.set(["db-a": .down], at: 10)
        #expect(summary(events) == ["failover web-1>web-2"])
        #expect(events[0].reason == "web-1 blocked by db-a (root cause: db-a is down); chose web-2")
        #expect(events[0].rootCause == "db-a")
    }
}
