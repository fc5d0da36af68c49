import Foundation

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
    /// `on: { down: [notify] }` — which actions run on which of this
    /// service's changes, in order (see `ServiceTrigger`).
    public var on: [ServiceTrigger: [String]]

    public init(name: String, check: Check, timing: ProbeTiming = .init(), dependsOn: [String] = [],
                address: ListenAddress? = nil, on: [ServiceTrigger: [String]] = [:]) {
        self.name = name
        self.check = check
        self.timing = timing
        self.dependsOn = dependsOn
        self.address = address ?? check.derivedAddress
        self.on = on
    }
}

/// Exactly one check kind per service (`tls:` is a `.tcp` check with TLS options).
public enum Check: Sendable, Equatable {
    case http(HTTPCheck)
    case tcp(TCPCheck)
    case exec(ExecCheck)
    case heartbeat(HeartbeatCheck)
    case dns(DNSCheck)
    case grpc(GRPCCheck)
    case icmp(ICMPCheck)

    public var kind: String {
        switch self {
        case .http: "http"
        case .tcp(let tcp): tcp.tls == nil ? "tcp" : "tls"
        case .exec: "exec"
        case .heartbeat: "heartbeat"
        case .dns: "dns"
        case .grpc: "grpc"
        case .icmp: "icmp"
        }
    }

    /// The address a service is reached at when its config names none: an
    /// http URL's host and port (80 for http, 443 for https when the URL has
    /// no port), a tcp check's host and port, a dns check's server, a grpc
    /// check's target. Exec and heartbeat checks, a dns check on the
    /// system's servers, and an icmp check (a host, no port) name no
    /// address: nil.
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
        case .dns(let dns):
            return dns.server.map { ListenAddress(host: $0.host, port: $0.port) }
        case .grpc(let grpc):
            return ListenAddress(host: grpc.host, port: grpc.port)
        case .exec, .heartbeat, .icmp:
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

/// `tcp:` — a connection that must open within the timeout; with `expect`,
/// the reply (to `send`, if given) must also be as expected. `tls:` is the
/// same connection with a TLS handshake on it: `tls` holds its options.
///
/// A `tls:` check is a `.tcp` check with `tls` set, not a `Check` case of
/// its own: it looks at the same kind of target (a host and a port), so a
/// reload keeps its state as for any tcp check. `Check.kind` names it `tls`.
public struct TCPCheck: Sendable, Equatable {
    public var host: String
    public var port: UInt16
    /// `send:` — bytes written once connected, escapes decoded (`ByteEscapes`).
    /// Nil: nothing is sent (a banner check, with `expect`).
    public var send: [UInt8]?
    /// `expect:` or `expect_regex:` — what the reply must be. Nil: the
    /// connection opening is enough.
    public var expect: ReplyExpectation?
    /// Set for a `tls:` check: a handshake, and the certificate's checks.
    public var tls: TLSOptions?

    public init(host: String, port: UInt16, send: [UInt8]? = nil, expect: ReplyExpectation? = nil,
                tls: TLSOptions? = nil) {
        self.host = host
        self.port = port
        self.send = send
        self.expect = expect
        self.tls = tls
    }
}

/// What the reply of a tcp check's peer must be.
public enum ReplyExpectation: Sendable, Equatable {
    /// `expect:` — the reply starts with these bytes (`+PONG`, `220 `).
    case prefix([UInt8])
    /// `expect_regex:` — the pattern matches somewhere in the reply, each
    /// byte read as one character (ISO 8859-1), so `\x00` matches a zero byte.
    case regex(String)
}

/// `tls: { host, port, server_name, cert_min_days, ca_file }` — up when the
/// handshake succeeds, the certificate verifies against the CA for the
/// server name, and it has at least `certMinDays` days left.
public struct TLSOptions: Sendable, Equatable {
    /// The name sent (SNI) and verified against the certificate. Nil: the host.
    public var serverName: String?
    /// Down when the certificate expires in fewer days. Nil: no such check.
    public var certMinDays: Int?
    /// PEM file of the CA(s) to verify against, as written (a relative path
    /// is from the agent's working directory). Nil: the system's store.
    public var caFile: String?

    public init(serverName: String? = nil, certMinDays: Int? = nil, caFile: String? = nil) {
        self.serverName = serverName
        self.certMinDays = certMinDays
        self.caFile = caFile
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

/// `heartbeat:` — the service pushes beats (pings). With `every`, overdue by
/// `every` it is late (degraded), and a missed deadline (every + grace) marks
/// it down. With `schedule`, a ping is due at each scheduled time and the
/// service is down once `grace` has passed without one. A run that pinged
/// `start` and has not finished within `max_runtime` is down too.
public struct HeartbeatCheck: Sendable, Equatable {
    /// When runs are expected.
    public var runs: ExpectedRuns
    public var grace: Duration
    /// How long a started run may take before the service is down; nil: no bound.
    public var maxRuntime: Duration?
    /// The file holding this heartbeat's ping key; nil: `<state_dir>/heartbeat-keys/<name>`.
    public var keyFile: String?

    public init(every: Duration, grace: Duration = .zero, maxRuntime: Duration? = nil, keyFile: String? = nil) {
        self.init(runs: .every(every), grace: grace, maxRuntime: maxRuntime, keyFile: keyFile)
    }

    public init(runs: ExpectedRuns, grace: Duration = .zero, maxRuntime: Duration? = nil, keyFile: String? = nil) {
        self.runs = runs
        self.grace = grace
        self.maxRuntime = maxRuntime
        self.keyFile = keyFile
    }

    /// Where the ping key of `service` is kept: `key_file`, else
    /// `<state_dir>/heartbeat-keys/<service>`.
    public func keyPath(service: String, stateDir: String) -> String {
        keyFile ?? ((stateDir as NSString).appendingPathComponent("heartbeat-keys") as NSString)
            .appendingPathComponent(service)
    }

    /// The period, for `every:`; nil with a schedule.
    // Not inlined: inlined at its callers, Swift 6.3.1's optimizer fails an
    // ownership check on this switch and crashes release builds.
    public var every: Duration? {
        @inline(never) get {
            switch runs {
            case .every(let period): period
            case .schedule: nil
            }
        }
    }

    /// When a heartbeat service's job is expected to run.
    public enum ExpectedRuns: Sendable, Equatable {
        /// `every: 24h` — a run each period, counted from the last one.
        case every(Duration)
        /// `schedule: "0 3 * * *"` with `tz:` — a run at each scheduled time, on the zone's wall clock.
        case schedule(CronSchedule, timeZone: TimeZone)
    }
}
