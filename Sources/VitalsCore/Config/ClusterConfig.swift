import Foundation

/// `cluster:` — several agents watching the same services, coordinated
/// through etcd: exactly one of them (the leader) runs actions, and a group
/// moves away from a member only when enough agents see it unusable.
/// Without `cluster:` the agent decides alone, as it always has.
///
/// Keys in etcd live under `prefix`; agents with the same etcd endpoints and
/// the same `scope` form one cluster.
public struct ClusterSettings: Sendable, Equatable {
    /// Client URLs of the etcd members (`http://` or `https://`), tried in
    /// order; a failed or slow one is skipped for the next. At least one.
    public var etcd: [String]
    /// The name of this group of agents (`scope:`, as in Patroni): agents
    /// with the same scope share one leader key and one set of views.
    /// Required, so that two deployments that share an etcd never share a
    /// leader by accident. Same rules as service names.
    public var scope: String
    /// This agent's name in the cluster (`name:`). Nil: the host name,
    /// which the agent resolves at start (`agentName(hostName:)`); the
    /// loader reads no system state.
    public var name: String?
    /// The lease's time to live. Default 15s; at least 10s (etcd's own
    /// leader elections stall requests for 2–3 s, and a shorter lease is
    /// lost on each of them); whole seconds (etcd counts leases in seconds).
    public var ttl: Duration
    /// Where the cluster's keys live. Default `/vitals/<scope>/`. Starts and
    /// ends with `/`, so one prefix is never the start of another.
    public var prefix: String
    /// How many live agents must see a member unusable before a group
    /// moves away from it. Nil (the default): a majority of the agents
    /// alive at the moment of the decision (`ClusterViews.quorum(at:)`).
    public var quorum: Int?
    /// TLS for `https://` endpoints. Nil: the system's CA store, no client
    /// certificate.
    public var tls: ClusterTLS?
    /// etcd user and password authentication. Nil: none.
    public var auth: ClusterAuth?
    /// The bound on every etcd request except the watch. Default a quarter
    /// of `ttl` (3750ms at 15s). Less than `ttl / 3`: a leader stops acting
    /// `ttl - request_timeout` after its last renewal was sent and renews
    /// every `ttl / 3`, so a longer timeout leaves no time to retry a
    /// renewal that failed before the leader must stop.
    public var requestTimeout: Duration

    public static let defaultTTL: Duration = .seconds(15)
    public static let minimumTTL: Duration = .seconds(10)

    public init(etcd: [String], scope: String, name: String? = nil, ttl: Duration = defaultTTL,
                prefix: String? = nil, quorum: Int? = nil, tls: ClusterTLS? = nil, auth: ClusterAuth? = nil,
                requestTimeout: Duration? = nil) {
        self.etcd = etcd
        self.scope = scope
        self.name = name
        self.ttl = ttl
        self.prefix = prefix ?? Self.defaultPrefix(scope: scope)
        self.quorum = quorum
        self.tls = tls
        self.auth = auth
        self.requestTimeout = requestTimeout ?? Self.defaultRequestTimeout(ttl: ttl)
    }

    /// `/vitals/<scope>/`.
    public static func defaultPrefix(scope: String) -> String { "/vitals/\(scope)/" }

    /// A quarter of the ttl.
    public static func defaultRequestTimeout(ttl: Duration) -> Duration { ttl / 4 }

    /// This agent's name: `name:`, else `hostName` (the edge passes the
    /// system's host name).
    public func agentName(hostName: String) -> String { name ?? hostName }
}

/// `cluster: { ca_file, cert_file, key_file }` — files as written (relative
/// paths from the agent's working directory, like `state_dir`).
public struct ClusterTLS: Sendable, Equatable {
    /// The CA that signed the etcd members' certificates. Nil: the system store.
    public var caFile: String?
    /// Client certificate and its key, given together or not at all.
    public var certFile: String?
    public var keyFile: String?

    public init(caFile: String? = nil, certFile: String? = nil, keyFile: String? = nil) {
        self.caFile = caFile
        self.certFile = certFile
        self.keyFile = keyFile
    }
}

/// `cluster: { user, password_file }` — etcd authentication. The password
/// is read from the file at start, never written in the config.
public struct ClusterAuth: Sendable, Equatable {
    public var user: String
    public var passwordFile: String

    public init(user: String, passwordFile: String) {
        self.user = user
        self.passwordFile = passwordFile
    }
}
