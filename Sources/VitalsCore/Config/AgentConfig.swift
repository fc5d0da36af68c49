import Foundation

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
    /// How much of a ping's body is kept, the tail (`PingBody`): with the
    /// heartbeat's recent pings and the event the ping caused. 0 keeps none.
    /// Default 10 KiB; at most 1 MiB (the largest request body the agent reads).
    public var pingBodyLimit: Int
    /// `history:` — how long `history.sqlite` keeps minute and hour buckets.
    public var history: HistorySettings

    public init(listen: [ListenAddress] = [.init(host: "127.0.0.1", port: 9310)],
                stateDir: String = "./.vitals", tokenFile: String? = nil,
                logLevel: LogLevel = .info, allowGetHeartbeats: Bool = false,
                isolation: IsolationSettings = .init(), pingBodyLimit: Int = PingBody.defaultLimit,
                history: HistorySettings = .init()) {
        self.listen = listen
        self.stateDir = stateDir
        self.tokenFile = tokenFile ?? (stateDir as NSString).appendingPathComponent("token")
        self.logLevel = logLevel
        self.allowGetHeartbeats = allowGetHeartbeats
        self.isolation = isolation
        self.pingBodyLimit = pingBodyLimit
        self.history = history
    }
}

/// `agent.history: { minutes: 7d, hours: 400d }` — retention of the history
/// store (`<state_dir>/history.sqlite`). Minute buckets older than
/// `minutes` are deleted (their hours stay); hour buckets, outages and
/// events older than `hours` are deleted.
public struct HistorySettings: Sendable, Equatable {
    /// How long per-minute buckets are kept. Default 7 days.
    public var minutes: Duration
    /// How long hourly buckets, outages and events are kept. Default 400 days.
    public var hours: Duration

    public init(minutes: Duration = .seconds(7 * 86_400), hours: Duration = .seconds(400 * 86_400)) {
        self.minutes = minutes
        self.hours = hours
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
    /// agent is cut off. Default none. Needed for the guard to isolate at
    /// all when fewer than 4 services are probed.
    public var witness: String?
    /// How long a decision caused by a member's failure (failover,
    /// `group_down`, `member_removed`), or by members still down when an
    /// isolation ends, waits for the rest of that probe round before it is
    /// made, so the guard can see the whole round. Nil: the longest
    /// `interval` + `jitter` among probed services. `0s`: act at once.
    public var settle: Duration?

    public init(enabled: Bool = true, share: Double = 0.5, window: Duration = .seconds(5), witness: String? = nil,
                settle: Duration? = nil) {
        self.enabled = enabled
        self.share = share
        self.window = window
        self.witness = witness
        self.settle = settle
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
