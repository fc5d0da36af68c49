import Foundation

/// What a pushed heartbeat reports.
public enum BeatKind: String, Sendable, Equatable, Codable, CaseIterable {
    /// The job finished well.
    case success
    /// The job began a run; it is expected to report success or fail later.
    case start
    /// The job reports that it failed.
    case fail
}

/// One ping as the agent received it, for `GET /v1/services/{name}`.
public struct BeatRecord: Sendable, Equatable {
    public var time: Date
    public var kind: BeatKind
    public var exitStatus: Int?
    /// As the job reported it.
    public var duration: Duration?
    /// The tail of what the ping carried.
    public var body: PingBody?

    public init(time: Date, kind: BeatKind, exitStatus: Int? = nil, duration: Duration? = nil, body: PingBody? = nil) {
        self.time = time
        self.kind = kind
        self.exitStatus = exitStatus
        self.duration = duration
        self.body = body
    }
}

/// The health of one `heartbeat` service: the service pushes beats; a run
/// overdue by its period makes it late (`degraded`), and a missed deadline
/// marks it down. Pure: every input carries its own time.
///
/// Rules:
///
/// - **Late.** Once `now > (lastBeat ?? startedAt) + every` (the period has
///   passed without a completed run) but the deadline has not, a `tick`
///   makes an `up` service `degraded` with rule "late": "late: no heartbeat
///   for 1d5m (due every 1d; down after 30m more)", the last part naming the
///   grace. So does an `unknown` one with a last beat (restored after a
///   restart); one with no beat yet stays `unknown` until the deadline, and a
///   `down` one (a failed run) stays down. Lateness is no failure: the counts
///   do not move, and a degraded service still serves, so a group does not
///   fail over on it. With `grace: 0` there is no late phase.
/// - **Deadline.** `deadline = (lastBeat ?? startedAt) + every + grace`, where
///   `lastBeat` is the last completed run reported (a success or a fail beat;
///   a start beat does not move it). A `tick` later than the deadline makes
///   the service `down`: "no heartbeat for 1m12s", or "no heartbeat since
///   start (1m12s)" when none has arrived since tracking began.
/// - **Success** makes the service `up` at once: a heartbeat is itself the
///   proof of life, so there is no `rise`.
/// - **Fail** makes it `down` at once: "job reported failure (exit 2, after
///   12s)". A success beat with a non-zero exit status counts as a fail
///   (as a wrapper script reporting `$?` would mean it).
/// - **Start** records `runningSince` and changes no state; the run's duration
///   is taken from it when the finishing beat brings none.
/// - **Unknown** until the first success or fail beat, or the first missed
///   deadline. After a restart, the last beat and the state recorded with it
///   are restored (`restoring:`): the service is what it was, and its
///   deadline continues from the recorded beat.
/// - **Maintenance** works as in `HealthTracker`: beats and deadlines are
///   still decided underneath, and turning it off reports what they imply.
///
/// - **Schedule.** With `schedule:` instead of `every:`, a run is due at the
///   first scheduled time after the last ping of any kind (a start counts: the
///   run began), and `deadline = due + grace`. There is no late phase: the
///   grace is how late a scheduled run may ping, and past the deadline the
///   service is `down`, rule `heartbeat deadline`: "late: no ping for the run
///   scheduled at 2026-12-02 03:00 Europe/Berlin (grace 30m)". A ping up to a
///   minute early (never more than the grace) counts for the coming run, so
///   clocks a little apart do not miss it.
/// - **Max runtime.** With `max_runtime`, a run that sent `start` and has not
///   finished within it makes the service `down`, rule `max_runtime`:
///   "running for 2h3m, more than max_runtime 2h". Its finishing beat decides
///   as usual.
///
/// Heartbeats have no flapping detection: a job that alternates success and
/// failure is reported as it goes.
public struct HeartbeatTracker: Sendable {
    public let service: String
    public private(set) var check: HeartbeatCheck
    /// When tracking began; with no beat yet, the first deadline counts from here.
    public let startedAt: Date

    public private(set) var state: HealthState = .unknown
    /// When `state` last changed (or `startedAt`).
    public private(set) var since: Date
    /// Why the service is in `state`.
    public private(set) var reason: String
    /// Which rule decided `state`: "heartbeat", "failure report", "late", "heartbeat deadline", "maintenance".
    public private(set) var decidingRule: String
    /// The last completed run reported (success or fail). Persist it across restarts.
    public private(set) var lastBeat: Date?
    /// When the job reported `start` for a run that has not finished yet.
    public private(set) var runningSince: Date?
    /// The last ping of any kind (start included); a schedule counts from it.
    public private(set) var lastPing: Date?
    /// The exit status of the last completed run, when it was reported.
    public private(set) var lastExitStatus: Int?
    /// How long the last completed run took: as reported, or from its start beat.
    public private(set) var lastDuration: Duration?
    /// Success beats in a row.
    public private(set) var consecutiveSuccesses = 0
    /// Fail beats and missed deadlines in a row.
    public private(set) var consecutiveFailures = 0
    /// The last `recentBeatCapacity` pings, oldest first, with their bodies.
    /// Kept in memory only: a restart begins an empty list.
    public private(set) var recentBeats: [BeatRecord] = []
    /// How many pings `recentBeats` keeps: 5.
    public static let recentBeatCapacity = 5

    /// The time after which a `tick` marks the service late if no run
    /// completes; with a schedule, the scheduled time of the next expected run.
    public var due: Date {
        switch check.runs {
        case .every(let period):
            return (lastBeat ?? startedAt).adding(period)
        case .schedule:
            return scheduledDue ?? .distantFuture
        }
    }

    /// The start of the run whose overrun was reported, so it is reported once.
    private var reportedOverrun: Date?

    /// For a schedule, the next expected run (kept, as it changes only with a ping or a reload).
    private var scheduledDue: Date?

    private mutating func rescheduled() {
        guard case .schedule(let schedule, let zone) = check.runs else {
            scheduledDue = nil
            return
        }
        let reference = lastPing ?? lastBeat ?? startedAt
        let early = min(check.grace, .seconds(60))
        scheduledDue = schedule.next(after: reference.adding(early), in: zone)
    }

    /// When a started run is over `max_runtime`; nil when none is running or there is no bound.
    public var runtimeLimit: Date? {
        guard let runningSince, let maxRuntime = check.maxRuntime else { return nil }
        return runningSince.adding(maxRuntime)
    }

    /// The time after which a `tick` marks the service down if no run completes.
    public var deadline: Date {
        due.adding(check.grace)
    }

    /// The state the beats imply, beneath any `maintenance`.
    public var underlyingState: HealthState { underlying.state }
    public var isInMaintenance: Bool { inMaintenance }

    private struct Verdict: Sendable {
        var state: HealthState
        var reason: String
        var rule: String
    }

    private var underlying: Verdict
    private var inMaintenance = false

    /// - Parameters:
    ///   - restoring: the state recorded before a restart, with the
    ///     last beat; ignored without a last beat, or when it is `unknown`.
    ///   - runningSince: the start of a run still going before a restart; it
    ///     is the last ping, and `max_runtime` counts from it.
    public init(service: String, check: HeartbeatCheck, startedAt: Date, lastBeat: Date? = nil,
                restoring restored: ServiceView? = nil, runningSince: Date? = nil) {
        self.service = service
        self.check = check
        self.startedAt = startedAt
        self.lastBeat = lastBeat
        underlying = Verdict(state: .unknown, reason: "no heartbeat yet", rule: "awaiting first heartbeat")
        since = startedAt
        if lastBeat != nil, let restored, [.up, .degraded, .down].contains(restored.state) {
            underlying = Verdict(state: restored.state, reason: restored.reason, rule: "restored after a restart")
            since = restored.since
            switch restored.state {
            case .up, .degraded: consecutiveSuccesses = 1
            case .down: consecutiveFailures = 1
            case .unknown, .maintenance, .flapping: break
            }
        }
        state = underlying.state
        reason = underlying.reason
        decidingRule = underlying.rule
        if let runningSince, runningSince > (lastBeat ?? .distantPast) {
            self.runningSince = runningSince
            lastPing = runningSince
        }
        rescheduled()
    }

    // MARK: Inputs

    /// Takes a new `every`/`grace` (a reload) and keeps the last beat and
    /// the state: the deadline moves with the new rule.
    public mutating func recheck(_ check: HeartbeatCheck) {
        self.check = check
        rescheduled()
    }

    /// Records one pushed beat at `now`. `duration` and `exitStatus` are as
    /// the job reported them (finishing beats only).
    public mutating func beat(_ kind: BeatKind, at now: Date, duration: Duration? = nil,
                              exitStatus: Int? = nil, body: PingBody? = nil) -> HealthTransition? {
        let failed: Bool
        lastPing = now
        recentBeats.append(BeatRecord(time: now, kind: kind, exitStatus: exitStatus, duration: duration, body: body))
        if recentBeats.count > Self.recentBeatCapacity { recentBeats.removeFirst(recentBeats.count - Self.recentBeatCapacity) }
        defer { rescheduled() }
        switch kind {
        case .start:
            runningSince = now
            return nil
        case .success:
            failed = (exitStatus ?? 0) != 0
        case .fail:
            failed = true
        }

        let took = duration ?? runningSince.map { now.duration(since: $0) }
        runningSince = nil
        lastBeat = now
        lastExitStatus = exitStatus
        lastDuration = took

        if failed {
            consecutiveFailures += 1
            consecutiveSuccesses = 0
            var details: [String] = []
            if let exitStatus { details.append("exit \(exitStatus)") }
            if let took { details.append("after \(DurationText.format(took))") }
            let why = details.isEmpty ? "job reported failure"
                : "job reported failure (\(details.joined(separator: ", ")))"
            return decide(Verdict(state: .down, reason: why, rule: "failure report"), at: now)
        }
        consecutiveSuccesses += 1
        consecutiveFailures = 0
        let why = took.map { "job succeeded in \(DurationText.format($0))" } ?? "heartbeat received"
        return decide(Verdict(state: .up, reason: why, rule: "heartbeat"), at: now)
    }

    /// Marks the service late (`degraded`) once `now` is past `due`, and down
    /// once it is past `deadline`. Returns nil when neither has passed or the
    /// service already is what they imply.
    public mutating func tick(at now: Date) -> HealthTransition? {
        if let overrun = overrun(at: now) { return overrun }
        guard now > deadline else {
            guard now > due, case .every = check.runs else { return nil }
            return late(at: now)
        }
        switch underlying.state {
        case .down:
            return nil
        case .unknown, .up, .degraded, .maintenance, .flapping:
            break
        }
        consecutiveFailures += 1
        consecutiveSuccesses = 0
        let why: String
        if case .schedule(_, let zone) = check.runs {
            why = "late: no ping for the run scheduled at \(CronSchedule.wallClock(due, in: zone)) \(zone.identifier) "
                + "(grace \(DurationText.format(check.grace)))"
        } else if let lastBeat {
            why = "no heartbeat for \(DurationText.format(now.duration(since: lastBeat)))"
        } else {
            why = "no heartbeat since start (\(DurationText.format(now.duration(since: startedAt))))"
        }
        return decide(Verdict(state: .down, reason: why, rule: ServiceTrigger.missedRule), at: now)
    }

    /// Down once a started run has been running longer than `max_runtime`; said once per run.
    private mutating func overrun(at now: Date) -> HealthTransition? {
        guard let limit = runtimeLimit, let runningSince, let maxRuntime = check.maxRuntime, now > limit,
              reportedOverrun != runningSince else { return nil }
        reportedOverrun = runningSince
        consecutiveFailures += 1
        consecutiveSuccesses = 0
        let why = "running for \(DurationText.format(now.duration(since: runningSince))), "
            + "more than max_runtime \(DurationText.format(maxRuntime))"
        return decide(Verdict(state: .down, reason: why, rule: ServiceTrigger.maxRuntimeRule), at: now)
    }

    /// Within the grace: `degraded`, for a service that was `up` (or is
    /// `unknown` with a last beat, after a restart).
    private mutating func late(at now: Date) -> HealthTransition? {
        guard let lastBeat else { return nil }
        switch underlying.state {
        case .up, .unknown:
            break
        case .degraded, .down, .maintenance, .flapping:
            return nil
        }
        // A copy of `runs`, switched on here: reading `check.every` in this
        // function crashes Swift 6.3's optimizer (release builds, "Found
        // outside of lifetime use?!" in the ownership verifier).
        let runs = check.runs
        let every: String
        switch runs {
        case .every(let period): every = DurationText.format(period)
        case .schedule: every = ""
        }
        let why = "late: no heartbeat for \(DurationText.format(now.duration(since: lastBeat))) "
            + "(due every \(every); down after \(DurationText.format(check.grace)) more)"
        return decide(Verdict(state: .degraded, reason: why, rule: ServiceTrigger.lateRule), at: now)
    }

    /// When the next ping is due and why, in one sentence (for `explain`).
    public var dueExplanation: String {
        var text: String
        switch check.runs {
        case .every(let period):
            let from = lastBeat.map { "the last completed run at \(ISOTime.format($0))" }
                ?? "tracking began at \(ISOTime.format(startedAt))"
            text = "next run due by \(ISOTime.format(due)): every \(DurationText.format(period)) after \(from)"
            if check.grace > .zero {
                text += "; late after that, down after \(ISOTime.format(deadline)) (grace \(DurationText.format(check.grace)))"
            } else {
                text += "; down after that"
            }
        case .schedule(let schedule, let zone):
            func local(_ date: Date, seconds: Bool = false) -> String {
                CronSchedule.wallClock(date, in: zone, seconds: seconds) + " " + zone.identifier
            }
            let from = (lastPing ?? lastBeat).map { "the last ping at \(local($0, seconds: true))" }
                ?? "tracking began at \(local(startedAt, seconds: true))"
            if scheduledDue == nil {
                text = "no run of \(schedule.text) is ever due after \(from)"
            } else {
                text = "next run scheduled at \(local(due)) (\(schedule.text)), the first after \(from); "
                    + "down if no ping by \(local(deadline)) (grace \(DurationText.format(check.grace)))"
            }
        }
        if let runningSince, let limit = runtimeLimit, let maxRuntime = check.maxRuntime {
            text += "; running since \(ISOTime.format(runningSince)): down if not finished by "
                + "\(ISOTime.format(limit)) (max_runtime \(DurationText.format(maxRuntime)))"
        } else if let runningSince {
            text += "; running since \(ISOTime.format(runningSince))"
        }
        return text
    }

    /// Puts the service in or out of maintenance, as `HealthTracker.setMaintenance` does.
    public mutating func setMaintenance(_ on: Bool, reason: String, at now: Date) -> HealthTransition? {
        let operatorReason = reason.isEmpty ? "maintenance" : reason
        switch (inMaintenance, on) {
        case (true, true):
            self.reason = operatorReason
            return nil
        case (false, false):
            return nil
        case (false, true):
            inMaintenance = true
            return publish(.maintenance, reason: operatorReason, rule: "maintenance", at: now)
        case (true, false):
            inMaintenance = false
            return publish(underlying.state, reason: "maintenance ended; \(underlying.reason)",
                           rule: underlying.rule, at: now)
        }
    }

    // MARK: Rules

    /// Adopts a new underlying verdict and reports it unless maintenance hides it.
    /// A verdict for the state the service is already in returns nil but
    /// refreshes the reason: each beat is a complete fact, so the latest one
    /// ("job reported failure (exit 3)" after "exit 2") is the better explanation.
    private mutating func decide(_ verdict: Verdict, at now: Date) -> HealthTransition? {
        let changed = verdict.state != underlying.state
        underlying = verdict
        if inMaintenance { return nil }
        guard changed else {
            reason = verdict.reason
            decidingRule = verdict.rule
            return nil
        }
        return publish(verdict.state, reason: verdict.reason, rule: verdict.rule, at: now)
    }

    private mutating func publish(_ next: HealthState, reason: String, rule: String, at now: Date) -> HealthTransition? {
        guard next != state else { return nil }
        let transition = HealthTransition(service: service, from: state, to: next, at: now, reason: reason,
                                          rule: rule, consecutiveSuccesses: consecutiveSuccesses,
                                          consecutiveFailures: consecutiveFailures)
        state = next
        since = now
        self.reason = reason
        decidingRule = rule
        return transition
    }
}
