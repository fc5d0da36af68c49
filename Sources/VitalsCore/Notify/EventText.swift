import Foundation

/// An event in words, for people: the one-line summary that is a mail's
/// subject and a chat message's first line, and the plain-text body of a mail.
public enum EventText {
    /// `web-1 is down (was up)`, `group web: failover from web-1 to web-2`,
    /// `configuration reloaded`. ASCII when the names are.
    public static func summary(_ event: AgentEvent) -> String {
        switch event.kind {
        case .stateChange:
            let service = event.service ?? "a service"
            let was = event.from.map { " (was \($0))" } ?? ""
            return "\(service) is \(event.to ?? "unknown")\(was)"
        case .group(let kind):
            var text = "group \(event.group ?? "?"): \(kind.rawValue)"
            switch (event.from, event.to) {
            case let (from?, to?): text += " from \(from) to \(to)"
            case let (from?, nil): text += " from \(from)"
            case let (nil, to?): text += " to \(to)"
            case (nil, nil): break
            }
            return text
        case .configReloaded:
            return "configuration reloaded"
        case .reloadRefused:
            return "configuration reload refused"
        }
    }

    /// The plain-text body of a mail: the summary, the reason, the facts one
    /// a line, and a heartbeat's ping body at the end. Lines end in `\n`.
    public static func body(_ event: AgentEvent) -> String {
        var lines = [summary(event), "", event.reason, ""]
        func fact(_ name: String, _ value: String?) {
            guard let value, !value.isEmpty else { return }
            lines.append(name + ": " + String(repeating: " ", count: max(0, 8 - name.count)) + value)
        }
        fact("time", event.timeText)
        fact("event", "\(event.id) (\(event.kind.rawValue))")
        fact("service", event.service)
        fact("group", event.group)
        fact("from", event.from)
        fact("to", event.to)
        fact("rule", event.rule)
        fact("cause", event.rootCause)
        if let active = event.active, !active.isEmpty { fact("active", active.joined(separator: ", ")) }
        if let body = event.pingBody {
            lines.append("")
            lines.append(body.truncated ? "ping body (the last \(body.keptBytes) of \(body.totalBytes) bytes):"
                                        : "ping body (\(body.totalBytes) bytes):")
            lines.append(body.text)
        }
        return lines.joined(separator: "\n") + "\n"
    }
}

/// What an event means to an alerting service (PagerDuty, Opsgenie): open
/// an alert, close one, or nothing. Each alert has a stable key, one per
/// service (`vitals/service/web-1`) and one per group (`vitals/group/web`),
/// so the recovery closes what the failure opened.
public enum AlertAction: Sendable, Equatable {
    case trigger(key: String, severity: Severity)
    case resolve(key: String)
    case none

    public enum Severity: String, Sendable, Equatable {
        case critical, warning
    }

    /// - A service: `down` or `flapping` triggers (critical), `degraded`
    ///   triggers (warning), `up` resolves; `maintenance` and `unknown` do nothing.
    /// - A group: `group_down`, `active_down_while_held`, `failover_suppressed`
    ///   and `failover_withheld` trigger (critical); `failover`, `group_degraded`
    ///   and `member_removed` trigger (warning: it still serves);
    ///   `group_recovered`, `failback` and `member_added` resolve. `isolated`
    ///   triggers `vitals/isolation` (warning), `isolation_ended` resolves it.
    ///   The rest (`switchover`, `activated`, `held`, `released`) do nothing.
    /// - Reloads do nothing.
    public static func of(_ event: AgentEvent) -> AlertAction {
        switch event.kind {
        case .stateChange:
            guard let service = event.service, let to = event.to.flatMap(HealthState.init(rawValue:)) else { return .none }
            let key = "vitals/service/\(service)"
            switch to {
            case .down, .flapping: return .trigger(key: key, severity: .critical)
            case .degraded: return .trigger(key: key, severity: .warning)
            case .up: return .resolve(key: key)
            case .maintenance, .unknown: return .none
            }
        case .group(let kind):
            let key = "vitals/group/\(event.group ?? "")"
            switch kind {
            case .groupDown, .activeDownWhileHeld, .failoverSuppressed, .failoverWithheld:
                return .trigger(key: key, severity: .critical)
            case .failover, .groupDegraded, .memberRemoved:
                return .trigger(key: key, severity: .warning)
            case .groupRecovered, .failback, .memberAdded:
                return .resolve(key: key)
            case .isolated:
                return .trigger(key: "vitals/isolation", severity: .warning)
            case .isolationEnded:
                return .resolve(key: "vitals/isolation")
            case .switchover, .activated, .held, .released:
                return .none
            }
        case .configReloaded, .reloadRefused:
            return .none
        }
    }
}
