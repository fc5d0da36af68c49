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
            let failed = snap.hasFailed(current)
            let target = bestCandidate(in: snap, excluding: [current])
            // A failure may be the first of a round that cuts the agent off:
            // wait for the rest of the round, then decide from its states.
            if failed, let until = settleUntil, now < until {
                pending = PendingMove(kind: target == nil ? .groupDown : .failover, from: current, to: target ?? "",
                                      notBefore: until,
                                      reason: "\(snap.explain(current)); waiting for the rest of the probe round "
                                          + "(isolation settle \(DurationText.format(settle)))")
                wake(until)
                return []
            }
            let root = snap.rootCause(current)
            if let target {
                return move(.failover, from: current, to: target, because: snap.explain(current),
                            counted: failed, rootCause: root, snap: snap, at: now)
            }
            active = []
            lastActive = current
            switchoverPin = nil
            return [emit(.groupDown, from: current, service: current,
                         reason: noUsableMember(leaving: [current], in: snap),
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
        return move(.failback, from: current, to: higher, because: reason, counted: false, rootCause: nil,
                    snap: snap, at: now)
    }

    /// The highest-priority usable member not in `excluded`.
    func bestCandidate(in snap: Snapshot, excluding excluded: Set<String>) -> String? {
        group.members.first { !excluded.contains($0) && snap.isUsable($0) }
    }

    /// Makes an automatic move, within the anti-flap rules:
    /// - only a failover away from a failed member (`counted`) uses the
    ///   `max_failovers` budget; when the budget is spent it is suppressed and
    ///   the group held (an emergency: `active_down_while_held` follows);
    /// - a failback is elective: it waits for the cooldown, and while the
    ///   budget is spent it waits until a counted failover leaves the window;
    ///   it is never suppressed and never holds the group;
    /// - a failover is never delayed by the cooldown.
    mutating func move(_ kind: GroupEventKind, from: String, to: String, because cause: String, counted: Bool,
                       rootCause: String?, snap: Snapshot, at now: Date) -> [GroupEvent] {
        let window = group.failoverWindow.seconds
        recentMoves.removeAll { now.timeIntervalSince($0) >= window }
        let budgetSpent = recentMoves.count >= group.maxFailovers
        let limit = "\(recentMoves.count) failovers within \(DurationText.format(group.failoverWindow)) "
            + "(max_failovers \(group.maxFailovers))"
        if kind == .failback {
            var notBefore = lastMoveAt.map { $0.adding(group.cooldown) } ?? now
            var why = "deferred by cooldown \(DurationText.format(group.cooldown))"
            if budgetSpent, let oldest = recentMoves.min() {
                notBefore = max(notBefore, oldest.addingTimeInterval(window))
                why = "deferred: \(limit)"
            }
            if now < notBefore {
                pending = PendingMove(kind: kind, from: from, to: to, notBefore: notBefore, reason: "\(cause); \(why)")
                wake(notBefore)
                return []
            }
        } else if counted && budgetSpent {
            let held = "\(limit); held until an operator releases the group"
            hold = GroupHold(cause: .failoverLimit, reason: held, since: now)
            let suppressed = emit(.failoverSuppressed, from: from, service: from,
                                  reason: "\(cause); failover to \(to) not made: \(held)",
                                  rootCause: rootCause, snap: snap, at: now)
            return [suppressed] + heldEmergency(at: now)
        }
        if counted { recentMoves.append(now) }
        lastMoveAt = now
        lastActive = from
        active = [to]
        switchoverPin = nil
        let reason = kind == .failover ? "\(cause); chose \(to)" : cause
        return [emit(kind, from: from, to: to, service: kind == .failover ? from : to, reason: reason,
                     rootCause: rootCause, snap: snap, at: now)]
    }
}
