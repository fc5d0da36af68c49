import ArgumentParser
import VitalsAgent
import VitalsCore

struct HeartbeatKey: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "heartbeat-key",
        abstract: "Print a heartbeat's ping key, or with --url its ping URL.",
        discussion: """
        The key opens POST or GET /v1/ping/KEY[/start|/fail|/STATUS] for this one heartbeat, \
        with no token. It is read from the heartbeat's key_file, else from \
        STATE_DIR/heartbeat-keys/NAME, which the agent creates (mode 0600) on its first start \
        with the heartbeat. Run it as a user that may read that file (the agent's, or root).

        Exits 0 with the key, 1 when the service is not a heartbeat or its key cannot be read.
        """
    )

    @OptionGroup var config: ConfigOption

    @Argument(help: ArgumentHelp("The heartbeat service.", valueName: "name"))
    var name: String

    @Flag(help: "Print the ping URL (from the config's agent.listen) instead of the key alone.")
    var url = false

    func run() throws {
        let loaded: VitalsConfig
        switch ConfigFile.load(path: config.path) {
        case .success(let config):
            loaded = config
        case .failure(let failure):
            printError(failure.description)
            throw ExitCode(1)
        }
        guard let service = loaded.service(named: name) else {
            printError("vitals heartbeat-key: no service \(name) in \(config.path)")
            throw ExitCode(1)
        }
        guard case .heartbeat(let check) = service.check else {
            printError("vitals heartbeat-key: service \(name) is a \(service.check.kind) check, not a heartbeat")
            throw ExitCode(1)
        }
        let path = check.keyPath(service: name, stateDir: loaded.agent.stateDir)
        switch HeartbeatKeys.read(at: path) {
        case .success(let key):
            print(url ? "\(Status.baseURL(fromConfig: config.path))/v1/ping/\(key)" : key)
        case .failure(.missing):
            printError("vitals heartbeat-key: no key yet in \(path); the agent creates it when it starts with this heartbeat")
            throw ExitCode(1)
        case .failure(let error):
            printError("vitals heartbeat-key: \(error)")
            throw ExitCode(1)
        }
    }
}
