import Foundation
import Testing
import VitalsCore
import VitalsHTTP
@testable import VitalsAgent
import VitalsTestKit

/// The API as a handler, in-process: every route and every error it owns.
/// (Protocol-level errors — 400, 413, 431, 505 … — are the server's and are
/// tested over real sockets in VitalsHTTPTests.)
@Suite struct StatusAPITests {
    let clock = ManualClock()
    let token = BearerToken("s3cret")

    func config(allowGet: Bool = false) -> VitalsConfig {
        VitalsConfig(
            agent: AgentSettings(allowGetHeartbeats: allowGet),
            services: [
                ServiceConfig(name: "web-1", check: .http(HTTPCheck(url: "http://127.0.0.1:1/health")),
                              timing: ProbeTiming(rise: 2, fall: 2)),
                ServiceConfig(name: "web-2", check: .tcp(TCPCheck(host: "127.0.0.1", port: 2)),
                              timing: ProbeTiming(rise: 1, fall: 1)),
                ServiceConfig(name: "backup", check: .heartbeat(HeartbeatCheck(every: .seconds(3600), grace: .seconds(600)))),
            ],
            groups: [GroupConfig(name: "web", mode: .activePassive(failback: .manual, failbackDelay: .seconds(10)),
                                 members: ["web-1", "web-2"])])
    }

    func makeAPI(allowGet: Bool = false) -> (StatusAPI, StateOwner, Transitions) {
        let transitions = Transitions()
        let state = StateOwner(config: config(allowGet: allowGet), configPath: "test.yaml", clock: clock) {
            transitions.append(contentsOf: $0)
        }
        let view = StatusView(owner: state, clock: clock)
        return (StatusAPI(owner: state, view: view, token: token, allowGetHeartbeats: allowGet, clock: clock),
                state, transitions)
    }

    func get(_ api: StatusAPI, _ target: String, method: HTTPMethod = .get,
             headers: HTTPHeaders = [:]) -> (Int, [String: Any]?, HTTPResponse) {
        let response = api.handle(HTTPRequest(method: method, target: target, headers: headers))
        let object = try? JSONSerialization.jsonObject(with: Data(response.body.bytes)) as? [String: Any]
        return (response.status.code, object, response)
    }

    func ok(_ time: Date, latency: Duration = .milliseconds(12)) -> ProbeResult {
        ProbeResult(time: time, latency: latency, outcome: .ok)
    }

    @Test func statusListsAgentServicesAndGroups() throws {
        let (api, state, _) = makeAPI()
        state.record(ok(clock.now()), for: "web-1")
        state.record(ok(clock.now()), for: "web-1")
        let (code, body, response) = get(api, "/v1/status")
        #expect(code == 200)
        #expect(response.headers["Content-Type"] == "application/json")
        let agent = try #require(body?["agent"] as? [String: Any])
        #expect(agent["version"] as? String == VitalsVersion.current)
        #expect(agent["config_path"] as? String == "test.yaml")
        let counts = try #require(agent["counts"] as? [String: Int])
        #expect(counts["services"] == 3 && counts["up"] == 1 && counts["unknown"] == 2)
        let services = try #require(body?["services"] as? [[String: Any]])
        #expect(services.map { $0["name"] as? String } == ["web-1", "web-2", "backup"])
        #expect(services[0]["state"] as? String == "up")
        #expect(services[0]["consecutive_successes"] as? Int == 2)
        #expect(services[0]["latency_ms"] as? Double == 12)
        #expect(services[0]["target"] as? String == "http://127.0.0.1:1/health")
        let groups = try #require(body?["groups"] as? [[String: Any]])
        #expect(groups.first?["serving"] as? [String] == ["web-1"])
        #expect(groups.first?["state"] as? String == "degraded")
    }

    @Test func oneServiceAndExplain() throws {
        let (api, state, _) = makeAPI()
        state.record(ProbeResult(time: clock.now(), latency: .milliseconds(3), outcome: .failed,
                                 reason: "status 503, expected 200-299"), for: "web-1")
        clock.advance(by: .seconds(1))
        state.record(ProbeResult(time: clock.now(), latency: .milliseconds(4), outcome: .failed,
                                 reason: "status 503, expected 200-299"), for: "web-1")
        let (code, service, _) = get(api, "/v1/services/web-1")
        #expect(code == 200)
        #expect(service?["state"] as? String == "down")
        #expect(service?["reason"] as? String == "status 503, expected 200-299")
        #expect(service?["rule"] as? String == "fall 2/2")

        let (explainCode, explain, _) = get(api, "/v1/services/web-1/explain")
        #expect(explainCode == 200)
        let recent = try #require(explain?["recent"] as? [[String: Any]])
        #expect(recent.count == 2)
        #expect(recent.last?["outcome"] as? String == "failed")
        let rules = try #require(explain?["rules"] as? [String: Any])
        #expect(rules["fall"] as? Int == 2)
    }

    @Test func upEndpointAnswersLikeALoadBalancerCheck() {
        let (api, state, _) = makeAPI()
        #expect(get(api, "/v1/services/web-2/up").0 == 503)
        #expect(get(api, "/v1/services/web-2/up").2.body.description == "unknown\n")
        state.record(ok(clock.now()), for: "web-2")
        #expect(get(api, "/v1/services/web-2/up").0 == 200)
        #expect(get(api, "/v1/services/web-2/up").2.body.description == "up\n")
        state.record(ProbeResult(time: clock.now(), latency: .milliseconds(400), outcome: .degraded, reason: "slow"), for: "web-2")
        #expect(get(api, "/v1/services/web-2/up").0 == 200)
        #expect(get(api, "/v1/services/web-2/up?strict=1").0 == 503)
        #expect(get(api, "/v1/services/nope/up").0 == 404)
    }

    @Test(arguments: [
        ("/v1/services/nope", 404, "no such service: nope"),
        ("/v1/services/nope/explain", 404, "no such service: nope"),
        ("/v1/groups/nope", 404, "no such group: nope"),
        ("/v1/nothing", 404, "no such path: /v1/nothing"),
        ("/nope", 404, "no such path: /nope"),
    ])
    func unknownNamesAndPaths(target: String, status: Int, message: String) {
        let (api, _, _) = makeAPI()
        let (code, body, _) = get(api, target)
        #expect(code == status)
        let error = body?["error"] as? [String: Any]
        #expect(error?["message"] as? String == message)
        #expect(error?["status"] as? Int == status)
    }

    @Test func wrongMethodIs405WithAllow() {
        let (api, _, _) = makeAPI()
        let (code, _, response) = get(api, "/v1/status", method: .post)
        #expect(code == 405)
        #expect(response.headers["Allow"] == "GET, HEAD")
        let (beatCode, _, beat) = get(api, "/v1/heartbeat/backup", method: .get)
        #expect(beatCode == 405)
        #expect(beat.headers["Allow"] == "POST")
    }

    @Test func heartbeatsNeedTheToken() {
        let (api, state, transitions) = makeAPI()
        let (missing, _, response) = get(api, "/v1/heartbeat/backup", method: .post)
        #expect(missing == 401)
        #expect(response.headers["WWW-Authenticate"] != nil)
        #expect(get(api, "/v1/heartbeat/backup", method: .post, headers: ["Authorization": "Bearer wrong"]).0 == 401)
        #expect(get(api, "/v1/heartbeat/backup", method: .post, headers: ["Authorization": "Basic czNjcmV0"]).0 == 401)
        state.flush()
        #expect(transitions.all.isEmpty)
    }

    @Test func heartbeatRecordsAndAnswersTheDeadline() throws {
        let (api, state, transitions) = makeAPI()
        let auth: HTTPHeaders = ["Authorization": "Bearer s3cret"]
        let (code, body, _) = get(api, "/v1/heartbeat/backup", method: .post, headers: auth)
        #expect(code == 200)
        #expect(body?["state"] as? String == "up")
        #expect(body?["deadline"] as? String == JSONTime.string(clock.now().adding(.seconds(4200))))
        state.flush()
        #expect(transitions.all.map(\.to) == ["up"])

        #expect(get(api, "/v1/heartbeat/backup/start", method: .post, headers: auth).0 == 200)
        if case .heartbeat(let tracker)? = state.view.core.entry("backup")?.health {
            #expect(tracker.runningSince == clock.now())
        } else {
            Issue.record("backup is not a heartbeat service")
        }
        clock.advance(by: .seconds(30))
        let (failCode, fail, _) = get(api, "/v1/heartbeat/backup/2", method: .post, headers: auth)
        #expect(failCode == 200)
        #expect(fail?["state"] as? String == "down")
        state.flush()
        #expect(transitions.all.last { $0.service == "backup" }?.reason.contains("exit 2") == true)

        #expect(get(api, "/v1/heartbeat/backup/0?duration=12s", method: .post, headers: auth).1?["state"] as? String == "up")
        #expect(get(api, "/v1/heartbeat/backup/fail", method: .post, headers: auth).1?["state"] as? String == "down")
    }

    @Test func heartbeatErrors() {
        let (api, _, _) = makeAPI()
        let auth: HTTPHeaders = ["Authorization": "Bearer s3cret"]
        #expect(get(api, "/v1/heartbeat/nope", method: .post, headers: auth).0 == 404)
        #expect(get(api, "/v1/heartbeat/web-1", method: .post, headers: auth).0 == 409)
        #expect(get(api, "/v1/heartbeat/backup/999", method: .post, headers: auth).0 == 404)
        #expect(get(api, "/v1/heartbeat/backup?duration=soon", method: .post, headers: auth).0 == 400)
    }

    @Test func getHeartbeatsWhenAllowed() {
        let (api, _, _) = makeAPI(allowGet: true)
        let (code, body, _) = get(api, "/v1/heartbeat/backup", method: .get, headers: ["Authorization": "Bearer s3cret"])
        #expect(code == 200)
        #expect(body?["state"] as? String == "up")
    }

    @Test func healthzIsStartingUntilEveryProbedServiceReported() {
        let (api, state, _) = makeAPI()
        #expect(get(api, "/healthz").0 == 503)
        #expect(get(api, "/healthz").1?["status"] as? String == "starting")
        state.record(ok(clock.now()), for: "web-1")
        #expect(get(api, "/healthz").0 == 503)
        state.record(ok(clock.now()), for: "web-2")
        #expect(get(api, "/healthz").0 == 200)
    }

    @Test func statusPageAndBadge() {
        let (api, state, _) = makeAPI()
        let page = api.handle(HTTPRequest(method: .get, target: "/"))
        #expect(page.status.code == 200)
        #expect(page.headers["Content-Type"] == "text/html; charset=utf-8")
        #expect(page.body.description.hasPrefix("<!doctype html>"))
        state.record(ok(clock.now()), for: "web-2")
        let badge = api.handle(HTTPRequest(method: .get, target: "/v1/services/web-2/badge.svg"))
        #expect(badge.status.code == 200)
        #expect(badge.headers["Content-Type"] == "image/svg+xml")
        #expect(badge.body.description.contains(">up<"))
        #expect(api.handle(HTTPRequest(method: .get, target: "/v1/services/nope/badge.svg")).status.code == 404)
    }

    @Test func headIsAllowedOnReads() {
        let (api, _, _) = makeAPI()
        #expect(get(api, "/v1/status", method: .head).0 == 200)
    }
}

/// The status view renders once per change and serves the same bytes until then.
@Suite struct StatusViewTests {
    @Test func rendersOncePerChange() {
        let clock = ManualClock()
        let config = VitalsConfig(services: [
            ServiceConfig(name: "a", check: .tcp(TCPCheck(host: "127.0.0.1", port: 1)), timing: ProbeTiming(rise: 1, fall: 1)),
        ])
        let state = StateOwner(config: config, configPath: "x", clock: clock, refreshInterval: .milliseconds(250)) { _ in }
        let view = StatusView(owner: state, clock: clock)
        let first = view.body(.status)
        #expect(first != nil)
        #expect(view.body(.status) === first, "an unchanged state serves the cached bytes")

        // A transition is visible at once.
        state.record(ProbeResult(time: clock.now(), latency: .milliseconds(1), outcome: .ok), for: "a")
        let afterTransition = view.body(.status)
        #expect(afterTransition !== first)
        #expect(afterTransition?.description.contains(#""state":"up""#) == true)

        // A result that changes no state waits for the refresh interval.
        state.record(ProbeResult(time: clock.now(), latency: .milliseconds(7), outcome: .ok), for: "a")
        #expect(view.body(.status) === afterTransition)
        clock.advance(by: .milliseconds(250))
        state.tick() // the agent's ticker, every 250 ms
        let refreshed = view.body(.status)
        #expect(refreshed !== afterTransition)
        #expect(refreshed?.description.contains(#""latency_ms":7"#) == true)
    }
}

/// Records every published event (call `state.flush()` before reading).
final class Transitions: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [AgentEvent] = []
    func append(contentsOf events: [AgentEvent]) { lock.lock(); items += events; lock.unlock() }
    var all: [AgentEvent] { lock.lock(); defer { lock.unlock() }; return items }
}
