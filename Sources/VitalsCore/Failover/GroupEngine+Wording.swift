import Foundation

extension GroupEngine {
    // MARK: Wording

    /// The root cause shared by every member in `members`, when each is blocked (the first one's).
    func commonRoot(of members: [String], in snap: Snapshot) -> String? {
        let roots = members.map(snap.rootCause)
        guard !roots.isEmpty, roots.allSatisfy({ $0 != nil }) else { return nil }
        return roots.first ?? nil
    }

    /// "root cause: db is down; no usable member: web-1 blocked by db, web-2 blocked by db".
    func noUsableMember(leaving: [String], in snap: Snapshot) -> String {
        let members = group.members.map(snap.explainShort).joined(separator: ", ")
        let roots = Set(leaving.compactMap(snap.rootCause))
        guard !roots.isEmpty, leaving.allSatisfy({ snap.rootCause($0) != nil }) else {
            return "no usable member: \(members)"
        }
        let causes = roots.sorted().map(snap.rootPhrase).joined(separator: ", ")
        return "root cause: \(causes); no usable member: \(members)"
    }

    mutating func wake(_ date: Date) {
        nextWakeup = min(nextWakeup ?? date, date)
    }

    mutating func emit(_ kind: GroupEventKind, from: String? = nil, to: String? = nil, service: String? = nil,
                       reason: String,
                               rootCause: String? = nil, extraEvidence: [String] = [],
                               snap: Snapshot, at now: Date) -> GroupEvent {
        var evidence: [String: HealthState] = [:]
        for service in group.members + extraEvidence + (rootCause.map { [$0] } ?? []) {
            evidence[service] = snap.state(service)
        }
        let event = GroupEvent(id: nextEventID, time: now, group: group.name, kind: kind, from: from, to: to,
                               service: service, reason: reason, rootCause: rootCause, evidence: evidence, active: active)
        nextEventID += 1
        return event
    }

    static func stamp(_ date: Date) -> String {
        ISO8601DateFormatter().string(from: date)
    }
}
