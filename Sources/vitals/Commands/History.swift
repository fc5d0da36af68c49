import ArgumentParser
import Foundation
import VitalsAgent
import VitalsCore
import VitalsProbe

struct History: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print a service's uptime and outages from the agent's history.",
        discussion: """
        Reads GET /v1/services/NAME/uptime and GET /v1/outages from the running agent \
        (the address in the config's agent.listen, else http://127.0.0.1:9310). Minutes \
        with no probe result (the agent stopped) count neither up nor down; they are \
        shown as "no data".
        """
    )

    @Argument(help: "The service.")
    var name: String

    @Option(help: ArgumentHelp("How far back: a duration (7d, 12h) or a time (2027-01-15T10:00:00Z).", valueName: "when"))
    var since: String = "7d"

    @Option(help: ArgumentHelp("The agent's base URL, e.g. http://127.0.0.1:9310.", valueName: "url"))
    var url: String?

    @Option(name: [.customShort("c"), .customLong("config")],
            help: ArgumentHelp("Read the agent's address from this configuration file.", valueName: "file"))
    var configPath: String = "etc/vitals.yaml"

    func validate() throws {
        guard HistoryTime.parse(since, now: Date()) != nil else {
            throw ValidationError("--since: expected a duration (7d, 12h) or a time (2027-01-15T10:00:00Z), got \"\(since)\"")
        }
    }

    func run() throws {
        let base = (url ?? Status.baseURL(fromConfig: configPath)).trimmingCharacters(in: CharacterSet(charactersIn: "/"))
        let from = Self.queryEscaped(since)
        let uptime = try Self.fetchJSON("\(base)/v1/services/\(Self.queryEscaped(name))/uptime?from=\(from)")
        let outages = try Self.fetchJSON("\(base)/v1/outages?service=\(Self.queryEscaped(name))&from=\(from)")
        for line in Self.lines(name: name, since: since, uptime: uptime, outages: outages) { print(line) }
    }

    static func queryEscaped(_ s: String) -> String {
        s.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~"))) ?? s
    }

    static func fetchJSON(_ target: String) throws -> [String: Any] {
        switch HTTPFetch.request(url: target) {
        case .failure(let failure):
            printError("vitals history: cannot reach the agent at \(failure)")
            throw ExitCode(NagiosExit.unknown.rawValue)
        case .success(let r) where r.status != 200:
            printError("vitals history: \(target) answered \(r.status): \(r.text)")
            throw ExitCode(NagiosExit.unknown.rawValue)
        case .success(let r):
            guard let object = try? JSONSerialization.jsonObject(with: Data(r.body)) as? [String: Any] else {
                printError("vitals history: \(target) did not answer with JSON")
                throw ExitCode(NagiosExit.unknown.rawValue)
            }
            return object
        }
    }

    static func percent(_ value: Any?) -> String {
        guard let ratio = value as? Double else { return "no data" }
        return String(format: "%.3f%%", ratio * 100)
    }

    static func seconds(_ value: Any?) -> String {
        let s = (value as? Double) ?? Double((value as? Int) ?? 0)
        return DurationText.format(.milliseconds(Int64((s * 1000).rounded())))
    }

    /// ```
    /// api: 99.950% up since 7d (6d23h observed, 1h no data)
    ///   24h 100.000%   7d 99.950%   30d 99.950%
    /// outages (1):
    ///   2027-01-15T10:00:00.000Z  4m12s  status 503, expected 200-299
    /// ```
    static func lines(name: String, since: String, uptime: [String: Any], outages: [String: Any]) -> [String] {
        var out: [String] = []
        let range = uptime["range"] as? [String: Any] ?? [:]
        out.append("\(name): \(percent(range["ratio"])) up since \(since) (\(seconds(range["observed_seconds"])) observed, "
                   + "\(seconds(range["no_data_seconds"])) no data)")
        let windows = uptime["windows"] as? [String: Any] ?? [:]
        out.append("  " + ["24h", "7d", "30d"].map { "\($0) \(percent((windows[$0] as? [String: Any])?["ratio"]))" }
            .joined(separator: "   "))
        let list = outages["outages"] as? [[String: Any]] ?? []
        out.append(list.isEmpty ? "no outages" : "outages (\(list.count)):")
        for o in list.reversed() {
            let start = o["start"] as? String ?? "?"
            let ongoing = (o["ongoing"] as? Bool) == true
            out.append("  \(start)  \(seconds(o["duration_seconds"]))\(ongoing ? " (ongoing)" : "")  \(o["reason"] as? String ?? "")")
        }
        return out
    }
}
