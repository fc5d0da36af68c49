/// A request to etcd failed: which endpoint, which operation, and why.
///
/// "etcd http://127.0.0.1:2379: revoke lease 7587886000000000001: lease not found (code 5)".
public struct EtcdError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Reason: Sendable, Equatable {
        /// No answer: refused, timed out, TLS refused. Every endpoint tried
        /// failed, each with curl's words.
        case unreachable(String)
        /// etcd answered with an error: the HTTP status, etcd's gRPC code
        /// (5: not found, 9: failed precondition, 16: unauthenticated) and words.
        case refused(status: Int, code: Int?, message: String)
        /// An answer that does not read as etcd's.
        case malformed(String)
        /// A watch ended: etcd cancelled it (`compactRevision` > 0 when it
        /// compacted past the start), or the stream closed.
        case watchEnded(reason: String, compactRevision: Int64)
    }

    /// The endpoint that answered, or every endpoint tried, comma-separated.
    public var endpoint: String
    /// What was asked: "lease grant", "create /vitals/leader".
    public var operation: String
    public var reason: Reason

    public init(endpoint: String, operation: String, reason: Reason) {
        self.endpoint = endpoint
        self.operation = operation
        self.reason = reason
    }

    /// etcd's gRPC code, when it answered with one.
    public var code: Int? {
        if case .refused(_, let code, _) = reason { return code }
        return nil
    }

    /// Whether no endpoint answered (as opposed to etcd saying no).
    public var isUnreachable: Bool {
        if case .unreachable = reason { return true }
        return false
    }

    public var description: String {
        let what: String
        switch reason {
        case .unreachable(let text): what = text
        case .refused(let status, let code, let message):
            what = code.map { "\(message) (code \($0))" } ?? "\(message) (HTTP \(status))"
        case .malformed(let text): what = text
        case .watchEnded(let reason, let compactRevision):
            what = compactRevision > 0 ? "watch cancelled, compacted at revision \(compactRevision)" : "watch ended: \(reason)"
        }
        return "etcd \(endpoint): \(operation): \(what)"
    }
}
