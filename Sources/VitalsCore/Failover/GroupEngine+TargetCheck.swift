import Foundation

extension GroupEngine {
    // MARK: Target check

    /// Checks, right before the actions of `event` run, that its target is
    /// still usable in `states` (the views of that moment). When it is not,
    /// the engine chooses again from `states`, excluding the failed target,
    /// and returns the new decision ("web-2 no longer up, now down (timeout);
    /// chose web-3"), or cancels the move when the member traffic was to leave
    /// is still the best choice, or reports `group_down` when nothing is
    /// usable. A re-choice completes the original decision: it is not counted
    /// again, waits for no cooldown, and is made even while paused.
    /// Applies to active-passive `failover`, `failback`, `switchover`,
    /// `group_recovered` and `activated` events whose target is still the
    /// active member.
    public mutating func confirmTarget(of event: GroupEvent, states: [String: ServiceView],
                                       at now: Date) -> TargetCheck {
        guard event.group == group.name, isActivePassive, let target = event.to else { return .notApplicable }
        switch event.kind {
        case .failover, .failback, .switchover, .groupRecovered, .activated:
            break
        case .groupDown, .groupDegraded, .memberAdded, .memberRemoved, .failoverSuppressed, .isolated,
             .isolationEnded, .held, .released, .activeDownWhileHeld, .failoverWithheld:
            return .notApplicable
        }
        guard active.first == target else { return .superseded }
        let snap = Snapshot(views: states, dependsOn: dependsOn)
        if snap.isUsable(target) { return .confirmed }

        let why = "\(target) no longer up, now \(snap.condition(target))"
        let root = snap.rootCause(target)
        if switchoverPin == target { switchoverPin = nil }
        guard let next = bestCandidate(in: snap, excluding: [target]) else {
            active = []
            lastActive = event.from ?? target
            let down = emit(.groupDown, from: event.from, service: target, reason: "\(why); no usable member",
                            rootCause: root, snap: snap, at: now)
            return .replaced(by: [down])
        }
        active = [next]
        if next == event.from {
            return .cancelled(reason: "\(why); staying on \(next)")
        }
        let kind: GroupEventKind = event.from == nil ? event.kind : .failover
        let replacement = emit(kind, from: event.from, to: next, service: target, reason: "\(why); chose \(next)",
                               rootCause: root, snap: snap, at: now)
        return .replaced(by: [replacement])
    }
}
