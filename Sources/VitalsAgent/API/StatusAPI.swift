import Foundation
import VitalsCore
import VitalsHistory
import VitalsStore
import VitalsHTTP

/// The agent's HTTP API: status documents for operators, load balancers and
/// scripts, the token-protected write endpoints (heartbeats), and the
/// heartbeats' own ping URLs, opened by their keys.
///
/// Reads serve bytes that `StatusView` rendered from the last published
/// view, and never wait for a decision; writes are inputs to `StateOwner`,
/// the one owner of state. Every error is a JSON document
/// with a message.
public struct StatusAPI: HTTPHandler {
    let owner: StateOwner
    let view: StatusView
    let token: BearerToken
    let allowGetHeartbeats: Bool
    let clock: any VitalsClock
    private let storeHealth: StoreHealth?
    let reload: (@Sendable () -> Result<ReloadSummary, ConfigFile.Failure>)?
    /// Renders `/metrics` (Prometheus text), when the agent provides it.
    private let metrics: (@Sendable () -> String)?
    /// In a cluster: stores the leader's decision state in etcd, so an
    /// operator's command is acknowledged only once a new leader would find it.
    let storeDecisions: (@Sendable () async -> Void)?
    /// The heartbeats' ping keys, for `/v1/ping/{key}`; nil: no such route.
    let keys: HeartbeatKeys?
    /// The history store, for the history routes; nil: no such routes.
    let history: HistoryRecorder?
    /// Where history reads run, so the server's loop never waits for SQLite.
    let historyQueue = DispatchQueue(label: "vitals-history-read")

    public init(owner: StateOwner, view: StatusView, token: BearerToken, allowGetHeartbeats: Bool,
                clock: any VitalsClock, storeHealth: StoreHealth? = nil,
                reload: (@Sendable () -> Result<ReloadSummary, ConfigFile.Failure>)? = nil,
                metrics: (@Sendable () -> String)? = nil, keys: HeartbeatKeys? = nil,
                storeDecisions: (@Sendable () async -> Void)? = nil, history: HistoryRecorder? = nil) {
        self.storeDecisions = storeDecisions
        self.owner = owner
        self.view = view
        self.token = token
        self.allowGetHeartbeats = allowGetHeartbeats
        self.clock = clock
        self.storeHealth = storeHealth
        self.reload = reload
        self.metrics = metrics
        self.keys = keys
        self.history = history
    }

    /// The status page never changes: built and prepared once.
    private static let statusPage = HTTPResponse(
        status: .ok, headers: ["Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-cache"],
        body: HTTPBody(string: StatusPage.html)).prepared()

    public func handle(_ request: HTTPRequest) -> HTTPResponse {
        // The hot routes by their exact bytes, without splitting the path;
        // any other spelling (percent-encoded, trailing slash) takes the
        // general route below, which answers the same.
        switch request.path {
        case "/": return read(request) { Self.statusPage }
        case "/v1/status": return read(request) { document(.status) }
        case "/healthz": return read(request) { healthz() }
        default: break
        }
        let segments = request.pathSegments
        switch segments.first {
        case "healthz" where segments.count == 1:
            return read(request) { healthz() }
        case "metrics" where segments.count == 1 && metrics != nil:
            return read(request) {
                HTTPResponse(status: .ok, headers: ["Content-Type": MetricsRenderer.contentType],
                             body: HTTPBody(string: metrics?() ?? ""))
            }
        case "v1" where isHistoryRoute(request):
            return historyResponse(request)
        case "v1":
            return v1(request, Array(segments.dropFirst()))
        default:
            return .error(status: .notFound, message: "no such path: \(request.path)")
        }
    }

    private func v1(_ request: HTTPRequest, _ path: [String]) -> HTTPResponse {
        switch (path.first, path.count) {
        case ("status", 1):
            return read(request) { document(.status) }
        case ("services", 1):
            return read(request) { document(.services) }
        case ("services", 2):
            return read(request) { document(.service(path[1]), missing: "no such service: \(path[1])") }
        case ("services", 3) where path[2] == "explain":
            return read(request) { document(.explain(path[1]), missing: "no such service: \(path[1])") }
        case ("services", 3) where path[2] == "badge.svg":
            return read(request) {
                guard let health = owner.view.core.entry(path[1])?.health else {
                    return .error(status: .notFound, message: "no such service: \(path[1])")
                }
                return HTTPResponse(status: .ok,
                                    headers: ["Content-Type": "image/svg+xml", "Cache-Control": "no-cache, max-age=0"],
                                    body: HTTPBody(string: Badge.svg(label: path[1], state: health.state)))
            }
        case ("services", 3) where path[2] == "up":
            return read(request) { up(path[1], strict: request.queryValue("strict") == "1") }
        case ("services", 3) where path[2] == "maintenance" || path[2] == "ready":
            let on = path[2] == "maintenance"
            return write(request, on ? .maintenance : .ready) { maintenance(service: path[1], on: on, $0) }
        case ("groups", 1):
            return read(request) { document(.groups) }
        case ("groups", 2):
            return read(request) { document(.group(path[1]), missing: "no such group: \(path[1])") }
        case ("groups", 3) where path[2] == "active":
            return read(request) { active(group: path[1]) }
        case ("groups", 3) where path[2] == "pick":
            return read(request) { pick(group: path[1], request) }
        case ("groups", 5) where path[2] == "members" && path[4] == "active":
            return read(request) { memberActive(group: path[1], member: path[3]) }
        case ("groups", 3) where ["switchover", "hold", "release"].contains(path[2]):
            return write(request, Self.fields(ofGroupCommand: path[2])) { groupCommand(path[2], group: path[1], $0) }
        case ("events", 1):
            return read(request) { events(request) }
        case ("cluster", 1):
            return read(request) {
                guard let body = view.clusterBody() else {
                    return .error(status: .notFound, message: "this agent is not in a cluster (no cluster: in its config)")
                }
                return .json(body: body)
            }
        case ("reload", 1):
            return write(request, .none) { _ in reloadConfig() }
        case ("heartbeat", 2), ("heartbeat", 3):
            let methods: [HTTPMethod] = allowGetHeartbeats ? [.post, .get] : [.post]
            guard methods.contains(request.method) else { return notAllowed(methods) }
            if let denied = authorize(request) { return denied }
            return heartbeat(path[1], suffix: path.count == 3 ? path[2] : nil, request: request)
        case ("ping", 2) where keys != nil, ("ping", 3) where keys != nil:
            // The key is the secret: no token, and GET for tools that can only GET.
            guard request.method == .post || request.method == .get else { return notAllowed([.post, .get]) }
            return ping(key: path[1], suffix: path.count == 3 ? path[2] : nil, request: request)
        default:
            return .error(status: .notFound, message: "no such path: \(request.path)")
        }
    }

    // MARK: Reads

    private func read(_ request: HTTPRequest, _ answer: () -> HTTPResponse) -> HTTPResponse {
        switch request.method {
        case .get, .head:
            return answer()
        default:
            return notAllowed([.get, .head])
        }
    }

    private func document(_ doc: StatusView.Document, missing: String = "not found") -> HTTPResponse {
        guard let response = view.response(doc) else { return .error(status: .notFound, message: missing) }
        return response
    }

    private static let healthzStarting = HTTPResponse.json(
        status: .serviceUnavailable,
        body: #"{"status":"starting","message":"waiting for the first round of probes"}"# + "\n").prepared()
    private static let healthzOK = HTTPResponse.json(body: #"{"status":"ok"}"# + "\n").prepared()

    private func healthz() -> HTTPResponse {
        if !view.firstRoundComplete {
            return Self.healthzStarting
        }
        // A failing state directory does not stop probing or serving: the
        // agent is alive (200) but says what it cannot do.
        if let storeHealth, storeHealth.isDegraded {
            let report = storeHealth.report
            if report.isDegraded {
                let message = report.failing.first?.message ?? "state directory writes are failing"
                return .json(body: #"{"status":"degraded","message":"# + jsonString("cannot write state: \(message)") + "}\n")
            }
        }
        if let cluster = owner.view.core.cluster, case .noLeader(let reason) = cluster.role {
            // Probing and serving go on; no agent acts, and this says why.
            return .json(body: #"{"status":"ok","cluster":"none","message":"# + jsonString("no leader: \(reason)") + "}\n")
        }
        return Self.healthzOK
    }

    private func up(_ name: String, strict: Bool) -> HTTPResponse {
        guard let health = owner.view.core.entry(name)?.health else {
            return .error(status: .notFound, message: "no such service: \(name)")
        }
        let serving = strict ? health.state == .up : health.state.isServing
        return .text(status: serving ? .ok : .serviceUnavailable, body: health.state.rawValue + "\n")
    }

    private func events(_ request: HTTPRequest) -> HTTPResponse {
        var since: UInt64 = 0
        var limit = 100
        if let text = request.queryValue("since") {
            guard let value = UInt64(text) else {
                return .error(status: .badRequest, message: "since: expected an event id (a whole number), got \"\(text)\"")
            }
            since = value
        }
        if let text = request.queryValue("limit") {
            guard let value = Int(text), (1...1000).contains(value) else {
                return .error(status: .badRequest, message: "limit: expected a whole number from 1 to 1000, got \"\(text)\"")
            }
            limit = value
        }
        let page = owner.view.core.recentEvents.after(since, limit: limit)
        return .json(body: view.encode(EventList(events: page, lastId: page.last?.id ?? since)))
    }

    // MARK: Routing

    private struct Routed: Encodable {
        var member: String
        var address: String?
    }

    private func active(group: String) -> HTTPResponse {
        guard let (mode, members) = owner.active(group: group) else {
            return .error(status: .notFound, message: "no such group: \(group)")
        }
        struct Answer: Encodable {
            var group: String
            var mode: String
            var active: [Routed]
        }
        let answer = Answer(group: group, mode: mode,
                            active: members.map { Routed(member: $0.member, address: $0.address?.description) })
        if members.isEmpty {
            return .error(status: .serviceUnavailable, message: "group \(group) has no active member")
        }
        return .json(body: view.encode(answer))
    }

    private func pick(group: String, _ request: HTTPRequest) -> HTTPResponse {
        let key = request.queryValue("key").flatMap { $0.isEmpty ? nil : $0 } ?? request.remoteAddress?.host
        switch owner.pick(group: group, key: key) {
        case .unknownGroup:
            return .error(status: .notFound, message: "no such group: \(group)")
        case .noneServing(let why):
            return .error(status: .serviceUnavailable, message: why)
        case .picked(let choice, let address):
            struct Answer: Encodable {
                var group: String
                var member: String
                var address: String?
                var policy: String
                var reason: String
            }
            return .json(body: view.encode(Answer(group: group, member: choice.member, address: address?.description,
                                                  policy: choice.policy.rawValue, reason: choice.reason)))
        }
    }

    /// For load balancers that health-check backends over HTTP: 200 while
    /// `member` is active in `group`, 503 otherwise.
    private func memberActive(group: String, member: String) -> HTTPResponse {
        guard let (_, members) = owner.active(group: group) else {
            return .error(status: .notFound, message: "no such group: \(group)")
        }
        guard owner.view.config.group(named: group)?.members.contains(member) == true else {
            return .error(status: .notFound, message: "no such member of group \(group): \(member)")
        }
        let isActive = members.contains { $0.member == member }
        return .text(status: isActive ? .ok : .serviceUnavailable, body: isActive ? "active\n" : "standby\n")
    }

    func notAllowed(_ methods: [HTTPMethod]) -> HTTPResponse {
        let allow = methods.map(\.rawValue).joined(separator: ", ")
        var response = HTTPResponse.error(status: .methodNotAllowed, message: "method not allowed; use \(allow)")
        response.headers.replaceOrAdd(name: "Allow", value: allow)
        return response
    }

    func jsonString(_ s: String) -> String {
        let data = (try? JSONSerialization.data(withJSONObject: [s], options: [.withoutEscapingSlashes])) ?? Data("[\"\"]".utf8)
        return String(decoding: data.dropFirst().dropLast(), as: UTF8.self)
    }
}
