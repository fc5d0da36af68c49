import Foundation

/// What the etcd edge reports about this agent's lease and the leader key.
public enum LeadershipInput: Sendable, Equatable {
    /// A lease was granted; the grant request was sent at `sentAt`, so the
    /// lease cannot expire before `sentAt + ttl`. A lease with another id
    /// than the current one replaces it: the leader key, if this agent held
    /// it, belonged to the old lease.
    case leaseGranted(id: Int64, ttl: Duration, sentAt: MonotonicTime)
    /// A keepalive sent at `sentAt` was answered with `remaining` (etcd's
    /// `TTL`). Answers may arrive out of order: an older one never moves the
    /// deadline back.
    case renewed(remaining: Duration, sentAt: MonotonicTime)
    /// A request (keepalive, grant, transaction, read) got no answer or an
    /// error: etcd may be unreachable, and the lease may still be alive.
    /// Nothing changes the deadline; the leader acts until it passes.
    case requestFailed(reason: String)
    /// etcd says the lease is gone (a keepalive answered without `TTL`, a
    /// revoke at shutdown, 404): the agent stops acting at once.
    case leaseLost(reason: String)
    /// The create-if-absent transaction on the leader key succeeded with
    /// `lease`. An answer for a lease that is no longer current is ignored.
    case acquired(lease: Int64)
    /// The leader key as read or watched: its holder and the lease it is
    /// attached to, or nil when nobody holds it (deleted, expired).
    case leaderObserved(holder: String?, lease: Int64?)
}

/// Where this agent stands in the cluster.
public enum ClusterRole: Sendable, Equatable, CustomStringConvertible {
    /// Holds the leader key with an unexpired deadline: runs actions.
    case leader
    /// Another agent holds the leader key: decides in shadow, runs nothing.
    case follower(leader: String)
    /// No agent is known to lead; nothing runs here. The reason is the
    /// status line: "etcd unreachable since 2027-01-15T08:00:00.000Z: ...".
    case noLeader(reason: String)

    public var name: String {
        switch self {
        case .leader: "leader"
        case .follower: "follower"
        case .noLeader: "none"
        }
    }

    public var description: String {
        switch self {
        case .leader: "leader"
        case .follower(let leader): "follower of \(leader)"
        case .noLeader(let reason): "no leader: \(reason)"
        }
    }
}

/// This agent's leadership, fenced by its own deadline.
///
/// **May act.** Only while this agent holds the leader key under its
/// current lease and `now < lastRenewalSent + leaseTTL - requestTimeout`,
/// where `lastRenewalSent` is when the last *successful* grant or keepalive
/// was sent (not answered), on the monotonic clock. The lease cannot expire
/// in etcd before `lastRenewalSent + leaseTTL` (etcd started counting after
/// the request left), so a leader that cannot renew stops acting
/// `requestTimeout` before another agent can take the key: an action it
/// starts at the last moment still has that long before a successor could
/// start one of its own.
///
/// **Renew** at `lastRenewalSent + leaseTTL / 3` (`nextRenewal`); a failed
/// renewal is retried at once (the renewal stays due), on the next endpoint.
///
/// **Role.** `leader` while it may act; otherwise `noLeader` with "etcd
/// unreachable since …" while requests fail, `follower` of the observed
/// holder, or `noLeader` when the key is free or this agent's own deadline
/// passed. Pure: every input carries its instant, and the caller ticks at
/// `nextWakeup`.
public struct Leadership: Sendable, Equatable {
    /// The lease this agent holds: its id and the ttl etcd last confirmed.
    public struct Lease: Sendable, Equatable {
        public var id: Int64
        public var ttl: Duration
    }

    public let agent: String
    public let requestTimeout: Duration
    public private(set) var lease: Lease?
    /// When the last successful grant or keepalive was sent.
    public private(set) var lastRenewalSent: MonotonicTime?
    /// Whether this agent holds the leader key under `lease`.
    public private(set) var holdsKey = false
    /// The leader key's holder as last observed (this agent's name when it holds it).
    public private(set) var holder: String?
    /// Since when requests have failed (wall time, for the status), and the last reason.
    public private(set) var unreachableSince: Date?
    public private(set) var lastFailure: String?
    /// Why the lease was last lost, until a new one is granted.
    public private(set) var lostReason: String?
    /// Wall time of the last successful renewal's answer, for the status.
    public private(set) var lastRenewedAt: Date?

    public init(agent: String, requestTimeout: Duration) {
        self.agent = agent
        self.requestTimeout = requestTimeout
    }

    // MARK: Inputs

    /// Applies one report of the etcd edge; `wall` is the wall time for
    /// what the status shows.
    public mutating func apply(_ input: LeadershipInput, wall: Date) {
        switch input {
        case .leaseGranted(let id, let ttl, let sentAt):
            if lease?.id != id { holdsKey = false }
            lease = Lease(id: id, ttl: ttl)
            lastRenewalSent = sentAt
            lostReason = nil
            reached(wall)
        case .renewed(let remaining, let sentAt):
            guard lease != nil else { return }
            if let last = lastRenewalSent, sentAt < last { return reached(wall) }
            lease?.ttl = remaining
            lastRenewalSent = sentAt
            reached(wall)
        case .requestFailed(let reason):
            if unreachableSince == nil { unreachableSince = wall }
            lastFailure = reason
        case .leaseLost(let reason):
            lease = nil
            lastRenewalSent = nil
            holdsKey = false
            if holder == agent { holder = nil }
            lostReason = reason
            reached(wall)
        case .acquired(let id):
            guard lease?.id == id else { return }
            holdsKey = true
            holder = agent
            reached(wall)
        case .leaderObserved(let name, let id):
            holder = name
            holdsKey = name == agent && id != nil && id == lease?.id
            reached(wall)
        }
    }

    private mutating func reached(_ wall: Date) {
        unreachableSince = nil
        lastFailure = nil
        if lease != nil { lastRenewedAt = wall }
    }

    // MARK: Outputs

    /// `lastRenewalSent + leaseTTL - requestTimeout`, while a lease is held.
    public var fencingDeadline: MonotonicTime? {
        guard let lease, let sent = lastRenewalSent else { return nil }
        return sent + lease.ttl - requestTimeout
    }

    /// Whether this agent may run actions at `now`.
    public func mayAct(at now: MonotonicTime) -> Bool {
        guard holdsKey, let deadline = fencingDeadline else { return false }
        return now < deadline
    }

    /// When the next keepalive is due: a third of the lease's ttl after the
    /// last successful one was sent. Nil without a lease (then grant one).
    public var nextRenewal: MonotonicTime? {
        guard let lease, let sent = lastRenewalSent else { return nil }
        return sent + lease.ttl / 3
    }

    /// When the caller must come back even if etcd says nothing: the next
    /// renewal, or the fencing deadline when it is still ahead.
    public func nextWakeup(after now: MonotonicTime) -> MonotonicTime? {
        [nextRenewal, fencingDeadline.flatMap { $0 > now ? $0 : nil }].compactMap { $0 }.min()
    }

    public func role(at now: MonotonicTime) -> ClusterRole {
        if mayAct(at: now) { return .leader }
        if let since = unreachableSince {
            return .noLeader(reason: "etcd unreachable since \(ISOTime.format(since))"
                + (lastFailure.map { ": \($0)" } ?? ""))
        }
        if holdsKey {
            let last = lastRenewedAt.map { " since \(ISOTime.format($0))" } ?? ""
            return .noLeader(reason: "this agent's lease was not renewed\(last); it stopped acting at its "
                + "fencing deadline and waits for the lease to expire")
        }
        if let holder, holder != agent { return .follower(leader: holder) }
        if let lostReason { return .noLeader(reason: "this agent's lease was lost (\(lostReason))") }
        return .noLeader(reason: "no agent holds the leader key")
    }
}
