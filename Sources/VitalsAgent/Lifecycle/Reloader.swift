import Foundation
import Logging
import Synchronization
import VitalsCore
import VitalsProbe

/// Re-reads the configuration file (SIGHUP, `POST /v1/reload`): an invalid
/// file changes nothing and every error is reported; a valid one is applied
/// without losing the state of what still exists.
final class Reloader: Sendable {
    let owner: StateOwner
    let scheduler = Late<ProbeScheduler>()
    let logger: Logger
    /// One reload at a time: SIGHUP and the API may ask together.
    private let serial = Mutex(())

    /// The heartbeats' ping keys: a reload reads (or creates) those of new heartbeats.
    let keys: HeartbeatKeys?

    init(owner: StateOwner, logger: Logger, keys: HeartbeatKeys? = nil) {
        self.owner = owner
        self.logger = logger
        self.keys = keys
    }

    func reload() -> Result<ReloadSummary, ConfigFile.Failure> {
        serial.withLock { _ in
            switch ConfigFile.load(path: owner.configPath) {
            case .failure(let failure):
                // An event, so it is journaled, logged (on one line) and served like any other.
                _ = try? owner.apply(.reloadRefused(errors: failure.lines))
                return .failure(failure)
            case .success(let config):
                let old = owner.view.config
                if old.agent.listen != config.agent.listen || old.agent.stateDir != config.agent.stateDir
                    || old.agent.tokenFile != config.agent.tokenFile {
                    logger.warning("agent.listen, agent.state_dir and agent.token_file take effect at the next restart")
                }
                if old.cluster != config.cluster {
                    logger.warning("cluster: takes effect at the next restart; this agent keeps its place in the cluster as it started")
                }
                // A new heartbeat needs its key before a ping can reach it; a key file that cannot be used refuses the reload.
                if let keys {
                    do {
                        for created in try keys.load(config) { logger.notice("\(created.announcement(base: nil))") }
                    } catch {
                        let failure = ConfigFile.Failure(path: owner.configPath, errors: [String(describing: error)])
                        _ = try? owner.apply(.reloadRefused(errors: failure.lines))
                        return .failure(failure)
                    }
                }
                let summary = ReloadSummary(from: old, to: config)
                // Logged once, as the `config_reloaded` event it makes.
                _ = try? owner.apply(.reload(config))
                scheduler.value?.update(services: config.services.filter(\.isProbed))
                return .success(summary)
            }
        }
    }
}
