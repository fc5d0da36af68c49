import Foundation

extension GroupEngine {
    // MARK: Active-passive

    mutating func evaluateActivePassive(_ snap: Snapshot, failback: Failback, delay: Duration,
                                                at now: Date) -> [GroupEvent] {
        guard let current = active.first else {
            guard let member = bestCandidate(in: snap, excluding: []) else { return [] }
            active = [member]
            let reason = "\(member) usable again (\(snap.condition(member)))"
            return [emit(.groupRecovered, to: member, reason: reason, snap: snap, at: now)]
        }

        if !snap.isUsable(current) {
            let root = snap.rootCause(current)
            if let target = bestCandidate(in: snap, excluding: [current]) {
                return move(.failover, from: current, to: target,
                            reason: "\(snap.explain(current)); chose \(target)", rootCause: root, snap: snap, at: now)
            }
            active = []
            lastActive = current
            switchoverPin = nil
            return [emit(.groupDown, from: current, reason: noUsableMember(leaving: [current], in: snap),
                         rootCause: commonRoot(of: [current], in: snap), snap: snap, at: now)]
        }

        switch failback {
        case .manual:
            return []
        case .auto:
            break
        }
        guard switchoverPin != current, let index = group.members.firstIndex(of: current),
              let higher = group.members[..<index].first(where: snap.isUsable),
              let since = usableSince[higher] else { return [] }
        let due = since.adding(delay)
        guard now >= due else {
            wake(due)
            return []
        }
        let held = DurationText.format(now.duration(since: since))
        let reason = "\(higher) usable for \(held) (failback_delay \(DurationText.format(delay)))"
        return move(.failback, from: current, to: higher, reason: reason, rootCause: nil, snap: snap, at: now)
    }

    /// The highest-priority usable member not in `excluded`.
    func bestCandidate(in snap: Snapshot, excluding excluded: Set<String>) -> String? {
        group.members.first { !excluded.contains($0) && snap.isUsable($0) }
    }

    /// Makes an automatic move unless the cooldown defers it or the failover limit forbids it.
    mutating func move(_ kind: GroupEventKind, from: String, to: String, reason: String,
                               rootCause: String?, snap: Snapshot, at now: Date) -> [GroupEvent] {
        if let last = lastMoveAt {
            let cooldownEnd = last.adding(group.cooldown)
            if now < cooldownEnd {
                pending = PendingMove(kind: kind, from: from, to: to, notBefore: cooldownEnd,
                                      reason: "\(reason); deferred by cooldown \(DurationText.format(group.cooldown))")
                wake(cooldownEnd)
                return []
            }
        }
        let window = group.failoverWindow.seconds
        recentMoves.removeAll { now.timeIntervalSince($0) >= window }
        if recentMoves.count >= group.maxFailovers {
            let limit = "\(recentMoves.count) automatic moves within \(DurationText.format(group.failoverWindow)) "
                + "(max_failovers \(group.maxFailovers)); held until an operator releases the group"
            hold = GroupHold(cause: .failoverLimit, reason: limit, since: now)
            return [emit(.failoverSuppressed, from: from, to: to,
                         reason: "\(kind.rawValue) from \(from) to \(to) suppressed: \(limit); \(reason)",
                         rootCause: rootCause, snap: snap, at: now)]
        }
        recentMoves.append(now)
        lastMoveAt = now
        lastActive = from
        active = [to]
        switchoverPin = nil
        return [emit(kind, from: from, to: to, reason: reason, rootCause: rootCause, snap: snap, at: now)]
    }
}
