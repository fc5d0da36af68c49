import Foundation
import VitalsCore
import VitalsStore

// The JSON the status API serves. Field names are part of the API: they are
// documented in the README and only ever gain siblings.

struct StatusDocument: Encodable {
    var agent: AgentStatus
    var services: [ServiceStatus]
    var groups: [GroupStatus]
}

struct AgentStatus: Encodable {
    var version: String
    var startedAt: String
    var uptimeSeconds: Int
    var configPath: String
    /// False until every probed service has reported once.
    var ready: Bool
    var counts: Counts
    /// The state directory: whether writes are failing, and the last error.
    var store: StoreStatus?

    struct StoreStatus: Encodable {
        var degraded: Bool
        var failing: [String]
        var lastError: String?
        var lastErrorAt: String?
        var pendingRecords: Int
        var droppedRecords: Int

        init(_ report: StoreHealth.Report) {
            degraded = report.isDegraded
            failing = report.failing.map(\.path)
            lastError = report.lastError?.message
            lastErrorAt = report.lastError.map { JSONTime.string($0.at) }
            pendingRecords = report.pendingRecords
            droppedRecords = report.droppedRecords
        }
    }

    struct Counts: Encodable {
        var services: Int
        var groups: Int
        var up: Int
        var degraded: Int
        var down: Int
        var unknown: Int
        var maintenance: Int
        var flapping: Int
    }
}

struct ServiceStatus: Encodable {
    var name: String
    var kind: String
    /// What is checked: a URL, host:port, a plugin path, or "push".
    var target: String
    var state: HealthState
    var since: String
    var reason: String
    var rule: String
    var consecutiveSuccesses: Int
    var consecutiveFailures: Int
    var lastProbeAt: String?
    var latencyMs: Double?
    var dependsOn: [String]
    /// The failing service this one depends on, when there is one.
    var blockedBy: String?
    /// When maintenance ends by itself, if it was given an expiry.
    var maintenanceUntil: String?
    var heartbeat: HeartbeatStatus?

    struct HeartbeatStatus: Encodable {
        var every: String
        var grace: String
        var lastBeat: String?
        var deadline: String
        var runningSince: String?
        var lastExitStatus: Int?
        var lastDurationMs: Double?
    }
}

struct ExplainDocument: Encodable {
    var service: ServiceStatus
    /// The rules that decide this service's state, with their settings.
    var rules: Rules
    /// The last probe results, oldest first.
    var recent: [ResultEntry]

    struct Rules: Encodable {
        var interval: String
        var fastInterval: String
        var timeout: String
        var rise: Int
        var fall: Int
        var fallWindow: String?
        var startPeriod: String
        var flapping: String
        /// What one probe must see to succeed, in words, for the tcp and tls
        /// kinds (`StatusView.checkRule`); absent for the others.
        var check: String?
    }

    struct ResultEntry: Encodable {
        var time: String
        var outcome: ProbeOutcome
        var latencyMs: Double?
        var reason: String
    }
}

struct GroupStatus: Encodable {
    var name: String
    var mode: String
    /// up: every member serving; degraded: some; down: none.
    var state: String
    /// The engine's view: starting, ok, degraded, down.
    var condition: String
    /// Active-passive: the one active member (or none); active-active: every active member.
    var active: [String]
    var activeMember: String?
    var members: [Member]
    var serving: [String]
    var held: Bool
    var hold: Hold?
    var isolated: Bool
    var isolationReason: String?
    /// A move deferred by the cooldown.
    var pending: Pending?
    var lastMoveAt: String?
    /// Failovers counted against `max_failovers` in the current window.
    var recentFailovers: Int
    /// The group's latest events, newest last, with their action results.
    var recentEvents: [AgentEvent]

    struct Member: Encodable {
        var name: String
        var state: HealthState
        var reason: String
        var active: Bool
        var blockedBy: String?
    }

    struct Hold: Encodable {
        var cause: String
        var reason: String
        var since: String
    }

    struct Pending: Encodable {
        var kind: String
        var from: String
        var to: String
        var notBefore: String
        var reason: String
    }
}

struct EventList: Encodable {
    var events: [AgentEvent]
    /// The id to pass as `since` for the next page.
    var lastId: UInt64
}

struct ServiceList: Encodable {
    var services: [ServiceStatus]
}

struct GroupList: Encodable {
    var groups: [GroupStatus]
}

enum JSONTime {
    static func string(_ date: Date) -> String {
        ISOTime.format(date)
    }
}

extension Duration {
    var jsonMilliseconds: Double { (seconds * 1_000_000).rounded() / 1000 }
}
