import Foundation
import Testing
import VitalsCore
import VitalsHTTP
@testable import VitalsAgent
import VitalsTestKit

/// Failover controls and the event log through the API, with a manual clock.
@Suite struct OperatorAPITests {
    let clock = ManualClock()
    let auth: HTTPHeaders = ["Authorization": "Bearer t0ken"]

    func makeAPI() -> (StatusAPI, StateOwner, Transitions) {
        let fast = ProbeTiming(rise: 1, fall: 1, flapping: FlapPolicy(changes: 0))
        let config = VitalsConfig(
            services: [
                ServiceConfig(name: "web-1", check: .tcp(TCPCheck(host: "127.0.0.1", port: 1)), timing: fast),
                ServiceConfig(name: "web-2", check: .tcp(TCPCheck(host: "127.0.0.1", port: 2)), timing: fast),
            ],
            groups: [GroupConfig(name: "web", mode: .activePassive(failback: .manual, failbackDelay: .seconds(10)),
                                 members: ["web-1", "web-2"], cooldown: .zero)])
        let events = Transitions()
        let state = StateOwner(config: config, configPath: "t.yaml", clock: clock) { events.append(contentsOf: $0) }
        let api = StatusAPI(owner: state, view: StatusView(owner: state, clock: clock), token: BearerToken("t0ken"),
                            allowGetHeartbeats: false, clock: clock)
        return (api, state, events)
    }

    func post(_ api: StatusAPI, _ target: String, body: String = "", token: Bool = true) -> (Int, [String: Any]?) {
        let response = api.handle(HTTPRequest(method: .post, target: target, headers: token ? auth : [:],
                                              body: Array(body.utf8)))
        return (response.status.code, try? JSONSerialization.jsonObject(with: Data(response.body.bytes)) as? [String: Any])
    }

    func get(_ api: StatusAPI, _ target: String) -> [String: Any]? {
        let response = api.handle(HTTPRequest(method: .get, target: target))
        return try? JSONSerialization.jsonObject(with: Data(response.body.bytes)) as? [String: Any]
    }

    func probe(_ state: StateOwner, _ service: String, ok: Bool) {
        state.record(result(ok: ok), for: service)
    }

    /// A result as the probe loop records it: the groups decide at the end of the round.
    func probeMidRound(_ state: StateOwner, _ service: String, ok: Bool) {
        state.record(result(ok: ok), for: service, deciding: false)
    }

    func result(ok: Bool) -> ProbeResult {
        ProbeResult(time: clock.now(), latency: .milliseconds(1), outcome: ok ? .ok : .failed,
                    reason: ok ? "" : "connect refused")
    }

    /// Both members up, web-1 active, every event published; then a second
    /// passes. Returns how many events were published by then.
    func bothUpThenASecondLater(_ state: StateOwner, _ published: Transitions) -> Int {
        probe(state, "web-1", ok: true)
        probe(state, "web-2", ok: true)
        state.flush()
        clock.advance(by: .seconds(1))
        return published.all.count
    }

    @Test func failoverShowsInGroupStatusAndEvents() throws {
        let (api, state, published) = makeAPI()
        probe(state, "web-1", ok: true)
        probe(state, "web-2", ok: true)
        #expect(get(api, "/v1/groups/web")?["active_member"] as? String == "web-1")

        clock.advance(by: .seconds(1))
        probe(state, "web-1", ok: false)
        let group = try #require(get(api, "/v1/groups/web"))
        #expect(group["active_member"] as? String == "web-2")
        let recent = try #require(group["recent_events"] as? [[String: Any]])
        #expect(recent.last?["kind"] as? String == "failover")
        #expect(recent.last?["from"] as? String == "web-1")
        #expect(recent.last?["to"] as? String == "web-2")

        let events = try #require(get(api, "/v1/events")?["events"] as? [[String: Any]])
        let kinds = events.map { $0["kind"] as? String ?? "" }
        #expect(kinds == ["state_change", "activated", "state_change", "state_change", "failover"])
        let ids = events.compactMap { $0["id"] as? Int }
        #expect(ids == Array(1...5))
        state.flush()
        #expect(published.all.map(\.kind.rawValue) == kinds, "published in the same order as recorded")

        let page = try #require(get(api, "/v1/events?since=3&limit=1"))
        #expect((page["events"] as? [[String: Any]])?.map { $0["id"] as? Int } == [4])
        #expect(page["last_id"] as? Int == 4)
    }

    @Test func switchoverRefusedToADownMemberAndAcceptedToAnUpOne() throws {
        let (api, state, _) = makeAPI()
        probe(state, "web-1", ok: true)
        probe(state, "web-2", ok: false)
        let (refused, body) = post(api, "/v1/groups/web/switchover", body: #"{"to":"web-2"}"#)
        #expect(refused == 409)
        let message = try #require((body?["error"] as? [String: Any])?["message"] as? String)
        #expect(message.contains("web-2"))

        clock.advance(by: .seconds(1))
        probe(state, "web-2", ok: true)
        let (accepted, answer) = post(api, "/v1/groups/web/switchover?to=web-2")
        #expect(accepted == 200)
        #expect((answer?["events"] as? [[String: Any]])?.first?["kind"] as? String == "switchover")
        #expect(get(api, "/v1/groups/web")?["active_member"] as? String == "web-2")

        #expect(post(api, "/v1/groups/web/switchover").0 == 400)
        #expect(post(api, "/v1/groups/nope/switchover?to=web-1").0 == 404)
        #expect(post(api, "/v1/groups/web/switchover?to=web-1", token: false).0 == 401)
    }

    @Test func holdStopsAutomaticFailoverUntilRelease() throws {
        let (api, state, _) = makeAPI()
        probe(state, "web-1", ok: true)
        probe(state, "web-2", ok: true)
        let (code, _) = post(api, "/v1/groups/web/hold", body: #"{"reason":"db migration"}"#)
        #expect(code == 200)
        let held = try #require(get(api, "/v1/groups/web"))
        #expect(held["held"] as? Bool == true)
        #expect((held["hold"] as? [String: Any])?["reason"] as? String == "db migration")

        clock.advance(by: .seconds(1))
        probe(state, "web-1", ok: false)
        #expect(get(api, "/v1/groups/web")?["active_member"] as? String == "web-1", "held: no failover")

        #expect(post(api, "/v1/groups/web/release").0 == 200)
        #expect(get(api, "/v1/groups/web")?["active_member"] as? String == "web-2", "released: decides at once")
    }

    @Test func maintenanceEndsByItselfAtItsExpiry() throws {
        let (api, state, _) = makeAPI()
        probe(state, "web-1", ok: true)
        probe(state, "web-2", ok: true) // web-1 is not the group's last serving member
        let (code, _) = post(api, "/v1/services/web-1/maintenance", body: #"{"reason":"kernel update","for":"30m"}"#)
        #expect(code == 200)
        let service = try #require(get(api, "/v1/services/web-1"))
        #expect(service["state"] as? String == "maintenance")
        #expect(service["reason"] as? String == "kernel update")
        #expect(service["maintenance_until"] as? String == JSONTime.string(clock.now().adding(.seconds(1800))))

        clock.advance(by: .seconds(1799))
        state.tick()
        #expect(get(api, "/v1/services/web-1")?["state"] as? String == "maintenance")
        clock.advance(by: .seconds(1))
        state.tick()
        #expect(get(api, "/v1/services/web-1")?["state"] as? String == "up")

        #expect(post(api, "/v1/services/web-1/maintenance?for=soon").0 == 400)
        #expect(post(api, "/v1/services/web-1/maintenance", body: "[1]").0 == 400)
        #expect(post(api, "/v1/services/nope/maintenance").0 == 404)
    }

    @Test func readyEndsMaintenance() {
        let (api, state, _) = makeAPI()
        probe(state, "web-1", ok: true) // web-2 is not the group's last serving member
        probe(state, "web-2", ok: true)
        #expect(post(api, "/v1/services/web-2/maintenance").0 == 200)
        #expect(get(api, "/v1/services/web-2")?["state"] as? String == "maintenance")
        #expect(post(api, "/v1/services/web-2/ready").0 == 200)
        #expect(get(api, "/v1/services/web-2")?["state"] as? String == "up")
    }

    @Test func activeAndMemberRoleFollowTheFailover() throws {
        let (api, state, _) = makeAPI()
        func code(_ target: String) -> Int { api.handle(HTTPRequest(method: .get, target: target)).status.code }
        #expect(code("/v1/groups/web/active") == 503, "no active member while starting")
        probe(state, "web-1", ok: true)
        probe(state, "web-2", ok: true)
        let active = try #require(get(api, "/v1/groups/web/active"))
        #expect((active["active"] as? [[String: Any]])?.map { $0["member"] as? String } == ["web-1"])
        #expect((active["active"] as? [[String: Any]])?.first?["address"] as? String == "127.0.0.1:1")
        #expect(code("/v1/groups/web/members/web-1/active") == 200)
        #expect(code("/v1/groups/web/members/web-2/active") == 503)
        #expect(code("/v1/groups/web/members/nope/active") == 404)

        clock.advance(by: .seconds(1))
        probe(state, "web-1", ok: false)
        #expect(code("/v1/groups/web/members/web-1/active") == 503)
        #expect(code("/v1/groups/web/members/web-2/active") == 200)
        // priority (the active-passive default) picks the active member.
        #expect(get(api, "/v1/groups/web/pick?key=10.0.0.7")?["member"] as? String == "web-2")
        #expect(get(api, "/v1/groups/web/pick")?["policy"] as? String == "priority")

        clock.advance(by: .seconds(1))
        probe(state, "web-2", ok: false)
        #expect(code("/v1/groups/web/pick") == 503)
        #expect(code("/v1/groups/nope/pick") == 404)
    }

    @Test func eventQueryErrors() {
        let (api, _, _) = makeAPI()
        let bad = api.handle(HTTPRequest(method: .get, target: "/v1/events?since=x"))
        #expect(bad.status.code == 400)
        #expect(api.handle(HTTPRequest(method: .get, target: "/v1/events?limit=0")).status.code == 400)
        #expect(api.handle(HTTPRequest(method: .post, target: "/v1/events")).status.code == 405)
    }

    /// The probe loop records a round of results without deciding, then
    /// decides once: nothing is published before `decidePending()`, and then
    /// the state changes come in the order they happened, before the group's
    /// decision on them.
    @Test func aRoundOfResultsIsDecidedOnceInOrder() throws {
        let (api, state, published) = makeAPI()
        let before = bothUpThenASecondLater(state, published)
        probeMidRound(state, "web-1", ok: false)
        probeMidRound(state, "web-2", ok: true)
        state.flush()
        #expect(published.all.count == before, "nothing decided yet")
        #expect(get(api, "/v1/groups/web")?["active_member"] as? String == "web-1", "the group has not seen it")
        #expect(get(api, "/v1/services/web-1")?["state"] as? String == "down", "the service's own state is current")

        state.decidePending()
        state.flush()
        let new = published.all.dropFirst(before).map { "\($0.kind) \($0.group ?? $0.service ?? "")" }
        #expect(new == ["state_change web-1", "failover web"])
        #expect(get(api, "/v1/groups/web")?["active_member"] as? String == "web-2")

        // Nothing left: a second call publishes nothing.
        state.decidePending()
        state.flush()
        #expect(published.all.count == before + 2)
    }

    /// A reload between a round's results and its end decides the round's
    /// changes first: their events come before `config_reloaded`, numbered in order.
    @Test func changesRecordedBeforeAReloadArePublishedBeforeIt() throws {
        let (_, state, published) = makeAPI()
        let before = bothUpThenASecondLater(state, published)
        probeMidRound(state, "web-1", ok: false)
        try state.apply(.reload(state.view.config))
        state.decidePending() // the round ends after the reload: nothing is left to decide
        state.flush()
        let new = published.all.dropFirst(before)
        #expect(new.map(\.kind.rawValue) == ["state_change", "failover", "config_reloaded"])
        #expect(new.map(\.id) == new.map(\.id).sorted())
    }

    /// Commands that arrive while a round's changes wait act on those
    /// changes: a switchover to a member just recorded down is refused, and
    /// maintenance answers with its own event, not the waiting one.
    @Test func commandsMidRoundSeeTheRoundsChanges() throws {
        let (_, state, published) = makeAPI()
        let before = bothUpThenASecondLater(state, published)
        probeMidRound(state, "web-2", ok: false)
        do {
            let events = try state.apply(.switchover(group: "web", to: "web-2"))
            Issue.record("a switchover to a member recorded down was not refused: \(events)")
        } catch {
            guard case .refused(let why) = error else { throw error }
            #expect(why.contains("web-2"), "\(why)")
        }
        state.flush()
        #expect(published.all.dropFirst(before).map { "\($0.kind) \($0.group ?? $0.service ?? "")" } == ["state_change web-2"])

        probeMidRound(state, "web-2", ok: true)
        let answer = try state.apply(.maintenance(service: "web-1", on: true, reason: "patching"))
        #expect(answer.first?.service == "web-1", "the command's own event: \(answer)")
        state.decidePending()
        state.flush()
        let kinds = published.all.dropFirst(before + 1).map { "\($0.kind) \($0.group ?? $0.service ?? "")" }
        #expect(kinds.prefix(2) == ["state_change web-2", "state_change web-1"], "\(kinds)")
        let ids = published.all.map(\.id)
        #expect(ids == ids.sorted())
    }

    @Test func loopPriorityWarningNamesTheThreadsAndTheFix() {
        #expect(LoopPriority.warning(processNice: -5, loops: ["vitals-http": -5, "vitals-probe": -5]) == nil)
        #expect(LoopPriority.warning(processNice: 0, loops: [:]) == nil)
        let text = LoopPriority.warning(processNice: -5, loops: ["vitals-probe": 0, "vitals-http": -5])
        #expect(text == "the agent was started at nice -5 but vitals-probe runs at nice 0: lowering a thread's nice value "
                + "needs CAP_SYS_NICE or a matching RLIMIT_NICE (under systemd, add LimitNICE=-5 next to Nice=)")
    }
}
