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

    init(owner: StateOwner, logger: Logger) {
        self.owner = owner
        self.logger = logger
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
                let summary = ReloadSummary(from: old, to: config)
                // Logged once, as the `config_reloaded` event it makes.
                _ = try? owner.apply(.reload(config))
                scheduler.value?.update(services: config.services.filter(\.isProbed))
                return .success(summary)
            }
        }
    }
}
