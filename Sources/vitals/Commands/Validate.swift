import ArgumentParser
import VitalsAgent
import VitalsCore

struct Validate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check a configuration file and list every error in it.",
        discussion: """
        Prints each error with its key path, line and column, and exits 1 when there \
        is any. Exits 0 and prints a one-line summary when the file is valid, so it can \
        guard a deploy or a reload: `vitals validate -c new.yaml && systemctl reload vitals`. \
        A service probed more often than every 100ms is accepted with a warning that \
        says how many probes a second it costs.
        """
    )

    @OptionGroup var config: ConfigOption

    func run() throws {
        switch ConfigFile.load(path: config.path) {
        case .success(let loaded):
            print("\(config.path): OK (\(summary(loaded)))")
            for warning in ConfigAdvice.warnings(loaded) { printError("warning: \(warning)") }
        case .failure(let failure):
            printError(failure.description)
            throw ExitCode(1)
        }
    }

    private func summary(_ config: VitalsConfig) -> String {
        func count(_ n: Int, _ word: String) -> String { "\(n) \(word)\(n == 1 ? "" : "s")" }
        return [count(config.services.count, "service"), count(config.groups.count, "group"),
                count(config.actions.count, "action")].joined(separator: ", ")
    }
}

func printError(_ text: String) {
    var stderr = StandardError()
    print(text, to: &stderr)
}

struct StandardError: TextOutputStream {
    mutating func write(_ string: String) {
        LineSink.standardError.write(string)
    }
}
