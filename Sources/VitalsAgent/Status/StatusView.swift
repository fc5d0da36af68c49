import Foundation
import Synchronization
import VitalsCore
import VitalsStore
import VitalsHTTP

/// Renders the status documents from the agent's state, once per change, and
/// serves the same bytes to every request until the state changes again.
///
/// A flood of GETs never touches the decision path: it reads cached bytes.
/// A state change (a transition, a heartbeat, maintenance) is visible at once;
/// fields that move with every probe (last probe time, latency) are
/// re-rendered at most every `refreshInterval`.
public final class StatusView: Sendable {
    /// What can be asked for.
    public enum Document: Hashable, Sendable {
        case status
        case services
        case service(String)
        case explain(String)
        case groups
        case group(String)
    }

    private struct Cache {
        var version: UInt64 = .max
        var stateVersion: UInt64 = .max
        var renderedAt: Date = .distantPast
        /// Prepared `200 application/json` responses, head encoded once.
        var responses: [Document: HTTPResponse] = [:]
        /// `responses[.status]`, the hot one, without hashing.
        var status: HTTPResponse?
        /// `firstRoundComplete` of the snapshot taken at `readyVersion`.
        var readyVersion: UInt64 = .max
        var ready = false
    }

    private let state: AgentState
    private let clock: any VitalsClock
    private let refreshInterval: Duration
    private let storeHealth: StoreHealth?
    private let cache = Mutex(Cache())
    private let encoder = JSONEncoder.vitals()

    /// Encodes anything the way the status documents are encoded (one line, snake_case keys).
    func encode(_ value: some Encodable) -> HTTPBody {
        var bytes = (try? encoder.encode(value)).map(Array.init) ?? Array("{}".utf8)
        bytes.append(UInt8(ascii: "\n"))
        return HTTPBody(bytes: bytes)
    }

    public init(state: AgentState, clock: any VitalsClock, refreshInterval: Duration = .milliseconds(250),
                storeHealth: StoreHealth? = nil) {
        self.state = state
        self.clock = clock
        self.refreshInterval = refreshInterval
        self.storeHealth = storeHealth
    }

    /// The rendered document, or nil when it names a service or group that does not exist.
    public func body(_ document: Document) -> HTTPBody? {
        response(document)?.body
    }

    /// The document as a prepared `200` JSON response (head encoded once per
    /// rendering), or nil when it names a service or group that does not exist.
    public func response(_ document: Document) -> HTTPResponse? {
        let now = clock.now()
        let version = state.version
        let stateVersion = state.stateVersion
        return cache.withLock { cache in
            let stale = cache.version != version
                && (cache.stateVersion != stateVersion || now.duration(since: cache.renderedAt) >= refreshInterval)
            if stale {
                cache.responses.removeAll(keepingCapacity: true)
                cache.status = nil
                cache.version = version
                cache.stateVersion = stateVersion
                cache.renderedAt = now
            }
            if case .status = document {
                if let response = cache.status { return response }
            } else if let response = cache.responses[document] {
                return response
            }
            guard let body = render(document, snapshot: state.snapshot(), now: now) else { return nil }
            let response = HTTPResponse.json(body: body).prepared()
            if case .status = document { cache.status = response } else { cache.responses[document] = response }
            return response
        }
    }

    /// Whether every probed service has reported (`Snapshot.firstRoundComplete`),
    /// without building a snapshot while the state version is unchanged: the
    /// flag only changes together with the version.
    public var firstRoundComplete: Bool {
        let version = state.version
        if let ready = cache.withLock({ $0.readyVersion == version ? $0.ready : nil }) { return ready }
        let snapshot = state.snapshot()
        cache.withLock { cache in
            cache.readyVersion = snapshot.version
            cache.ready = snapshot.firstRoundComplete
        }
        return snapshot.firstRoundComplete
    }

    private func render(_ document: Document, snapshot: AgentState.Snapshot, now: Date) -> HTTPBody? {
        let services = snapshot.services
        func status(_ entry: (config: ServiceConfig, health: ServiceHealth, lastProbe: ProbeResult?)) -> ServiceStatus {
            var s = Self.serviceStatus(entry.config, entry.health, entry.lastProbe)
            s.blockedBy = snapshot.blockedBy[entry.config.name]
            s.maintenanceUntil = snapshot.maintenanceUntil[entry.config.name].map(JSONTime.string)
            return s
        }
        func serviceStatus(named name: String) -> ServiceStatus? {
            services.first { $0.config.name == name }.map(status)
        }
        func groupStatus(_ engine: GroupEngine, _ all: [ServiceStatus]) -> GroupStatus {
            Self.groupStatus(engine, all, events: snapshot.recentEvents.filter { $0.group == engine.group.name }.suffix(10))
        }
        let data: Data?
        switch document {
        case .status:
            let all = services.map(status)
            var agent = Self.agentStatus(snapshot, services: all, now: now)
            agent.store = storeHealth.map { AgentStatus.StoreStatus($0.report) }
            data = try? encoder.encode(StatusDocument(
                agent: agent,
                services: all,
                groups: snapshot.groups.map { groupStatus($0, all) }))
        case .services:
            data = try? encoder.encode(ServiceList(services: services.map(status)))
        case .service(let name):
            guard let status = serviceStatus(named: name) else { return nil }
            data = try? encoder.encode(status)
        case .explain(let name):
            guard let entry = services.first(where: { $0.config.name == name }) else { return nil }
            var explain = Self.explain(entry.config, entry.health, entry.lastProbe)
            explain.service = status(entry)
            data = try? encoder.encode(explain)
        case .groups:
            let all = services.map(status)
            data = try? encoder.encode(GroupList(groups: snapshot.groups.map { groupStatus($0, all) }))
        case .group(let name):
            guard let engine = snapshot.groups.first(where: { $0.group.name == name }) else { return nil }
            data = try? encoder.encode(groupStatus(engine, services.map(status)))
        }
        guard var bytes = data.map(Array.init) else { return nil }
        bytes.append(UInt8(ascii: "\n"))
        return HTTPBody(bytes: bytes)
    }

    static func agentStatus(_ snapshot: AgentState.Snapshot, services: [ServiceStatus], now: Date) -> AgentStatus {
        func count(_ s: HealthState) -> Int { services.lazy.filter { $0.state == s }.count }
        return AgentStatus(
            version: VitalsVersion.current,
            startedAt: JSONTime.string(snapshot.startedAt),
            uptimeSeconds: max(0, Int(now.timeIntervalSince(snapshot.startedAt))),
            configPath: snapshot.configPath,
            ready: snapshot.firstRoundComplete,
            counts: .init(services: services.count, groups: snapshot.config.groups.count,
                          up: count(.up), degraded: count(.degraded), down: count(.down),
                          unknown: count(.unknown), maintenance: count(.maintenance), flapping: count(.flapping)))
    }

    static func target(of check: Check) -> String {
        switch check {
        case .http(let http): http.url
        case .tcp(let tcp): tcp.host.contains(":") ? "[\(tcp.host)]:\(tcp.port)" : "\(tcp.host):\(tcp.port)"
        case .exec(let exec): exec.argv.first ?? ""
        case .heartbeat: "push"
        }
    }

    static func serviceStatus(_ config: ServiceConfig, _ health: ServiceHealth, _ lastProbe: ProbeResult?) -> ServiceStatus {
        var heartbeat: ServiceStatus.HeartbeatStatus?
        if case .heartbeat(let tracker) = health {
            heartbeat = .init(every: DurationText.format(tracker.check.every),
                              grace: DurationText.format(tracker.check.grace),
                              lastBeat: tracker.lastBeat.map(JSONTime.string),
                              deadline: JSONTime.string(tracker.deadline),
                              runningSince: tracker.runningSince.map(JSONTime.string),
                              lastExitStatus: tracker.lastExitStatus,
                              lastDurationMs: tracker.lastDuration?.jsonMilliseconds)
        }
        // Until the first decision, say what the probes see so far rather
        // than the tracker's "not probed yet".
        var reason = health.reason
        if health.state == .unknown, let lastProbe {
            reason = lastProbe.outcome == .failed ? "last probe: \(lastProbe.reason)" : "last probe ok; awaiting rise"
        }
        return ServiceStatus(
            name: config.name, kind: config.check.kind, target: target(of: config.check),
            state: health.state, since: JSONTime.string(health.since), reason: reason,
            rule: health.decidingRule, consecutiveSuccesses: health.consecutiveSuccesses,
            consecutiveFailures: health.consecutiveFailures,
            lastProbeAt: lastProbe.map { JSONTime.string($0.time) },
            latencyMs: lastProbe?.latency?.jsonMilliseconds,
            dependsOn: config.dependsOn, blockedBy: nil, maintenanceUntil: nil, heartbeat: heartbeat)
    }

    static func explain(_ config: ServiceConfig, _ health: ServiceHealth, _ lastProbe: ProbeResult?) -> ExplainDocument {
        let t = config.timing
        let recent: [ProbeResult]
        switch health {
        case .probed(let tracker): recent = tracker.recentResults
        case .heartbeat: recent = []
        }
        return ExplainDocument(
            service: serviceStatus(config, health, lastProbe),
            rules: .init(interval: DurationText.format(t.interval),
                         fastInterval: DurationText.format(t.effectiveFastInterval),
                         timeout: DurationText.format(t.timeout), rise: t.rise, fall: t.fall,
                         fallWindow: t.fallWindow.map { "\($0.failures) failures within the last \($0.probes) probes" },
                         startPeriod: DurationText.format(t.startPeriod),
                         flapping: t.flapping.changes == 0 ? "off"
                             : "more than \(t.flapping.changes) changes within \(DurationText.format(t.flapping.window)), settle \(DurationText.format(t.flapping.settle))"),
            recent: recent.map { .init(time: JSONTime.string($0.time), outcome: $0.outcome,
                                       latencyMs: $0.latency?.jsonMilliseconds, reason: $0.reason) })
    }

    static func groupStatus(_ engine: GroupEngine, _ services: [ServiceStatus],
                            events: some Collection<AgentEvent>) -> GroupStatus {
        let group = engine.group
        let members = group.members.map { name in
            let s = services.first { $0.name == name }
            return GroupStatus.Member(name: name, state: s?.state ?? .unknown, reason: s?.reason ?? "",
                                      active: engine.active.contains(name), blockedBy: engine.rootCause(of: name))
        }
        let serving = members.filter { $0.state.isServing && $0.blockedBy == nil }.map(\.name)
        let state = serving.isEmpty ? "down" : serving.count == members.count ? "up" : "degraded"
        return GroupStatus(
            name: group.name, mode: group.mode.name, state: state, condition: engine.condition.rawValue,
            active: engine.active, activeMember: engine.activeMember, members: members, serving: serving,
            held: engine.isHeld,
            hold: engine.hold.map { .init(cause: $0.cause.rawValue, reason: $0.reason, since: JSONTime.string($0.since)) },
            isolated: engine.isIsolated, isolationReason: engine.isolationReason,
            pending: engine.pending.map { .init(kind: $0.kind.rawValue, from: $0.from, to: $0.to,
                                                notBefore: JSONTime.string($0.notBefore), reason: $0.reason) },
            lastMoveAt: engine.lastMoveAt.map(JSONTime.string), recentFailovers: engine.recentMoves.count,
            recentEvents: Array(events))
    }
}
