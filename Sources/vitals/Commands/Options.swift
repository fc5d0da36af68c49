import ArgumentParser
import VitalsCore

enum VitalsVersionText {
    static let current = VitalsVersion.current
}

/// `-c/--config`, shared by every command that reads the configuration.
struct ConfigOption: ParsableArguments {
    @Option(name: [.customShort("c"), .customLong("config")],
            help: ArgumentHelp("The configuration file.", valueName: "file"))
    var path: String = "etc/vitals.yaml"
}

/// Exit codes as Nagios plugins use them, so cron and monitoring read them as they are.
enum NagiosExit: Int32 {
    case ok = 0, warning = 1, critical = 2, unknown = 3
}
