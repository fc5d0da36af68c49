import Foundation
import VitalsActions
import VitalsCore

/// One thing that happened, as the journal records it and `/v1/events` serves
/// it: a service changed state, a group decided, or an operator acted. Ids
/// increase by one across all kinds, so `?since=ID` pages through them.
public struct AgentEvent: Codable, Sendable, Equatable {
    public var id: UInt64
    public var time: Date
    /// A group event kind (`failover`, `group_down`, …), `state_change` for a
    /// service, or an operator act (`maintenance`, `ready`).
    public var kind: String
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

    public init(id: UInt64, time: Date, kind: String, group: String? = nil, service: String? = nil,
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

    static func stateChange(_ t: HealthTransition, id: UInt64) -> AgentEvent {
        AgentEvent(id: id, time: t.at, kind: "state_change", service: t.service, from: t.from.rawValue,
                   to: t.to.rawValue, reason: t.reason, rule: t.rule)
    }

    static func group(_ e: GroupEvent, id: UInt64) -> AgentEvent {
        AgentEvent(id: id, time: e.time, kind: e.kind.rawValue, group: e.group, from: e.from, to: e.to,
                   reason: e.reason, rootCause: e.rootCause, evidence: e.evidence, active: e.active)
    }

    /// The event as action runners receive it: in the environment and as JSON.
    func actionEvent(json: [UInt8]) -> ActionEvent {
        ActionEvent(id: String(id), time: time, kind: kind, group: group, service: service, from: from, to: to,
                    reason: reason, json: json)
    }

    /// The group event this was made from, for target checks.
    var groupEvent: GroupEvent? {
        guard let group, let kind = GroupEventKind(rawValue: kind) else { return nil }
        return GroupEvent(id: id, time: time, group: group, kind: kind, from: from, to: to, reason: reason,
                          rootCause: rootCause, evidence: evidence ?? [:], active: active ?? [])
    }
}

/// Renders events as the JSON that actions receive on stdin or as a webhook body.
struct EventEncoder: Sendable {
    func json(_ event: AgentEvent) -> [UInt8] {
        (try? JSONEncoder.vitals().encode(event)).map(Array.init) ?? Array("{}".utf8)
    }
}
