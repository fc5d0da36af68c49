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
    /// This agent's place in the cluster; absent without `cluster:`.
    var cluster: ClusterSummary?

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
        var every: String?
        var schedule: String?
        var tz: String?
        var grace: String
        var maxRuntime: String?
        /// When the next run is expected (with `every`, when it is late).
        var due: String
        var lastBeat: String?
        var deadline: String
        var runningSince: String?
        var lastExitStatus: Int?
        var lastDurationMs: Double?
        /// The last pings, newest first, with their bodies: in `GET /v1/services/{name}` only.
        var recentBeats: [Beat]?

        struct Beat: Encodable {
            var time: String
            var kind: String
            var exitStatus: Int?
            var durationMs: Double?
            var body: PingBody?
        }
    }
}

struct ExplainDocument: Encodable {
    var service: ServiceStatus
    /// For a heartbeat service: when the next ping is due and why.
    var nextPing: String?
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

/// `agent.cluster` in `/v1/status`: who leads, and this agent's role.
struct ClusterSummary: Encodable {
    /// This agent's name in the cluster.
    var name: String
    /// `leader`, `follower` or `none`.
    var role: String
    /// The leading agent's name, or null.
    var leader: String?
    var leaderAddress: String?
    /// Why there is no leader, or what this agent does: one line.
    var status: String

    init(_ cluster: ClusterState) {
        name = cluster.agent
        role = cluster.role.name
        leader = cluster.leader
        leaderAddress = cluster.role == .leader ? nil : cluster.leaderAddress
        status = cluster.role.description
    }
}

/// `GET /v1/cluster`.
struct ClusterDocument: Encodable {
    struct Member: Encodable {
        var name: String
        var address: String?
        /// When it last published its report (its own clock).
        var lastReport: String
        var leaseRemainingSeconds: Double?
        /// Counted in the quorum: its lease alive and heard within a ttl.
        var live: Bool
        var isLeader: Bool
        /// Its view of each group member (and what they depend on).
        var views: [String: MemberView]
    }

    struct MemberView: Encodable {
        var state: HealthState
        var since: String
        var reason: String
    }

    var leader: String?
    var leaderAddress: String?
    /// This agent.
    var agent: String
    var role: String
    var status: String
    /// Whether this agent may run actions now.
    var mayAct: Bool
    /// Seconds until this leader stops acting unless its lease is renewed.
    var fencingDeadlineSeconds: Double?
    var etcd: [String]
    var prefix: String
    var ttlSeconds: Int64
    /// How many live agents must see a member unusable for a failover now.
    var quorum: Int
    var quorumConfigured: Int?
    var leaderChanges: UInt64
    var agents: [Member]
    /// Decisions a previous leader left unfinished, adopted at the takeover.
    var interrupted: [AgentEvent]

    init(_ cluster: ClusterState, own: AgentReport) {
        func seconds(_ d: Duration) -> Double { (d.seconds * 1000).rounded() / 1000 }
        func views(_ report: AgentReport) -> [String: MemberView] {
            report.views.mapValues { MemberView(state: $0.state, since: JSONTime.string($0.since), reason: $0.reason) }
        }
        leader = cluster.leader
        leaderAddress = cluster.leaderAddress
        agent = cluster.agent
        role = cluster.role.name
        status = cluster.role.description
        mayAct = cluster.mayAct
        fencingDeadlineSeconds = cluster.mayAct ? cluster.leadership.fencingDeadline.map { seconds($0 - cluster.now) } : nil
        etcd = cluster.settings.etcd
        prefix = cluster.settings.prefix
        ttlSeconds = cluster.settings.ttl.components.seconds
        quorum = cluster.views.quorum(own: own, at: cluster.now)
        quorumConfigured = cluster.settings.quorum
        leaderChanges = cluster.leaderChanges
        var members = [Member(name: own.agent, address: own.address, lastReport: JSONTime.string(own.time),
                              leaseRemainingSeconds: cluster.leadership.fencingDeadline.map {
                                  seconds($0 + cluster.settings.requestTimeout - cluster.now)
                              },
                              live: true, isLeader: cluster.leader == own.agent, views: views(own))]
        for (name, heard) in cluster.views.heard.sorted(by: { $0.key < $1.key }) where name != own.agent {
            members.append(Member(name: name, address: heard.report.address, lastReport: JSONTime.string(heard.report.time),
                                  leaseRemainingSeconds: cluster.leaseLeft(of: name).map(seconds),
                                  live: cluster.views.isLive(name, at: cluster.now), isLeader: cluster.leader == name,
                                  views: views(heard.report)))
        }
        agents = members
        interrupted = cluster.interrupted
    }
}
