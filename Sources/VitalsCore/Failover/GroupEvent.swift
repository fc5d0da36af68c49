import Foundation

extension GroupEventKind: Codable {}

/// One decision of a group engine. Every decision is an event, and an event
/// is only a decision: the runner adds action results, the journal adds
/// whatever it needs around it.
public struct GroupEvent: Sendable, Equatable, Codable, CustomStringConvertible {
    /// The engine's sequence number for its group, from 1, carried across
    /// restarts by `GroupEngine.Persisted`. The caller may replace it with a
    /// journal-wide id before recording the event.
    public var id: UInt64
    /// The time of the input that caused the decision.
    public var time: Date
    public var group: String
    public var kind: GroupEventKind
    /// The member traffic leaves (or the member that left), when there is one.
    public var from: String?
    /// The member traffic goes to (or the member that joined), when there is one.
    public var to: String?
    /// The member whose own change caused the decision (the one that failed,
    /// for a failover or `group_down`), when one did. Actions see it as
    /// `VITALS_SERVICE`.
    public var service: String?
    /// Why, in an operator's words: "web-1 down (status 503); chose web-2",
    /// "root cause: db is down; no usable member (web-1, web-2 blocked by db)".
    public var reason: String
    /// The service that explains the decision, when a `depends_on` parent does.
    public var rootCause: String?
    /// The states the decision was made from: every member, plus any root cause.
    public var evidence: [String: HealthState]
    /// The group's active member(s) after the decision, in member order.
    public var active: [String]

    public init(id: UInt64, time: Date, group: String, kind: GroupEventKind, from: String? = nil,
                to: String? = nil, service: String? = nil, reason: String, rootCause: String? = nil,
                evidence: [String: HealthState] = [:], active: [String] = []) {
        self.id = id
        self.time = time
        self.group = group
        self.kind = kind
        self.from = from
        self.to = to
        self.service = service
        self.reason = reason
        self.rootCause = rootCause
        self.evidence = evidence
        self.active = active
    }

    /// `web: failover web-1 -> web-2 (web-1 down (status 503); chose web-2)`.
    public var description: String {
        var text = "\(group): \(kind.rawValue)"
        switch (from, to) {
        case let (from?, to?): text += " \(from) -> \(to)"
        case let (from?, nil): text += " from \(from)"
        case let (nil, to?): text += " to \(to)"
        case (nil, nil): break
        }
        return text + " (\(reason))"
    }
}

/// Why a group is not making automatic decisions: an operator asked, or the
/// failover limit was reached. Either way only `release` ends it.
public struct GroupHold: Sendable, Equatable, Codable {
    public enum Cause: String, Sendable, Equatable, Codable {
        /// `hold(reason:at:)`: an operator paused the group (Patroni's maintenance mode).
        case operatorRequest = "operator"
        /// More than `max_failovers` automatic moves were due within `window`.
        case failoverLimit = "failover_limit"
    }

    public var cause: Cause
    public var reason: String
    public var since: Date

    public init(cause: Cause, reason: String, since: Date) {
        self.cause = cause
        self.reason = reason
        self.since = since
    }
}

/// An automatic move that is due but waits for the cooldown to end.
public struct PendingMove: Sendable, Equatable {
    /// `failover` or `failback`.
    public var kind: GroupEventKind
    public var from: String
    public var to: String
    /// When the cooldown ends and the move is re-evaluated.
    public var notBefore: Date
    public var reason: String

    public init(kind: GroupEventKind, from: String, to: String, notBefore: Date, reason: String) {
        self.kind = kind
        self.from = from
        self.to = to
        self.notBefore = notBefore
        self.reason = reason
    }
}

/// Where a group stands, for the status view.
public enum GroupCondition: String, Sendable, Equatable, Codable {
    /// No decision yet: members are still `unknown` (fresh start or restore).
    case starting
    /// Active-passive with a usable active member; active-active with at
    /// least `min_healthy` usable members.
    case ok
    /// Active-passive whose active member is not usable (a failover is
    /// deferred, held or suppressed); active-active below `min_healthy`.
    case degraded
    /// No usable member is active.
    case down
}

/// Why `GroupEngine.switchover(to:at:)` refused. Each case names what is at fault.
public enum SwitchoverRefusal: Error, Sendable, Equatable, CustomStringConvertible {
    /// Only active-passive groups have one active member to move.
    case notActivePassive(group: String)
    case notAMember(member: String, group: String)
    case alreadyActive(member: String)
    /// The target is not up or degraded.
    case notServing(member: String, state: HealthState, reason: String)
    /// The target's `depends_on` parent (root cause shown) is down or flapping.
    case blocked(member: String, rootCause: String, rootState: HealthState)
    /// The group has not chosen its first active member yet.
    case starting(group: String)

    public var description: String {
        switch self {
        case .notActivePassive(let group):
            "group \(group) is active-active; switchover applies to active-passive groups only"
        case .notAMember(let member, let group):
            "\(member) is not a member of group \(group)"
        case .alreadyActive(let member):
            "\(member) is already the active member"
        case .notServing(let member, let state, let reason):
            "\(member) is \(state.rawValue)\(reason.isEmpty ? "" : " (\(reason))"); a switchover needs a target that is up or degraded"
        case .blocked(let member, let root, let rootState):
            "\(member) is blocked by \(root) (root cause: \(root) is \(rootState.rawValue))"
        case .starting(let group):
            "group \(group) has not chosen an active member yet; wait until its members are known"
        }
    }
}

/// The answer to `GroupEngine.confirmTarget(of:states:at:)`, asked right
/// before a decision's actions run.
public enum TargetCheck: Sendable, Equatable {
    /// The target is still usable: run the event's actions.
    case confirmed
    /// The target is no longer usable and the engine chose again: run these
    /// events' actions instead of the original's. Their reason says why
    /// ("web-2 no longer up (down: timeout); chose web-3").
    case replaced(by: [GroupEvent])
    /// The target is no longer usable and the member traffic was to leave is
    /// still the best choice: the move is dropped and the engine stays there.
    case cancelled(reason: String)
    /// The engine has moved on since this event (a later event took the
    /// group elsewhere); that later event is what counts.
    case superseded
    /// The event moves no traffic to one member (not active-passive, or a kind
    /// without a target): nothing to check.
    case notApplicable
}
