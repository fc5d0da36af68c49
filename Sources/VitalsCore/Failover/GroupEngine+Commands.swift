import Foundation

extension GroupEngine {
    // MARK: Operator commands

    /// Pauses automatic decisions (Patroni's maintenance mode): one `held`
    /// event. Holding an already operator-held group with a new reason
    /// records it: a `held` event naming the old reason (the hold keeps its
    /// start); the same reason again changes nothing. Holding a group the
    /// failover limit holds turns it into an operator hold (`held`, naming the
    /// limit's reason) and forgets the counted moves, as releasing the limit's
    /// hold would: the operator has taken charge.
    public mutating func hold(reason: String, at now: Date) -> [GroupEvent] {
        let text = reason.isEmpty ? "held by operator" : reason
        if let current = hold {
            switch current.cause {
            case .operatorRequest:
                guard current.reason != text else { return [] }
                hold?.reason = text
                let was = "\(text) (was: \(current.reason), held since \(Self.stamp(current.since)))"
                return [emit(.held, reason: was, snap: snapshot, at: now)]
            case .failoverLimit:
                hold = GroupHold(cause: .operatorRequest, reason: text, since: now)
                recentMoves.removeAll()
                let was = "\(text) (was held by the failover limit since \(Self.stamp(current.since)): \(current.reason))"
                return [emit(.held, reason: was, snap: snapshot, at: now)]
            }
        }
        hold = GroupHold(cause: .operatorRequest, reason: text, since: now)
        pending = nil
        nextWakeup = nil
        return [emit(.held, reason: text, snap: snapshot, at: now)]
    }

    /// What a new hold would cost, or nil when the group keeps serving: a
    /// hold freezes the active choice, so a group that serves through no
    /// usable member (an active-passive group whose active member failed
    /// and has not yet moved, a group that is down or still starting) would
    /// stay without one until released, whatever recovers meanwhile.
    /// Nil while already held: a second hold changes only the reason.
    /// Reads "keep its traffic on web-1 (down) until released" or "leave it
    /// with no serving member until released (web-1 down, web-2 down)".
    public var holdConsequence: String? {
        guard hold == nil else { return nil }
        let snap = snapshot
        guard !active.contains(where: snap.isUsable) else { return nil }
        if isActivePassive, let member = active.first {
            return "keep its traffic on \(member) (\(Self.brief(member, snap))) until released"
        }
        let members = group.members.map { "\($0) \(Self.brief($0, snap))" }.joined(separator: ", ")
        return "leave it with no serving member until released (\(members))"
    }

    /// What maintenance on `member` would cost this group, or nil when the
    /// group keeps a serving member: `member` serves now and no other member
    /// does, or the group is paused (held or isolated, so nothing moves) with
    /// `member` as its active member. A member that serves nothing now takes
    /// nothing away. Reads "no serving member (web-2 down)".
    public func maintenanceConsequence(on member: String) -> String? {
        let snap = snapshot
        guard group.members.contains(member), snap.isUsable(member) else { return nil }
        if isPaused, isActivePassive, active.first == member {
            return "no serving member (\(isHeld ? "held" : "isolated"): its traffic stays on \(member))"
        }
        let others = group.members.filter { $0 != member }
        guard !others.contains(where: snap.isUsable) else { return nil }
        let states = others.isEmpty ? "its only member" : others.map { "\($0) \(Self.brief($0, snap))" }
            .joined(separator: ", ")
        return "no serving member (\(states))"
    }

    /// "down", "in maintenance", "blocked by db".
    static func brief(_ member: String, _ snap: Snapshot) -> String {
        if let root = snap.rootCause(member) { return "blocked by \(root)" }
        let state = snap.state(member)
        return state == .maintenance ? "in maintenance" : state.rawValue
    }

    /// Resumes automatic decisions: one `released` event, then whatever the
    /// current states call for, decided at once. Releasing a hold set by the
    /// failover limit also forgets the counted moves (a fresh budget; the
    /// cooldown still counts from the last move). Not held: nothing.
    public mutating func release(at now: Date) -> [GroupEvent] {
        guard let old = hold else { return [] }
        hold = nil
        activeDownReported = false
        switch old.cause {
        case .failoverLimit: recentMoves.removeAll()
        case .operatorRequest: break
        }
        let released = emit(.released, reason: "released by operator (held since \(Self.stamp(old.since)): \(old.reason))",
                            snap: snapshot, at: now)
        return [released] + evaluate(at: now)
    }

    /// The isolation guard believes the agent is cut off: one `isolated`
    /// event, then no automatic decision until `endIsolation`. Repeating it
    /// only updates the reason.
    public mutating func isolate(reason: String, at now: Date) -> [GroupEvent] {
        if isolationReason != nil {
            isolationReason = reason
            return []
        }
        isolationReason = reason
        pending = nil
        nextWakeup = nil
        return [emit(.isolated, reason: reason, snap: snapshot, at: now)]
    }

    /// The isolation is over: one `isolation_ended` event, then whatever the
    /// states last seen call for. Feed the current states with `update` first
    /// (while isolated it only records them). Not isolated: nothing.
    ///
    /// With `settling` (the guard saw fewer failures, not an operator's
    /// dismissal) decisions caused by members still failing wait `settle`
    /// first: the isolation ends as soon as fewer than the threshold fail,
    /// while the rest of the round that brings them back is still arriving.
    public mutating func endIsolation(reason: String, settling: Bool = true, at now: Date) -> [GroupEvent] {
        guard isolationReason != nil else { return [] }
        isolationReason = nil
        if settling, settle > .zero {
            settleUntil = max(settleUntil ?? now, now.adding(settle))
        }
        let ended = emit(.isolationEnded, reason: reason, snap: snapshot, at: now)
        return [ended] + evaluate(at: now)
    }

    /// A planned move to `member` (active-passive only), allowed while held or
    /// isolated: an operator is in charge. Refused when `member` is not a
    /// member, is already active, does not serve, is blocked by a dependency,
    /// or the group has not made its first choice. Not counted toward
    /// `max_failovers` and not deferred by the cooldown; while `member` stays
    /// active, automatic failback leaves it there.
    public mutating func switchover(to member: String, at now: Date) -> Result<[GroupEvent], SwitchoverRefusal> {
        guard isActivePassive else { return .failure(.notActivePassive(group: group.name)) }
        guard group.members.contains(member) else {
            return .failure(.notAMember(member: member, group: group.name))
        }
        guard !isStarting else { return .failure(.starting(group: group.name)) }
        guard active.first != member else { return .failure(.alreadyActive(member: member)) }
        let snap = snapshot
        if let root = snap.rootCause(member) {
            return .failure(.blocked(member: member, rootCause: root, rootState: snap.state(root)))
        }
        let state = snap.state(member)
        guard state.isServing else {
            return .failure(.notServing(member: member, state: state, reason: views[member]?.reason ?? ""))
        }
        let from = active.first
        if let from { lastActive = from }
        active = [member]
        switchoverPin = member
        pending = nil
        let origin = from.map { "from \($0) " } ?? ""
        let reason = "operator switchover \(origin)to \(member) (\(member) \(snap.condition(member)))"
        return .success([emit(.switchover, from: from, to: member, reason: reason, snap: snap, at: now)])
    }
}
