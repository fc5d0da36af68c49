import Foundation
import Logging
import Synchronization
import VitalsActions
import VitalsCore
import VitalsHistory
import VitalsHTTP
import VitalsProbe
import VitalsStore

/// The running agent: probes on a schedule, tracks health, decides, acts,
/// serves status.
///
/// `run()` blocks the calling thread until SIGINT or SIGTERM. The threads it
/// starts: the probe loop (one curl multi loop), the status server's loop,
/// the owner's effects queue, and a ticker that lets time-driven rules act.
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
        let signals = SignalWatch()
        let notifier = SystemdNotifier(logger: logger)
        let running = try start(notifier: notifier)

        signals.onHangup {
            notifier.reloading()
            _ = running.reloader.reload()
            notifier.ready(status: AgentLog.statusLine(running.owner.view))
        }
        if let cluster = running.cluster {
            logger.notice("cluster: this agent is \(cluster.agent) (status at \(cluster.address)); etcd at \(cluster.settings.etcd.joined(separator: ", ")), keys under \(cluster.settings.prefix), lease ttl \(DurationText.format(cluster.settings.ttl))")
        }
        let addresses = running.server.localAddresses.map(\.description).joined(separator: ", ")
        logger.notice("vitals \(VitalsVersion.current) started: \(config.services.count) services, \(config.groups.count) groups; status API on \(addresses); state in \(config.agent.stateDir)\(options.dryRun ? "; dry run: no action will run" : "")")

        let received = signals.waitForStop()
        notifier.stopping()
        logger.notice("received \(received == SIGINT ? "SIGINT" : "SIGTERM"), stopping")
        stop(running)
        logger.notice("stopped")
    }

    /// What `start` set running, for `stop`.
    struct Running {
        let owner: StateOwner
        let store: AgentStore
        let actions: ActionQueue
        let scheduler: ProbeScheduler
        let server: HTTPServer
        let reloader: Reloader
        let ticker: Ticker
        let cluster: ClusterMember?
        let history: HistoryRecorder
    }

    /// Opens the state directory, restores what it holds, and starts the
    /// owner, the actions, the status server, the probe loop and the ticker.
    private func start(notifier: SystemdNotifier) throws -> Running {
        let logger = self.logger
        let clock = self.clock
        let store: AgentStore
        do {
            store = try AgentStore(directory: config.agent.stateDir, clock: clock)
        } catch {
            throw AgentError.stateDirectory(error.description)
        }
        let token = try BearerToken.loadOrCreate(at: config.agent.tokenFile)
        let keys = HeartbeatKeys(log: { line in logger.warning("\(line)") })
        let createdKeys: [HeartbeatKeys.Created]
        do {
            createdKeys = try keys.load(config)
        } catch {
            throw AgentError.pingKeys(error.description)
        }
        let recovered = store.recover()
        for warning in recovered.warnings { logger.warning("\(warning)") }

        let metrics = ProbeMetrics()
        let clusterMetrics = ClusterMetrics()
        let effects = Effects(store: store, logger: logger, metrics: metrics)
        // History is derived data, kept beside the journal: it takes the
        // same events and outcomes after the effects, and probe results from
        // the probe loop, without ever making either wait for its file.
        let history = HistoryRecorder(stateDir: config.agent.stateDir, settings: config.agent.history, clock: clock,
                                      warn: { line in logger.warning("\(line)") })
        let agentName = config.cluster?.agentName(hostName: ProcessInfo.processInfo.hostName)
        let owner = StateOwner(config: config, configPath: options.configPath, clock: clock,
                               restoring: recovered.snapshot, lastEvents: recovered.events,
                               firstEventID: store.lastSequence + 1, clusterAgent: agentName,
                               publish: { events in
                                   effects.published(events)
                                   history.record(events)
                               })
        effects.owner.value = owner
        let actions = ActionQueue(
            registry: .standard(clock: clock, log: { line in logger.notice("\(line)") }),
            dryRun: options.dryRun, clock: clock, deliver: { outcome in
                effects.finished(outcome)
                history.record(outcome)
            })
        actions.beforeRun = effects.beforeRun
        actions.afterAction = effects.afterAction
        effects.actions.value = actions
        effects.reportInterrupted(journal: recovered.events)
        history.start(down: owner.view.core.entries.filter { [.down, .flapping].contains($0.health.state) }.map(\.config.name))

        let view = StatusView(owner: owner, clock: clock, storeHealth: store.health)
        let reloader = Reloader(owner: owner, logger: logger, keys: keys)
        let serverBox = Late<HTTPServer>()
        let memberBox = Late<ClusterMember>()
        let clusterFigures: @Sendable () -> MetricsRenderer.ClusterFigures? = {
            guard let state = owner.clusterState() else { return nil }
            let f = clusterMetrics.snapshot
            return .init(agent: state.agent, isLeader: state.mayAct, hasLeader: state.leader != nil,
                         leaderChanges: state.leaderChanges, acquired: f.acquired, requests: f.requests,
                         errors: f.errors, seconds: f.seconds)
        }
        let renderMetrics: @Sendable () -> String = {
            MetricsRenderer.render(view: owner.view, metrics: metrics, uptimes: history.uptimes,
                                   scheduler: reloader.scheduler.value?.statistics,
                                   store: store.health.report,
                                   openConnections: serverBox.value?.openConnections,
                                   now: clock.now(), pingKeyRefusals: keys.refusedTotal, cluster: clusterFigures())
        }
        var storeDecisions: (@Sendable () async -> Void)?
        if config.cluster != nil {
            storeDecisions = { @Sendable () async -> Void in await memberBox.value?.storeNow() }
        }
        let api = StatusAPI(owner: owner, view: view, token: token,
                            allowGetHeartbeats: config.agent.allowGetHeartbeats, clock: clock,
                            storeHealth: store.health, reload: { reloader.reload() },
                            metrics: renderMetrics, keys: keys, storeDecisions: storeDecisions, history: history)
        let server = HTTPServer(configuration: HTTPServerConfiguration(
            listenAddresses: config.agent.listen.map { HTTPListenAddress(host: $0.host, port: $0.port) }),
            deferringHandler: api)
        serverBox.value = server
        do {
            try server.start()
        } catch {
            throw AgentError.cannotListen(config.agent.listen.map(\.description).joined(separator: ", "), "\(error)")
        }
        // Shown this once; `vitals heartbeat-key NAME` reads it again.
        let base = server.localAddresses.first.map { "http://\($0)" } ?? ""
        for created in createdKeys {
            logger.notice("\(created.announcement(base: base))")
        }

        let hints = ProbeHints()
        let scheduler = ProbeScheduler(
            services: config.services.filter(\.isProbed),
            prober: CurlMultiProber(clock: clock),
            sink: ProbeResultHandler({ result, service in
                metrics.record(service: service, result: result)
                history.record(result, service: service)
                hints.set(service, owner.record(result, for: service, deciding: false))
            }, roundEnded: {
                // Once per round of results: with many services changing at
                // once, the groups decide once, not once per change.
                owner.decidePending()
            }),
            next: { service, _ in hints.take(service) })
        reloader.scheduler.value = scheduler
        scheduler.start()

        var member: ClusterMember?
        if let settings = config.cluster, let agentName {
            member = ClusterMember(settings: settings, agent: agentName,
                                   address: Self.statusAddress(server.localAddresses.map { ListenAddress(host: $0.host, port: $0.port) },
                                                               hostName: ProcessInfo.processInfo.hostName),
                                   etcd: try ClusterMember.client(for: settings), owner: owner, logger: logger,
                                   metrics: clusterMetrics)
            effects.cluster.value = member
            memberBox.value = member
            member?.start()
        }

        let ticker = Ticker(owner: owner, store: store, notifier: notifier, logger: logger,
                            everyTick: { keys.flush(at: clock.now()) })
        ticker.start()
        return Running(owner: owner, store: store, actions: actions, scheduler: scheduler, server: server,
                       reloader: reloader, ticker: ticker, cluster: member, history: history)
    }

    /// Stops probing, lets running actions finish for up to 10 s, saves the
    /// state and stops serving.
    private func stop(_ running: Running) {
        running.scheduler.stop()
        running.ticker.stop()
        running.owner.flush()
        if !running.actions.shutdownBlocking(grace: .seconds(10)) {
            logger.warning("actions still running after 10s; stopped them")
        }
        running.owner.flush()
        // Hand over now: the next agent leads without waiting for the lease to expire.
        running.cluster?.stop()
        running.store.save(running.owner.persistentSnapshot())
        running.store.retryPending()
        // The current minute and the last events, on disk before the exit.
        running.history.stop()
        running.server.stop()
    }
}

extension Agent {
    /// This agent's status address as other agents and operators reach it:
    /// the first `listen:` address, with the host name for a wildcard.
    static func statusAddress(_ listen: [ListenAddress], hostName: String) -> String {
        guard let first = listen.first else { return "http://\(hostName)" }
        let wildcard = ["0.0.0.0", "::", ""].contains(first.host)
        let host = wildcard ? hostName : (first.isIPv6 ? "[\(first.host)]" : first.host)
        return "http://\(host):\(first.port)"
    }
}

/// The next-probe hint of the result the probe loop just delivered, from
/// the sink to the scheduler's `next` (both on the probe loop's thread).
final class ProbeHints: Sendable {
    private let last = Mutex<(service: String, hint: ProbeDelayHint)?>(nil)

    func set(_ service: String, _ hint: ProbeDelayHint) {
        last.withLock { $0 = (service, hint) }
    }

    func take(_ service: String) -> ProbeDelayHint {
        last.withLock { last in
            defer { last = nil }
            return last?.service == service ? last!.hint : .normal
        }
    }
}

public enum AgentError: Error, CustomStringConvertible {
    case cannotListen(String, String)
    case stateDirectory(String)
    case cluster(String)
    case pingKeys(String)

    public var description: String {
        switch self {
        case .cluster(let why): why
        case .pingKeys(let why): why
        case .cannotListen(let address, let why): "cannot listen on \(address): \(why)"
        case .stateDirectory(let why): why
        }
    }
}
