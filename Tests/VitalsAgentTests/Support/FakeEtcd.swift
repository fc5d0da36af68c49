import Foundation
import Synchronization
import VitalsCluster

/// etcd in memory, for the cluster edge's tests: leases that live until
/// revoked or `expire`d by the test, guarded writes, reads. Requests fail
/// while `unreachable` is set; nothing happens on its own.
final class FakeEtcd: Coordination, Sendable {
    private struct State {
        var keys: [String: KeyValue] = [:]
        var leases: [Int64: Int64] = [:]
        var nextLease: Int64 = 100
        var revision: Int64 = 1
        var unreachable = false
        var requests = 0
        var guardedPuts: [(key: String, value: [UInt8])] = []
    }

    private let state = Mutex(State())

    var unreachable: Bool {
        get { state.withLock { $0.unreachable } }
        set { state.withLock { $0.unreachable = newValue } }
    }

    func value(_ key: String) -> [UInt8]? { state.withLock { $0.keys[key]?.value } }
    func lease(of key: String) -> Int64? { state.withLock { $0.keys[key]?.lease } }
    /// Every guarded write that succeeded, in order.
    var guardedPuts: [(key: String, value: [UInt8])] { state.withLock { $0.guardedPuts } }

    /// The lease ends as if it expired: its keys go.
    func expire(_ lease: Int64) {
        state.withLock { state in
            state.leases[lease] = nil
            state.keys = state.keys.filter { $0.value.lease != lease }
            state.revision += 1
        }
    }

    /// Another agent holds the leader key.
    func setKey(_ key: String, _ text: String, lease: Int64) {
        state.withLock { state in
            state.leases[lease] = 10
            state.revision += 1
            state.keys[key] = KeyValue(key: key, value: Array(text.utf8), modRevision: state.revision, lease: lease)
        }
    }

    private func request() throws(EtcdError) {
        let down = state.withLock { state -> Bool in
            state.requests += 1
            return state.unreachable
        }
        if down { throw EtcdError(endpoint: "fake", operation: "request", reason: .unreachable("connection refused")) }
    }

    func grantLease(ttlSeconds: Int64) async throws(EtcdError) -> Lease {
        try request()
        return state.withLock { state in
            state.nextLease += 1
            state.leases[state.nextLease] = ttlSeconds
            return Lease(id: state.nextLease, ttlSeconds: ttlSeconds)
        }
    }

    func keepAlive(lease: Int64) async throws(EtcdError) -> KeepAlive {
        try request()
        return state.withLock { $0.leases[lease].map { .alive(ttlSeconds: $0) } ?? .lost }
    }

    func timeToLive(lease: Int64) async throws(EtcdError) -> Int64? {
        try request()
        return state.withLock { $0.leases[lease] }
    }

    func revoke(lease: Int64) async throws(EtcdError) {
        try request()
        expire(lease)
    }

    func create(_ key: String, value: [UInt8], lease: Int64) async throws(EtcdError) -> Bool {
        try request()
        return state.withLock { state in
            guard state.keys[key] == nil, lease == 0 || state.leases[lease] != nil else { return false }
            state.revision += 1
            state.keys[key] = KeyValue(key: key, value: value, modRevision: state.revision, lease: lease)
            return true
        }
    }

    func put(_ key: String, value: [UInt8], lease: Int64, if guard: LeaseGuard) async throws(EtcdError) -> Bool {
        try request()
        return state.withLock { state in
            guard state.keys[`guard`.key]?.lease == `guard`.lease else { return false }
            state.revision += 1
            state.keys[key] = KeyValue(key: key, value: value, modRevision: state.revision, lease: lease)
            state.guardedPuts.append((key, value))
            return true
        }
    }

    func put(_ key: String, value: [UInt8], lease: Int64) async throws(EtcdError) {
        try request()
        state.withLock { state in
            state.revision += 1
            state.keys[key] = KeyValue(key: key, value: value, modRevision: state.revision, lease: lease)
        }
    }

    func get(_ range: KeyRange) async throws(EtcdError) -> RangeResult {
        try request()
        return state.withLock { state in
            let kvs = state.keys.values.filter { kv in
                switch range {
                case .key(let key): kv.key == key
                case .prefix(let prefix): kv.key.hasPrefix(prefix)
                }
            }.sorted { $0.key < $1.key }
            return RangeResult(revision: state.revision, kvs: kvs)
        }
    }

    func delete(_ range: KeyRange) async throws(EtcdError) -> Int64 {
        try request()
        return state.withLock { state in
            let gone = state.keys.keys.filter { key in
                switch range {
                case .key(let k): key == k
                case .prefix(let prefix): key.hasPrefix(prefix)
                }
            }
            for key in gone { state.keys[key] = nil }
            return Int64(gone.count)
        }
    }

    /// The tests step the member by hand and read instead of watching.
    func watch(_ range: KeyRange, fromRevision: Int64?) -> AsyncThrowingStream<WatchBatch, any Error> {
        AsyncThrowingStream { $0.finish() }
    }
}
