import Foundation

/// One thing that happened, as the journal records it, `/v1/events` serves
/// it and action runners receive it: a service changed state, a group
/// decided, or the configuration was reloaded. Ids increase by one across all
/// kinds, so `?since=ID` pages through them; an action's record names its
/// event by the same id.
public struct AgentEvent: Codable, Sendable, Equatable {
    public var id: UInt64
    public var time: Date
    public var kind: EventKind
    public var group: String?
    public var service: String?
    public var from: String?
    public var to: String?
    public var reason: String
    /// For state changes: the rule that decided (`fall 3/3`).
    public var rule: String?
    /// The service whose failure explains this event, when it is not the subject.
    public var rootCause: String?
    /// Member states at decision time, for group events.
    public var evidence: [String: HealthState]?
    /// The group's active members after the decision, for group events.
    public var active: [String]?
    /// What the event's actions did, filled in as they finish.
    public var actions: [ActionOutcome]
    /// For a service put in maintenance: when it ends by itself, if it does.
    public var until: Date?
    /// For a heartbeat's change of state (and a group decision it caused):
    /// the tail of the body sent with the ping that caused it.
    public var pingBody: PingBody?

    public init(id: UInt64, time: Date, kind: EventKind, group: String? = nil, service: String? = nil,
                from: String? = nil, to: String? = nil, reason: String, rule: String? = nil,
                rootCause: String? = nil, evidence: [String: HealthState]? = nil, active: [String]? = nil,
                actions: [ActionOutcome] = []) {
        self.id = id
        self.time = time
        self.kind = kind
        self.group = group
        self.service = service
        self.from = from
        self.to = to
        self.reason = reason
        self.rule = rule
        self.rootCause = rootCause
        self.evidence = evidence
        self.active = active
        self.actions = actions
    }

    public static func stateChange(_ t: HealthTransition, id: UInt64) -> AgentEvent {
        AgentEvent(id: id, time: t.at, kind: .stateChange, service: t.service, from: t.from.rawValue,
                   to: t.to.rawValue, reason: t.reason, rule: t.rule)
    }

    public static func group(_ e: GroupEvent, id: UInt64) -> AgentEvent {
        AgentEvent(id: id, time: e.time, kind: .group(e.kind), group: e.group, service: e.service, from: e.from, to: e.to,
                   reason: e.reason, rootCause: e.rootCause, evidence: e.evidence, active: e.active)
    }

    /// The group decision this was made from, for target checks.
    public var groupEvent: GroupEvent? {
        guard let group, let kind = kind.groupKind else { return nil }
        return GroupEvent(id: id, time: time, group: group, kind: kind, from: from, to: to, service: service,
                          reason: reason,
                          rootCause: rootCause, evidence: evidence ?? [:], active: active ?? [])
    }

    /// The event as the JSON document actions receive (on stdin, as a
    /// webhook body, as a log line) and the journal stores.
    public var json: [UInt8] {
        (try? JSONEncoder.vitals().encode(self)).map(Array.init) ?? Array("{}".utf8)
    }

    /// `time` as ISO 8601 in UTC with milliseconds: `2027-01-15T08:00:00.250Z`.
    public var timeText: String { ISOTime.format(time) }
}

extension JSONEncoder {
    /// How Vitals writes JSON everywhere: snake_case keys, sorted, one line,
    /// times as ISO 8601 in UTC with milliseconds.
    public static func vitals() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(ISOTime.format(date))
        }
        return encoder
    }
}
