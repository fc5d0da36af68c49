import Foundation

/// `grpc: { target: host:port, service: NAME, tls: ... }` — the standard
/// gRPC health check (`grpc.health.v1.Health/Check`) over HTTP/2. Up when
/// the server answers `SERVING` for `service`; down on `NOT_SERVING`,
/// `SERVICE_UNKNOWN`, a non-zero `grpc-status`, or no answer in time.
public struct GRPCCheck: Sendable, Equatable {
    public var host: String
    public var port: UInt16
    /// The service name asked about; empty: the server's overall health.
    public var service: String
    /// Nil: cleartext HTTP/2 with prior knowledge (h2c). Set: HTTP/2 over
    /// TLS (ALPN `h2`), verified as these options say.
    public var tls: GRPCTLS?

    public init(host: String, port: UInt16, service: String = "", tls: GRPCTLS? = nil) {
        self.host = host
        self.port = port
        self.service = service
        self.tls = tls
    }
}

/// `tls: true`, or `tls: { server_name, ca_file, verify }` under `grpc:`.
public struct GRPCTLS: Sendable, Equatable {
    /// The name sent (SNI) and verified against the certificate. Nil: the host.
    public var serverName: String?
    /// PEM file of the CA(s) to verify against; nil: the system's store.
    public var caFile: String?
    /// Verify the certificate and the name. Default true.
    public var verify: Bool

    public init(serverName: String? = nil, caFile: String? = nil, verify: Bool = true) {
        self.serverName = serverName
        self.caFile = caFile
        self.verify = verify
    }
}

/// `icmp: { host, count: 3, max_loss: 34%, max_rtt: 50ms }` — echo requests
/// (ping). A probe sends `count` of them and waits for the replies until
/// the probe's timeout; it fails when more than `maxLoss` of them are lost
/// (by default: when all are), or when the average round trip of those that
/// came back is over `maxRTT`.
public struct ICMPCheck: Sendable, Equatable {
    /// An IPv4 or IPv6 address, or a name (resolved on each probe).
    public var host: String
    /// Echo requests per probe, 1...20. Default 3.
    public var count: Int
    /// The share of requests that may go unanswered, 0...1 (`34%`: one of
    /// three). Nil: any loss short of all is tolerated.
    public var maxLoss: Double?
    /// Over this average round trip: failure. Nil: no bound but the timeout.
    public var maxRTT: Duration?

    public init(host: String, count: Int = 3, maxLoss: Double? = nil, maxRTT: Duration? = nil) {
        self.host = host
        self.count = count
        self.maxLoss = maxLoss
        self.maxRTT = maxRTT
    }
}
