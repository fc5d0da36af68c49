import Foundation

/// The request a webhook preset makes for one event: pure, so each body is
/// documented and tested byte for byte.
public struct PresetRequest: Sendable, Equatable {
    /// Appended to the action's URL (Opsgenie's close path); "" for the rest.
    public var path: String
    public var body: String
    /// Besides `Content-Type: application/json`.
    public var headers: [HTTPHeaderField]

    public init(path: String = "", body: String, headers: [HTTPHeaderField] = []) {
        self.path = path
        self.body = body
        self.headers = headers
    }
}

extension WebhookPreset {
    /// The request for `event`, or nil when the preset sends nothing for it
    /// (PagerDuty and Opsgenie, for events that neither open nor close an
    /// alert: `AlertAction`). `key` is the resolved routing key or API key.
    public func request(for event: AgentEvent, key: String?) -> PresetRequest? {
        let summary = EventText.summary(event)
        let line = "[vitals] \(summary): \(event.reason)"
        switch self {
        case .slack:
            return PresetRequest(body: JSONText.object([("text", .string(line))]).rendered)
        case .discord:
            // Discord refuses content over 2000 characters; mentions in a reason or a ping body stay text.
            let content = line.count > 2000 ? String(line.prefix(1999)) + "…" : line
            return PresetRequest(body: JSONText.object([
                ("content", .string(content)),
                ("allowed_mentions", .object([("parse", .array([]))])),
            ]).rendered)
        case .teams:
            var facts: [JSONText] = [fact("event", event.kind.rawValue), fact("time", event.timeText)]
            if let service = event.service { facts.append(fact("service", service)) }
            if let group = event.group { facts.append(fact("group", group)) }
            let card = JSONText.object([
                ("$schema", .string("http://adaptivecards.io/schemas/adaptive-card.json")),
                ("type", .string("AdaptiveCard")),
                ("version", .string("1.4")),
                ("body", .array([
                    .object([("type", .string("TextBlock")), ("size", .string("Medium")), ("weight", .string("Bolder")),
                             ("text", .string("[vitals] " + summary)), ("wrap", .bool(true))]),
                    .object([("type", .string("TextBlock")), ("text", .string(event.reason)), ("wrap", .bool(true))]),
                    .object([("type", .string("FactSet")), ("facts", .array(facts))]),
                ])),
            ])
            return PresetRequest(body: JSONText.object([
                ("type", .string("message")),
                ("attachments", .array([.object([
                    ("contentType", .string("application/vnd.microsoft.card.adaptive")),
                    ("content", card),
                ])])),
            ]).rendered)
        case .pagerduty:
            switch AlertAction.of(event) {
            case .none:
                return nil
            case .resolve(let dedup):
                return PresetRequest(body: JSONText.object([
                    ("routing_key", .string(key ?? "")), ("event_action", .string("resolve")), ("dedup_key", .string(dedup)),
                ]).rendered)
            case .trigger(let dedup, let severity):
                var details: [(String, JSONText)] = [("reason", .string(event.reason)), ("event_id", .number(Int(event.id)))]
                if let from = event.from { details.append(("from", .string(from))) }
                if let to = event.to { details.append(("to", .string(to))) }
                if let rule = event.rule { details.append(("rule", .string(rule))) }
                if let body = event.pingBody { details.append(("ping_body", .string(body.text))) }
                var payload: [(String, JSONText)] = [
                    ("summary", .string(String(line.prefix(1024)))),
                    ("source", .string(event.service ?? event.group ?? "vitals")),
                    ("severity", .string(severity.rawValue)),
                    ("timestamp", .string(event.timeText)),
                ]
                if let service = event.service { payload.append(("component", .string(service))) }
                if let group = event.group { payload.append(("group", .string(group))) }
                payload.append(("class", .string(event.kind.rawValue)))
                payload.append(("custom_details", .object(details)))
                return PresetRequest(body: JSONText.object([
                    ("routing_key", .string(key ?? "")), ("event_action", .string("trigger")), ("dedup_key", .string(dedup)),
                    ("payload", .object(payload)),
                ]).rendered)
            }
        case .opsgenie:
            let auth = [HTTPHeaderField(name: "Authorization", value: "GenieKey \(key ?? "")")]
            switch AlertAction.of(event) {
            case .none:
                return nil
            case .resolve(let alias):
                let escaped = alias.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(.init(charactersIn: "-._~"))) ?? alias
                return PresetRequest(path: "/v2/alerts/\(escaped)/close?identifierType=alias",
                                     body: JSONText.object([("source", .string("vitals")), ("note", .string(line))]).rendered,
                                     headers: auth)
            case .trigger(let alias, let severity):
                var details: [(String, JSONText)] = [("event", .string(event.kind.rawValue)), ("event_id", .string(String(event.id)))]
                if let service = event.service { details.append(("service", .string(service))) }
                if let group = event.group { details.append(("group", .string(group))) }
                if let from = event.from { details.append(("from", .string(from))) }
                if let to = event.to { details.append(("to", .string(to))) }
                var description = event.reason
                if let body = event.pingBody { description += "\n\nping body:\n" + body.text }
                // Opsgenie cuts a message at 130 characters and a description at 15,000.
                let message = "[vitals] " + summary
                return PresetRequest(path: "/v2/alerts", body: JSONText.object([
                    ("message", .string(message.count > 130 ? String(message.prefix(129)) + "…" : message)),
                    ("alias", .string(alias)),
                    ("description", .string(String(description.prefix(15_000)))),
                    ("source", .string("vitals")),
                    ("priority", .string(severity == .critical ? "P1" : "P3")),
                    ("tags", .array([.string("vitals"), .string(event.kind.rawValue)])),
                    ("details", .object(details)),
                ]).rendered, headers: auth)
            }
        }
    }

    private func fact(_ title: String, _ value: String) -> JSONText {
        .object([("title", .string(title)), ("value", .string(value))])
    }
}
