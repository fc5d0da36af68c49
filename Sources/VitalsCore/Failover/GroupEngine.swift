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
    public internal(set) var active: [String] = []
    /// The last member that was active before the group went down (active-passive).
    public internal(set) var lastActive: String?
    /// Set while an operator hold or the failover limit pauses the group.
    public internal(set) var hold: GroupHold?
    /// Set while the isolation guard believes the agent is cut off.
    public internal(set) var isolationReason: String?
    /// A move that is due but waits for the cooldown; nil otherwise.
    public internal(set) var pending: PendingMove?
    /// Times of the automatic moves (failovers and failbacks) counted toward
    /// `max_failovers`; older ones drop out when a move is next considered.
    public internal(set) var recentMoves: [Date] = []
    /// When the last automatic move was made; the cooldown counts from here.
    public internal(set) var lastMoveAt: Date?
    /// The member an operator switched over to, while it is still active:
    /// no automatic failback moves away from it.
    public internal(set) var switchoverPin: String?
    /// The id the next event gets.
    public internal(set) var nextEventID: UInt64 = 1
    /// When the caller should `tick` next: the end of a cooldown that defers a
    /// move, the moment a failback becomes due, or the end of the startup
    /// grace. Nil when nothing time-driven is waiting (always nil while paused).
    public internal(set) var nextWakeup: Date?
    /// True until the first choice of a fresh engine. A restored engine that
    /// had made its choice is never starting: it has an active member (and
    /// maybe a hold) from the moment it is created.
    public internal(set) var isStarting = true
    /// How long a decision caused by a member's failure waits for the rest
    /// of that probe round (`agent.isolation.settle`, set by the
    /// coordinator); zero acts at once. See "Settle" in the type's contract.
    public internal(set) var settle: Duration = .zero
    /// Until when decisions caused by failures wait (a failure or the end of
    /// an isolation within the last `settle`); nil when nothing waits.
    public internal(set) var settleUntil: Date?

    /// Restored with a recorded choice that is not yet checked against known states.
    var isResuming = false
    /// Whether `active_down_while_held` was reported for the current outage
    /// of the active member of a held group.
    var activeDownReported = false

    /// Whether the first choice was ever made (across restarts).
    var hasActivated = false
    var views: [String: ServiceView] = [:]
    /// Since when each member has been usable without a break.
    var usableSince: [String: Date] = [:]

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
        defer {
            if hasActivated {
                isStarting = false
                isResuming = true
            }
        }
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

    // MARK: Recording

    var snapshot: Snapshot { Snapshot(views: views, dependsOn: dependsOn) }

    /// Records the views without deciding (the coordinator decides after applying isolation).
    mutating func record(_ states: [String: ServiceView], at now: Date) {
        let old = views
        views = states
        let snap = snapshot
        for member in group.members {
            guard snap.isUsable(member) else {
                // A member that just failed: decisions it causes wait for the rest of the round.
                if usableSince[member] != nil, snap.hasFailed(member), settle > .zero {
                    settleUntil = max(settleUntil ?? now, now.adding(settle))
                }
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

    /// Down or flapping, or blocked by an ancestor that is: a failure, unlike
    /// `maintenance` or `unknown`, which are not usable but did not fail.
    func hasFailed(_ service: String) -> Bool {
        Dependencies.fails(state(service)) || rootCause(service) != nil
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
