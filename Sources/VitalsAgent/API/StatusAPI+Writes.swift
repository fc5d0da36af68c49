import Foundation
import VitalsCore
import VitalsHTTP
import VitalsSystem

/// The write endpoints: every POST needs the bearer token. Each is one input
/// to the owner; the answer lists the events it caused.
extension StatusAPI {

    /// Applies an operator command and answers with the events it caused.
    func perform(_ input: AgentInput, subject: String) -> HTTPResponse {
        if let refusal = followerRefusal() { return refusal }
        do {
            let events = try owner.apply(input)
            struct Answer: Encodable {
                var subject: String
                var events: [AgentEvent]
            }
            return .json(body: view.encode(Answer(subject: subject, events: events)))
        } catch {
            switch error {
            case .unknownGroup, .unknownService:
                return .error(status: .notFound, message: error.description)
            case .refused, .notAHeartbeatService, .actionsNotRun:
                return .error(status: .conflict, message: error.description)
            }
        }
    }

    /// In a cluster, operator commands change decision state, which only the
    /// leader holds: anywhere else they answer 409 with the leader's name and
    /// address, to send them there (not forwarded: the caller sees where its
    /// command went).
    func followerRefusal() -> HTTPResponse? {
        guard let cluster = owner.clusterState(), !cluster.mayAct else { return nil }
        let leader = cluster.leader
        let message = leader.map { "this agent (\(cluster.agent)) is a follower; send the command to the leader, \($0)"
            + (cluster.leaderAddress.map { " at \($0)" } ?? "") }
            ?? "no agent leads the cluster (\(cluster.role.description)); commands are refused until one does"
        struct Answer: Encodable {
            struct Failure: Encodable {
                var status: Int
                var message: String
            }
            var error: Failure
            var role: String
            var leader: String?
            var leaderAddress: String?
        }
        return HTTPResponse(status: .conflict, headers: ["Content-Type": "application/json"],
                            body: view.encode(Answer(error: .init(status: 409, message: message), role: cluster.role.name,
                                                     leader: leader,
                                                     leaderAddress: leader == nil ? nil : cluster.leaderAddress)))
    }

    /// The fields each group command takes (`WriteFields`).
    static func fields(ofGroupCommand command: String) -> WriteFields {
        switch command {
        case "switchover": .switchover
        case "hold": .hold
        default: .none
        }
    }

    func groupCommand(_ command: String, group: String, _ arguments: WriteFields.Arguments) -> HTTPResponse {
        switch command {
        case "switchover":
            guard let target = arguments.text("to"), !target.isEmpty else {
                return .error(status: .badRequest, message: "switchover needs a target member: {\"to\": \"web-2\"}")
            }
            return perform(.switchover(group: group, to: target), subject: group)
        case "hold":
            return perform(.hold(group: group, reason: arguments.text("reason") ?? "held by an operator",
                                 force: arguments.flag("force")), subject: group)
        default:
            return perform(.release(group: group), subject: group)
        }
    }

    func maintenance(service: String, on: Bool, _ arguments: WriteFields.Arguments) -> HTTPResponse {
        // `WriteFields.maintenance` lets through at most one of the two, and only a future `until`.
        let until = arguments.duration("for").map { clock.now().adding($0) } ?? arguments.time("until")
        let reason = arguments.text("reason") ?? (on ? "maintenance by an operator" : "ready again")
        return perform(.maintenance(service: service, on: on, reason: reason, until: on ? until : nil,
                                    force: arguments.flag("force")), subject: service)
    }

    /// What a heartbeat URL's last segment says: nothing (success), `start`, `fail` or an exit status.
    private func beat(suffix: String?) -> (BeatKind, exitStatus: Int?)? {
        switch suffix {
        case nil: return (.success, nil)
        case "start": return (.start, nil)
        case "fail": return (.fail, nil)
        case let text?:
            guard let code = Int(text), (0...255).contains(code) else { return nil }
            return (code == 0 ? .success : .fail, code)
        }
    }

    private func noSuchBeat(_ suffix: String?) -> HTTPResponse {
        .error(status: .notFound,
               message: "no such heartbeat endpoint: \(suffix ?? "") (use start, fail or an exit status 0-255)")
    }

    /// `/v1/ping/{key}[/start|/fail|/{code}]`: a heartbeat opened by its key
    /// alone. A wrong key is counted and answered like any unknown path, the
    /// same whatever was sent, so a guess learns nothing.
    func ping(key: String, suffix: String?, request: HTTPRequest) -> HTTPResponse {
        guard beat(suffix: suffix) != nil else { return noSuchBeat(suffix) }
        guard let keys, let service = keys.service(forKey: key) else {
            keys?.refused(from: request.remoteAddress?.host, at: clock.now())
            return Self.wrongKey
        }
        return heartbeat(service, suffix: suffix, request: request)
    }

    private static let wrongKey = HTTPResponse.error(status: .notFound, message: "not found").prepared()

    func heartbeat(_ name: String, suffix: String?, request: HTTPRequest) -> HTTPResponse {
        guard let (kind, exitStatus) = beat(suffix: suffix) else { return noSuchBeat(suffix) }
        var duration: Duration?
        if let text = request.queryValue("duration") {
            guard let parsed = DurationText.parse(text) else {
                return .error(status: .badRequest, message: "duration: expected a duration like 250ms, 2s, 1m, got \"\(text)\"")
            }
            duration = parsed
        }
        // The tail of what came with the ping: a job's output, its error.
        let pingBody = PingBody.tail(of: request.body, limit: owner.view.config.agent.pingBodyLimit)
        do {
            try owner.apply(.heartbeat(kind, service: name, duration: duration, exitStatus: exitStatus, body: pingBody))
        } catch {
            switch error {
            case .unknownService, .unknownGroup:
                return .error(status: .notFound, message: error.description)
            case .notAHeartbeatService, .refused, .actionsNotRun:
                return .error(status: .conflict, message: error.description)
            }
        }
        // The beat changed the state, so the view published with it shows it.
        guard case .heartbeat(let tracker)? = owner.view.core.entry(name)?.health else {
            return .error(status: .notFound, message: "no such service: \(name)")
        }
        let body = #"{"service":"# + jsonString(name)
            + #","beat":"# + jsonString(kind.rawValue)
            + #","state":"# + jsonString(tracker.state.rawValue)
            + #","deadline":"# + jsonString(JSONTime.string(tracker.deadline)) + "}\n"
        return .json(body: body)
    }

    func authorize(_ request: HTTPRequest) -> HTTPResponse? {
        guard let header = request.headers["Authorization"] else {
            return unauthorized("missing Authorization: Bearer token")
        }
        let prefix = "Bearer "
        guard header.count > prefix.count, header.lowercased().hasPrefix(prefix.lowercased()),
              token.matches(String(header.dropFirst(prefix.count)).trimmingCharacters(in: .whitespaces)) else {
            return unauthorized("wrong token")
        }
        return nil
    }

    func unauthorized(_ message: String) -> HTTPResponse {
        var response = HTTPResponse.error(status: .unauthorized, message: message)
        response.headers.replaceOrAdd(name: "WWW-Authenticate", value: #"Bearer realm="vitals""#)
        return response
    }

    func reloadConfig() -> HTTPResponse {
        guard let reload else { return .error(status: .notImplemented, message: "reload is not available here") }
        switch reload() {
        case .success(let summary):
            struct Section: Encodable {
                var added: [String]
                var removed: [String]
                var changed: [String]
                var unchanged: Int
                init(_ changes: ReloadSummary.Changes) {
                    (added, removed, changed, unchanged) = (changes.added, changes.removed, changes.changed, changes.kept)
                }
            }
            // The services' four fields stay at the top level, as they always were.
            struct Answer: Encodable {
                var reloaded: Bool
                var added: [String]
                var removed: [String]
                var changed: [String]
                var unchanged: Int
                var groups: Section
                var actions: Section
            }
            let services = summary.services
            return .json(body: view.encode(Answer(reloaded: true, added: services.added, removed: services.removed,
                                                  changed: services.changed, unchanged: services.kept,
                                                  groups: Section(summary.groups), actions: Section(summary.actions))))
        case .failure(let failure):
            struct Refusal: Encodable {
                struct Detail: Encodable {
                    var status: Int
                    var message: String
                    var errors: [String]
                }
                var error: Detail
            }
            return .json(status: .unprocessableContent, body: view.encode(Refusal(error: .init(
                status: 422, message: "configuration not reloaded; the previous one stays in force",
                errors: failure.errors))))
        }
    }
}

extension StatusAPI: HTTPDeferringHandler {
    /// Answers reads at once on the server's loop. A write is decided at once
    /// too, but answered only when the owner has recorded what it decided
    /// (journaled and fsync'd in the agent): a maintenance, hold or
    /// switchover acknowledged just before a crash is not lost. A reload's
    /// file is read and parsed on a thread of its own, and history reads
    /// run on the history queue. Reads go on being served meanwhile.
    public func handle(_ request: HTTPRequest, deferral: HTTPDeferral) -> HTTPResponse? {
        if reload != nil, request.method == .post, request.pathSegments == ["v1", "reload"] {
            if let denied = authorize(request) { return denied }
            if case .failure(let rejection) = WriteFields.none.parse(query: request.queryItems, body: request.body,
                                                                      now: clock.now()) {
                return .error(status: .badRequest, message: rejection.description)
            }
            let responder = deferral.responder()
            LoopThread.detach(name: "vitals-reload") { [self] in
                responder.respond(reloadConfig())
            }
            return nil
        }
        if isHistoryRoute(request) {
            let responder = deferral.responder()
            historyQueue.async { [self] in responder.respond(historyResponse(request)) }
            return nil
        }
        let response = handle(request)
        guard request.method == .post, (200..<300).contains(response.status.code) else { return response }
        let responder = deferral.responder()
        let path = request.pathSegments
        let changesDecisions = path.count == 4 && (path[1] == "groups" || path[1] == "services")
        if changesDecisions, let storeDecisions {
            // A switchover, hold, release or maintenance: journaled here, and
            // in a cluster stored in etcd too, before the operator hears yes.
            owner.whenRecorded { Task { await storeDecisions(); responder.respond(response) } }
        } else {
            owner.whenRecorded { responder.respond(response) }
        }
        return nil
    }
}
