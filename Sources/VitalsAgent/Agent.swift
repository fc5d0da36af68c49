import Foundation
import Logging
import Synchronization
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
        let state = AgentState(config: config, configPath: options.configPath, clock: clock) { transition in
            Agent.log(transition, to: logger)
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
        server.stop()
        logger.notice("stopped")
    }

    static func log(_ t: HealthTransition, to logger: Logger) {
        let level: Logger.Level
        switch t.to {
        case .down, .flapping: level = .warning
        case .degraded: level = .notice
        case .up, .unknown, .maintenance: level = .notice
        }
        logger.log(level: level, "\(t.service): \(t.from.rawValue) → \(t.to.rawValue): \(t.reason) (\(t.rule))",
                   metadata: ["service": .string(t.service)])
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
