import Foundation

/// One service's health, whichever way it is tracked: probed (state-based)
/// or pushed (heartbeat-based).
public enum ServiceHealth: Sendable {
    case probed(HealthTracker)
    case heartbeat(HeartbeatTracker)

    public init(service: ServiceConfig, startedAt: Date, lastBeat: Date? = nil, restoring restored: ServiceView? = nil,
                runningSince: Date? = nil) {
        switch service.check {
        case .heartbeat(let check):
            self = .heartbeat(HeartbeatTracker(service: service.name, check: check, startedAt: startedAt,
                                               lastBeat: lastBeat, restoring: restored, runningSince: runningSince))
        case .http, .tcp, .exec, .dns, .grpc, .icmp:
            self = .probed(HealthTracker(service: service.name, timing: service.timing, startedAt: startedAt))
        }
    }

    public var state: HealthState {
        switch self {
        case .probed(let t): t.state
        case .heartbeat(let t): t.state
        }
    }

    public var since: Date {
        switch self {
        case .probed(let t): t.since
        case .heartbeat(let t): t.since
        }
    }

    public var reason: String {
        switch self {
        case .probed(let t): t.reason
        case .heartbeat(let t): t.reason
        }
    }

    public var decidingRule: String {
        switch self {
        case .probed(let t): t.decidingRule
        case .heartbeat(let t): t.decidingRule
        }
    }

    public var consecutiveSuccesses: Int {
        switch self {
        case .probed(let t): t.consecutiveSuccesses
        case .heartbeat(let t): t.consecutiveSuccesses
        }
    }

    public var consecutiveFailures: Int {
        switch self {
        case .probed(let t): t.consecutiveFailures
        case .heartbeat(let t): t.consecutiveFailures
        }
    }

    public var isInMaintenance: Bool {
        switch self {
        case .probed(let t): t.isInMaintenance
        case .heartbeat(let t): t.isInMaintenance
        }
    }

    mutating func tick(at now: Date) -> HealthTransition? {
        switch self {
        case .probed(var t):
            let change = t.tick(at: now)
            self = .probed(t)
            return change
        case .heartbeat(var t):
            let change = t.tick(at: now)
            self = .heartbeat(t)
            return change
        }
    }

    mutating func setMaintenance(_ on: Bool, reason: String, at now: Date) -> HealthTransition? {
        switch self {
        case .probed(var t):
            let change = t.setMaintenance(on, reason: reason, at: now)
            self = .probed(t)
            return change
        case .heartbeat(var t):
            let change = t.setMaintenance(on, reason: reason, at: now)
            self = .heartbeat(t)
            return change
        }
    }
}

extension ServiceHealth {
    /// Takes a reloaded service's new rules and keeps everything learned so
    /// far: its check still looks at the same target (see `Check.probeTarget`).
    mutating func adopt(_ service: ServiceConfig) {
        switch (self, service.check) {
        case (.probed(var t), _):
            t.retime(service.timing)
            self = .probed(t)
        case (.heartbeat(var t), .heartbeat(let check)):
            t.recheck(check)
            self = .heartbeat(t)
        case (.heartbeat, _):
            break
        }
    }
}

extension Check {
    /// What the check looks at, without how it judges it: the same target
    /// under new timing or conditions is the same evidence, so a reload keeps
    /// the service's state (a change of URL, address or program does not).
    public var probeTarget: String {
        switch self {
        case .http(let http): "http \(http.method) \(http.url)"
        case .tcp(let tcp): "tcp \(tcp.host) \(tcp.port)"
        case .exec(let exec): "exec " + exec.argv.joined(separator: "\u{0}")
        case .heartbeat: "heartbeat"
        case .dns(let dns): "dns \(dns.server?.description ?? "system") \(dns.type.rawValue) \(DNSRecordValue.normalizedName(dns.name))"
        case .grpc(let grpc): "grpc \(grpc.host) \(grpc.port) \(grpc.service)"
        case .icmp(let icmp): "icmp \(icmp.host)"
        }
    }
}
