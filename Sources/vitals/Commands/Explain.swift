import ArgumentParser
import Foundation
import VitalsAgent
import VitalsCore
import VitalsProbe

struct Explain: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Ask a running agent why a service is in its state, and what comes next.",
        discussion: """
        Reads GET /v1/services/NAME/explain and prints the state, since when and why. For a \
        heartbeat service it says when the next ping is due and why (its every or schedule, \
        the last ping, the grace, and a started run's max_runtime); for a probed service, its \
        rules and the last results. Exits 0, or 1 when the agent cannot be reached or has no \
        such service.
        """
    )

    @Argument(help: ArgumentHelp("The service.", valueName: "name"))
    var name: String

    @Option(help: ArgumentHelp("The agent's base URL, e.g. http://127.0.0.1:9310.", valueName: "url"))
    var url: String?

    @Option(name: [.customShort("c"), .customLong("config")],
            help: ArgumentHelp("Read the agent's address from this configuration file.", valueName: "file"))
    var configPath: String = "etc/vitals.yaml"

    @Flag(help: "Print the agent's JSON as it is.")
    var json = false

    struct Reply: Decodable {
        struct Service: Decodable {
            var name: String
            var kind: String
            var state: String
            var since: String
            var reason: String
            var rule: String
            var heartbeat: StatusReply.Service.Heartbeat?
        }
        struct Rules: Decodable {
            var interval: String
            var timeout: String
            var rise: Int
            var fall: Int
        }
        struct Result: Decodable {
            var time: String
            var outcome: String
            var reason: String
        }
        var service: Service
        var nextPing: String?
        var rules: Rules
        var recent: [Result]
    }

    func run() throws {
        let base = url ?? Status.baseURL(fromConfig: configPath)
        let target = (base.hasSuffix("/") ? base : base + "/") + "v1/services/\(name)/explain"
        switch HTTPFetch.request(url: target) {
        case .failure(let failure):
            printError("vitals explain: cannot reach the agent at \(failure)")
            throw ExitCode(1)
        case .success(let response) where response.status != 200:
            printError("vitals explain: \(HeartbeatPing.errorMessage(response.body) ?? "answered \(response.status)")")
            throw ExitCode(1)
        case .success(let response):
            if json {
                print(response.text, terminator: response.text.hasSuffix("\n") ? "" : "\n")
                return
            }
            guard let reply = try? JSONDecoder.snakeCase.decode(Reply.self, from: Data(response.body)) else {
                printError("vitals explain: \(target) did not answer with an explanation")
                throw ExitCode(1)
            }
            print(Self.text(reply), terminator: "")
        }
    }

    static func text(_ reply: Reply) -> String {
        let s = reply.service
        var lines = ["\(s.name) (\(s.kind)): \(s.state) since \(s.since)", "  why: \(s.reason) (\(s.rule))"]
        if let running = s.heartbeat?.runningSince { lines.append("  running since \(running)") }
        if let nextPing = reply.nextPing {
            lines.append("  next ping: \(nextPing)")
        } else {
            let r = reply.rules
            lines.append("  rules: every \(r.interval), timeout \(r.timeout), up after \(r.rise), down after \(r.fall)")
            for result in reply.recent.suffix(5) {
                lines.append("  \(result.time) \(result.outcome)" + (result.reason.isEmpty ? "" : ": \(result.reason)"))
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
