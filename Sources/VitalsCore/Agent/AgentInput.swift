import Foundation

/// Everything that can change the agent's state, as one value: what the
/// probes saw, what jobs and operators said, the passing of time, a new
/// configuration, and what actions did. `AgentCore.apply(_:at:)` takes them
/// one at a time, in the order the owner received them.
public enum AgentInput: Sendable {
    /// One probe result. Recorded at once; a change of state it causes is
    /// decided on at `.roundEnded` (or by the next input that decides), so a
    /// round in which many services change is decided once.
    case probeResult(ProbeResult, service: String)
    /// The probe loop delivered a round of results: the groups decide on
    /// every change recorded since the last decision, in order.
    case roundEnded
    /// A job pushed a heartbeat (`/v1/heartbeat/{name}[/start|/fail|/{code}]`).
    /// `body`: the tail of what the ping carried (`agent.ping_body_limit`).
    case heartbeat(BeatKind, service: String, duration: Duration? = nil, exitStatus: Int? = nil, body: PingBody? = nil)
    /// Time passed: heartbeat deadlines, flapping settling, maintenance expiry,
    /// deferred group decisions.
    case tick
    /// A new, already validated configuration (SIGHUP, `POST /v1/reload`).
    case reload(VitalsConfig)
    /// A reload found the file invalid (each error one line); nothing
    /// changes but the event that says so.
    case reloadRefused(errors: [String])
    /// An operator put a service in maintenance (`on`), optionally until a
    /// time, or took it out. Putting in maintenance the last serving member
    /// of a group (or the active member of a held one) is refused unless
    /// `force`: see `AgentCore.maintenanceConsequence(of:)`.
    case maintenance(service: String, on: Bool, reason: String, until: Date? = nil, force: Bool = false)
    /// An operator moves an active-passive group to `member` now.
    case switchover(group: String, to: String)
    /// An operator pauses a group's automatic decisions. Holding a group
    /// that serves through no usable member is refused unless `force`: see
    /// `GroupEngine.holdConsequence`.
    case hold(group: String, reason: String, force: Bool = false)
    /// An operator resumes a group's automatic decisions.
    case release(group: String)
    /// Right before the actions of event `id` run: is its target still up?
    /// `apply` answers with the events of a new decision that replaces it
    /// (the original's actions then must not run), throws
    /// `AgentRefusal.actionsNotRun` when they must not run for another reason,
    /// and answers `[]` when they may run.
    case confirmTarget(eventID: UInt64)
    /// Actions reported what they did; recorded with their event.
    case actionsFinished([ActionOutcome])
    /// After a restart: the journal's recovered events. Actions of a
    /// decision that never reported are recorded as interrupted, never run
    /// again. No new event: the marks are in `recentEvents`.
    case restarted(journal: [AgentEvent])
    /// The etcd edge reports on the cluster (`cluster:` only): leadership,
    /// other agents' views, a takeover. Another agent's changed view lets
    /// the groups decide again (a withheld failover may now have its quorum).
    case cluster(ClusterInput)
}

extension AgentInput {
    var isRoundEnd: Bool {
        if case .roundEnded = self { true } else { false }
    }
}

/// Why an input changed nothing. Each case reads as a sentence for the
/// operator who asked.
public enum AgentRefusal: Error, Equatable, Sendable, CustomStringConvertible {
    case unknownGroup(String)
    case unknownService(String)
    /// A heartbeat to a service that is probed, not pushed.
    case notAHeartbeatService(String, kind: String)
    /// The command cannot be done now: "web-2 is down (timeout); a switchover needs a serving member".
    case refused(String)
    /// The target check says the event's actions must not run, and why.
    case actionsNotRun(String)

    public var description: String {
        switch self {
        case .unknownGroup(let name): "no such group: \(name)"
        case .unknownService(let name): "no such service: \(name)"
        case .notAHeartbeatService(let name, let kind): "service \(name) is a \(kind) check, not a heartbeat service"
        case .refused(let why): why
        case .actionsNotRun(let why): why
        }
    }
}
