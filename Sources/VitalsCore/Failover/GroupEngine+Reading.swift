import Foundation

extension GroupEngine {
    // MARK: Reading

    public var isActivePassive: Bool {
        switch group.mode {
        case .activePassive: true
        case .activeActive: false
        }
    }

    /// The one active member of an active-passive group; nil when the group is
    /// down or starting, and always nil for active-active (see `active`).
    public var activeMember: String? { isActivePassive ? active.first : nil }
    public var isHeld: Bool { hold != nil }
    public var heldReason: String? { hold?.reason }
    public var isIsolated: Bool { isolationReason != nil }
    /// Whether automatic decisions are paused (held or isolated).
    public var isPaused: Bool { isHeld || isIsolated }
    /// Alias of `lastMoveAt`: when the last automatic failover or failback was made.
    public var lastFailoverAt: Date? { lastMoveAt }
    /// Alias of `recentMoves`: the automatic moves counted toward `max_failovers`.
    public var failoverTimes: [Date] { recentMoves }

    /// Where the group stands, from the states last seen.
    public var condition: GroupCondition {
        if isStarting { return .starting }
        switch group.mode {
        case .activePassive:
            guard let member = active.first else { return .down }
            let snap = snapshot
            if snap.isUsable(member) { return .ok }
            // Held with a failed active member: traffic goes to it and nothing will move it.
            if isHeld && snap.hasFailed(member) { return .down }
            // Restored, and the recorded member has not reported yet.
            if isResuming && snap.state(member) == .unknown { return .starting }
            return .degraded
        case .activeActive:
            switch level(count: active.count) {
            case .down: return .down
            case .degraded: return .degraded
            case .healthy: return .ok
            }
        }
    }

    /// The service that blocks `member` in the states last seen, if any.
    public func rootCause(of member: String) -> String? {
        snapshot.rootCause(member)
    }

    /// The members usable in the states last seen, in priority order.
    public var usableMembers: [String] {
        let snap = snapshot
        return group.members.filter(snap.isUsable)
    }
}
