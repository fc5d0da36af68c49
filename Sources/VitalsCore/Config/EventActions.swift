/// A key of a service's `on:`: which of its changes runs a list of actions.
///
/// - a state it changes to: `up`, `degraded`, `down`, `flapping`,
///   `maintenance` (every `HealthState` but `unknown`). The first `up` after
///   the agent starts (from `unknown`) is not a recovery and runs nothing;
/// - `missed` (heartbeat services): down because no beat came within
///   `every` + `grace` (with a schedule: within `grace` of a scheduled time),
///   or a started run went on longer than `max_runtime`;
/// - `late` (heartbeat services): degraded because no beat came within
///   `every`, while the grace still runs;
/// - `failed` (heartbeat services): down because the job reported failure;
/// - `any`: every change that runs actions at all.
public enum ServiceTrigger: Hashable, Sendable, CustomStringConvertible {
    case state(HealthState)
    case missed
    case late
    case failed
    case any

    /// Every key, in the order `validate` lists them.
    public static var allCases: [ServiceTrigger] {
        HealthState.allCases.filter { $0 != .unknown }.map(ServiceTrigger.state) + [.missed, .late, .failed, .any]
    }

    public init?(rawValue: String) {
        guard let trigger = Self.allCases.first(where: { $0.rawValue == rawValue }) else { return nil }
        self = trigger
    }

    public var rawValue: String {
        switch self {
        case .state(let state): state.rawValue
        case .missed: "missed"
        case .late: "late"
        case .failed: "failed"
        case .any: "any"
        }
    }

    public var description: String { rawValue }

    /// Whether only heartbeat services have this key.
    public var heartbeatOnly: Bool {
        switch self {
        case .missed, .late, .failed: true
        case .state, .any: false
        }
    }

    /// The rules `HeartbeatTracker` names its down and late verdicts by.
    static let missedRule = "heartbeat deadline"
    static let lateRule = "late"
    static let failedRule = "failure report"
    static let maxRuntimeRule = "max_runtime"

    /// The keys a service's state change answers to, most specific first.
    static func triggers(for event: AgentEvent) -> [ServiceTrigger] {
        guard event.kind == .stateChange, let to = event.to.flatMap(HealthState.init(rawValue:)), to != .unknown,
              !(to == .up && event.from == HealthState.unknown.rawValue) else { return [] }
        var triggers: [ServiceTrigger] = []
        if to == .down, event.rule == missedRule || event.rule == maxRuntimeRule { triggers.append(.missed) }
        if to == .down, event.rule == failedRule { triggers.append(.failed) }
        if to == .degraded, event.rule == lateRule { triggers.append(.late) }
        return triggers + [.state(to), .any]
    }
}

/// The keys of a group's `on:` beyond its event kinds.
public enum GroupTrigger {
    /// Every change of the active member (`GroupConfig.isMove(_:)`).
    public static let move = "move"
    /// Every event of the group.
    public static let any = "any"
}

extension VitalsConfig {
    /// The actions `event` runs, in order, each at most once: the one rule
    /// for running them and for marking them interrupted after a restart.
    ///
    /// - A group event runs its kind's list, then `move`'s when it changed
    ///   the active member, then `any`'s.
    /// - A service's change runs `missed` or `failed`'s list when that is
    ///   why it went down (`late`'s when a heartbeat made it degraded), then
    ///   the list of the state it changed to, then `any`'s.
    /// - Agent events (`config_reloaded`, `reload_refused`) run none.
    ///
    /// An action named by more than one list runs once, where it first appears.
    public func actions(for event: AgentEvent) -> [ActionConfig] {
        var names: [String] = []
        switch event.kind {
        case .group(let kind):
            guard let group = event.group.flatMap(group(named:)) else { return [] }
            names = (group.on[kind] ?? []) + (group.isMove(event) ? group.onMove : []) + group.onAny
        case .stateChange:
            guard let service = event.service.flatMap(service(named:)) else { return [] }
            names = ServiceTrigger.triggers(for: event).flatMap { service.on[$0] ?? [] }
        case .configReloaded, .reloadRefused:
            return []
        }
        var seen = Set<String>()
        return names.filter { seen.insert($0).inserted }.compactMap(action(named:))
    }
}
