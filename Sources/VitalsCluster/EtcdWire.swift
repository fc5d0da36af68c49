import Foundation

/// The v3 JSON gateway's wire format, pure: request bodies, answers, base64.
///
/// What the gateway does that plain JSON coding would get wrong (checked
/// against Debian's etcd 3.4):
/// - keys and values are standard padded base64 (a key sent unencoded that
///   happens to be valid base64 is silently another key);
/// - int64 fields (revisions, lease IDs, TTLs) are JSON strings;
/// - a field holding its default value is left out: `succeeded` on a failed
///   transaction, `kvs` on an empty range, `TTL` on a keepalive of a lease
///   that is gone, an event's `type` on PUT.
enum EtcdWire {
    static func base64(_ bytes: some Sequence<UInt8>) -> String { Data(bytes).base64EncodedString() }
    static func base64(_ text: String) -> String { base64(Array(text.utf8)) }

    static func bytes(base64 text: String, field: String) throws(WireError) -> [UInt8] {
        guard let data = Data(base64Encoded: text) else { throw WireError("\(field) is not base64: \(text.prefix(40))") }
        return Array(data)
    }

    /// The end of the range that holds every key starting with `prefix`: the
    /// prefix with its last byte that is not 0xff raised by one. A prefix of
    /// nothing but 0xff bytes (or empty) has no end: "\0" means every key from it.
    static func prefixEnd(_ prefix: String) -> [UInt8] {
        var bytes = Array(prefix.utf8)
        while let last = bytes.last {
            if last < 0xff {
                bytes[bytes.count - 1] = last + 1
                return bytes
            }
            bytes.removeLast()
        }
        return [0]
    }

    /// The `key` and `range_end` of a request, base64.
    static func range(_ range: KeyRange) -> (key: String, rangeEnd: String?) {
        switch range {
        case .key(let key): (base64(key), nil)
        case .prefix(let prefix): (base64(prefix.isEmpty ? "\0" : prefix), base64(prefixEnd(prefix)))
        }
    }

    static func encode(_ value: some Encodable) -> [UInt8] {
        let encoder = JSONEncoder()
        // Sorted: the same request is the same bytes (tests, logs).
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Only our own request structs come here: encoding cannot fail.
        return Array(try! encoder.encode(value))
    }

    static func decode<T: Decodable>(_ type: T.Type, _ bytes: [UInt8]) throws(WireError) -> T {
        do {
            return try JSONDecoder().decode(type, from: Data(bytes))
        } catch {
            throw WireError("unreadable answer (\(error)): \(String(decoding: bytes.prefix(200), as: UTF8.self))")
        }
    }

    // MARK: Requests

    struct LeaseGrant: Encodable { var TTL: String; var ID = "0" }
    struct LeaseID: Encodable { var ID: String }
    struct Range: Encodable {
        var key: String
        var range_end: String?
    }
    struct Put: Encodable {
        var key: String
        var value: String
        var lease: String?
    }
    struct Authenticate: Encodable {
        var name: String
        var password: String
    }
    struct Compare: Encodable {
        var key: String
        var target: String
        var result = "EQUAL"
        var create_revision: String?
        var lease: String?
    }
    struct RequestOp: Encodable { var requestPut: Put }
    struct Txn: Encodable {
        var compare: [Compare]
        var success: [RequestOp]
    }
    struct WatchCreate: Encodable {
        struct Request: Encodable {
            var key: String
            var range_end: String?
            var start_revision: String?
        }
        var create_request: Request
    }

    static func put(_ key: String, _ value: [UInt8], lease: Int64) -> Put {
        Put(key: base64(key), value: base64(value), lease: lease == 0 ? nil : String(lease))
    }

    /// A transaction that puts `key` only when no such key exists (its
    /// create revision is 0), bound to `lease`.
    static func createIfAbsent(_ key: String, _ value: [UInt8], lease: Int64) -> Txn {
        Txn(compare: [Compare(key: base64(key), target: "CREATE", create_revision: "0")],
            success: [RequestOp(requestPut: put(key, value, lease: lease))])
    }

    /// A transaction that puts `key` only while `guardKey` exists bound to
    /// `guardLease` (a missing key compares as lease 0, never a granted one).
    static func putGuarded(_ key: String, _ value: [UInt8], lease: Int64, guardKey: String, guardLease: Int64) -> Txn {
        Txn(compare: [Compare(key: base64(guardKey), target: "LEASE", lease: String(guardLease))],
            success: [RequestOp(requestPut: put(key, value, lease: lease))])
    }

    static func watch(_ range: KeyRange, fromRevision: Int64?) -> WatchCreate {
        let (key, end) = self.range(range)
        return WatchCreate(create_request: .init(key: key, range_end: end, start_revision: fromRevision.map(String.init)))
    }

    // MARK: Answers

    struct Header: Decodable { var revision: Int64String? }
    struct KV: Decodable {
        var key: String
        var value: String?
        var create_revision: Int64String?
        var mod_revision: Int64String?
        var version: Int64String?
        var lease: Int64String?

        func keyValue() throws(WireError) -> KeyValue {
            KeyValue(key: String(decoding: try EtcdWire.bytes(base64: key, field: "key"), as: UTF8.self),
                     value: try value.map { v throws(WireError) in try EtcdWire.bytes(base64: v, field: "value") } ?? [],
                     createRevision: create_revision?.value ?? 0, modRevision: mod_revision?.value ?? 0,
                     version: version?.value ?? 0, lease: lease?.value ?? 0)
        }
    }
    struct RangeAnswer: Decodable {
        var header: Header?
        var kvs: [KV]?
    }
    struct TxnAnswer: Decodable {
        var header: Header?
        var succeeded: Bool?
    }
    struct DeleteAnswer: Decodable {
        var header: Header?
        var deleted: Int64String?
    }
    struct GrantAnswer: Decodable {
        var ID: Int64String?
        var TTL: Int64String?
        var error: String?
    }
    struct KeepAliveAnswer: Decodable {
        struct Result: Decodable {
            var ID: Int64String?
            var TTL: Int64String?
        }
        var result: Result?
    }
    struct AuthAnswer: Decodable { var token: String? }
    /// A unary error: `{"error": "...", "message": "...", "code": 5}`.
    struct ErrorAnswer: Decodable {
        var error: String?
        var message: String?
        var code: Int?
    }

    /// Reads the answer to a range request.
    static func rangeResult(_ bytes: [UInt8]) throws(WireError) -> RangeResult {
        let answer = try decode(RangeAnswer.self, bytes)
        var kvs: [KeyValue] = []
        for kv in answer.kvs ?? [] { kvs.append(try kv.keyValue()) }
        return RangeResult(revision: answer.header?.revision?.value ?? 0, kvs: kvs)
    }

    /// Reads a keepalive answer: a TTL is a renewal; none (or 0) means etcd
    /// no longer knows the lease.
    static func keepAlive(_ bytes: [UInt8]) throws(WireError) -> KeepAlive {
        let answer = try decode(KeepAliveAnswer.self, bytes)
        guard let result = answer.result else { throw WireError("keepalive answer without a result") }
        guard let ttl = result.TTL?.value, ttl > 0 else { return .lost }
        return .alive(ttlSeconds: ttl)
    }

    /// Reads an error answer's code and words, without etcd's "etcdserver: " prefix.
    static func failure(_ bytes: [UInt8]) -> (code: Int?, message: String) {
        if let answer = try? decode(ErrorAnswer.self, bytes), let text = answer.message ?? answer.error {
            return (answer.code, strip(text))
        }
        return (nil, String(decoding: bytes.prefix(200), as: UTF8.self))
    }

    static func strip(_ text: String) -> String {
        text.hasPrefix("etcdserver: ") ? String(text.dropFirst("etcdserver: ".count)) : text
    }
}

/// An int64 the gateway writes as a JSON string (or, leniently, a number).
struct Int64String: Codable, Equatable {
    var value: Int64

    init(_ value: Int64) { self.value = value }

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let text = try? container.decode(String.self), let value = Int64(text) {
            self.value = value
        } else {
            value = try container.decode(Int64.self)
        }
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(String(value))
    }
}

/// An answer the gateway should not have given.
struct WireError: Error, Equatable, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
