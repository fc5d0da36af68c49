import Foundation

/// The whole configuration, as loaded from YAML and validated.
///
/// Services, groups and actions keep the order in which the file lists them,
/// so status output and `vitals check` tables read in the operator's order.
public struct VitalsConfig: Sendable, Equatable {
    public var agent: AgentSettings
    public var defaults: ProbeTiming
    public var services: [ServiceConfig]
    public var groups: [GroupConfig]
    public var actions: [ActionConfig]

    public init(agent: AgentSettings = .init(), defaults: ProbeTiming = .init(),
                services: [ServiceConfig] = [], groups: [GroupConfig] = [], actions: [ActionConfig] = []) {
        self.agent = agent
        self.defaults = defaults
        self.services = services
        self.groups = groups
        self.actions = actions
    }

    public func service(named name: String) -> ServiceConfig? { services.first { $0.name == name } }
    public func group(named name: String) -> GroupConfig? { groups.first { $0.name == name } }
    public func action(named name: String) -> ActionConfig? { actions.first { $0.name == name } }
}

/// `agent:` — how the agent itself runs.
public struct AgentSettings: Sendable, Equatable {
    /// Addresses the status API listens on. Default `127.0.0.1:9310`.
    public var listen: [ListenAddress]
    /// Where snapshots, the event journal and the token live. Default `./.vitals`.
    public var stateDir: String
    /// Bearer token for write endpoints; created (mode 0600) when absent.
    /// Default `<state_dir>/token`.
    public var tokenFile: String
    public var logLevel: LogLevel
    /// Whether heartbeats may be sent with GET (for tools that can only GET).
    public var allowGetHeartbeats: Bool
    /// `isolation:` — when the agent assumes it is the one cut off and holds
    /// every automatic failover.
    public var isolation: IsolationSettings

    public init(listen: [ListenAddress] = [.init(host: "127.0.0.1", port: 9310)],
                stateDir: String = "./.vitals", tokenFile: String? = nil,
                logLevel: LogLevel = .info, allowGetHeartbeats: Bool = false,
                isolation: IsolationSettings = .init()) {
        self.listen = listen
        self.stateDir = stateDir
        self.tokenFile = tokenFile ?? (stateDir as NSString).appendingPathComponent("token")
        self.logLevel = logLevel
        self.allowGetHeartbeats = allowGetHeartbeats
        self.isolation = isolation
    }
}

/// `agent.isolation: { enabled: true, share: 50%, window: 5s, witness: gateway }` —
/// the isolation guard (`IsolationGuard`). The agent holds every automatic
/// failover while it believes it is the one cut off: when at least `share` of
/// the probed services (and never fewer than two) go from serving to down or
/// flapping within `window`, or when the `witness` service is down or flapping.
public struct IsolationSettings: Sendable, Equatable {
    /// Whether the guard judges at all. Default true.
    public var enabled: Bool
    /// Fraction of the probed services (0 < share <= 1) that must fail together.
    /// Default 0.5 (50%).
    public var share: Double
    /// How close together those failures must be: "one probe round". Default 5s.
    public var window: Duration
    /// A service (usually the gateway or a peer) that only fails when this
    /// agent is cut off. Default none.
    public var witness: String?

    public init(enabled: Bool = true, share: Double = 0.5, window: Duration = .seconds(5), witness: String? = nil) {
        self.enabled = enabled
        self.share = share
        self.window = window
        self.witness = witness
    }
}

public enum LogLevel: String, Sendable, Equatable, CaseIterable {
    case trace, debug, info, notice, warning, error, critical
}

/// `host:port`, with IPv6 hosts in brackets: `[::1]:9310`.
public struct ListenAddress: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: UInt16

    public init(host: String, port: UInt16) {
        self.host = host
        self.port = port
    }

    public var isIPv6: Bool { host.contains(":") }
    public var description: String { isIPv6 ? "[\(host)]:\(port)" : "\(host):\(port)" }

    /// Parses `127.0.0.1:9310`, `[::1]:9310`, `0.0.0.0:80`. Returns nil when malformed.
    public static func parse(_ text: String) -> ListenAddress? {
        let host: Substring
        let portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return nil }
            host = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":") else { return nil }
            portText = rest.dropFirst()
        } else {
            guard let colon = text.lastIndex(of: ":") else { return nil }
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
            if host.contains(":") { return nil }
        }
        guard !host.isEmpty, let port = UInt16(portText) else { return nil }
        return ListenAddress(host: String(host), port: port)
    }
}

/// How often and how strictly a service is probed: `defaults:`, overridable per service.
public struct ProbeTiming: Sendable, Equatable {
    /// Time between probes while the state is settled. Default 1s.
    public var interval: Duration
    /// Hard bound on one whole probe. Default 500ms.
    public var timeout: Duration
    /// Consecutive successes to go up. Default 2.
    public var rise: Int
    /// Consecutive failures to go down. Default 3.
    public var fall: Int
    /// Random spread added to each probe's start, at most this much. Default 100ms.
    public var jitter: Duration
    /// Probe interval while a state change is being confirmed (HAProxy's fastinter).
    /// Default: the interval.
    public var fastInterval: Duration?
    /// Failures during this period after start do not count (startup probes). Default 0.
    public var startPeriod: Duration
    /// "N failures within the last M probes" also takes the service down.
    public var fallWindow: FallWindow?
    /// More than `changes` state changes within `window` marks a service flapping.
    public var flapping: FlapPolicy

    public init(interval: Duration = .seconds(1), timeout: Duration = .milliseconds(500),
                rise: Int = 2, fall: Int = 3, jitter: Duration = .milliseconds(100),
                fastInterval: Duration? = nil, startPeriod: Duration = .zero,
                fallWindow: FallWindow? = nil, flapping: FlapPolicy = .init()) {
        self.interval = interval
        self.timeout = timeout
        self.rise = rise
        self.fall = fall
        self.jitter = jitter
        self.fastInterval = fastInterval
        self.startPeriod = startPeriod
        self.fallWindow = fallWindow
        self.flapping = flapping
    }

    /// The interval used while confirming a change.
    public var effectiveFastInterval: Duration { fastInterval ?? interval }
}

/// `fall_window: { failures: 3, probes: 5 }` — down after 3 failures within the last 5 probes.
public struct FallWindow: Sendable, Equatable {
    public var failures: Int
    public var probes: Int
    public init(failures: Int, probes: Int) {
        self.failures = failures
        self.probes = probes
    }
}

/// `flapping: { changes: 5, window: 2m, settle: 2m }`.
public struct FlapPolicy: Sendable, Equatable {
    /// More than this many state changes within `window` is flapping. 0 disables detection.
    public var changes: Int
    public var window: Duration
    /// A flapping service must hold one state this long to be trusted again.
    public var settle: Duration
    public init(changes: Int = 5, window: Duration = .seconds(120), settle: Duration = .seconds(120)) {
        self.changes = changes
        self.window = window
        self.settle = settle
    }
}

/// One entry under `services:`.
public struct ServiceConfig: Sendable, Equatable {
    public var name: String
    public var check: Check
    public var timing: ProbeTiming
    public var dependsOn: [String]
    /// `address:` — where clients reach the service (`host:port`), shown by
    /// `/active` and `/pick`. Default: derived from the check at init
    /// (`Check.derivedAddress`): an http URL's host and port (80/443 when the
    /// URL has none), a tcp check's host and port; exec and heartbeat services
    /// have none unless one is written. Changing `check` later does not
    /// re-derive it.
    public var address: ListenAddress?

    public init(name: String, check: Check, timing: ProbeTiming = .init(), dependsOn: [String] = [],
                address: ListenAddress? = nil) {
        self.name = name
        self.check = check
        self.timing = timing
        self.dependsOn = dependsOn
        self.address = address ?? check.derivedAddress
    }
}

/// Exactly one check kind per service.
public enum Check: Sendable, Equatable {
    case http(HTTPCheck)
    case tcp(TCPCheck)
    case exec(ExecCheck)
    case heartbeat(HeartbeatCheck)

    public var kind: String {
        switch self {
        case .http: "http"
        case .tcp: "tcp"
        case .exec: "exec"
        case .heartbeat: "heartbeat"
        }
    }

    /// The address a service is reached at when its config names none: an
    /// http URL's host and port (80 for http, 443 for https when the URL has
    /// no port), a tcp check's host and port. Exec and heartbeat checks name
    /// no address: nil.
    public var derivedAddress: ListenAddress? {
        switch self {
        case .http(let http):
            guard let components = URLComponents(string: http.url),
                  let scheme = components.scheme?.lowercased(),
                  var host = components.host, !host.isEmpty else { return nil }
            // Some Foundation versions keep the brackets of an IPv6 literal.
            if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
            let port: Int
            switch (components.port, scheme) {
            case (let explicit?, _): port = explicit
            case (nil, "https"): port = 443
            case (nil, _): port = 80
            }
            guard let port16 = UInt16(exactly: port), port16 > 0 else { return nil }
            return ListenAddress(host: host, port: port16)
        case .tcp(let tcp):
            return ListenAddress(host: tcp.host, port: tcp.port)
        case .exec, .heartbeat:
            return nil
        }
    }
}

/// `http:` — a request whose response must meet every condition.
public struct HTTPCheck: Sendable, Equatable {
    public var url: String
    public var method: String
    public var headers: [HTTPHeaderField]
    /// Accepted status codes; default 200-299.
    public var status: [StatusRange]
    public var bodyContains: String?
    public var bodyRegex: String?
    /// JSON fields that must equal a value, by dotted path (`checks.db.state`).
    public var json: [JSONExpectation]
    /// Over it: failure.
    public var maxLatency: Duration?
    /// Over it: degraded.
    public var slowLatency: Duration?
    public var tlsVerify: Bool
    /// Degraded when the served certificate expires in fewer days.
    public var certMinDays: Int?
    public var followRedirects: Bool
    /// How much of the body is read for body and JSON conditions. Default 64 KiB.
    public var maxBodyBytes: Int

    public init(url: String, method: String = "GET", headers: [HTTPHeaderField] = [],
                status: [StatusRange] = [StatusRange(200, 299)], bodyContains: String? = nil,
                bodyRegex: String? = nil, json: [JSONExpectation] = [], maxLatency: Duration? = nil,
                slowLatency: Duration? = nil, tlsVerify: Bool = true, certMinDays: Int? = nil,
                followRedirects: Bool = false, maxBodyBytes: Int = 65_536) {
        self.url = url
        self.method = method
        self.headers = headers
        self.status = status
        self.bodyContains = bodyContains
        self.bodyRegex = bodyRegex
        self.json = json
        self.maxLatency = maxLatency
        self.slowLatency = slowLatency
        self.tlsVerify = tlsVerify
        self.certMinDays = certMinDays
        self.followRedirects = followRedirects
        self.maxBodyBytes = maxBodyBytes
    }
}

public struct HTTPHeaderField: Sendable, Equatable {
    public var name: String
    public var value: String
    public init(name: String, value: String) {
        self.name = name
        self.value = value
    }
}

/// `200`, or `200-299`. Rendered the way it is written.
public struct StatusRange: Sendable, Equatable, CustomStringConvertible {
    public var lower: Int
    public var upper: Int
    public init(_ lower: Int, _ upper: Int) {
        self.lower = lower
        self.upper = upper
    }
    public init(_ code: Int) { self.init(code, code) }
    public func contains(_ code: Int) -> Bool { code >= lower && code <= upper }
    public var description: String { lower == upper ? "\(lower)" : "\(lower)-\(upper)" }

    /// Parses `200` or `200-299`, codes 100...599.
    public static func parse(_ text: String) -> StatusRange? {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        let codes = parts.compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard codes.count == parts.count, codes.allSatisfy({ (100...599).contains($0) }) else { return nil }
        switch codes.count {
        case 1: return StatusRange(codes[0])
        case 2 where codes[0] <= codes[1]: return StatusRange(codes[0], codes[1])
        default: return nil
        }
    }
}

/// A JSON field that must equal a value: `json: { status: UP }`.
public struct JSONExpectation: Sendable, Equatable {
    /// Dotted path from the document root: `checks.db.state`.
    public var path: String
    public var expected: JSONScalar
    public init(path: String, expected: JSONScalar) {
        self.path = path
        self.expected = expected
    }
}

/// A scalar a JSON field is compared with. YAML `UP` is a string, `true` a bool, `3` a number.
public enum JSONScalar: Sendable, Equatable, CustomStringConvertible {
    case string(String)
    case number(Double)
    case bool(Bool)
    case null

    public var description: String {
        switch self {
        case .string(let s): "\"\(s)\""
        case .number(let n): n == n.rounded() && abs(n) < 1e15 ? String(Int64(n)) : String(n)
        case .bool(let b): b ? "true" : "false"
        case .null: "null"
        }
    }
}

/// `tcp:` — a connection that must open within the timeout.
public struct TCPCheck: Sendable, Equatable {
    public var host: String
    public var port: UInt16
    public init(host: String, port: UInt16) {
        self.host = host
        self.port = port
    }
}

/// `exec:` — a Nagios-compatible plugin: exit 0 ok, 1 warning (degraded), 2 critical (down), 3 unknown.
public struct ExecCheck: Sendable, Equatable {
    /// The program and its arguments. No shell is involved.
    public var argv: [String]
    public var env: [String: String]
    public init(argv: [String], env: [String: String] = [:]) {
        self.argv = argv
        self.env = env
    }
}

/// `heartbeat:` — the service pushes beats; a missed deadline (every + grace) marks it down.
public struct HeartbeatCheck: Sendable, Equatable {
    public var every: Duration
    public var grace: Duration
    public init(every: Duration, grace: Duration = .zero) {
        self.every = every
        self.grace = grace
    }
}

/// One entry under `groups:`.
public struct GroupConfig: Sendable, Equatable {
    public var name: String
    public var mode: GroupMode
    /// In priority order for active-passive.
    public var members: [String]
    /// Which actions run on which events, in order.
    public var on: [GroupEventKind: [String]]
    /// Minimum time between two failovers of this group. Default 30s.
    public var cooldown: Duration
    /// At most this many failovers within `failoverWindow`; then the group is held.
    public var maxFailovers: Int
    public var failoverWindow: Duration
    /// `balance:` — how `/pick` chooses one serving member for a client (see
    /// `Balancer`). Default: `priority` for active-passive groups,
    /// `round-robin` for active-active ones (`BalancePolicy.default(for:)`),
    /// resolved at init from `mode`.
    public var balance: BalancePolicy
    /// `weights: { web-1: 5, web-2: 1 }` — relative weight of each member,
    /// 1...1000, for `hash` and `weighted`. A member not listed weighs 1.
    public var weights: [String: Int]
    /// `latency_tolerance: 10%` — for `least-latency`: members whose recent
    /// latency is at most the lowest one plus this share of it are taken as
    /// equal and share the traffic. A fraction, 0...1. Default 0.1 (10%).
    public var latencyTolerance: Double
    /// `degraded_weight: 0.5` — the share of its weight a degraded member keeps
    /// (0.01...1). Default 0.5. Not used by `priority`.
    public var degradedWeight: Double

    public init(name: String, mode: GroupMode, members: [String], on: [GroupEventKind: [String]] = [:],
                cooldown: Duration = .seconds(30), maxFailovers: Int = 3, failoverWindow: Duration = .seconds(600),
                balance: BalancePolicy? = nil, weights: [String: Int] = [:],
                latencyTolerance: Double = 0.1, degradedWeight: Double = 0.5) {
        self.name = name
        self.mode = mode
        self.members = members
        self.on = on
        self.cooldown = cooldown
        self.maxFailovers = maxFailovers
        self.failoverWindow = failoverWindow
        self.balance = balance ?? .default(for: mode)
        self.weights = weights
        self.latencyTolerance = latencyTolerance
        self.degradedWeight = degradedWeight
    }

    /// The configured weight of `member`: its `weights:` entry, else 1.
    public func weight(of member: String) -> Int { weights[member] ?? 1 }
}

/// `balance:` — how `/pick` chooses one serving member of a group for a
/// client. Only serving members (`up`, `degraded`) are ever chosen; see
/// `Balancer` for each policy's exact rule.
public enum BalancePolicy: String, Sendable, Equatable, Hashable, Codable, CaseIterable {
    /// Weighted rendezvous hashing on the client's key (usually its IP): a
    /// client sticks to its member, and only the clients of a member that
    /// leaves move.
    case hash
    /// Every serving member in turn, weights ignored (degraded ones less often).
    case roundRobin = "round-robin"
    /// Smooth weighted round-robin, as nginx does it, by `weights:`.
    case weighted
    /// The member with the lowest recent probe latency; members within
    /// `latency_tolerance` of it take turns.
    case leastLatency = "least-latency"
    /// The first serving member in member order.
    case priority

    /// `priority` for active-passive groups, `round-robin` for active-active ones.
    public static func `default`(for mode: GroupMode) -> BalancePolicy {
        switch mode {
        case .activePassive: .priority
        case .activeActive: .roundRobin
        }
    }

    /// Whether `weights:` means anything under this policy.
    public var usesWeights: Bool {
        switch self {
        case .hash, .weighted: true
        case .roundRobin, .leastLatency, .priority: false
        }
    }

    /// Whether `degraded_weight:` means anything under this policy.
    public var usesDegradedWeight: Bool {
        switch self {
        case .hash, .roundRobin, .weighted, .leastLatency: true
        case .priority: false
        }
    }
}

public enum GroupMode: Sendable, Equatable {
    /// One active member; backups in priority order.
    /// `failback` defaults to `manual`; `failbackDelay` (how long a recovered
    /// higher-priority member must stay healthy before an automatic failback)
    /// defaults to 10s. `mode:` itself defaults to active-passive.
    case activePassive(failback: Failback, failbackDelay: Duration)
    /// Every healthy member serves; degraded below `minHealthy` (default 1, at most the member count).
    case activeActive(minHealthy: Int)

    public var name: String {
        switch self {
        case .activePassive: "active-passive"
        case .activeActive: "active-active"
        }
    }
}

public enum Failback: String, Sendable, Equatable {
    case auto, manual
}

/// Events a group emits, named as in `on:`.
public enum GroupEventKind: String, Sendable, Equatable, CaseIterable, Hashable {
    case failover
    case failback
    case switchover
    case groupDown = "group_down"
    case groupRecovered = "group_recovered"
    case groupDegraded = "group_degraded"
    case memberAdded = "member_added"
    case memberRemoved = "member_removed"
    case failoverSuppressed = "failover_suppressed"
    case isolated
    /// The isolation guard no longer believes the agent is cut off.
    case isolationEnded = "isolation_ended"
    /// The first choice of active member(s) after a fresh start.
    case activated
    /// An operator paused automatic decisions for the group.
    case held
    /// An operator resumed automatic decisions for the group.
    case released
}

/// One entry under `actions:`.
public struct ActionConfig: Sendable, Equatable {
    public var name: String
    public var kind: ActionKind
    /// Whole-run bound. Default 30s.
    public var timeout: Duration
    /// Extra attempts after a failure, with exponential backoff. Default 0.
    public var retries: Int
    public init(name: String, kind: ActionKind, timeout: Duration = .seconds(30), retries: Int = 0) {
        self.name = name
        self.kind = kind
        self.timeout = timeout
        self.retries = retries
    }
}

public enum ActionKind: Sendable, Equatable {
    /// Run argv directly (no shell) with the event in the environment.
    case exec(argv: [String], env: [String: String])
    /// Send the event JSON to a URL.
    case webhook(url: String, method: String, body: String?, headers: [HTTPHeaderField])
    /// Write the event to the agent's log.
    case log

    public var name: String {
        switch self {
        case .exec: "exec"
        case .webhook: "webhook"
        case .log: "log"
        }
    }
}
