import Foundation
import Testing
import VitalsActions
import VitalsCore
import VitalsTestKit

/// Each webhook preset against a loopback receiver that checks the exact
/// request: method, path, headers and body.
@Suite struct WebhookPresetTests {
    static let down = AgentEvent(id: 7, time: Date(timeIntervalSince1970: 1_800_000_000.25), kind: .stateChange,
                                 service: "web-1", from: "up", to: "down", reason: "status 503, expected \"200-299\"",
                                 rule: "fall 3/3")
    static let up = AgentEvent(id: 8, time: Date(timeIntervalSince1970: 1_800_000_060), kind: .stateChange,
                               service: "web-1", from: "down", to: "up", reason: "status 200", rule: "rise 2/2")
    static let failover = AgentEvent(id: 9, time: Date(timeIntervalSince1970: 1_800_000_000.25), kind: .group(.failover),
                                     group: "web", service: "web-1", from: "web-1", to: "web-2",
                                     reason: "web-1 down; chose web-2")

    func send(_ preset: WebhookPreset, _ event: AgentEvent, key: SecretText? = nil,
              path: String = "/hook") async throws -> (ActionOutcome, WebhookServer.Request?) {
        let server = try WebhookServer(statuses: [202])
        defer { server.stop() }
        let hook = WebhookAction(url: .text("http://127.0.0.1:\(server.port)\(path)"), preset: preset, key: key)
        let outcome = await WebhookActionRunner().run(event, action: ActionConfig(name: preset.rawValue, kind: .webhook(hook)))
        return (outcome, server.requests.first)
    }

    @Test func slack() async throws {
        let (outcome, request) = try await send(.slack, Self.down)
        #expect(outcome.result == .ok)
        let r = try #require(request)
        #expect(r.method == "POST" && r.path == "/hook")
        #expect(r.headers["content-type"] == "application/json")
        #expect(String(decoding: r.body, as: UTF8.self)
            == #"{"text":"[vitals] web-1 is down (was up): status 503, expected \"200-299\""}"#)
    }

    @Test func discord() async throws {
        let (outcome, request) = try await send(.discord, Self.failover)
        #expect(outcome.result == .ok)
        #expect(String(decoding: try #require(request).body, as: UTF8.self)
            == #"{"content":"[vitals] group web: failover from web-1 to web-2: web-1 down; chose web-2","allowed_mentions":{"parse":[]}}"#)
    }

    @Test func teams() async throws {
        let (outcome, request) = try await send(.teams, Self.down)
        #expect(outcome.result == .ok)
        #expect(String(decoding: try #require(request).body, as: UTF8.self) == """
            {"type":"message","attachments":[{"contentType":"application/vnd.microsoft.card.adaptive","content":\
            {"$schema":"http://adaptivecards.io/schemas/adaptive-card.json","type":"AdaptiveCard","version":"1.4",\
            "body":[{"type":"TextBlock","size":"Medium","weight":"Bolder","text":"[vitals] web-1 is down (was up)","wrap":true},\
            {"type":"TextBlock","text":"status 503, expected \\"200-299\\"","wrap":true},\
            {"type":"FactSet","facts":[{"title":"event","value":"state_change"},{"title":"time","value":"2027-01-15T08:00:00.250Z"},\
            {"title":"service","value":"web-1"}]}]}}]}
            """)
    }

    @Test("PagerDuty: down triggers and recovery resolves the same dedup key; the routing key comes from the environment")
    func pagerduty() async throws {
        let key = SecretText.text("${PD_KEY}")
        let server = try WebhookServer(statuses: [202])
        defer { server.stop() }
        let runner = WebhookActionRunner(secrets: SecretResolver(environment: ["PD_KEY": "R0UT1NGKEY0000000000000000000000"]))
        let action = ActionConfig(name: "page", kind: .webhook(WebhookAction(
            url: .text("http://127.0.0.1:\(server.port)/v2/enqueue"), preset: .pagerduty, key: key)))
        #expect(await runner.run(Self.down, action: action).result == .ok)
        #expect(await runner.run(Self.up, action: action).result == .ok)
        let switchover = AgentEvent(id: 10, time: Self.up.time, kind: .group(.switchover), group: "web", reason: "operator")
        #expect(await runner.run(switchover, action: action).result == .skipped("pagerduty sends nothing for switchover"))
        let bodies = server.requests.map { String(decoding: $0.body, as: UTF8.self) }
        #expect(server.requests.map(\.path) == ["/v2/enqueue", "/v2/enqueue"])
        #expect(bodies == [
            #"{"routing_key":"R0UT1NGKEY0000000000000000000000","event_action":"trigger","dedup_key":"vitals/service/web-1","#
                + #""payload":{"summary":"[vitals] web-1 is down (was up): status 503, expected \"200-299\"","source":"web-1","#
                + #""severity":"critical","timestamp":"2027-01-15T08:00:00.250Z","component":"web-1","class":"state_change","#
                + #""custom_details":{"reason":"status 503, expected \"200-299\"","event_id":7,"from":"up","to":"down","rule":"fall 3/3"}}}"#,
            #"{"routing_key":"R0UT1NGKEY0000000000000000000000","event_action":"resolve","dedup_key":"vitals/service/web-1"}"#,
        ])
    }

    @Test("PagerDuty: a failover triggers the group's key at warning")
    func pagerdutyFailover() async throws {
        let (outcome, request) = try await send(.pagerduty, Self.failover, key: .text("k3y-k3y-k3y"))
        #expect(outcome.result == .ok)
        #expect(String(decoding: try #require(request).body, as: UTF8.self)
            == #"{"routing_key":"k3y-k3y-k3y","event_action":"trigger","dedup_key":"vitals/group/web","#
                + #""payload":{"summary":"[vitals] group web: failover from web-1 to web-2: web-1 down; chose web-2","#
                + #""source":"web-1","severity":"warning","timestamp":"2027-01-15T08:00:00.250Z","component":"web-1","#
                + #""group":"web","class":"failover","custom_details":{"reason":"web-1 down; chose web-2","event_id":9,"#
                + #""from":"web-1","to":"web-2"}}}"#)
    }

    @Test("Opsgenie: down creates an alert with the API key from a file, recovery closes it by alias")
    func opsgenie() async throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        try "genie-api-key-123\n".write(toFile: scratch.file("opsgenie.key"), atomically: true, encoding: .utf8)
        let server = try WebhookServer(statuses: [202])
        defer { server.stop() }
        let action = ActionConfig(name: "genie", kind: .webhook(WebhookAction(
            url: .text("http://127.0.0.1:\(server.port)"), preset: .opsgenie, key: .file(scratch.file("opsgenie.key")))))
        #expect(await WebhookActionRunner().run(Self.down, action: action).result == .ok)
        #expect(await WebhookActionRunner().run(Self.up, action: action).result == .ok)
        let requests = server.requests
        #expect(requests.map(\.path) == ["/v2/alerts", "/v2/alerts/vitals%2Fservice%2Fweb-1/close?identifierType=alias"])
        #expect(requests.map { $0.headers["authorization"] } == ["GenieKey genie-api-key-123", "GenieKey genie-api-key-123"])
        #expect(requests.map { String(decoding: $0.body, as: UTF8.self) } == [
            #"{"message":"[vitals] web-1 is down (was up)","alias":"vitals/service/web-1","#
                + #""description":"status 503, expected \"200-299\"","source":"vitals","priority":"P1","#
                + #""tags":["vitals","state_change"],"details":{"event":"state_change","event_id":"7","service":"web-1","#
                + #""from":"up","to":"down"}}"#,
            #"{"source":"vitals","note":"[vitals] web-1 is up (was down): status 200"}"#,
        ])
    }

    @Test("a URL from a file and a header from the environment; both stay out of the outcome")
    func secretsStayOut() async throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let server = try WebhookServer(statuses: [500], responseBody: "bad token Bearer hdr-s3cret-value at /hooks/T0KEN-in-path")
        defer { server.stop() }
        try "http://127.0.0.1:\(server.port)/hooks/T0KEN-in-path\n".write(toFile: scratch.file("url"), atomically: true,
                                                                         encoding: .utf8)
        let runner = WebhookActionRunner(secrets: SecretResolver(environment: ["HOOK_TOKEN": "hdr-s3cret-value"]))
        let hook = WebhookAction(url: .file(scratch.file("url")), body: #"{"who":"{{service}}"}"#,
                                 headers: [HTTPHeaderField(name: "Authorization", value: "Bearer ${HOOK_TOKEN}")])
        let outcome = await runner.run(Self.down, action: ActionConfig(name: "hook", kind: .webhook(hook)))
        #expect(outcome.result == .failed(.httpStatus(500)))
        let request = try #require(server.requests.first)
        #expect(request.path == "/hooks/T0KEN-in-path")
        #expect(request.headers["authorization"] == "Bearer hdr-s3cret-value")
        #expect(request.body == Array(#"{"who":"web-1"}"#.utf8))
        let journaled = String(decoding: try JSONEncoder.vitals().encode(outcome), as: UTF8.self)
        #expect(!journaled.contains("T0KEN-in-path") && !journaled.contains("hdr-s3cret-value"), "\(journaled)")
        #expect(outcome.output.responseBody?.text == "bad token Bearer [redacted] at [redacted]")
    }

    @Test("a URL file that cannot be read is an error naming the key and path, and nothing is sent")
    func unreadableURLFile() async throws {
        let hook = WebhookAction(url: .file("/nonexistent/slack-url"), preset: .slack)
        let outcome = await WebhookActionRunner().run(Self.down, action: ActionConfig(name: "slack", kind: .webhook(hook)))
        #expect(outcome.result == .error("url_file /nonexistent/slack-url: cannot read: No such file or directory"))
    }

    @Test("a template's values are JSON-escaped in a JSON body, as they are in any other")
    func templateEscaping() async throws {
        let server = try WebhookServer(statuses: [200])
        defer { server.stop() }
        let template = "{{service}} {{kind}} {{from}}->{{to}} at {{time}}: {{reason}}"
        for contentType in ["application/json", "text/plain"] {
            let hook = WebhookAction.to(server.url, body: template,
                                        headers: [HTTPHeaderField(name: "Content-Type", value: contentType)])
            _ = await WebhookActionRunner().run(Self.down, action: ActionConfig(name: "hook", kind: .webhook(hook)))
        }
        #expect(server.requests.map { String(decoding: $0.body, as: UTF8.self) } == [
            #"web-1 state_change up->down at 2027-01-15T08:00:00.250Z: status 503, expected \"200-299\""#,
            #"web-1 state_change up->down at 2027-01-15T08:00:00.250Z: status 503, expected "200-299""#,
        ])
    }
}
