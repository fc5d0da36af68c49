import Foundation

extension GroupEngine {
    // MARK: Deciding

    enum Level {
        case down, degraded, healthy
    }

    var minHealthy: Int {
        switch group.mode {
        case .activePassive: 1
        case .activeActive(let minHealthy): min(max(1, minHealthy), max(1, group.members.count))
        }
    }

    func level(count: Int) -> Level {
        if count == 0 { return .down }
        return count < minHealthy ? .degraded : .healthy
    }

    mutating func evaluate(at now: Date) -> [GroupEvent] {
        pending = nil
        nextWakeup = nil
        if let until = settleUntil, now >= until { settleUntil = nil }
        guard !isPaused else { return heldEmergency(at: now) }
        let snap = snapshot
        if isStarting || isResuming {
            switch start(snap, at: now) {
            case .waiting: return []
            case .decided(let events): return events
            case .resumed: break
            }
        }
        switch group.mode {
        case .activePassive(let failback, let delay):
            return evaluateActivePassive(snap, failback: failback, delay: delay, at: now)
        case .activeActive:
            return evaluateActiveActive(snap, at: now)
        }
    }

    enum StartStep {
        /// Members are still unknown: decide nothing yet.
        case waiting
        /// The first choice was made.
        case decided([GroupEvent])
        /// A restored choice: apply the running rules to it.
        case resumed
    }

    mutating func start(_ snap: Snapshot, at now: Date) -> StartStep {
        let graceEnd = startedAt.adding(startupGrace)
        let waitForUnknown = now < graceEnd
        let anyUnknown = group.members.contains { snap.state($0) == .unknown }

        if hasActivated {
            // Restored: a usable recorded choice stands without a word.
            if isActivePassive, let member = active.first, snap.isUsable(member) {
                isResuming = false
                return .resumed
            }
            if anyUnknown && waitForUnknown {
                wake(graceEnd)
                return .waiting
            }
            isResuming = false
            return .resumed
        }

        switch group.mode {
        case .activePassive:
            for member in group.members {
                if snap.state(member) == .unknown && waitForUnknown {
                    wake(graceEnd)
                    return .waiting
                }
                if snap.isUsable(member) {
                    active = [member]
                    finishStart()
                    let reason = "first choice: \(member) is the highest-priority usable member (\(snap.condition(member)))"
                    return .decided([emit(.activated, to: member, reason: reason, snap: snap, at: now)])
                }
            }
            active = []
            finishStart()
            let reason = "no usable member at start: " + group.members.map(snap.explain).joined(separator: ", ")
            return .decided([emit(.groupDown, reason: reason, rootCause: commonRoot(of: group.members, in: snap),
                                  snap: snap, at: now)])
        case .activeActive:
            if anyUnknown && waitForUnknown {
                wake(graceEnd)
                return .waiting
            }
            let usable = group.members.filter(snap.isUsable)
            active = usable
            finishStart()
            let count = "\(usable.count) of \(group.members.count) members usable"
            let only = usable.count == 1 ? usable.first : nil
            switch level(count: usable.count) {
            case .healthy:
                let reason = "first choice: \(usable.joined(separator: ", ")) (\(count); min_healthy \(minHealthy))"
                return .decided([emit(.activated, to: only, reason: reason, snap: snap, at: now)])
            case .degraded:
                let out = group.members.filter { !usable.contains($0) }.map(snap.explain).joined(separator: ", ")
                let reason = "at start \(count), below min_healthy \(minHealthy): \(out)"
                return .decided([emit(.groupDegraded, to: only, reason: reason, snap: snap, at: now)])
            case .down:
                let reason = "no usable member at start: " + group.members.map(snap.explain).joined(separator: ", ")
                return .decided([emit(.groupDown, reason: reason, rootCause: commonRoot(of: group.members, in: snap),
                                      snap: snap, at: now)])
            }
        }
    }

    /// While held (not while isolated: then the agent, not the member, is
    /// the likely failure): one `active_down_while_held` per outage of the
    /// active member, so an operator hears that traffic stays on a failed
    /// member. Nothing moves.
    mutating func heldEmergency(at now: Date) -> [GroupEvent] {
        guard isActivePassive, let member = active.first else { return [] }
        let snap = snapshot
        guard snap.hasFailed(member) else {
            if snap.isUsable(member) { activeDownReported = false }
            return []
        }
        guard let hold, !isIsolated, !activeDownReported else { return [] }
        activeDownReported = true
        let reason = "\(snap.explain(member)) while the group is held (\(hold.reason)); "
            + "traffic stays on \(member) until an operator moves or releases the group"
        return [emit(.activeDownWhileHeld, from: member, service: member, reason: reason,
                     rootCause: snap.rootCause(member), snap: snap, at: now)]
    }

    mutating func finishStart() {
        isStarting = false
        hasActivated = true
    }
}
