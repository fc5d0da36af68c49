import ArgumentParser
import Foundation
import VitalsAgent
import VitalsCore
import VitalsProbe

struct Events: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the agent's recent events; --follow waits for new ones.",
        discussion: """
        Reads GET /v1/events from the running agent (the address in the config's \
        agent.listen, else http://127.0.0.1:9310): state changes, group decisions and \
        what their actions did, one line each, oldest first. With --since DURATION \
        (7d), --group or --service, the events come from the agent's history \
        (history.sqlite), which keeps them for agent.history.hours (400d).
        """
    )

    @Option(help: ArgumentHelp("The agent's base URL, e.g. http://127.0.0.1:9310.", valueName: "url"))
    var url: String?

    @Option(name: [.customShort("c"), .customLong("config")],
            help: ArgumentHelp("Read the agent's address from this configuration file.", valueName: "file"))
    var configPath: String = "etc/vitals.yaml"

    @Option(help: ArgumentHelp("Show events after this id, or within this duration (7d) or since this time.", valueName: "id|when"))
    var since: String = "0"

    @Option(help: ArgumentHelp("Only this group's events.", valueName: "group"))
    var group: String?

    @Option(help: ArgumentHelp("Only this service's events.", valueName: "service"))
    var service: String?

    @Option(help: ArgumentHelp("At most this many events per request (1-1000).", valueName: "n"))
    var limit: Int = 100

    @Flag(help: "Keep waiting for new events until interrupted.")
    var follow = false

    @Flag(help: "Print each event as one JSON object a line.")
    var json = false

    func validate() throws {
        guard (1...1000).contains(limit) else { throw ValidationError("--limit must be from 1 to 1000, got \(limit)") }
        guard UInt64(since) != nil || HistoryTime.parse(since, now: Date()) != nil else {
            throw ValidationError("--since: expected an event id, a duration (7d) or a time (2027-01-15T10:00:00Z), got \"\(since)\"")
        }
    }

    /// Whether the first page comes from the history store.
    var fromHistory: Bool { UInt64(since) == nil || group != nil || service != nil }

    func matches(_ event: [String: Any]) -> Bool {
        (group == nil || event["group"] as? String == group) && (service == nil || event["service"] as? String == service)
    }

    func run() throws {
        let base = (url ?? Status.baseURL(fromConfig: configPath)).trimmingCharacters(in: CharacterSet(charactersIn: "/"))
        var after = UInt64(since) ?? 0
        var first = true
        repeat {
            var target = "\(base)/v1/events?since=\(after)&limit=\(limit)"
            if first && fromHistory {
                // The whole span from history; new events are then followed by id.
                let from = UInt64(since) == nil ? since : "30d"
                target = "\(base)/v1/events?from=\(History.queryEscaped(from))&limit=10000"
                    + (group.map { "&group=\(History.queryEscaped($0))" } ?? "")
                    + (service.map { "&service=\(History.queryEscaped($0))" } ?? "")
            }
            let response: HTTPFetch.Response
            switch HTTPFetch.request(url: target) {
            case .failure(let failure):
                printError("vitals events: cannot reach the agent at \(failure)")
                throw ExitCode(NagiosExit.unknown.rawValue)
            case .success(let r) where r.status != 200:
                printError("vitals events: \(target) answered \(r.status): \(r.text)")
                throw ExitCode(NagiosExit.unknown.rawValue)
            case .success(let r):
                response = r
            }
            guard let object = try? JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any],
                  let events = object["events"] as? [[String: Any]] else {
                printError("vitals events: \(target) did not answer with an event list")
                throw ExitCode(NagiosExit.unknown.rawValue)
            }
            for event in events {
                if let id = event["id"] as? Int { after = max(after, UInt64(id)) }
                guard matches(event), !(first && fromHistory && UInt64(since).map({ UInt64(event["id"] as? Int ?? 0) <= $0 }) == true) else { continue }
                print(json ? Self.jsonLine(event) : Self.line(event))
            }
            if first && fromHistory, after == 0, let last = object["last_id"] as? Int { after = UInt64(last) }
            first = false
            fflush(nil)
            // A full page means more are waiting: fetch at once.
            if follow && events.count < limit { Thread.sleep(forTimeInterval: 1) }
        } while follow
    }

    /// `12  2026-11-27T21:03:04.123Z  failover  group web  web-1 → web-2  reason  [promote: ok]`
    static func line(_ e: [String: Any]) -> String {
        let id = e["id"].map { "\($0)" } ?? "?"
        let time = e["time"] as? String ?? ""
        let kind = e["kind"] as? String ?? ""
        let subject = (e["group"] as? String).map { "group \($0)" } ?? (e["service"] as? String) ?? "agent"
        var move = ""
        if e["from"] != nil || e["to"] != nil { move = "  \(e["from"] as? String ?? "none") → \(e["to"] as? String ?? "none")" }
        let reason = e["reason"] as? String ?? ""
        let actions = (e["actions"] as? [[String: Any]] ?? []).map { action -> String in
            let name = action["action"] as? String ?? "?"
            let result = (action["result"] as? [String: Any])?["message"] as? String ?? "?"
            return "\(name): \(result)"
        }
        return "\(id)  \(time)  \(kind)  \(subject)\(move)  \(reason)" + (actions.isEmpty ? "" : "  [\(actions.joined(separator: "; "))]")
    }

    static func jsonLine(_ e: [String: Any]) -> String {
        let data = (try? JSONSerialization.data(withJSONObject: e, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }
}
