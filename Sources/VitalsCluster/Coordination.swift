/// What the cluster logic asks of etcd: leases, conditional writes, reads and
/// a watch. `EtcdClient` speaks it to real members; a fake serves the pure
/// tests of the decision logic.
///
/// Leases are etcd's: a key written with a lease goes when the lease does
/// (revoked, or not kept alive within its TTL).
public protocol Coordination: Sendable {
    /// A new lease that lives `ttlSeconds` unless kept alive (etcd's smallest is 2).
    func grantLease(ttlSeconds: Int64) async throws(EtcdError) -> Lease
    /// Renews `lease` once: its full TTL again, or `.lost` when etcd no longer
    /// knows it (expired or revoked).
    func keepAlive(lease: Int64) async throws(EtcdError) -> KeepAlive
    /// Seconds `lease` has left, or nil when etcd no longer knows it.
    func timeToLive(lease: Int64) async throws(EtcdError) -> Int64?
    /// Ends `lease` now, deleting every key bound to it. An unknown lease is
    /// an error with code 5.
    func revoke(lease: Int64) async throws(EtcdError)
    /// Writes `key` only if it does not exist, bound to `lease` (0: none).
    /// True when this call created it.
    func create(_ key: String, value: [UInt8], lease: Int64) async throws(EtcdError) -> Bool
    /// Writes `key` (bound to `lease`, 0: none) only while `guard` holds: the
    /// leader's way of writing state in the same transaction that checks it
    /// still leads. True when written.
    func put(_ key: String, value: [UInt8], lease: Int64, if guard: LeaseGuard) async throws(EtcdError) -> Bool
    /// Writes `key` bound to `lease` (0: none), whatever was there.
    func put(_ key: String, value: [UInt8], lease: Int64) async throws(EtcdError)
    /// The keys in `range` and the store's revision when read.
    func get(_ range: KeyRange) async throws(EtcdError) -> RangeResult
    /// Deletes the keys in `range`; answers how many there were.
    @discardableResult
    func delete(_ range: KeyRange) async throws(EtcdError) -> Int64
    /// Changes to `range` after `fromRevision` (nil: from now on). The first
    /// batch has no events and says the watch is in place. The stream ends
    /// with an `EtcdError` when the watch does (the member went away, etcd
    /// cancelled it, or compacted past `fromRevision`); watch again from the
    /// last revision seen + 1. An idle watch sends nothing, so the caller
    /// notices a dead one by other means (a periodic read). Ending the
    /// iteration (or its task) stops the watch.
    func watch(_ range: KeyRange, fromRevision: Int64?) -> AsyncThrowingStream<WatchBatch, any Error>
}

/// A granted lease.
public struct Lease: Sendable, Equatable {
    public var id: Int64
    public var ttlSeconds: Int64

    public init(id: Int64, ttlSeconds: Int64) {
        self.id = id
        self.ttlSeconds = ttlSeconds
    }
}

/// What one keepalive learned.
public enum KeepAlive: Sendable, Equatable {
    /// Renewed: the lease lives `ttlSeconds` from now.
    case alive(ttlSeconds: Int64)
    /// etcd no longer knows the lease: its keys are gone.
    case lost
}

/// A key, or every key that starts with a prefix.
public enum KeyRange: Sendable, Equatable, CustomStringConvertible {
    case key(String)
    case prefix(String)

    /// "/vitals/leader", "prefix /vitals/views/".
    public var description: String {
        switch self {
        case .key(let key): key
        case .prefix(let prefix): "prefix \(prefix)"
        }
    }
}

/// "`key` exists and is bound to `lease`": true for the holder of a leader
/// key while its lease lives, false once it expired or another took the key.
public struct LeaseGuard: Sendable, Equatable {
    public var key: String
    public var lease: Int64

    public init(key: String, lease: Int64) {
        self.key = key
        self.lease = lease
    }
}

/// One stored key.
public struct KeyValue: Sendable, Equatable {
    public var key: String
    public var value: [UInt8]
    public var createRevision: Int64
    public var modRevision: Int64
    public var version: Int64
    /// 0: bound to no lease.
    public var lease: Int64

    public init(key: String, value: [UInt8], createRevision: Int64 = 0, modRevision: Int64 = 0, version: Int64 = 0,
                lease: Int64 = 0) {
        self.key = key
        self.value = value
        self.createRevision = createRevision
        self.modRevision = modRevision
        self.version = version
        self.lease = lease
    }

    /// The value as UTF-8 text.
    public var text: String { String(decoding: value, as: UTF8.self) }
}

/// The answer to a read: the keys, and the revision the store was at.
public struct RangeResult: Sendable, Equatable {
    public var revision: Int64
    public var kvs: [KeyValue]

    public init(revision: Int64, kvs: [KeyValue]) {
        self.revision = revision
        self.kvs = kvs
    }
}

/// One change a watch saw.
public struct WatchEvent: Sendable, Equatable {
    public enum Kind: String, Sendable, Equatable {
        case put = "PUT"
        case delete = "DELETE"
    }

    public var kind: Kind
    /// After a put, the key as written; after a delete, its key and mod revision only.
    public var kv: KeyValue

    public init(kind: Kind, kv: KeyValue) {
        self.kind = kind
        self.kv = kv
    }
}

/// Events a watch delivered together, and the store's revision after them.
public struct WatchBatch: Sendable, Equatable {
    public var revision: Int64
    public var events: [WatchEvent]

    public init(revision: Int64, events: [WatchEvent]) {
        self.revision = revision
        self.events = events
    }
}
