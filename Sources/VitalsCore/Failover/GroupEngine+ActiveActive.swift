import Foundation

extension GroupEngine {
    // MARK: Active-active

    mutating func evaluateActiveActive(_ snap: Snapshot, at now: Date) -> [GroupEvent] {
        let usable = group.members.filter(snap.isUsable)
        let removed = active.filter { !usable.contains($0) }
        let added = usable.filter { !active.contains($0) }
        guard !removed.isEmpty || !added.isEmpty else { return [] }
        // A failure may be the first of a round that cuts the agent off: wait for the rest of it.
        if let until = settleUntil, now < until, removed.contains(where: snap.hasFailed) {
            wake(until)
            return []
        }

        let before = level(count: active.count)
        let after = level(count: usable.count)
        let levelChanged = before != after
        active = usable

        var events: [GroupEvent] = []
        var folded: [String] = []
        for member in removed {
            let root = snap.rootCause(member)
            if after == .down || (levelChanged && root != nil) {
                folded.append(member)
                continue
            }
            events.append(emit(.memberRemoved, from: member, service: member, reason: snap.explain(member), rootCause: root,
                               snap: snap, at: now))
        }
        for member in added {
            events.append(emit(.memberAdded, to: member, service: member, reason: "\(member) \(snap.condition(member))",
                               snap: snap, at: now))
        }
        guard levelChanged else { return events }

        let count = "\(usable.count) of \(group.members.count) members usable"
        let root = commonRoot(of: folded, in: snap)
        let roots = folded.compactMap(snap.rootCause)
        let from = removed.count == 1 ? removed.first : nil
        let to = added.count == 1 ? added.first : nil
        var changes: [String] = []
        if !removed.isEmpty { changes.append(removed.map(snap.explainShort).joined(separator: ", ")) }
        if !added.isEmpty { changes.append("back: " + added.joined(separator: ", ")) }
        let detail = changes.joined(separator: "; ")
        switch after {
        case .down:
            events.append(emit(.groupDown, from: from, service: from, reason: noUsableMember(leaving: removed, in: snap),
                               rootCause: root, extraEvidence: roots, snap: snap, at: now))
        case .degraded:
            let rootText = root.map { "root cause: \(snap.rootPhrase($0)); " } ?? ""
            events.append(emit(.groupDegraded, from: from, to: to, service: from ?? to,
                               reason: "\(rootText)\(count), below min_healthy \(minHealthy): \(detail)",
                               rootCause: root, extraEvidence: roots, snap: snap, at: now))
        case .healthy:
            events.append(emit(.groupRecovered, from: from, to: to, service: to ?? from,
                               reason: "\(count) (min_healthy \(minHealthy)): \(detail)",
                               snap: snap, at: now))
        }
        return events
    }
}
