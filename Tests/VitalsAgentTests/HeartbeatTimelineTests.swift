import Foundation
import Testing
import VitalsCore
import VitalsHTTP
@testable import VitalsAgent
import VitalsTestKit

private let haveZoneinfo = FileManager.default.fileExists(atPath: "/usr/share/zoneinfo/Europe/Berlin")

/// Heartbeats with a schedule and a max_runtime, through the whole agent
/// core on a manual clock: the owner's ticks, the events they make, the
/// actions those run, and what the explain document says is due next.
@Suite(.enabled(if: haveZoneinfo, "needs the tzdata package (/usr/share/zoneinfo)"))
struct HeartbeatTimelineTests {
    // 2026-12-01 13:00 in Berlin (CET, UTC+1).
    let clock = ManualClock(ISOTime.parse("2026-12-01T12:00:00Z")!)

    func start() throws -> (StatusAPI, StateOwner) {
        let config = try ConfigLoader.load(yaml: """
            services:
              nightly-backup:
                heartbeat: { schedule: "0 3 * * *", tz: Europe/Berlin, grace: 30m, max_runtime: 2h }
                on: { missed: [page], failed: [page] }
            actions:
              page: { log: true }
            """)
        let owner = StateOwner(config: config, configPath: "t.yaml", clock: clock) { _ in }
        let api = StatusAPI(owner: owner, view: StatusView(owner: owner, clock: clock), token: BearerToken("t"),
                            allowGetHeartbeats: false, clock: clock)
        return (api, owner)
    }

    func beat(_ owner: StateOwner, _ kind: BeatKind, exit: Int? = nil) throws {
        _ = try owner.apply(.heartbeat(kind, service: "nightly-backup", exitStatus: exit))
    }

    /// Advances the clock to `time` (UTC) and lets the owner tick there.
    func tick(_ owner: StateOwner, at time: String) {
        clock.set(ISOTime.parse(time)!)
        owner.tick()
    }

    func stateChanges(_ owner: StateOwner) -> [String] {
        owner.view.core.recentEvents.after(0, limit: 1000).filter { $0.kind == .stateChange }.map {
            "\($0.from ?? "")>\($0.to ?? "") \($0.rule ?? ""): \($0.reason)"
        }
    }

    func explain(_ api: StatusAPI) throws -> [String: Any] {
        let response = api.handle(HTTPRequest(method: .get, target: "/v1/services/nightly-backup/explain"))
        return try #require(try JSONSerialization.jsonObject(with: Data(response.body.bytes)) as? [String: Any])
    }

    @Test func aMissedScheduledRunIsDownAfterItsGraceAndPages() throws {
        let (api, owner) = try start()
        #expect(try explain(api)["next_ping"] as? String
            == "next run scheduled at 2026-12-02 03:00 Europe/Berlin (0 3 * * *), the first after tracking began at "
            + "2026-12-01 13:00:00 Europe/Berlin; down if no ping by 2026-12-02 03:30 Europe/Berlin (grace 30m)")
        tick(owner, at: "2026-12-02T02:29:59Z")
        #expect(owner.view.core.entry("nightly-backup")?.health.state == .unknown)
        tick(owner, at: "2026-12-02T02:30:01Z")
        #expect(stateChanges(owner) == [
            "unknown>down heartbeat deadline: late: no ping for the run scheduled at 2026-12-02 03:00 Europe/Berlin (grace 30m)",
        ])
        let event = try #require(owner.view.core.recentEvents.after(0, limit: 10).last)
        #expect(owner.view.config.actions(for: event).map(\.name) == ["page"])

        // The run comes in late: up again, and the next one is tomorrow's.
        clock.set(ISOTime.parse("2026-12-02T04:00:00Z")!)
        try beat(owner, .success)
        #expect(owner.view.core.entry("nightly-backup")?.health.state == .up)
        let service = try #require(try explain(api)["service"] as? [String: Any])
        let heartbeat = try #require(service["heartbeat"] as? [String: Any])
        #expect(heartbeat["due"] as? String == "2026-12-03T02:00:00.000Z")
        #expect(heartbeat["deadline"] as? String == "2026-12-03T02:30:00.000Z")
        #expect(heartbeat["schedule"] as? String == "0 3 * * *")
        #expect(heartbeat["tz"] as? String == "Europe/Berlin")
        tick(owner, at: "2026-12-03T02:15:00Z")
        #expect(owner.view.core.entry("nightly-backup")?.health.state == .up, "no late phase within the grace")
    }

    @Test func aRunOverMaxRuntimeIsDownAndShowsSinceWhenItRuns() throws {
        let (api, owner) = try start()
        clock.set(ISOTime.parse("2026-12-02T02:00:02Z")!)
        try beat(owner, .start)
        let running = try #require((try explain(api)["service"] as? [String: Any])?["heartbeat"] as? [String: Any])
        #expect(running["running_since"] as? String == "2026-12-02T02:00:02.000Z")
        #expect((try explain(api)["next_ping"] as? String)?.hasSuffix(
            "; running since 2026-12-02T02:00:02.000Z: down if not finished by 2026-12-02T04:00:02.000Z (max_runtime 2h)") == true)

        tick(owner, at: "2026-12-02T02:31:00Z")
        tick(owner, at: "2026-12-02T04:00:02Z")
        #expect(stateChanges(owner).isEmpty, "a run that started on time, within max_runtime")
        tick(owner, at: "2026-12-02T04:03:02Z")
        #expect(stateChanges(owner) == ["unknown>down max_runtime: running for 2h3m, more than max_runtime 2h"])
        let event = try #require(owner.view.core.recentEvents.after(0, limit: 10).last)
        #expect(owner.view.config.actions(for: event).map(\.name) == ["page"], "an overrun is a missed end")
        tick(owner, at: "2026-12-02T05:00:00Z")
        #expect(stateChanges(owner).count == 1, "said once")

        clock.set(ISOTime.parse("2026-12-02T05:10:02Z")!)
        try beat(owner, .success)
        #expect(stateChanges(owner).last == "down>up heartbeat: job succeeded in 3h10m")
    }
}
