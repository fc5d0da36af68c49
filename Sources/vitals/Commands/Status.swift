import ArgumentParser
import Foundation
import VitalsAgent
import VitalsCore
import VitalsProbe

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Ask a running agent for its status and print it.",
        discussion: """
        Reads GET /v1/status from the agent (by default the address in the config's \
        agent.listen, else http://127.0.0.1:9310) and prints groups, then services. \
        In a cluster, a first line names this agent, its role (leader, follower, \
        none) and the leader. Each group shows its condition (starting, ok, degraded, down), the member(s) \
        traffic goes to (with the state of one that does not serve), and its marks: \
        HELD, ISOLATED, PENDING, each explained on a line below the table.

        Exit status as `vitals check`, from the worst service state and group \
        condition: 0 all up and ok, 1 some degraded, 2 some down, 3 some unknown or \
        starting, or the agent unreachable. States and conditions are coloured on a \
        terminal, never when piped (or with NO_COLOR set). --watch redraws every 2 \
        seconds until interrupted.
        """
    )

    @Option(help: ArgumentHelp("The agent's base URL, e.g. http://127.0.0.1:9310.", valueName: "url"))
    var url: String?

    @Option(name: [.customShort("c"), .customLong("config")],
            help: ArgumentHelp("Read the agent's address from this configuration file.", valueName: "file"))
    var configPath: String = "etc/vitals.yaml"

    @Flag(help: "Print the agent's JSON as it is.")
    var json = false

    @Flag(help: "Redraw the table every 2 seconds until interrupted.")
    var watch = false

    func run() throws {
        guard watch else { return try once() }
        let colour = TerminalColour.enabled
        while true {
            if colour { print("\u{1B}[H\u{1B}[2J", terminator: "") }
            print("vitals status  \(ISOTime.format(Date()))\n")
            do { try once() } catch {}
            fflush(nil)
            Thread.sleep(forTimeInterval: 2)
        }
    }

    private func once() throws {
        let base = url ?? Self.baseURL(fromConfig: configPath)
        let target = base.hasSuffix("/") ? base + "v1/status" : base + "/v1/status"
        switch HTTPFetch.request(url: target) {
        case .failure(let failure):
            printError("vitals status: cannot reach the agent at \(failure)")
            throw ExitCode(NagiosExit.unknown.rawValue)
        case .success(let response) where response.status != 200:
            printError("vitals status: \(target) answered \(response.status): \(response.text)")
            throw ExitCode(NagiosExit.unknown.rawValue)
        case .success(let response):
            guard let document = try? JSONDecoder.snakeCase.decode(StatusReply.self, from: Data(response.body)) else {
                printError("vitals status: \(target) did not answer with a status document")
                throw ExitCode(NagiosExit.unknown.rawValue)
            }
            if json {
                print(response.text, terminator: response.text.hasSuffix("\n") ? "" : "\n")
            } else {
                print(document.table(colour: TerminalColour.enabled), terminator: "")
            }
            throw ExitCode(document.exitCode.rawValue)
        }
    }

    static func baseURL(fromConfig path: String) -> String {
        if case .success(let config) = ConfigFile.load(path: path), let first = config.agent.listen.first {
            let host = first.host == "0.0.0.0" ? "127.0.0.1" : first.host == "::" ? "::1" : first.host
            let address = ListenAddress(host: host, port: first.port)
            return "http://\(address)"
        }
        return "http://127.0.0.1:9310"
    }
}

/// The parts of `/v1/status` the table shows.
struct StatusReply: Decodable {
    struct Agent: Decodable {
        struct Cluster: Decodable {
            var name: String
            var role: String
            var leader: String?
            var leaderAddress: String?
            var status: String
        }
        var version: String
        var uptimeSeconds: Int
        var cluster: Cluster?
    }
    struct Service: Decodable {
        var name: String
        var kind: String
        var state: String
        var since: String
        var reason: String
        var latencyMs: Double?
        var heartbeat: Heartbeat?

        struct Heartbeat: Decodable {
            var runningSince: String?
        }

        /// The reason, and for a heartbeat job that pinged start, since when it runs.
        var reasonText: String {
            guard let running = heartbeat?.runningSince else { return reason }
            return "\(reason); running since \(running)"
        }
    }
    struct Group: Decodable {
        struct Member: Decodable {
            var name: String
            var state: String
        }
        struct Hold: Decodable {
            var cause: String
            var reason: String
            var since: String
        }
        struct Pending: Decodable {
            var kind: String
            var from: String
            var to: String
            var notBefore: String
            var reason: String
        }
        var name: String
        var mode: String
        /// The engine's view: starting, ok, degraded, down.
        var condition: String
        var active: [String]
        var members: [Member]
        var serving: [String]
        var held: Bool
        var hold: Hold?
        var isolated: Bool
        var isolationReason: String?
        var pending: Pending?

        /// The members traffic goes to; one that does not serve says its state.
        var activeText: String {
            guard !active.isEmpty else { return "-" }
            return active.map { name in
                let state = members.first { $0.name == name }?.state ?? "unknown"
                return state == "up" || state == "degraded" ? name : "\(name) (\(state))"
            }.joined(separator: ", ")
        }

        /// The marks in the table; each is explained by a line of `notes`.
        var marks: [String] {
            (held ? ["HELD"] : []) + (isolated ? ["ISOLATED"] : []) + (pending != nil ? ["PENDING"] : [])
        }

        /// One line per mark, with its reason.
        var notes: [String] {
            var lines: [String] = []
            if held {
                let why = hold.map { " (\($0.cause)) since \($0.since): \($0.reason)" } ?? ""
                lines.append("\(name): HELD\(why)")
            }
            if isolated {
                lines.append("\(name): ISOLATED" + (isolationReason.map { ": \($0)" } ?? ""))
            }
            if let pending {
                lines.append("\(name): PENDING \(pending.kind) \(pending.from) → \(pending.to) not before \(pending.notBefore): \(pending.reason)")
            }
            return lines
        }
    }
    var agent: Agent
    var services: [Service]
    var groups: [Group]

    /// The worst of every service's state and every group's condition: a
    /// group held on a dead active member is down even when a backup serves.
    var exitCode: NagiosExit {
        let states = Set(services.map(\.state)), conditions = Set(groups.map(\.condition))
        if states.contains("down") || states.contains("flapping") || conditions.contains("down") { return .critical }
        if states.contains("unknown") || conditions.contains("starting") { return .unknown }
        if states.contains("degraded") || conditions.contains("degraded") { return .warning }
        return .ok
    }

    func table(colour: Bool = false) -> String {
        // The third column is the group's condition and the service's state.
        let style: ((Int, Int, String) -> String)? = colour ? { row, column, text in
            row > 0 && column == 2 ? TerminalColour.state(text) : text
        } : nil
        var out = ""
        if let cluster = agent.cluster {
            // First, so an operator sees at once whether this agent acts.
            let leader = cluster.leader.map { $0 + (cluster.leaderAddress.map { " (\($0))" } ?? "") } ?? "none"
            out += "CLUSTER  agent \(cluster.name), role \(cluster.role), leader \(leader)"
            if cluster.role != "leader" { out += ": \(cluster.status)" }
            out += "\n\n"
        }
        if !groups.isEmpty {
            out += TextTable(header: ["GROUP", "MODE", "CONDITION", "ACTIVE", "SERVING", "MARKS"],
                             rows: groups.map {
                                 [$0.name, $0.mode, $0.condition, $0.activeText,
                                  $0.serving.isEmpty ? "-" : $0.serving.joined(separator: ", "),
                                  $0.marks.joined(separator: " ")]
                             },
                             style: style).render()
            out += "\n"
            let notes = groups.flatMap(\.notes)
            if !notes.isEmpty {
                out += notes.joined(separator: "\n") + "\n\n"
            }
        }
        out += TextTable(header: ["SERVICE", "KIND", "STATE", "SINCE", "LATENCY", "REASON"],
                         rows: services.map {
                             [$0.name, $0.kind, $0.state, $0.since, $0.latencyMs.map { String(format: "%.1fms", $0) } ?? "-", $0.reasonText]
                         }, style: style).render()
        return out
    }
}

extension JSONDecoder {
    static var snakeCase: JSONDecoder {
        let d = JSONDecoder()
        d.keyDecodingStrategy = .convertFromSnakeCase
        return d
    }
}
