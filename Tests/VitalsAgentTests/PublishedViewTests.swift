import Foundation
import Synchronization
import Testing
import VitalsCore
import VitalsHTTP
import VitalsProbe
import VitalsTestKit
@testable import VitalsAgent

/// Reads are made from the last published view: a stalled disk or a busy
/// action lane holds up the effects of decisions, never the status server
/// and never the next decision.
@Suite struct PublishedViewTests {
    let clock = ManualClock()

    /// Effects that wait at a gate, as a journal does when its disk stalls in fsync.
    final class StalledDisk: Sendable {
        private let gate = DispatchSemaphore(value: 0)
        private let recorded = Mutex<[AgentEvent]>([])
        var events: [AgentEvent] { recorded.withLock { $0 } }

        func write(_ events: [AgentEvent]) {
            gate.wait()
            recorded.withLock { $0 += events }
        }

        func free(_ batches: Int) {
            for _ in 0..<batches { gate.signal() }
        }
    }

    func config() -> VitalsConfig {
        let fast = ProbeTiming(rise: 1, fall: 1, flapping: FlapPolicy(changes: 0))
        return VitalsConfig(
            services: [
                ServiceConfig(name: "web-1", check: .tcp(TCPCheck(host: "127.0.0.1", port: 1)), timing: fast),
                ServiceConfig(name: "web-2", check: .tcp(TCPCheck(host: "127.0.0.1", port: 2)), timing: fast),
            ],
            groups: [GroupConfig(name: "web", mode: .activePassive(failback: .manual, failbackDelay: .seconds(10)),
                                 members: ["web-1", "web-2"], cooldown: .zero)])
    }

    func result(ok: Bool) -> ProbeResult {
        ProbeResult(time: clock.now(), latency: .milliseconds(1), outcome: ok ? .ok : .failed,
                    reason: ok ? "" : "connect refused")
    }

    func json(_ response: Result<HTTPFetch.Response, HTTPFetch.Failure>) throws -> (Int, [String: Any]) {
        let answer = try response.get()
        let object = try #require(try JSONSerialization.jsonObject(with: Data(answer.body)) as? [String: Any])
        return (answer.status, object)
    }

    @Test func aStalledDiskHoldsUpNeitherStatusNorTheNextDecision() throws {
        let disk = StalledDisk()
        let owner = StateOwner(config: config(), configPath: "t.yaml", clock: clock, publish: disk.write)
        let api = StatusAPI(owner: owner, view: StatusView(owner: owner, clock: clock), token: BearerToken("t0ken"),
                            allowGetHeartbeats: false, clock: clock)
        let server = HTTPServer(configuration: .init(listenAddresses: [.loopbackIPv4(port: 0)]), handler: api)
        try server.start()
        defer { server.stop() }
        let base = "http://\(server.localAddresses[0])"

        owner.record(result(ok: true), for: "web-1")
        owner.record(result(ok: true), for: "web-2")
        clock.advance(by: .seconds(1))
        // The effects of the first batch are stuck at the disk; the primary fails.
        owner.record(result(ok: false), for: "web-1")

        // The status server answers from the published view, within a bound
        // far below the stall (which lasts until the test frees it).
        let (code, status) = try json(HTTPFetch.request(url: base + "/v1/status", timeout: .seconds(2)))
        #expect(code == 200)
        let groups = try #require(status["groups"] as? [[String: Any]])
        #expect(groups.first?["active_member"] as? String == "web-2", "the failover is visible before it is journaled")
        let (_, group) = try json(HTTPFetch.request(url: base + "/v1/groups/web", timeout: .seconds(2)))
        #expect(group["active_member"] as? String == "web-2")
        let up = try HTTPFetch.request(url: base + "/v1/services/web-1/up", timeout: .seconds(2)).get()
        #expect(up.status == 503)

        // An operator's command is decided and answered meanwhile too.
        let (holdCode, hold) = try json(HTTPFetch.request("POST", url: base + "/v1/groups/web/hold",
                                                          headers: ["Authorization": "Bearer t0ken"],
                                                          timeout: .seconds(2)))
        #expect(holdCode == 200)
        #expect((hold["events"] as? [[String: Any]])?.first?["kind"] as? String == "held")
        #expect(disk.events.isEmpty, "nothing has reached the disk yet")

        // The disk comes back: every event is written, in the order decided.
        disk.free(100)
        owner.flush()
        let kinds = disk.events.map(\.kind.rawValue)
        #expect(kinds == ["state_change", "activated", "state_change", "state_change", "failover", "held"])
        #expect(disk.events.map(\.id) == Array(1...6))
    }

    @Test func aViewNeverChangesOnceTaken() {
        let owner = StateOwner(config: config(), configPath: "t.yaml", clock: clock) { _ in }
        let before = owner.view
        owner.record(result(ok: true), for: "web-1")
        owner.record(result(ok: true), for: "web-2")
        let after = owner.view
        #expect(before !== after)
        #expect(before.core.entry("web-1")?.health.state == .unknown, "a published view is immutable")
        #expect(after.core.entry("web-1")?.health.state == .up)
        #expect(after.core.coordinator.engine(named: "web")?.activeMember == "web-1")
    }
}
