import Foundation
import Synchronization
import VitalsCore
import VitalsStore
import VitalsHTTP

/// Renders the status documents from the last published `AgentView`, once
/// per view, and serves the same bytes to every request until a newer view
/// is published.
///
/// A flood of GETs never touches the decision path: it reads a published
/// view and cached bytes, and never waits for the owner's lock.
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
        /// The view the responses below were rendered from.
        var view: AgentView?
        /// Prepared `200 application/json` responses, head encoded once.
        var responses: [Document: HTTPResponse] = [:]
        /// `responses[.status]`, the hot one, without hashing.
        var status: HTTPResponse?
    }

    private let owner: StateOwner
    private let clock: any VitalsClock
    private let storeHealth: StoreHealth?
    private let cache = Mutex(Cache())
    private let encoder = JSONEncoder.vitals()

    /// Encodes anything the way the status documents are encoded (one line, snake_case keys).
    func encode(_ value: some Encodable) -> HTTPBody {
        var bytes = (try? encoder.encode(value)).map(Array.init) ?? Array("{}".utf8)
        bytes.append(UInt8(ascii: "\n"))
        return HTTPBody(bytes: bytes)
    }

    public init(owner: StateOwner, clock: any VitalsClock, storeHealth: StoreHealth? = nil) {
        self.owner = owner
        self.clock = clock
        self.storeHealth = storeHealth
    }

    /// The rendered document, or nil when it names a service or group that does not exist.
    public func body(_ document: Document) -> HTTPBody? {
        response(document)?.body
    }

    /// The document as a prepared `200` JSON response (head encoded once per
    /// view), or nil when it names a service or group that does not exist.
    public func response(_ document: Document) -> HTTPResponse? {
        let view = owner.view
        return cache.withLock { cache in
            if cache.view !== view {
                cache.responses.removeAll(keepingCapacity: true)
                cache.status = nil
                cache.view = view
            }
            if case .status = document {
                if let response = cache.status { return response }
            } else if let response = cache.responses[document] {
                return response
            }
            guard let body = render(document, view: view, now: clock.now()) else { return nil }
            let response = HTTPResponse.json(body: body).prepared()
            if case .status = document { cache.status = response } else { cache.responses[document] = response }
            return response
        }
    }

    /// `GET /v1/cluster`, from the core's cluster state of this instant
    /// (lease time moves on its own); nil without `cluster:`.
    public func clusterBody() -> HTTPBody? {
        guard let cluster = owner.clusterState() else { return nil }
        let own = owner.view.core.ownReport(at: clock.now())
        var report = own
        report.agent = cluster.agent
        report.address = cluster.views.heard[cluster.agent]?.report.address
        return encode(ClusterDocument(cluster, own: report))
    }

    /// Whether every probed service has reported.
    public var firstRoundComplete: Bool { owner.view.firstRoundComplete }

    private func render(_ document: Document, view: AgentView, now: Date) -> HTTPBody? {
        let core = view.core
        let blockedBy = core.blockedBy
        func status(_ entry: AgentCore.Entry) -> ServiceStatus {
            var s = Self.serviceStatus(entry.config, entry.health, entry.lastProbe)
            s.blockedBy = blockedBy[entry.config.name]
            s.maintenanceUntil = core.maintenanceUntil[entry.config.name].map(JSONTime.string)
            return s
        }
        func groupStatus(_ engine: GroupEngine, _ all: [ServiceStatus]) -> GroupStatus {
            Self.groupStatus(engine, all,
                             events: core.recentEvents.all.filter { $0.group == engine.group.name }.suffix(10))
        }
        let data: Data?
        switch document {
        case .status:
            let all = core.entries.map(status)
            var agent = Self.agentStatus(view, services: all, now: now)
            agent.store = storeHealth.map { AgentStatus.StoreStatus($0.report) }
            agent.cluster = core.cluster.map(ClusterSummary.init)
            data = try? encoder.encode(StatusDocument(
                agent: agent,
                services: all,
                groups: core.coordinator.engines.map { groupStatus($0, all) }))
        case .services:
            data = try? encoder.encode(ServiceList(services: core.entries.map(status)))
        case .service(let name):
            guard let entry = core.entry(name) else { return nil }
            var document = status(entry)
            if case .heartbeat(let tracker) = entry.health {
                document.heartbeat?.recentBeats = tracker.recentBeats.reversed().map {
                    .init(time: JSONTime.string($0.time), kind: $0.kind.rawValue, exitStatus: $0.exitStatus,
                          durationMs: $0.duration?.jsonMilliseconds, body: $0.body)
                }
            }
            data = try? encoder.encode(document)
        case .explain(let name):
            guard let entry = core.entry(name) else { return nil }
            var explain = Self.explain(entry.config, entry.health, entry.lastProbe)
            explain.service = status(entry)
            data = try? encoder.encode(explain)
        case .groups:
            let all = core.entries.map(status)
            data = try? encoder.encode(GroupList(groups: core.coordinator.engines.map { groupStatus($0, all) }))
        case .group(let name):
            guard let engine = core.coordinator.engine(named: name) else { return nil }
            data = try? encoder.encode(groupStatus(engine, engine.group.members.compactMap { core.entry($0) }.map(status)))
        }
        guard var bytes = data.map(Array.init) else { return nil }
        bytes.append(UInt8(ascii: "\n"))
        return HTTPBody(bytes: bytes)
    }

    static func agentStatus(_ view: AgentView, services: [ServiceStatus], now: Date) -> AgentStatus {
        func count(_ s: HealthState) -> Int { services.lazy.filter { $0.state == s }.count }
        return AgentStatus(
            version: VitalsVersion.current,
            startedAt: JSONTime.string(view.startedAt),
            uptimeSeconds: max(0, Int(now.timeIntervalSince(view.startedAt))),
            configPath: view.configPath,
            ready: view.firstRoundComplete,
            counts: .init(services: services.count, groups: view.config.groups.count,
                          up: count(.up), degraded: count(.degraded), down: count(.down),
                          unknown: count(.unknown), maintenance: count(.maintenance), flapping: count(.flapping)))
    }

    static func target(of check: Check) -> String {
        switch check {
        case .http(let http): http.url
        case .tcp(let tcp): tcp.host.contains(":") ? "[\(tcp.host)]:\(tcp.port)" : "\(tcp.host):\(tcp.port)"
        case .exec(let exec): exec.argv.first ?? ""
        case .heartbeat: "push"
        case .dns(let dns): dns.target
        case .grpc(let grpc): grpc.host.contains(":") ? "[\(grpc.host)]:\(grpc.port)" : "\(grpc.host):\(grpc.port)"
        case .icmp(let icmp): icmp.host
        }
    }

    /// What one probe of a tcp, tls or dns check must see to succeed, for
    /// `explain`: `connect to 127.0.0.1:6379, send "PING\r\n", expect a reply
    /// starting with "+PONG", all within 500ms` (dns: `dnsCheckRule`); for
    /// grpc and icmp checks, their own (`grpcRule`, `icmpRule`). Nil for the
    /// other kinds.
    static func checkRule(_ check: Check, timeout: Duration) -> String? {
        if case .dns(let dns) = check { return dnsCheckRule(dns, timeout: timeout) }
        if case .grpc(let grpc) = check { return grpcRule(grpc, address: target(of: check), timeout: timeout) }
        if case .icmp(let icmp) = check { return icmpRule(icmp, timeout: timeout) }
        guard case .tcp(let tcp) = check else { return nil }
        let address = target(of: check)
        let within = DurationText.format(timeout)
        if let tls = tcp.tls {
            let name = tls.serverName ?? tcp.host
            let ca = tls.caFile.map { "the CA in \($0)" } ?? "the system's CAs"
            let days = tls.certMinDays.map { " and have at least \($0) days left" } ?? ""
            return "TLS handshake with \(address) within \(within); the certificate must verify against \(ca) "
                + "for \(name)\(days)"
        }
        guard let expect = tcp.expect else { return "connect to \(address) within \(within)" }
        let send = tcp.send.map { ", send \(ByteEscapes.quoted($0))" } ?? ""
        let reply = switch expect {
        case .prefix(let bytes): "a reply starting with \(ByteEscapes.quoted(bytes))"
        case .regex(let pattern): "a reply matching /\(pattern)/"
        }
        return "connect to \(address)\(send), expect \(reply), all within \(within)"
    }

    static func serviceStatus(_ config: ServiceConfig, _ health: ServiceHealth, _ lastProbe: ProbeResult?) -> ServiceStatus {
        var heartbeat: ServiceStatus.HeartbeatStatus?
        if case .heartbeat(let tracker) = health {
            // One switch on a copy of `runs`: reading `check.every` here crashes
            // Swift 6.3's optimizer in release builds (see HeartbeatTracker.late).
            let runs = tracker.check.runs
            var schedule: (String, String)?
            var every: String?
            switch runs {
            case .every(let period): every = DurationText.format(period)
            case .schedule(let cron, let zone): schedule = (cron.text, zone.identifier)
            }
            heartbeat = .init(every: every,
                              schedule: schedule?.0, tz: schedule?.1,
                              grace: DurationText.format(tracker.check.grace),
                              maxRuntime: tracker.check.maxRuntime.map(DurationText.format),
                              due: JSONTime.string(tracker.due),
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
            reason = switch lastProbe.outcome {
            case .failed, .unknown: "last probe: \(lastProbe.reason)"
            case .ok, .degraded: "last probe ok; awaiting rise"
            }
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
        var nextPing: String?
        switch health {
        case .probed(let tracker): recent = tracker.recentResults
        case .heartbeat(let tracker):
            recent = []
            nextPing = tracker.dueExplanation
        }
        return ExplainDocument(
            service: serviceStatus(config, health, lastProbe), nextPing: nextPing,
            rules: .init(interval: DurationText.format(t.interval),
                         fastInterval: DurationText.format(t.effectiveFastInterval),
                         timeout: DurationText.format(t.timeout), rise: t.rise, fall: t.fall,
                         fallWindow: t.fallWindow.map { "\($0.failures) failures within the last \($0.probes) probes" },
                         startPeriod: DurationText.format(t.startPeriod),
                         flapping: t.flapping.changes == 0 ? "off"
                             : "more than \(t.flapping.changes) changes within \(DurationText.format(t.flapping.window)), settle \(DurationText.format(t.flapping.settle))",
                         check: checkRule(config.check, timeout: t.timeout)),
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

extension StatusView {
    /// `explain` for a grpc check: `grpc.health.v1.Health/Check for "cart"
    /// at 127.0.0.1:50051 (HTTP/2 cleartext) must answer SERVING within 500ms`.
    static func grpcRule(_ grpc: GRPCCheck, address: String, timeout: Duration) -> String {
        let subject = grpc.service.isEmpty ? "the server's overall health" : "\"\(grpc.service)\""
        let transport: String
        if let tls = grpc.tls {
            let name = tls.serverName ?? grpc.host
            let ca = tls.caFile.map { "the CA in \($0)" } ?? "the system's CAs"
            transport = tls.verify ? "HTTP/2 over TLS, verified against \(ca) for \(name)" : "HTTP/2 over TLS, not verified"
        } else {
            transport = "HTTP/2 cleartext"
        }
        return "grpc.health.v1.Health/Check for \(subject) at \(address) (\(transport)) must answer SERVING "
            + "with grpc-status 0 within \(DurationText.format(timeout))"
    }

    /// `explain` for an icmp check: `3 echo requests to 10.0.0.5; fails when
    /// more than 34% are lost (1 of 3 may be) or the average round trip is
    /// over 50ms; unanswered after 500ms counts as lost`.
    static func icmpRule(_ icmp: ICMPCheck, timeout: Duration) -> String {
        let requests = icmp.count == 1 ? "1 echo request" : "\(icmp.count) echo requests"
        var loss: String
        if let maxLoss = icmp.maxLoss {
            let tolerated = Int((Double(icmp.count) * maxLoss + 1e-9).rounded(.down))
            let percent = maxLoss * 100 == (maxLoss * 100).rounded() ? "\(Int(maxLoss * 100))%" : "\(maxLoss * 100)%"
            loss = "more than \(percent) are lost (\(tolerated) of \(icmp.count) may be)"
        } else {
            loss = icmp.count == 1 ? "it is lost" : "all \(icmp.count) are lost"
        }
        if let maxRTT = icmp.maxRTT { loss += " or the average round trip is over \(DurationText.format(maxRTT))" }
        return "\(requests) to \(icmp.host); fails when \(loss); unanswered after "
            + "\(DurationText.format(timeout)) counts as lost"
    }
}
