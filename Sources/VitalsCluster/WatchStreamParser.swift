import Foundation

/// Reads the body of `POST /v3/watch`: newline-delimited JSON objects on one
/// answer that lasts as long as the watch, arriving in chunks that split
/// lines anywhere. Pure: bytes in, messages out.
///
/// - `{"result": {"created": true, ...}}`: the watch is in place.
/// - `{"result": {"events": [...]}}`: changes; an event without `type` is a PUT.
/// - `{"result": {"canceled": true, "cancel_reason": ..., "compact_revision": ...}}`:
///   etcd ended the watch (compaction, an auth failure), still inside a 200.
/// - `{"error": {...}}` or a unary error object (`{"error": "...", "code": 16}`):
///   the gateway's own failure.
public struct WatchStreamParser: Sendable {
    public enum Message: Sendable, Equatable {
        case created(revision: Int64)
        case events(WatchBatch)
        /// Progress notification: no events, just the revision.
        case progress(revision: Int64)
        case canceled(reason: String, compactRevision: Int64)
        case failed(String)
    }

    /// Longest line kept while waiting for its end. Default: 16 MiB (etcd
    /// limits a request to 1.5 MiB, but one batch may carry many events).
    public var maxLineBytes: Int

    private var pending: [UInt8] = []
    /// Dropping the rest of a line that was too long.
    private var skipping = false

    public init(maxLineBytes: Int = 16 << 20) { self.maxLineBytes = maxLineBytes }

    /// Takes the next chunk; answers the messages of the lines it completed.
    public mutating func feed(_ chunk: some Collection<UInt8>) -> [Message] {
        var messages: [Message] = []
        for byte in chunk {
            if byte == UInt8(ascii: "\n") {
                if !skipping, let message = Self.parse(pending) { messages.append(message) }
                pending.removeAll(keepingCapacity: true)
                skipping = false
            } else if skipping {
                continue
            } else if pending.count < maxLineBytes {
                pending.append(byte)
            } else {
                messages.append(.failed("watch line longer than \(maxLineBytes) bytes"))
                pending.removeAll()
                skipping = true
            }
        }
        return messages
    }

    /// The stream ended: answers the message of a last line without a newline
    /// (an error body is a single object, not newline-terminated).
    public mutating func finish() -> [Message] {
        defer {
            pending.removeAll()
            skipping = false
        }
        return skipping ? [] : Self.parse(pending).map { [$0] } ?? []
    }

    private struct Line: Decodable {
        struct Result: Decodable {
            var header: EtcdWire.Header?
            var created: Bool?
            var canceled: Bool?
            var cancel_reason: String?
            var compact_revision: Int64String?
            var events: [Event]?
        }
        struct Event: Decodable {
            var type: String?
            var kv: EtcdWire.KV?
        }
        struct StreamError: Decodable {
            var message: String?
            var grpc_code: Int?
            var http_code: Int?
        }
        var result: Result?
        var error: Either?
        var message: String?
        var code: Int?

        /// `error` is an object in a stream and a string in a unary answer.
        enum Either: Decodable {
            case object(StreamError)
            case text(String)
            init(from decoder: any Decoder) throws {
                if let text = try? decoder.singleValueContainer().decode(String.self) {
                    self = .text(text)
                } else {
                    self = .object(try StreamError(from: decoder))
                }
            }
        }
    }

    static func parse(_ line: [UInt8]) -> Message? {
        guard line.contains(where: { !Set(" \t\r".utf8).contains($0) }) else { return nil }
        let decoded: Line
        do {
            decoded = try JSONDecoder().decode(Line.self, from: Data(line))
        } catch {
            return .failed("unreadable watch line: \(String(decoding: line.prefix(200), as: UTF8.self))")
        }
        if let error = decoded.error {
            switch error {
            case .object(let object):
                return .failed(EtcdWire.strip(object.message ?? "error") + (object.grpc_code.map { " (code \($0))" } ?? ""))
            case .text(let text):
                return .failed(EtcdWire.strip(decoded.message ?? text) + (decoded.code.map { " (code \($0))" } ?? ""))
            }
        }
        guard let result = decoded.result else {
            return .failed("watch line without a result: \(String(decoding: line.prefix(200), as: UTF8.self))")
        }
        let revision = result.header?.revision?.value ?? 0
        if result.canceled == true {
            return .canceled(reason: EtcdWire.strip(result.cancel_reason ?? ""),
                             compactRevision: result.compact_revision?.value ?? 0)
        }
        if result.created == true { return .created(revision: revision) }
        guard let events = result.events, !events.isEmpty else { return .progress(revision: revision) }
        var batch = WatchBatch(revision: revision, events: [])
        for event in events {
            guard let kv = event.kv else { return .failed("watch event without a key") }
            let kind: WatchEvent.Kind
            switch event.type ?? "PUT" {
            case "PUT": kind = .put
            case "DELETE": kind = .delete
            case let other: return .failed("watch event of unknown type \(other)")
            }
            do {
                batch.events.append(WatchEvent(kind: kind, kv: try kv.keyValue()))
            } catch {
                return .failed(error.description)
            }
        }
        return .events(batch)
    }
}
