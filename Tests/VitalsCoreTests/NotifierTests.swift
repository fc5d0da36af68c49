import Foundation
import Testing
@testable import VitalsCore

/// The pure parts of notifying: templates, preset keys, mail messages, ping
/// body tails, and the config of `email` and `webhook` actions.
@Suite struct NotifierTests {
    static let event = AgentEvent(id: 42, time: Date(timeIntervalSince1970: 1_800_000_000.25), kind: .group(.failover),
                                  group: "web", service: "web-1", from: "web-1", to: "web-2",
                                  reason: "web-1 down: \"503\"\nline two", rule: nil)

    // MARK: Templates

    @Test func templatesFillEveryPlaceholder() throws {
        let template = try EventTemplate("{{group}}|{{kind}}|{{from}}|{{to}}|{{ reason }}|{{time}}|{{service}}|{{id}}|{{rule}}|{{summary}}")
        #expect(template.render(Self.event, escaping: .none)
            == "web|failover|web-1|web-2|web-1 down: \"503\"\nline two|2027-01-15T08:00:00.250Z|web-1|42||group web: failover from web-1 to web-2")
        #expect(template.render(Self.event, escaping: .json).contains(#"|web-1 down: \"503\"\nline two|"#))
    }

    @Test func theEventPlaceholderIsTheWholeJSON() throws {
        let rendered = try EventTemplate(#"{"event": {{event}}}"#).render(Self.event, escaping: .json)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(rendered.utf8)) as? [String: Any])
        #expect((object["event"] as? [String: Any])?["id"] as? Int == 42)
    }

    @Test(arguments: [
        ("{{nope}}", "unknown placeholder {{nope}}; known: {{group}}, {{kind}}, {{from}}, {{to}}, {{reason}}, {{time}}, {{service}}, {{id}}, {{rule}}, {{summary}}, {{body}}, {{event}}"),
        ("{{service", "\"{{\" without a closing \"}}\""),
    ])
    func badTemplatesAreRefused(text: String, message: String) {
        #expect(EventTemplate.validate(text) == message)
    }

    @Test func jsonEscapingCoversControlCharacters() {
        #expect(JSONText.escaped("a\"b\\c\n\t\u{1}\u{7f}é") == #"a\"b\\c\n\t\u0001\u007fé"#)
    }

    @Test func environmentReferences() {
        #expect(EnvironmentReferences.names(in: "https://h/${A_1}/x/${B}") == ["A_1", "B"])
        #expect(EnvironmentReferences.names(in: "no references") == [])
        #expect(EnvironmentReferences.names(in: "${unclosed") == nil)
        #expect(EnvironmentReferences.names(in: "${1BAD}") == nil)
        #expect(EnvironmentReferences.expand("a${X}b${Y}", environment: ["X": "1", "Y": "2"]) == .success("a1b2"))
        #expect(EnvironmentReferences.expand("a${X}", environment: ["X": ""]) == .failure(.init(name: "X")))
    }

    // MARK: Alerts

    @Test(arguments: [
        (EventKind.stateChange, "down", AlertAction.trigger(key: "vitals/service/web-1", severity: .critical)),
        (.stateChange, "flapping", .trigger(key: "vitals/service/web-1", severity: .critical)),
        (.stateChange, "degraded", .trigger(key: "vitals/service/web-1", severity: .warning)),
        (.stateChange, "up", .resolve(key: "vitals/service/web-1")),
        (.stateChange, "maintenance", .none),
        (.group(.failover), nil, .trigger(key: "vitals/group/web", severity: .warning)),
        (.group(.groupDown), nil, .trigger(key: "vitals/group/web", severity: .critical)),
        (.group(.groupRecovered), nil, .resolve(key: "vitals/group/web")),
        (.group(.failback), nil, .resolve(key: "vitals/group/web")),
        (.group(.isolated), nil, .trigger(key: "vitals/isolation", severity: .warning)),
        (.group(.switchover), nil, .none),
        (.configReloaded, nil, .none),
    ] as [(EventKind, String?, AlertAction)])
    func alertActions(kind: EventKind, to: String?, expected: AlertAction) {
        let event = AgentEvent(id: 1, time: Date(), kind: kind, group: kind.groupKind == nil ? nil : "web",
                               service: "web-1", to: to, reason: "")
        #expect(AlertAction.of(event) == expected)
    }

    // MARK: Ping bodies

    @Test func aPingBodyKeepsItsTail() {
        let body = PingBody.tail(of: Array("0123456789".utf8), limit: 4)
        #expect(body == PingBody(text: "6789", totalBytes: 10, keptBytes: 4))
        #expect(body?.truncated == true)
        #expect(PingBody.tail(of: Array("abc".utf8), limit: 4) == PingBody(text: "abc", totalBytes: 3, keptBytes: 3))
        #expect(PingBody.tail(of: [UInt8](), limit: 4) == nil)
        #expect(PingBody.tail(of: Array("abc".utf8), limit: 0) == nil)
    }

    @Test func aCutThroughACharacterDropsItWhole() {
        // "é" is C3 A9: a 3-byte tail of "xé!" starts on A9.
        let body = PingBody.tail(of: Array("xxé!".utf8), limit: 3)
        #expect(body == PingBody(text: "é!", totalBytes: 5, keptBytes: 3))
        let cut = PingBody.tail(of: Array("xxé!".utf8), limit: 2)
        #expect(cut == PingBody(text: "!", totalBytes: 5, keptBytes: 1))
    }

    @Test func aPingBodyEncodesItsCounts() throws {
        let json = String(decoding: try JSONEncoder.vitals().encode(PingBody(text: "t", totalBytes: 9, keptBytes: 1)), as: UTF8.self)
        #expect(json == #"{"kept_bytes":1,"text":"t","total_bytes":9,"truncated":true}"#)
    }

    @Test func aBeatKeepsItsBodyAndTheLastFiveBeats() throws {
        var tracker = HeartbeatTracker(service: "job", check: HeartbeatCheck(every: .seconds(60)),
                                       startedAt: Date(timeIntervalSince1970: 0))
        for i in 1...7 {
            _ = tracker.beat(.success, at: Date(timeIntervalSince1970: Double(i)),
                             body: PingBody(text: "run \(i)", totalBytes: 5, keptBytes: 5))
        }
        #expect(tracker.recentBeats.map(\.body?.text) == ["run 3", "run 4", "run 5", "run 6", "run 7"])
    }

    @Test func theBodyGoesWithTheEventTheBeatCaused() throws {
        let config = try ConfigLoader.load(yaml: """
            services:
              job: { heartbeat: { every: 1h } }
            """)
        var core = AgentCore(config: config, startedAt: Date(timeIntervalSince1970: 0))
        let body = PingBody(text: "disk full", totalBytes: 9, keptBytes: 9)
        let events = try core.apply(.heartbeat(.fail, service: "job", body: body), at: Date(timeIntervalSince1970: 10))
        #expect(events.map(\.pingBody) == [body])
        #expect(core.recentEvents.all.last?.pingBody == body)
        #expect(String(decoding: events[0].json, as: UTF8.self)
            .contains(#""ping_body":{"kept_bytes":9,"text":"disk full","total_bytes":9,"truncated":false}"#))
    }

    // MARK: Mail

    @Test func aMailMessageIsCRLFWithEncodedSubjectAndBrokenLongLines() {
        let long = String(repeating: "a", count: 1000)
        let message = MailMessage(from: "a@example.com", to: ["b@example.com"], subject: "web-1 → down",
                                  body: "one\n\(long)\n", date: Date(timeIntervalSince1970: 0), messageID: "m@h")
        let text = String(decoding: message.bytes, as: UTF8.self)
        #expect(text == "From: a@example.com\r\nTo: b@example.com\r\nSubject: =?UTF-8?B?d2ViLTEg4oaSIGRvd24=?=\r\n"
            + "Date: Thu, 01 Jan 1970 00:00:00 +0000\r\nMessage-ID: <m@h>\r\nMIME-Version: 1.0\r\n"
            + "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n"
            + "Auto-Submitted: auto-generated\r\n\r\none\r\n" + String(repeating: "a", count: 998) + "\r\naa\r\n")
    }

    @Test func theMailBodyWithoutAPingBody() {
        #expect(EventText.body(Self.event) == """
            group web: failover from web-1 to web-2

            web-1 down: "503"
            line two

            time:     2027-01-15T08:00:00.250Z
            event:    42 (failover)
            service:  web-1
            group:    web
            from:     web-1
            to:       web-2

            """)
    }

    // MARK: Config

    static func errors(_ yaml: String) -> [String] {
        do {
            _ = try ConfigLoader.load(yaml: yaml)
            return []
        } catch {
            return error.errors.map(\.description)
        }
    }

    @Test func emailAndPresetsLoad() throws {
        let config = try ConfigLoader.load(yaml: """
            agent: { ping_body_limit: 4KiB }
            actions:
              mail:
                email:
                  url: smtp://mail.example.com:587
                  from: vitals@example.com
                  to: [ops@example.com]
                  username: vitals
                  password_file: /etc/vitals/smtp-password
                retries: 3
              slack: { webhook: { preset: slack, url: "${SLACK_WEBHOOK_URL}" } }
              page: { webhook: { preset: pagerduty, routing_key_file: /etc/vitals/pd-key } }
            """)
        #expect(config.agent.pingBodyLimit == 4096)
        #expect(config.action(named: "mail")?.kind == .email(EmailAction(
            url: "smtp://mail.example.com:587", from: "vitals@example.com", to: ["ops@example.com"], starttls: .required,
            username: "vitals", password: .file("/etc/vitals/smtp-password"))))
        #expect(config.action(named: "slack")?.kind == .webhook(WebhookAction(url: .text("${SLACK_WEBHOOK_URL}"), preset: .slack)))
        #expect(config.action(named: "page")?.kind == .webhook(WebhookAction(url: nil, preset: .pagerduty,
                                                                             key: .file("/etc/vitals/pd-key"))))
        #expect(try ConfigLoader.load(yaml: "agent: { ping_body_limit: 0 }").agent.pingBodyLimit == 0)
        #expect(try ConfigLoader.load(yaml: "agent: {}").agent.pingBodyLimit == 10240)
    }

    @Test func badNotifierConfigNamesKeyAndLine() {
        #expect(Self.errors("""
            agent: { ping_body_limit: 2MiB }
            actions:
              mail:
                email:
                  url: http://mail.example.com
                  from: not-an-address
                  to: [ops@example.com]
                  password: x
              slack: { webhook: { preset: slak, url: "http://h/${BAD" } }
              page: { webhook: { preset: pagerduty } }
              chat: { webhook: { url: "http://h/", body: "{{nope}}" } }
              both: { webhook: { url: "http://h/", url_file: /x } }
              wrong: { webhook: { url: "http://h/", routing_key: abc } }
            """) == [
            "agent.ping_body_limit: must be at most 1MiB (the largest request the agent reads), got \"2MiB\" (line 1, column 27)",
            "actions.mail.email.url: expected an smtp:// or smtps:// URL with a host (and no password: use password_file), got \"http://mail.example.com\" (line 5, column 12)",
            "actions.mail.email.from: expected a mail address like ops@example.com, got \"not-an-address\" (line 6, column 13)",
            "actions.mail.email.password: a password needs a username (line 8, column 7)",
            "actions.slack.webhook.preset: expected one of slack, discord, teams, pagerduty, opsgenie, got \"slak\" (line 9, column 31)",
            "actions.slack.webhook.url: a ${ without its }, or a variable name that is not letters, digits and _ (line 9, column 42)",
            "actions.page.webhook: missing required key \"routing_key\" (or routing_key_file) (line 10, column 11)",
            "actions.chat.webhook.body: unknown placeholder {{nope}}; known: {{group}}, {{kind}}, {{from}}, {{to}}, {{reason}}, {{time}}, {{service}}, {{id}}, {{rule}}, {{summary}}, {{body}}, {{event}} (line 11, column 46)",
            "actions.both.webhook.url: give url or url_file, not both (line 12, column 22)",
            "actions.wrong.webhook.routing_key: only for preset: pagerduty (line 13, column 41)",
        ])
    }
}
