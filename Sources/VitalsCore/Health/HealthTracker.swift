import Foundation

/// How soon the scheduler should probe a service again.
public enum ProbeDelayHint: String, Sendable, Equatable, Codable {
    /// The state is settled: probe after `interval`.
    case normal
    /// A state change is being confirmed: probe after `fastInterval`
    /// (HAProxy's fastinter), so the change is decided sooner.
    case fast
}

/// The health of one probed service: turns raw `ProbeResult`s into a
/// `HealthState` with hysteresis. Pure: every input carries its own time, and
/// every change comes back as a `HealthTransition` for the caller to act on.
///
/// Rules, in the order they apply:
///
/// - **Counting.** A success (`ok` or `degraded`) adds to
///   `consecutiveSuccesses` and zeroes `consecutiveFailures`; a failure does
///   the reverse. An `unknown` result (the check could not tell, a Nagios
///   plugin's exit 3) adds to `consecutiveUnknowns` only: it counts toward
///   neither rise, fall nor the fall window, and breaks neither streak, so
///   `--?-` is three failures in a row.
/// - **Start period.** Failures whose time is before `startedAt + startPeriod`
///   are ignored: they zero `consecutiveSuccesses` (a streak is a streak) but do
///   not count toward `fall` nor `fall_window`. Successes count toward `rise`
///   as usual. Like a Kubernetes startup probe, the period also ends early the
///   first time the service rises to up or degraded.
/// - **Rise.** From `unknown` or `down`, `rise` consecutive successes make the
///   service `up`, or `degraded` when the latest of them was degraded.
/// - **Fall.** From `unknown`, `up` or `degraded`, `fall` consecutive failures
///   make it `down`. The first decision out of `unknown` also needs the full
///   `rise` or `fall`: one early result says too little, and a service that
///   answers once while starting is not yet up.
/// - **Fall window.** With `fall_window: {failures: F, probes: P}`, a failure
///   that leaves at least F failures among the last P counted results also
///   makes the service `down` (catches 1-0-1-0-1, which never reaches `fall`).
///   The window restarts each time the service rises, so the failures that
///   took it down are not counted again right after it comes back.
/// - **Soft conditions.** While serving (`up` or `degraded`), each success
///   switches between `up` and `degraded` at once by its outcome: both states
///   serve traffic, so there is nothing to confirm, and the operator sees the
///   soft reason as soon as it appears.
/// - **Unknown.** `fall` consecutive unknown results make the service
///   `unknown` with the check's reason (rule `unknown 3/3`): its probe has
///   stopped telling, so the last state it told is no longer evidence. The
///   success and failure streaks and the fall window start afresh, and the
///   service leaves `unknown` by the usual rise or fall. A service that is
///   already `unknown` stays so, and takes the check's reason.
/// - **Flapping.** More than `flapping.changes` changes among up, degraded and
///   down within `flapping.window` (changes into or out of `unknown` do not
///   count) report `flapping`. The tracker keeps deciding underneath; once
///   the underlying state has held still for `flapping.settle` (checked on
///   `record` and on `tick`), it reports that state again and the change count
///   starts afresh. `changes == 0` disables detection.
/// - **Maintenance.** While on, results are still counted and decided
///   underneath, but the reported state stays `maintenance` and no flapping is
///   detected. When turned off, the tracker reports the state those results
///   imply under the usual rules (possibly `unknown`), rather than starting
///   over: the probes kept running, so their evidence is as good as ever.
///
/// Times are compared as given; results are expected in time order.
public struct HealthTracker: Sendable {
    /// How many results `recentResults` keeps for the explain view.
    public static let recentCapacity = 20

    public let service: String
    public private(set) var timing: ProbeTiming
    /// When tracking began; the start period counts from here.
    public let startedAt: Date

    /// The state operators and the group engine see.
    public private(set) var state: HealthState = .unknown
    /// When `state` last changed (or `startedAt`).
    public private(set) var since: Date
    /// Why the service is in `state`: the reason carried by the last transition.
    public private(set) var reason: String
    /// Which rule decided `state`: "rise 2/2", "fall 3/3", "fall_window 3 of 5",
    /// "flapping: 6 changes in 2m", "maintenance", ...
    public private(set) var decidingRule: String
    public private(set) var consecutiveSuccesses = 0
    public private(set) var consecutiveFailures = 0
    /// Unknown results in a row; any other result zeroes it.
    public private(set) var consecutiveUnknowns = 0

    /// The newest result recorded.
    public var lastResult: ProbeResult? { recent.last }
    /// Up to the last `recentCapacity` results, oldest first.
    public var recentResults: [ProbeResult] { recent.elements }
    /// The state the counts imply, beneath any `flapping` or `maintenance`.
    public var underlyingState: HealthState { underlying.state }
    /// Whether an operator has put the service in maintenance.
    public var isInMaintenance: Bool {
        switch overlay {
        case .maintenance: true
        case .tracking, .flapping: false
        }
    }

    /// `.fast` while a change is being confirmed: the state is up or degraded
    /// and at least one failure has counted since the last success, or the
    /// state is down or unknown and at least one result (a success, or for
    /// unknown also a failure) points the other way but is not yet enough, or
    /// the state is up, degraded or down and unknown results are adding up.
    /// `.normal` otherwise, and always while in maintenance or flapping (no
    /// decision is waiting on the next probe there).
    public var nextProbeDelayHint: ProbeDelayHint {
        switch overlay {
        case .maintenance, .flapping:
            return .normal
        case .tracking:
            break
        }
        switch underlying.state {
        case .up, .degraded:
            return consecutiveFailures > 0 || consecutiveUnknowns > 0 ? .fast : .normal
        case .down:
            return consecutiveSuccesses > 0 || consecutiveUnknowns > 0 ? .fast : .normal
        case .unknown:
            return consecutiveSuccesses > 0 || consecutiveFailures > 0 ? .fast : .normal
        case .maintenance, .flapping:
            return .normal // never underlying states
        }
    }

    /// The delay to wait before the next probe, by `nextProbeDelayHint`.
    public var nextProbeDelay: Duration {
        switch nextProbeDelayHint {
        case .normal: timing.interval
        case .fast: timing.effectiveFastInterval
        }
    }

    /// What the counts decided, before flapping or maintenance are laid over it.
    private struct Verdict: Sendable {
        var state: HealthState
        var since: Date
        var reason: String
        var rule: String
    }

    private enum Overlay: Sendable {
        case tracking
        case flapping
        case maintenance
    }

    private var underlying: Verdict
    private var overlay: Overlay = .tracking
    private var recent = RingBuffer<ProbeResult>(capacity: HealthTracker.recentCapacity)
    /// Counted results since the last rise, `true` for a failure. Empty without a fall window.
    private var window: RingBuffer<Bool>
    /// Times of counted state changes within the flapping window.
    private var changeTimes: [Date] = []
    /// Set when the service first rises, ending the start period early.
    private var hasRisen = false

    public init(service: String, timing: ProbeTiming, startedAt: Date) {
        self.service = service
        self.timing = timing
        self.startedAt = startedAt
        let waiting = "awaiting rise \(max(1, timing.rise)) or fall \(max(1, timing.fall))"
        underlying = Verdict(state: .unknown, since: startedAt, reason: "not probed yet", rule: waiting)
        since = startedAt
        reason = underlying.reason
        decidingRule = waiting
        window = RingBuffer(capacity: Self.validWindow(timing.fallWindow)?.probes ?? 0)
    }

    // MARK: Inputs

    /// Takes new timing rules (a reload that changed `rise`, `fall`, an
    /// interval, ...) and keeps the state, counters and recent results: the
    /// next decision applies the new rules to the evidence so far.
    public mutating func retime(_ timing: ProbeTiming) {
        self.timing = timing
    }

    /// Records one probe result at `result.time` and returns the change of
    /// reported state it causes, if any.
    public mutating func record(_ result: ProbeResult) -> HealthTransition? {
        let now = result.time
        recent.append(result)

        var countedFailure = false
        switch result.outcome {
        case .ok, .degraded:
            consecutiveUnknowns = 0
            consecutiveSuccesses += 1
            consecutiveFailures = 0
            window.append(false)
        case .unknown:
            consecutiveUnknowns += 1 // counts toward nothing else; see the type's contract
        case .failed:
            consecutiveUnknowns = 0
            consecutiveSuccesses = 0
            if isInStartPeriod(at: now) {
                break // startup failures say nothing yet; see the type's contract
            }
            consecutiveFailures += 1
            window.append(true)
            countedFailure = true
        }

        let previous = underlying.state
        let decided = decide(after: result, countedFailure: countedFailure)
        if let decided {
            underlying = decided
        }
        if underlying.state != previous {
            return underlyingChanged(from: previous, at: now)
        }
        if decided != nil, state == .unknown {
            // Still unknown, now for the check's own reason: no change to report.
            reason = underlying.reason
            decidingRule = underlying.rule
        }
        return settleIfDue(at: now)
    }

    /// Lets time-driven rules act: a flapping service whose underlying state
    /// has held still for `flapping.settle` reports that state again.
    public mutating func tick(at now: Date) -> HealthTransition? {
        settleIfDue(at: now)
    }

    /// Puts the service in or out of maintenance. Turning it on reports
    /// `maintenance` with the operator's reason; turning it off reports the
    /// state the recorded results imply. Repeating the current setting returns
    /// nil (turning it on again only updates the reason).
    public mutating func setMaintenance(_ on: Bool, reason: String, at now: Date) -> HealthTransition? {
        let operatorReason = reason.isEmpty ? "maintenance" : reason
        switch (overlay, on) {
        case (.maintenance, true):
            self.reason = operatorReason
            return nil
        case (.tracking, false), (.flapping, false):
            return nil
        case (.tracking, true), (.flapping, true):
            overlay = .maintenance
            // Changes an operator causes during maintenance are not flapping.
            changeTimes.removeAll()
            return publish(.maintenance, reason: operatorReason, rule: "maintenance", at: now)
        case (.maintenance, false):
            overlay = .tracking
            return publish(underlying.state, reason: "maintenance ended; \(underlying.reason)",
                           rule: underlying.rule, at: now)
        }
    }

    // MARK: Rules

    private var rise: Int { max(1, timing.rise) }
    private var fall: Int { max(1, timing.fall) }

    /// A fall window that can ever fire and never fires on nothing.
    private static func validWindow(_ window: FallWindow?) -> FallWindow? {
        guard let window, window.failures >= 1, window.probes >= 1 else { return nil }
        return window
    }

    private func isInStartPeriod(at now: Date) -> Bool {
        !hasRisen && now < startedAt.adding(timing.startPeriod)
    }

    /// The serving state a success implies.
    private static func servingState(for outcome: ProbeOutcome) -> HealthState? {
        switch outcome {
        case .ok: .up
        case .degraded: .degraded
        case .failed, .unknown: nil
        }
    }

    private static func softReason(_ result: ProbeResult) -> String {
        result.reason.isEmpty ? "degraded" : result.reason
    }

    /// The new underlying verdict after `result`, or nil when it stands.
    private mutating func decide(after result: ProbeResult, countedFailure: Bool) -> Verdict? {
        let now = result.time
        if result.outcome == .unknown {
            return decideUnknown(after: result)
        }
        if let target = Self.servingState(for: result.outcome) {
            switch underlying.state {
            case .up, .degraded:
                guard target != underlying.state else { return nil }
                if target == .degraded {
                    return Verdict(state: .degraded, since: now, reason: Self.softReason(result),
                                   rule: "latest result degraded")
                }
                return Verdict(state: .up, since: now, reason: "soft condition cleared",
                               rule: "latest result ok")
            case .unknown, .down:
                guard consecutiveSuccesses >= rise else { return nil }
                hasRisen = true
                window.removeAll()
                let counted = "\(consecutiveSuccesses) consecutive successes"
                let why = target == .degraded ? "\(Self.softReason(result)) (\(counted))" : counted
                return Verdict(state: target, since: now, reason: why, rule: "rise \(rise)/\(rise)")
            case .maintenance, .flapping:
                return nil // overlays, never underlying
            }
        }

        guard countedFailure else { return nil }
        switch underlying.state {
        case .down, .maintenance, .flapping:
            return nil
        case .unknown, .up, .degraded:
            let why = result.reason.isEmpty ? "probe failed" : result.reason
            if consecutiveFailures >= fall {
                return Verdict(state: .down, since: now, reason: why, rule: "fall \(fall)/\(fall)")
            }
            if let policy = Self.validWindow(timing.fallWindow) {
                let failed = window.elements.filter { $0 }.count
                if failed >= policy.failures {
                    return Verdict(state: .down, since: now, reason: why,
                                   rule: "fall_window \(failed) of \(policy.probes)")
                }
            }
            return nil
        }
    }

    /// After an unknown result: `unknown` once `fall` of them are in a row.
    private mutating func decideUnknown(after result: ProbeResult) -> Verdict? {
        guard consecutiveUnknowns >= fall else { return nil }
        let why = result.reason.isEmpty ? "probe result unknown" : result.reason
        let rule = "unknown \(fall)/\(fall)"
        switch underlying.state {
        case .unknown:
            guard why != underlying.reason || rule != underlying.rule else { return nil }
            return Verdict(state: .unknown, since: underlying.since, reason: why, rule: rule)
        case .up, .degraded, .down:
            // What was counted before the probe stopped telling says nothing of now.
            consecutiveSuccesses = 0
            consecutiveFailures = 0
            window.removeAll()
            return Verdict(state: .unknown, since: result.time, reason: why, rule: rule)
        case .maintenance, .flapping:
            return nil // overlays, never underlying
        }
    }

    /// Reports a change of the underlying state, unless an overlay hides it.
    private mutating func underlyingChanged(from previous: HealthState, at now: Date) -> HealthTransition? {
        switch overlay {
        case .maintenance:
            return nil
        case .flapping:
            // The settle clock restarts with the change (underlying.since is now).
            return nil
        case .tracking:
            break
        }
        let policy = timing.flapping
        if policy.changes > 0, previous != .unknown, underlying.state != .unknown {
            changeTimes.append(now)
            changeTimes.removeAll { now.timeIntervalSince($0) > policy.window.seconds }
            if changeTimes.count > policy.changes {
                overlay = .flapping
                let text = "\(changeTimes.count) state changes in \(DurationText.format(policy.window))"
                return publish(.flapping, reason: text,
                               rule: "flapping: \(changeTimes.count) changes in \(DurationText.format(policy.window))",
                               at: now)
            }
        }
        return publish(underlying.state, reason: underlying.reason, rule: underlying.rule, at: now)
    }

    /// Leaves flapping once the underlying state has held for `settle`.
    private mutating func settleIfDue(at now: Date) -> HealthTransition? {
        switch overlay {
        case .tracking, .maintenance:
            return nil
        case .flapping:
            break
        }
        let held = now.duration(since: underlying.since)
        guard held >= timing.flapping.settle else { return nil }
        overlay = .tracking
        changeTimes.removeAll()
        return publish(underlying.state,
                       reason: "held \(underlying.state.rawValue) for \(DurationText.format(held)) after flapping; \(underlying.reason)",
                       rule: "settle \(DurationText.format(timing.flapping.settle)); \(underlying.rule)",
                       at: now)
    }

    /// Sets the reported state and returns the transition, or nil when it did not change.
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
