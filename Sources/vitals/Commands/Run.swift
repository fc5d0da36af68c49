import ArgumentParser
import Logging
import VitalsAgent
import VitalsCore

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the agent: probe services, track heartbeats, serve status.",
        discussion: """
        Runs in the foreground and logs to stderr, one line per event: every state \
        change says the service, from → to, and why. Stops cleanly on SIGINT or SIGTERM.

        The status API listens where `agent.listen` says (default 127.0.0.1:9310). \
        Write endpoints need the token in `agent.token_file`, created on first start.
        """
    )

    @OptionGroup var config: ConfigOption

    @Flag(help: "Decide and log, but run no action.")
    var dryRun = false

    @Option(help: ArgumentHelp("Log line format: text or json.", valueName: "format"))
    var logFormat: LogFormatArgument = .text

    @Option(help: ArgumentHelp("Override agent.log_level (trace, debug, info, notice, warning, error, critical).",
                               valueName: "level"))
    var logLevel: String?

    func validate() throws {
        if let logLevel, Logger.Level(rawValue: logLevel) == nil {
            throw ValidationError("--log-level must be one of trace, debug, info, notice, warning, error, critical; got \"\(logLevel)\"")
        }
    }

    func run() throws {
        let loaded: VitalsConfig
        switch ConfigFile.load(path: config.path) {
        case .success(let c): loaded = c
        case .failure(let failure):
            printError(failure.description)
            throw ExitCode(1)
        }
        let level = logLevel.flatMap(Logger.Level.init(rawValue:))
            ?? Logger.Level(rawValue: loaded.agent.logLevel.rawValue) ?? .info
        let format = logFormat.format
        let logger = Logger(label: "vitals") { label in
            LineLogHandler(label: label, level: level, format: format)
        }
        do {
            try Agent(config: loaded, options: .init(configPath: config.path, dryRun: dryRun), logger: logger).run()
        } catch {
            logger.critical("\(error)")
            throw ExitCode(1)
        }
    }
}

enum LogFormatArgument: String, ExpressibleByArgument, CaseIterable {
    case text, json
    var format: LogFormat { self == .json ? .json : .text }
}
