import Foundation
import Logging
import Synchronization
import VitalsActions
import VitalsCore
import VitalsStore
import VitalsHTTP
import VitalsProbe

/// The running agent: probes on a schedule, tracks health, serves status.
///
/// `run()` blocks the calling thread until SIGINT or SIGTERM. The threads it
/// starts: the probe scheduler (one curl multi loop), the HTTP server loop,
/// and a ticker that lets time-driven rules act (heartbeat deadlines).
public final class Agent: Sendable {
    public struct Options: Sendable {
        public var configPath: String
        /// Decide and log, but run no action.
        public var dryRun: Bool
        public init(configPath: String, dryRun: Bool = false) {
            self.configPath = configPath
            self.dryRun = dryRun
        }
    }

    private let config: VitalsConfig
    private let options: Options
    private let logger: Logger
    private let clock: any VitalsClock

    public init(config: VitalsConfig, options: Options, logger: Logger, clock: any VitalsClock = SystemClock()) {
        self.config = config
        self.options = options
        self.logger = logger
        self.clock = clock
    }

    /// Runs until SIGINT or SIGTERM; then stops probing, lets running actions
    /// finish up to a grace time, saves state and returns. SIGHUP reloads
    /// the configuration.
    public func run() throws {
        // Threads already exist (the runtime's), so a signal may land on any
        // of them: ignore the default action and take the signals through
        // dispatch sources, which see them whichever thread they hit.
        let stopRequested = StopSignal()
        signal(SIGPIPE, SIG_IGN)
        let signalQueue = DispatchQueue(label: "vitals.signals")
        var signalSources = [SIGINT, SIGTERM].map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: signalQueue)
            source.setEventHandler { stopRequested.signal(number) }
            source.resume()
            return source
        }
        defer { signalSources.forEach { $0.cancel() } }

        let logger = self.logger
        let clock = self.clock
        let notifier = SystemdNotifier(logger: logger)
        let store: AgentStore
        do {
            store = try AgentStore(directory: config.agent.stateDir, clock: clock)
        } catch {
            throw AgentError.stateDirectory(error.description)
        }
        let token = try BearerToken.loadOrCreate(at: config.agent.tokenFile)
        let recovered = store.recover()
        for warning in recovered.warnings { logger.warning("\(warning)") }

        let currentConfig = Late<ConfigBox>()
        currentConfig.value = ConfigBox(config)
        let stateBox = Late<AgentState>()
        let metrics = ProbeMetrics()
        let actions = ActionQueue(
            registry: .standard(clock: clock, log: { line in logger.notice("\(line)") }),
            dryRun: options.dryRun, clock: clock,
            deliver: { outcome in
                Agent.log(outcome, to: logger)
                metrics.record(outcome: outcome)
                store.record(outcome, forEvent: outcome.eventID)
                stateBox.value?.recordActions([outcome], forEvent: outcome.eventID)
            })
        let interrupted = Self.interruptedActions(in: recovered.events, config: config, clock: clock)
        let state = AgentState(config: config, configPath: options.configPath, clock: clock,
                               restoring: recovered.snapshot, lastEvents: recovered.events,
                               firstEventID: store.lastSequence + 1) { events in
            // Effects are recorded before they are done: each decision is on
            // disk before its actions start.
            var decided = false
            for event in events {
                store.record(event)
                Agent.log(event, to: logger)
                metrics.record(event: event)
                guard let kind = event.kind.groupKind else { continue }
                decided = true
                let config = currentConfig.value?.config ?? VitalsConfig()
                guard let group = event.group.flatMap(config.group(named:)) else { continue }
                let steps = (group.on[kind] ?? []).compactMap(config.action(named:))
                actions.enqueue(event, actions: steps)
            }
            if decided, let state = stateBox.value { store.save(state.persistentSnapshot()) }
        }
        stateBox.value = state
        for (id, outcome) in interrupted {
            logger.warning("action \(outcome.action) for event \(id) \(outcome.eventKind) was interrupted by a restart; it is not run again")
            store.record(outcome, forEvent: id)
            state.recordActions([outcome], forEvent: id)
        }
        actions.beforeRun = { job in
            // The target may have failed while the job waited: check it now.
            guard let event = state.recentEvent(job.id) else { return .run }
            switch state.confirmTarget(of: event) {
            case .confirmed, .notApplicable:
                return .run
            case .superseded:
                return .skip("superseded by a later decision")
            case .cancelled(let reason):
                return .skip("target check: \(reason)")
            case .replaced:
                // The new decision was published as events of its own, with its own actions.
                return .skip("target no longer up; a new decision replaces this one")
            }
        }

        let view = StatusView(state: state, clock: clock, storeHealth: store.health)
        let reloader = Reloader(state: state, scheduler: Late(), current: currentConfig, logger: logger)
        let serverBox = Late<HTTPServer>()
        let api = StatusAPI(state: state, view: view, token: token,
                            allowGetHeartbeats: config.agent.allowGetHeartbeats, clock: clock,
                            storeHealth: store.health, reload: { reloader.reload() },
                            metrics: {
                                MetricsRenderer.render(snapshot: state.snapshot(), metrics: metrics,
                                                       scheduler: reloader.scheduler.value?.statistics,
                                                       store: store.health.report,
                                                       openConnections: serverBox.value?.openConnections,
                                                       now: clock.now())
                            })
        let server = HTTPServer(configuration: HTTPServerConfiguration(
            listenAddresses: config.agent.listen.map { HTTPListenAddress(host: $0.host, port: $0.port) }),
            handler: api)
        serverBox.value = server
        do {
            try server.start()
        } catch {
            throw AgentError.cannotListen(config.agent.listen.map(\.description).joined(separator: ", "), "\(error)")
        }

        let scheduler = ProbeScheduler(
            services: config.services.filter { if case .heartbeat = $0.check { false } else { true } },
            prober: CurlMultiProber(clock: clock),
            sink: ProbeResultHandler({ result, service in
                metrics.record(service: service, result: result)
                _ = state.record(result, for: service, deciding: false)
            }, roundEnded: {
                // Once per round of results: with many services changing at
                // once, the groups decide once, not once per change.
                state.decidePending()
            }),
            next: { service, _ in
                guard case .probed(let tracker)? = state.health(of: service) else { return .normal }
                return tracker.nextProbeDelayHint
            })
        reloader.scheduler.value = scheduler
        scheduler.start()

        let hangup = DispatchSource.makeSignalSource(signal: SIGHUP, queue: signalQueue)
        signal(SIGHUP, SIG_IGN)
        hangup.setEventHandler {
            notifier.reloading()
            _ = reloader.reload()
            notifier.ready(status: Agent.statusLine(state.snapshot()))
        }
        hangup.resume()
        signalSources.append(hangup)

        // Time-driven rules, the snapshot and the journal's retry ride on one ticker.
        let ticker = DispatchSource.makeTimerSource(queue: DispatchQueue(label: "vitals.ticker"))
        let savedVersion = Mutex<UInt64>(0)
        let systemd = Mutex(SystemdProgress())
        ticker.schedule(deadline: .now() + .milliseconds(250), repeating: .milliseconds(250))
        // Once both loops have started: do they run at the priority the agent was given?
        let priorityChecks = Mutex(20)
        ticker.setEventHandler {
            priorityChecks.withLock { left in
                guard left > 0 else { return }
                let loops = LoopPriority.threadNice()
                left = loops.count == LoopPriority.loopNames.count ? 0 : left - 1
                if left == 0, let warning = LoopPriority.warning(processNice: LoopPriority.processNice, loops: loops) {
                    logger.warning("\(warning)")
                }
            }
            state.tick()
            store.retryPending()
            let version = state.stateVersion
            let changed = savedVersion.withLock { saved in
                defer { saved = version }
                return saved != version
            }
            if changed { store.save(state.persistentSnapshot()) }
            // systemd: READY=1 after the first full round, STATUS= on change,
            // WATCHDOG=1 from this ticker (a stuck ticker gets us restarted).
            // Readiness and the summary change only with the state version:
            // look at the state (a copy of every service) only then.
            guard notifier.isEnabled else { return }
            let now = ContinuousClock.now
            systemd.withLock { progress in
                if progress.seenVersion != version {
                    progress.seenVersion = version
                    let snapshot = state.snapshot()
                    let line = Agent.statusLine(snapshot)
                    if !progress.ready, snapshot.firstRoundComplete {
                        notifier.ready(status: line)
                        progress.ready = true
                        progress.status = line
                    } else if progress.ready, line != progress.status {
                        notifier.status(line)
                        progress.status = line
                    }
                }
                if let interval = notifier.watchdogInterval, progress.lastWatchdog.map({ now - $0 >= interval / 2 }) ?? true {
                    notifier.watchdog()
                    progress.lastWatchdog = now
                }
            }
        }
        ticker.resume()

        let addresses = server.localAddresses.map(\.description).joined(separator: ", ")
        logger.notice("vitals \(VitalsVersion.current) started: \(config.services.count) services, \(config.groups.count) groups; status API on \(addresses); state in \(config.agent.stateDir)\(options.dryRun ? "; dry run: no action will run" : "")")

        let received = stopRequested.wait()
        notifier.stopping()
        logger.notice("received \(received == SIGINT ? "SIGINT" : "SIGTERM"), stopping")
        scheduler.stop()
        ticker.cancel()
        state.flush()
        if !actions.shutdownBlocking(grace: .seconds(10)) {
            logger.warning("actions still running after 10s; stopped them")
        }
        state.flush()
        store.save(state.persistentSnapshot())
        store.retryPending()
        server.stop()
        logger.notice("stopped")
    }

    /// The one-line summary systemd shows: `5 services: 4 up, 1 down; 2 groups`.
    static func statusLine(_ snapshot: AgentState.Snapshot) -> String {
        SystemdNotifier.statusLine(serviceStates: snapshot.services.map(\.health.state),
                                          groupCount: snapshot.groups.count)
    }

    /// Actions of recovered decisions that never reported an outcome: the
    /// agent stopped while they waited or ran. They are reported, not re-run.
    static func interruptedActions(in events: [AgentEvent], config: VitalsConfig,
                                   clock: any VitalsClock) -> [(UInt64, ActionOutcome)] {
        var out: [(UInt64, ActionOutcome)] = []
        for event in events {
            guard let kind = event.kind.groupKind,
                  let group = event.group.flatMap(config.group(named:)) else { continue }
            let done = Set(event.actions.map(\.action))
            for action in (group.on[kind] ?? []).compactMap(config.action(named:)) where !done.contains(action.name) {
                out.append((event.id, ActionOutcome.notRun(
                    action, event: event,
                    result: .skipped("interrupted: the agent stopped before it finished; not run again"),
                    at: clock.now())))
            }
        }
        return out
    }

    /// One line per action run: `action promote (exec) for event 12 failover: ok, 1 attempt, 35ms`.
    static func log(_ outcome: ActionOutcome, to logger: Logger) {
        var metadata: Logger.Metadata = ["event": .string(String(outcome.eventID)), "action": .string(outcome.action)]
        if let group = outcome.group { metadata["group"] = .string(group) }
        let level: Logger.Level = outcome.result.isSuccess ? .notice : .error
        let attempts = outcome.attempts == 1 ? "1 attempt" : "\(outcome.attempts) attempts"
        logger.log(level: level, "action \(outcome.action) (\(outcome.kind)) for event \(outcome.eventID) \(outcome.eventKind): \(outcome.result), \(attempts), \(DurationText.format(outcome.duration))",
                   metadata: metadata)
    }

    /// One line per event: `web-1: up → down: status 503 (fall 3/3)` for a
    /// service, `group web: failover web-1 → web-2: …` for a decision.
    static func log(_ event: AgentEvent, to logger: Logger) {
        var metadata: Logger.Metadata = ["event": .string(String(event.id))]
        if let service = event.service { metadata["service"] = .string(service) }
        if let group = event.group { metadata["group"] = .string(group) }
        if let root = event.rootCause { metadata["root_cause"] = .string(root) }
        if event.kind == .stateChange, let service = event.service {
            let level: Logger.Level = event.to == HealthState.down.rawValue || event.to == HealthState.flapping.rawValue
                ? .warning : .notice
            let rule = event.rule.map { " (\($0))" } ?? ""
            logger.log(level: level, "\(service): \(event.from ?? "?") → \(event.to ?? "?"): \(event.reason)\(rule)",
                       metadata: metadata)
            return
        }
        let level: Logger.Level
        switch event.kind.groupKind {
        case .groupDown?, .failoverSuppressed?, .isolated?, .groupDegraded?: level = .error
        case .failover?, .failback?, .memberRemoved?: level = .warning
        default: level = .notice
        }
        let subject = event.group.map { "group \($0)" } ?? event.service ?? "agent"
        var move = ""
        if event.from != nil || event.to != nil { move = " \(event.from ?? "none") → \(event.to ?? "none")" }
        logger.log(level: level, "\(subject): \(event.kind)\(move): \(event.reason)", metadata: metadata)
    }
}

/// A reference filled in after construction, for closures made before their target exists.
final class Late<Value: AnyObject & Sendable>: Sendable {
    init() {}
    private let box = Mutex<Value?>(nil)
    var value: Value? {
        get { box.withLock { $0 } }
        set { box.withLock { $0 = newValue } }
    }
}

/// The first stop signal received; `wait()` blocks until there is one.
final class StopSignal: Sendable {
    private let semaphore = DispatchSemaphore(value: 0)
    private let received = Mutex<Int32?>(nil)

    func signal(_ number: Int32) {
        let first = received.withLock { value -> Bool in
            guard value == nil else { return false }
            value = number
            return true
        }
        if first { semaphore.signal() }
    }

    func wait() -> Int32 {
        semaphore.wait()
        return received.withLock { $0 ?? SIGTERM }
    }
}

public enum AgentError: Error, CustomStringConvertible {
    case cannotListen(String, String)
    case stateDirectory(String)

    public var description: String {
        switch self {
        case .cannotListen(let address, let why): "cannot listen on \(address): \(why)"
        case .stateDirectory(let why): why
        }
    }
}

/// What the agent has told systemd so far.
struct SystemdProgress {
    /// The state version last looked at.
    var seenVersion: UInt64?
    var ready = false
    var status = ""
    var lastWatchdog: ContinuousClock.Instant?
}

/// The configuration in force, shared by the closures that read it.
final class ConfigBox: Sendable {
    let config: VitalsConfig
    init(_ config: VitalsConfig) { self.config = config }
}

/// Re-reads the configuration file (SIGHUP, `POST /v1/reload`): an invalid
/// file changes nothing and every error is reported; a valid one is applied
/// without losing the state of what still exists.
final class Reloader: Sendable {
    let state: AgentState
    let scheduler: Late<ProbeScheduler>
    let current: Late<ConfigBox>
    let logger: Logger
    private let serial = Mutex(())

    init(state: AgentState, scheduler: Late<ProbeScheduler>, current: Late<ConfigBox>, logger: Logger) {
        self.state = state
        self.scheduler = scheduler
        self.current = current
        self.logger = logger
    }

    func reload() -> Result<AgentState.ReloadSummary, ConfigFile.Failure> {
        serial.withLock { _ in
            switch ConfigFile.load(path: state.configPath) {
            case .failure(let failure):
                logger.error("reload refused; still running the previous configuration:\n\(failure)")
                return .failure(failure)
            case .success(let config):
                let old = current.value?.config
                if let old, old.agent.listen != config.agent.listen || old.agent.stateDir != config.agent.stateDir
                    || old.agent.tokenFile != config.agent.tokenFile {
                    logger.warning("agent.listen, agent.state_dir and agent.token_file take effect at the next restart")
                }
                current.value = ConfigBox(config)
                let summary = state.reload(config)
                scheduler.value?.update(services: config.services.filter {
                    if case .heartbeat = $0.check { false } else { true }
                })
                logger.notice("configuration reloaded: \(summary)")
                return .success(summary)
            }
        }
    }
}
