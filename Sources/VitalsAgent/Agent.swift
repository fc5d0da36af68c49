import Foundation
import Logging
import Synchronization
import VitalsActions
import VitalsCore
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

    /// Runs until SIGINT or SIGTERM; then stops probing and serving and returns.
    public func run() throws {
        // Threads already exist (the runtime's), so a signal may land on any
        // of them: ignore the default action and take the signals through
        // dispatch sources, which see them whichever thread they hit.
        let stopRequested = StopSignal()
        signal(SIGPIPE, SIG_IGN)
        let signalQueue = DispatchQueue(label: "vitals.signals")
        let signalSources = [SIGINT, SIGTERM].map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: signalQueue)
            source.setEventHandler { stopRequested.signal(number) }
            source.resume()
            return source
        }
        defer { signalSources.forEach { $0.cancel() } }

        let token = try BearerToken.loadOrCreate(at: config.agent.tokenFile)
        let logger = self.logger
        let config = self.config
        let stateBox = Late<AgentState>()
        let encoder = EventEncoder()
        let actions = ActionQueue(
            registry: .standard(clock: clock, log: { line in logger.notice("\(line)") }),
            dryRun: options.dryRun, clock: clock,
            deliver: { outcome in
                Agent.log(outcome, to: logger)
                if let id = UInt64(outcome.eventID) { stateBox.value?.recordActions([outcome], forEvent: id) }
            })
        let state = AgentState(config: config, configPath: options.configPath, clock: clock) { events in
            for event in events {
                Agent.log(event, to: logger)
                guard let group = event.group.flatMap(config.group(named:)),
                      let kind = GroupEventKind(rawValue: event.kind) else { continue }
                let steps = (group.on[kind] ?? []).compactMap(config.action(named:))
                actions.enqueue(event.actionEvent(json: encoder.json(event)), actions: steps)
            }
        }
        stateBox.value = state
        actions.beforeRun = { job in
            // The target may have failed while the job waited: check it now.
            guard let id = UInt64(job.id), let event = state.recentEvent(id) else { return .run }
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
        let view = StatusView(state: state, clock: clock)
        let api = StatusAPI(state: state, view: view, token: token,
                            allowGetHeartbeats: config.agent.allowGetHeartbeats, clock: clock)
        let server = HTTPServer(configuration: HTTPServerConfiguration(
            listenAddresses: config.agent.listen.map { HTTPListenAddress(host: $0.host, port: $0.port) }),
            handler: api)
        do {
            try server.start()
        } catch {
            throw AgentError.cannotListen(config.agent.listen.map(\.description).joined(separator: ", "), "\(error)")
        }

        let scheduler = ProbeScheduler(
            services: config.services.filter { if case .heartbeat = $0.check { false } else { true } },
            prober: CurlMultiProber(clock: clock),
            sink: ProbeResultHandler { result, service in
                _ = state.record(result, for: service)
            },
            next: { service, _ in
                state.health(of: service).flatMap { health -> NextProbe? in
                    guard case .probed(let tracker) = health else { return nil }
                    return tracker.nextProbeDelayHint == .fast ? .fast : .normal
                } ?? .normal
            })
        scheduler.start()

        let ticker = DispatchSource.makeTimerSource(queue: DispatchQueue(label: "vitals.ticker"))
        ticker.schedule(deadline: .now() + .milliseconds(250), repeating: .milliseconds(250))
        ticker.setEventHandler { state.tick() }
        ticker.resume()

        let addresses = server.localAddresses.map(\.description).joined(separator: ", ")
        logger.notice("vitals \(VitalsVersion.current) started: \(config.services.count) services, \(config.groups.count) groups; status API on \(addresses); state in \(config.agent.stateDir)\(options.dryRun ? "; dry run: no action will run" : "")")

        let received = stopRequested.wait()
        logger.notice("received \(received == SIGINT ? "SIGINT" : "SIGTERM"), stopping")
        ticker.cancel()
        scheduler.stop()
        state.flush()
        if !actions.shutdownBlocking(grace: .seconds(10)) {
            logger.warning("actions still running after 10s; stopping without them")
        }
        server.stop()
        logger.notice("stopped")
    }

    /// One line per action run: `action promote (exec) for event 12 failover: ok, 1 attempt, 35ms`.
    static func log(_ outcome: ActionOutcome, to logger: Logger) {
        var metadata: Logger.Metadata = ["event": .string(outcome.eventID), "action": .string(outcome.action)]
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
        if event.kind == "state_change", let service = event.service {
            let level: Logger.Level = event.to == HealthState.down.rawValue || event.to == HealthState.flapping.rawValue
                ? .warning : .notice
            let rule = event.rule.map { " (\($0))" } ?? ""
            logger.log(level: level, "\(service): \(event.from ?? "?") → \(event.to ?? "?"): \(event.reason)\(rule)",
                       metadata: metadata)
            return
        }
        let level: Logger.Level
        switch GroupEventKind(rawValue: event.kind) {
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

    public var description: String {
        switch self {
        case .cannotListen(let address, let why): "cannot listen on \(address): \(why)"
        }
    }
}
