import ArgumentParser
import Foundation
import VitalsAgent
import VitalsCore
import VitalsProbe

struct Check: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Probe every service once, print a table, exit as a Nagios plugin does.",
        discussion: """
        Probes all http, tcp and exec services at the same time, once, and reports \
        each raw result: no rise/fall counting, so one failed probe shows as down, and \
        a plugin's exit 3 as unknown. Heartbeat services are pushed, not probed: they \
        are listed as skipped (ask the running agent with `vitals status`).

        The first line is a Nagios plugin's summary, with the counts as performance \
        data: `VITALS CRITICAL - 1 down: web-1 (connect refused) | up=3 degraded=0 \
        down=1 unknown=0`; the table follows. So Nagios, Icinga or Monit can run \
        `vitals check` as a plugin, and cron as it is.

        Exit status: 0 all up, 1 some degraded, 2 some down, 3 some unknown \
        (down outranks unknown, which outranks degraded).
        """
    )

    @OptionGroup var config: ConfigOption

    @Flag(help: "Print the results as JSON.")
    var json = false

    func run() async throws {
        let loaded: VitalsConfig
        switch ConfigFile.load(path: config.path) {
        case .success(let c): loaded = c
        case .failure(let failure):
            printError(failure.description)
            throw ExitCode(NagiosExit.unknown.rawValue)
        }
        let results = await ProbeScheduler.probeOnce(services: loaded.services)
        let report = CheckReport(config: loaded, results: results)
        if json {
            print(report.json())
        } else {
            print(report.summary)
            print(report.table(), terminator: "")
        }
        throw ExitCode(report.exitCode.rawValue)
    }
}

/// What `vitals check` found, ready to print.
struct CheckReport {
    struct Row: Encodable {
        var name: String
        var kind: String
        var state: String
        var latencyMs: Double?
        var reason: String
    }

    var rows: [Row]

    init(config: VitalsConfig, results: [String: ProbeResult]) {
        rows = config.services.map { service in
            guard let result = results[service.name] else {
                return Row(name: service.name, kind: service.check.kind, state: "skipped", latencyMs: nil,
                           reason: "heartbeat service: pushed, not probed")
            }
            let state: HealthState = switch result.outcome {
            case .ok: .up
            case .degraded: .degraded
            case .failed: .down
            case .unknown: .unknown
            }
            return Row(name: service.name, kind: service.check.kind, state: state.rawValue,
                       latencyMs: result.latency.map { ($0.seconds * 1_000_000).rounded() / 1000 },
                       reason: result.reason)
        }
    }

    var exitCode: NagiosExit {
        let states = Set(rows.map(\.state))
        if states.contains(HealthState.down.rawValue) { return .critical }
        if states.contains(HealthState.unknown.rawValue) { return .unknown }
        if states.contains(HealthState.degraded.rawValue) { return .warning }
        return .ok
    }

    /// The first line, as a Nagios plugin writes it: the status word, the
    /// services that are not up (worst first, each with its reason), and the
    /// counts as performance data after `|`.
    /// `VITALS CRITICAL - 1 down: web-1 (connect refused) | up=3 degraded=0 down=1 unknown=0`
    var summary: String {
        let word = switch exitCode {
        case .ok: "OK"
        case .warning: "WARNING"
        case .critical: "CRITICAL"
        case .unknown: "UNKNOWN"
        }
        let order: [HealthState] = [.down, .unknown, .degraded]
        var parts: [String] = []
        for state in order {
            let these = rows.filter { $0.state == state.rawValue }
            guard !these.isEmpty else { continue }
            parts.append("\(these.count) \(state.rawValue): "
                + these.map { $0.reason.isEmpty ? $0.name : "\($0.name) (\($0.reason))" }.joined(separator: ", "))
        }
        let up = count(.up)
        if parts.isEmpty {
            let skipped = rows.filter { $0.state == "skipped" }.count
            parts.append("\(up) up" + (skipped > 0 ? ", \(skipped) skipped" : ""))
        }
        // A `|` would start the performance data early; the summary is one line.
        let text = parts.joined(separator: "; ")
            .replacingOccurrences(of: "|", with: "/")
            .replacingOccurrences(of: "\n", with: " ")
        return "VITALS \(word) - \(text) | up=\(up) degraded=\(count(.degraded)) down=\(count(.down)) unknown=\(count(.unknown))"
    }

    private func count(_ state: HealthState) -> Int {
        rows.filter { $0.state == state.rawValue }.count
    }

    func table() -> String {
        let latency = rows.map { $0.latencyMs.map { String(format: "%.1fms", $0) } ?? "-" }
        return TextTable(header: ["SERVICE", "KIND", "STATE", "LATENCY", "REASON"],
                         rows: rows.indices.map { i in
                             [rows[i].name, rows[i].kind, rows[i].state, latency[i], rows[i].reason]
                         }).render()
    }

    func json() -> String {
        struct Document: Encodable {
            var services: [Row]
            var exitCode: Int32
            /// The Nagios first line of the table output.
            var summary: String
        }
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let data = (try? encoder.encode(Document(services: rows, exitCode: exitCode.rawValue, summary: summary))) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }
}

/// Left-aligned columns separated by two spaces; the last column is not padded.
struct TextTable {
    var header: [String]
    var rows: [[String]]
    /// Styles a cell after padding (so escape codes do not upset the widths):
    /// row index (0 is the header), column index, padded text.
    var style: ((Int, Int, String) -> String)? = nil

    func render() -> String {
        let all = [header] + rows
        let widths = header.indices.map { column in all.map { $0[column].count }.max() ?? 0 }
        return all.enumerated().map { r, row in
            let cells = row.indices.map { i in
                i == row.count - 1 ? row[i] : row[i].padding(toLength: widths[i], withPad: " ", startingAt: 0)
            }
            let line = cells.joined(separator: "  ").trimmingCharacters(in: .whitespaces)
            guard let style else { return line }
            return cells.indices.map { style(r, $0, cells[$0]) }.joined(separator: "  ")
                .replacingOccurrences(of: "\\s+$", with: "", options: .regularExpression)
        }.joined(separator: "\n") + "\n"
    }
}

/// Colour for state words on a terminal; none when piped or with NO_COLOR set.
enum TerminalColour {
    static var enabled: Bool {
        isatty(STDOUT_FILENO) == 1 && ProcessInfo.processInfo.environment["NO_COLOR"] == nil
    }

    static func state(_ text: String) -> String {
        let word = text.trimmingCharacters(in: .whitespaces)
        let code: String
        switch word {
        case "up", "ok", "active": code = "32"
        case "degraded": code = "33"
        case "down", "flapping": code = "31"
        case "maintenance": code = "34"
        default: code = "90"
        }
        return "\u{1B}[\(code)m\(text)\u{1B}[0m"
    }
}
