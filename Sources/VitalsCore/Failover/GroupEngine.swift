import Foundation

/// The failover decisions of one group. Pure: every input carries its time,
/// and every decision comes back as a `GroupEvent` for the caller to journal
/// and act on. The engine never runs actions and never reads the clock.
///
/// **Inputs.** `update(states:at:)` with the view of *every* service (not only
/// the members: dependencies need their parents), `tick(at:)` at
/// `nextWakeup`, and the operator's `switchover`, `hold` and `release`. The
/// isolation guard's verdict arrives through `isolate` and `endIsolation`.
///
/// **Usable.** A member is usable when its state serves (`up` or `degraded`)
/// and no `depends_on` ancestor is down or flapping (see `Dependencies`).
/// `down`, `flapping`, `maintenance` and `unknown` (once the group has
/// started) are not usable. Every choice of member goes by priority (member
/// order) among usable members.
///
/// **Start.** Nothing is decided while members are still `unknown`, so
/// startup raises no storm; one event per group reports the first choice.
/// - Active-passive walks members in priority order: a known unusable member
///   is skipped, an `unknown` one is waited for, and the first usable one
///   becomes active with one `activated` event. When none is usable:
///   one `group_down`.
/// - Active-active waits until no member is `unknown`, then makes every usable
///   member active with one event: `activated` (at least `min_healthy`),
///   `group_degraded` (fewer) or `group_down` (none).
/// - A member that stays `unknown` (alternating results may never reach rise
///   or fall) is waited for at most `startupGrace` after `startedAt`; after
///   that it counts as unusable.
/// - Restored from `Persisted`, the engine keeps the recorded choice and emits
///   nothing while it still holds: a restored active member that is usable is
///   simply kept. Otherwise it waits as above (until no member is `unknown`
///   or the grace ends) and then applies the running rules to the recorded
///   choice, so only real changes produce events.
///
/// **Active-passive, running.**
/// - Active member not usable: the highest-priority usable member takes over
///   (`failover`, reason names why: "web-1 down (status 503); chose web-2").
///   With no usable member: `group_down`; the active member becomes nil and
///   `lastActive` keeps who had it.
/// - Group down and a member becomes usable: the highest-priority usable one
///   becomes active at once (`group_recovered`; not subject to cooldown).
/// - `failback: auto`: when a member of higher priority than the active one
///   has been usable for `failback_delay` without a break, it takes back over
///   (`failback`). The highest-priority usable member is the only candidate:
///   the engine does not step through intermediate backups. After an
///   operator's switchover no automatic failback happens while the chosen
///   member stays active. `manual`: the group stays until an operator switches
///   over.
/// - A degraded active member stays active: it still serves.
///
/// **Active-active, running.** Every usable member is active. Per update, one
/// `member_removed` per member that stopped being usable and one
/// `member_added` per member that became usable, then one level event when
/// the level changed: `group_down` (no usable member), `group_degraded`
/// (fewer than `min_healthy`, entered from above or from down),
/// `group_recovered` (at least `min_healthy` again). Dependency storms
/// collapse: the `member_removed` events of the members whose leaving empties
/// the group, and of members blocked by a failing parent when the level
/// changes, are folded into the level event, which names them and the root
/// cause. Cooldown and the failover limit do not apply (nothing fails over).
///
/// **Anti-flap (active-passive).** Failovers and failbacks are automatic
/// moves. A move due within `cooldown` of the last one is deferred
/// (`pending`, `nextWakeup` = end of cooldown) and re-evaluated then from the
/// states of that moment. A move that would be the `max_failovers + 1`th
/// within `window` is not made: `failover_suppressed`, and the group is held
/// until an operator releases it. Switchovers are neither deferred nor
/// counted, and `group_down` / `group_recovered` never wait.
///
/// **Paused.** While held (operator or failover limit) or isolated the engine
/// keeps recording states but decides nothing and emits nothing; the active
/// choice stays as it was. `release` and `endIsolation` re-evaluate at once.
public struct GroupEngine: Sendable {
    /// The part of the engine that survives a restart. Restoring it never
    /// repeats a decision that was already made.
    public struct Persisted: Sendable, Equatable, Codable {
        /// Active member(s) in member order; for active-passive at most one.
        public var active: [String]
        public var lastActive: String?
        /// Whether the group had made its first choice. False: start afresh.
        public var hasActivated: Bool
        public var hold: GroupHold?
        /// Times of automatic moves still inside the failover window.
        public var recentMoves: [Date]
        public var lastMoveAt: Date?
        /// The member an operator switched over to, while it is still active.
        public var switchoverPin: String?
        public var nextEventID: UInt64

        public init(active: [String], lastActive: String? = nil, hasActivated: Bool = true,
                    hold: GroupHold? = nil, recentMoves: [Date] = [], lastMoveAt: Date? = nil,
                    switchoverPin: String? = nil, nextEventID: UInt64 = 1) {
            self.active = active
            self.lastActive = lastActive
            self.hasActivated = hasActivated
            self.hold = hold
            self.recentMoves = recentMoves
            self.lastMoveAt = lastMoveAt
            self.switchoverPin = switchoverPin
            self.nextEventID = nextEventID
        }
    }

    public let group: GroupConfig
    /// `depends_on` of every service, by service name.
    public let dependsOn: [String: [String]]
    /// When the engine was created; the startup grace counts from here.
    public let startedAt: Date
    /// How long an `unknown` member is waited for at start. Default 30s.
    public let startupGrace: Duration

    /// The active member(s), in member order. Active-passive: at most one.
    public private(set) var active: [String] = []
    /// The last member that was active before the group went down (active-passive).
    public private(set) var lastActive: String?
    /// Set while an operator hold or the failover limit pauses the group.
    public private(set) var hold: GroupHold?
    /// Set while the isolation guard believes the agent is cut off.
    public private(set) var isolationReason: String?
    /// A move that is due but waits for the cooldown; nil otherwise.
    public private(set) var pending: PendingMove?
    /// Times of the automatic moves (failovers and failbacks) counted toward
    /// `max_failovers`; older ones drop out when a move is next considered.
    public private(set) var recentMoves: [Date] = []
    /// When the last automatic move was made; the cooldown counts from here.
    public private(set) var lastMoveAt: Date?
    /// The member an operator switched over to, while it is still active:
    /// no automatic failback moves away from it.
    public private(set) var switchoverPin: String?
    /// The id the next event gets.
    public private(set) var nextEventID: UInt64 = 1
    /// When the caller should `tick` next: the end of a cooldown that defers a
    /// move, the moment a failback becomes due, or the end of the startup
    /// grace. Nil when nothing time-driven is waiting (always nil while paused).
    public private(set) var nextWakeup: Date?
    /// True until the first choice (or, when restored, until the recorded
    /// choice has been checked against known states).
    public private(set) var isStarting = true

    /// Whether the first choice was ever made (across restarts).
    private var hasActivated = false
    private var views: [String: ServiceView] = [:]
    /// Since when each member has been usable without a break.
    private var usableSince: [String: Date] = [:]

    /// A fresh engine, or one restored from `persisted` (see the type's contract).
    public init(group: GroupConfig, dependsOn: [String: [String]] = [:], startedAt: Date,
                startupGrace: Duration = .seconds(30), restoring persisted: Persisted? = nil) {
        self.group = group
        self.dependsOn = dependsOn
        self.startedAt = startedAt
        self.startupGrace = startupGrace
        guard let persisted else { return }
        hold = persisted.hold
        recentMoves = persisted.recentMoves
        lastMoveAt = persisted.lastMoveAt
        nextEventID = max(1, persisted.nextEventID)
        lastActive = persisted.lastActive
        switch group.mode {
        case .activePassive:
            // A recorded member the config no longer lists cannot stay active: choose afresh.
            let kept = persisted.active.first.flatMap { group.members.contains($0) ? $0 : nil }
            active = kept.map { [$0] } ?? []
            hasActivated = persisted.hasActivated && (kept != nil || persisted.active.isEmpty)
            switchoverPin = persisted.switchoverPin == kept ? kept : nil
        case .activeActive:
            active = group.members.filter(persisted.active.contains)
            hasActivated = persisted.hasActivated
        }
    }

    /// What to save so a restart resumes here.
    public var persisted: Persisted {
        Persisted(active: active, lastActive: lastActive, hasActivated: hasActivated, hold: hold,
                  recentMoves: recentMoves, lastMoveAt: lastMoveAt, switchoverPin: switchoverPin,
                  nextEventID: nextEventID)
    }

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
            return snapshot.isUsable(member) ? .ok : .degraded
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

    // MARK: Inputs

    /// Records the view of every service at `now` and returns the decisions it causes.
    public mutating func update(states: [String: ServiceView], at now: Date) -> [GroupEvent] {
        record(states, at: now)
        return evaluate(at: now)
    }

    /// Lets time-driven rules act (cooldown ended, failback due, startup grace
    /// over) on the states last seen.
    public mutating func tick(at now: Date) -> [GroupEvent] {
        evaluate(at: now)
    }

    /// Pauses automatic decisions (Patroni's maintenance mode): one `held`
    /// event. Holding an already operator-held group only updates the reason;
    /// holding a group the failover limit holds turns it into an operator hold.
    public mutating func hold(reason: String, at now: Date) -> [GroupEvent] {
        let text = reason.isEmpty ? "held by operator" : reason
        if let current = hold, current.cause == .operatorRequest {
            hold?.reason = text
            return []
        }
        hold = GroupHold(cause: .operatorRequest, reason: text, since: now)
        pending = nil
        nextWakeup = nil
        return [emit(.held, reason: text, snap: snapshot, at: now)]
    }

    /// Resumes automatic decisions: one `released` event, then whatever the
    /// current states call for, decided at once. Releasing a hold set by the
    /// failover limit also forgets the counted moves (a fresh budget; the
    /// cooldown still counts from the last move). Not held: nothing.
    public mutating func release(at now: Date) -> [GroupEvent] {
        guard let old = hold else { return [] }
        hold = nil
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
    public mutating func endIsolation(reason: String, at now: Date) -> [GroupEvent] {
        guard isolationReason != nil else { return [] }
        isolationReason = nil
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
             .isolationEnded, .held, .released:
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
            let down = emit(.groupDown, from: event.from, reason: "\(why); no usable member",
                            rootCause: root, snap: snap, at: now)
            return .replaced(by: [down])
        }
        active = [next]
        if next == event.from {
            return .cancelled(reason: "\(why); staying on \(next)")
        }
        let kind: GroupEventKind = event.from == nil ? event.kind : .failover
        let replacement = emit(kind, from: event.from, to: next, reason: "\(why); chose \(next)",
                               rootCause: root, snap: snap, at: now)
        return .replaced(by: [replacement])
    }

    // MARK: Recording

    private var snapshot: Snapshot { Snapshot(views: views, dependsOn: dependsOn) }

    /// Records the views without deciding (the coordinator decides after applying isolation).
    mutating func record(_ states: [String: ServiceView], at now: Date) {
        let old = views
        views = states
        let snap = snapshot
        for member in group.members {
            guard snap.isUsable(member) else {
                usableSince[member] = nil
                continue
            }
            guard usableSince[member] == nil, let view = states[member] else { continue }
            // Serving before but blocked: usable from the moment the block cleared, which
            // is now. Otherwise usable since its own state changed.
            let wasServing = old[member]?.state.isServing ?? false
            usableSince[member] = wasServing ? now : min(view.since, now)
        }
    }

    // MARK: Deciding

    private enum Level {
        case down, degraded, healthy
    }

    private var minHealthy: Int {
        switch group.mode {
        case .activePassive: 1
        case .activeActive(let minHealthy): min(max(1, minHealthy), max(1, group.members.count))
        }
    }

    private func level(count: Int) -> Level {
        if count == 0 { return .down }
        return count < minHealthy ? .degraded : .healthy
    }

    private mutating func evaluate(at now: Date) -> [GroupEvent] {
        pending = nil
        nextWakeup = nil
        guard !isPaused else { return [] }
        let snap = snapshot
        if isStarting {
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

    private enum StartStep {
        /// Members are still unknown: decide nothing yet.
        case waiting
        /// The first choice was made.
        case decided([GroupEvent])
        /// A restored choice: apply the running rules to it.
        case resumed
    }

    private mutating func start(_ snap: Snapshot, at now: Date) -> StartStep {
        let graceEnd = startedAt.adding(startupGrace)
        let waitForUnknown = now < graceEnd
        let anyUnknown = group.members.contains { snap.state($0) == .unknown }

        if hasActivated {
            // Restored: a usable recorded choice stands without a word.
            if isActivePassive, let member = active.first, snap.isUsable(member) {
                isStarting = false
                return .resumed
            }
            if anyUnknown && waitForUnknown {
                wake(graceEnd)
                return .waiting
            }
            isStarting = false
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

    private mutating func finishStart() {
        isStarting = false
        hasActivated = true
    }

    // MARK: Active-passive

    private mutating func evaluateActivePassive(_ snap: Snapshot, failback: Failback, delay: Duration,
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
    private func bestCandidate(in snap: Snapshot, excluding excluded: Set<String>) -> String? {
        group.members.first { !excluded.contains($0) && snap.isUsable($0) }
    }

    /// Makes an automatic move unless the cooldown defers it or the failover limit forbids it.
    private mutating func move(_ kind: GroupEventKind, from: String, to: String, reason: String,
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

    // MARK: Active-active

    private mutating func evaluateActiveActive(_ snap: Snapshot, at now: Date) -> [GroupEvent] {
        let usable = group.members.filter(snap.isUsable)
        let removed = active.filter { !usable.contains($0) }
        let added = usable.filter { !active.contains($0) }
        guard !removed.isEmpty || !added.isEmpty else { return [] }

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
            events.append(emit(.memberRemoved, from: member, reason: snap.explain(member), rootCause: root,
                               snap: snap, at: now))
        }
        for member in added {
            events.append(emit(.memberAdded, to: member, reason: "\(member) \(snap.condition(member))",
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
            events.append(emit(.groupDown, from: from, reason: noUsableMember(leaving: removed, in: snap),
                               rootCause: root, extraEvidence: roots, snap: snap, at: now))
        case .degraded:
            let rootText = root.map { "root cause: \(snap.rootPhrase($0)); " } ?? ""
            events.append(emit(.groupDegraded, from: from, to: to,
                               reason: "\(rootText)\(count), below min_healthy \(minHealthy): \(detail)",
                               rootCause: root, extraEvidence: roots, snap: snap, at: now))
        case .healthy:
            events.append(emit(.groupRecovered, from: from, to: to,
                               reason: "\(count) (min_healthy \(minHealthy)): \(detail)",
                               snap: snap, at: now))
        }
        return events
    }

    // MARK: Wording

    /// The root cause shared by every member in `members`, when each is blocked (the first one's).
    private func commonRoot(of members: [String], in snap: Snapshot) -> String? {
        let roots = members.map(snap.rootCause)
        guard !roots.isEmpty, roots.allSatisfy({ $0 != nil }) else { return nil }
        return roots.first ?? nil
    }

    /// "root cause: db is down; no usable member: web-1 blocked by db, web-2 blocked by db".
    private func noUsableMember(leaving: [String], in snap: Snapshot) -> String {
        let members = group.members.map(snap.explainShort).joined(separator: ", ")
        let roots = Set(leaving.compactMap(snap.rootCause))
        guard !roots.isEmpty, leaving.allSatisfy({ snap.rootCause($0) != nil }) else {
            return "no usable member: \(members)"
        }
        let causes = roots.sorted().map(snap.rootPhrase).joined(separator: ", ")
        return "root cause: \(causes); no usable member: \(members)"
    }

    private mutating func wake(_ date: Date) {
        nextWakeup = min(nextWakeup ?? date, date)
    }

    private mutating func emit(_ kind: GroupEventKind, from: String? = nil, to: String? = nil, reason: String,
                               rootCause: String? = nil, extraEvidence: [String] = [],
                               snap: Snapshot, at now: Date) -> GroupEvent {
        var evidence: [String: HealthState] = [:]
        for service in group.members + extraEvidence + (rootCause.map { [$0] } ?? []) {
            evidence[service] = snap.state(service)
        }
        let event = GroupEvent(id: nextEventID, time: now, group: group.name, kind: kind, from: from, to: to,
                               reason: reason, rootCause: rootCause, evidence: evidence, active: active)
        nextEventID += 1
        return event
    }

    private static func stamp(_ date: Date) -> String {
        ISO8601DateFormatter().string(from: date)
    }
}

/// The service views of one moment, with the dependency rules applied.
/// Looks states up as asked: a group consults its members and their
/// ancestors only, so taking a snapshot costs nothing however many
/// services the agent watches.
struct Snapshot {
    let views: [String: ServiceView]
    let dependsOn: [String: [String]]

    init(views: [String: ServiceView], dependsOn: [String: [String]]) {
        self.views = views
        self.dependsOn = dependsOn
    }

    func state(_ service: String) -> HealthState { views[service]?.state ?? .unknown }

    func rootCause(_ service: String) -> String? {
        Dependencies.rootCause(of: service, states: views, dependsOn: dependsOn)
    }

    /// Serving, and no ancestor down or flapping.
    func isUsable(_ service: String) -> Bool {
        state(service).isServing && rootCause(service) == nil
    }

    /// "db is down".
    func rootPhrase(_ service: String) -> String {
        "\(service) is \(state(service).rawValue)"
    }

    /// "down (status 503)", "up", "blocked by db (root cause: db is down)";
    /// without `withRoot`, "blocked by db" (for lists that name the root cause once).
    func condition(_ service: String, withRoot: Bool = true) -> String {
        if let root = rootCause(service) {
            return withRoot ? "blocked by \(root) (root cause: \(rootPhrase(root)))" : "blocked by \(root)"
        }
        let reason = views[service]?.reason ?? ""
        let state = state(service).rawValue
        return reason.isEmpty ? state : "\(state) (\(reason))"
    }

    /// "web-1 down (status 503)", "web-1 blocked by db (root cause: db is down)".
    func explain(_ service: String) -> String {
        "\(service) \(condition(service))"
    }

    /// "web-1 down (status 503)", "web-1 blocked by db".
    func explainShort(_ service: String) -> String {
        "\(service) \(condition(service, withRoot: false))"
    }
}
