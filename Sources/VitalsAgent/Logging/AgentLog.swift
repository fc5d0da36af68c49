import Foundation
import Logging
import VitalsActions
import VitalsCore

/// How the agent words events and action outcomes in its log, and its
/// one-line summary for systemd.
enum AgentLog {
    /// The one-line summary systemd shows: `5 services: 4 up, 1 down; 2 groups`.
    static func statusLine(_ view: AgentView) -> String {
        SystemdNotifier.statusLine(serviceStates: view.core.entries.map(\.health.state),
                                   groupCount: view.core.coordinator.engines.count)
    }

    /// One line per action run: `action promote (exec) for event 12 failover: ok, 1 attempt, 35ms`.
    static func outcome(_ outcome: ActionOutcome, to logger: Logger) {
        var metadata: Logger.Metadata = ["event": .string(String(outcome.eventID)), "action": .string(outcome.action)]
        if let group = outcome.group { metadata["group"] = .string(group) }
        let level: Logger.Level
        switch outcome.result {
        case .ok: level = .notice
        // A dry run skips on purpose; other skips (shutdown, a replaced
        // decision) are worth a look but are not failures.
        case .skipped(let why): level = why == ActionQueue.dryRunReason ? .notice : .warning
        case .failed, .timedOut, .spawnFailed, .error, .cancelled: level = .error
        }
        let attempts = outcome.attempts == 1 ? "1 attempt" : "\(outcome.attempts) attempts"
        logger.log(level: level, "action \(outcome.action) (\(outcome.kind)) for event \(outcome.eventID) \(outcome.eventKind): \(outcome.result), \(attempts), \(DurationText.format(outcome.duration))",
                   metadata: metadata)
    }

    /// One line per event: `web-1: up → down: status 503 (fall 3/3)` for a
    /// service, `group web: failover web-1 → web-2: …` for a decision.
    static func event(_ event: AgentEvent, to logger: Logger) {
        var metadata: Logger.Metadata = ["event": .string(String(event.id))]
        if let service = event.service { metadata["service"] = .string(service) }
        if let group = event.group { metadata["group"] = .string(group) }
        if let root = event.rootCause { metadata["root_cause"] = .string(root) }
        if event.kind == .stateChange, let service = event.service {
            let level: Logger.Level = event.to == HealthState.down.rawValue || event.to == HealthState.flapping.rawValue
                ? .warning : .notice
            let rule = event.rule.map { " (\($0))" } ?? ""
            logger.log(level: level, "\(service): \(event.from ?? "?") → \(event.to ?? "?"): \(event.reason)\(rule)",
                       metadata: metadata)
            return
        }
        var level: Logger.Level
        switch event.kind.groupKind {
        case .groupDown?, .failoverSuppressed?, .isolated?, .groupDegraded?: level = .error
        case .failover?, .failback?, .memberRemoved?: level = .warning
        default: level = .notice
        }
        if event.kind == .reloadRefused { level = .error }
        let subject = event.group.map { "group \($0)" } ?? event.service ?? "agent"
        var move = ""
        if event.from != nil || event.to != nil { move = " \(event.from ?? "none") → \(event.to ?? "none")" }
        logger.log(level: level, "\(subject): \(event.kind)\(move): \(event.reason)", metadata: metadata)
    }
}
