import Synchronization
import VitalsCurl
import VitalsSystem

/// Where etcd is and how to reach it.
public struct EtcdConfiguration: Sendable {
    /// Client URLs of the members, `http://` or `https://`, tried in order.
    public var endpoints: [String]
    /// Bounds each attempt on one endpoint (the connect included). A call
    /// that meets unreachable endpoints tries each in turn, so it may take up
    /// to `requestTimeout` × `endpoints.count`: time a lease renewal from its
    /// start, not its answer.
    public var requestTimeout: Duration
    /// The CA that signed the members' certificates, and this client's
    /// certificate and key when the members ask for one.
    public var tls: CurlRequest.TLSFiles?
    /// etcd user and password, when etcd has authentication on.
    public var credentials: Credentials?

    public struct Credentials: Sendable, Equatable {
        public var user: String
        public var password: String
        public init(user: String, password: String) {
            self.user = user
            self.password = password
        }
    }

    public init(endpoints: [String], requestTimeout: Duration = .seconds(2), tls: CurlRequest.TLSFiles? = nil,
                credentials: Credentials? = nil) {
        self.endpoints = endpoints
        self.requestTimeout = requestTimeout
        self.tls = tls
        self.credentials = credentials
    }
}

/// etcd's v3 JSON gateway over libcurl: HTTP/1.1 POSTs of JSON, one blocking
/// request at a time per call, each on a thread of its own so no task of the
/// cooperative pool waits on the network.
///
/// Endpoints: a call starts with the endpoint that last answered. When it
/// cannot be reached (refused, timed out, TLS failure) or says it is
/// unavailable (HTTP 503, no leader), the call goes on with the next one. An
/// answer that is an error (lease not found, a bad request) is the call's
/// answer: another member would say the same.
///
/// A write that timed out may still have been applied: after an unreachable
/// error, read before assuming a create did not happen.
///
/// Authentication: with credentials, the client asks the member it talks to
/// for a token (`/v3/auth/authenticate`; etcd's simple tokens are each
/// member's own), sends it as `Authorization`, and asks again when a member
/// calls it invalid.
public final class EtcdClient: Coordination {
    public let configuration: EtcdConfiguration

    private struct State {
        /// Index of the endpoint that answered last.
        var preferred = 0
        /// The token and the endpoint that issued it.
        var token: (endpoint: Int, value: String)?
        /// Tokens obtained so far.
        var authentications = 0
    }

    private let state = Mutex(State())

    public init(_ configuration: EtcdConfiguration) {
        precondition(!configuration.endpoints.isEmpty, "an etcd client needs at least one endpoint")
        self.configuration = configuration
        Curl.initialize()
    }

    /// The endpoint the next call starts with.
    public var currentEndpoint: String { configuration.endpoints[state.withLock { $0.preferred }] }

    /// How many tokens the client has asked for (tests).
    var authentications: Int { state.withLock { $0.authentications } }

    // MARK: Coordination

    public func grantLease(ttlSeconds: Int64) async throws(EtcdError) -> Lease {
        try await blocking { client throws(EtcdError) in
            let operation = "lease grant"
            let (endpoint, bytes) = try client.call("/v3/lease/grant", EtcdWire.LeaseGrant(TTL: String(ttlSeconds)), operation)
            let answer = try client.read(EtcdWire.GrantAnswer.self, bytes, endpoint, operation)
            if let error = answer.error, !error.isEmpty {
                throw EtcdError(endpoint: endpoint, operation: operation,
                                reason: .refused(status: 200, code: nil, message: EtcdWire.strip(error)))
            }
            guard let id = answer.ID?.value, id != 0 else {
                throw EtcdError(endpoint: endpoint, operation: operation, reason: .malformed("grant answer without an ID"))
            }
            return Lease(id: id, ttlSeconds: answer.TTL?.value ?? ttlSeconds)
        }
    }

    public func keepAlive(lease: Int64) async throws(EtcdError) -> KeepAlive {
        try await blocking { client throws(EtcdError) in
            let operation = "keepalive lease \(lease)"
            let (endpoint, bytes) = try client.call("/v3/lease/keepalive", EtcdWire.LeaseID(ID: String(lease)), operation)
            do throws(WireError) {
                return try EtcdWire.keepAlive(bytes)
            } catch {
                throw EtcdError(endpoint: endpoint, operation: operation, reason: .malformed(error.description))
            }
        }
    }

    public func timeToLive(lease: Int64) async throws(EtcdError) -> Int64? {
        try await blocking { client throws(EtcdError) in
            let operation = "time to live of lease \(lease)"
            let (endpoint, bytes) = try client.call("/v3/lease/timetolive", EtcdWire.LeaseID(ID: String(lease)), operation)
            let answer = try client.read(EtcdWire.GrantAnswer.self, bytes, endpoint, operation)
            guard let ttl = answer.TTL?.value, ttl >= 0 else { return nil }
            return ttl
        }
    }

    public func revoke(lease: Int64) async throws(EtcdError) {
        try await blocking { client throws(EtcdError) in
            _ = try client.call("/v3/lease/revoke", EtcdWire.LeaseID(ID: String(lease)), "revoke lease \(lease)")
        }
    }

    public func create(_ key: String, value: [UInt8], lease: Int64) async throws(EtcdError) -> Bool {
        try await transaction(EtcdWire.createIfAbsent(key, value, lease: lease), "create \(key)")
    }

    public func put(_ key: String, value: [UInt8], lease: Int64, if guard: LeaseGuard) async throws(EtcdError) -> Bool {
        try await transaction(EtcdWire.putGuarded(key, value, lease: lease, guardKey: `guard`.key, guardLease: `guard`.lease),
                              "put \(key) if \(`guard`.key) has lease \(`guard`.lease)")
    }

    /// Writes `key` bound to `lease` (0: none), whatever was there.
    public func put(_ key: String, value: [UInt8], lease: Int64) async throws(EtcdError) {
        try await blocking { client throws(EtcdError) in
            _ = try client.call("/v3/kv/put", EtcdWire.put(key, value, lease: lease), "put \(key)")
        }
    }

    public func get(_ range: KeyRange) async throws(EtcdError) -> RangeResult {
        try await blocking { client throws(EtcdError) in
            let operation = "get \(range)"
            let (key, end) = EtcdWire.range(range)
            let (endpoint, bytes) = try client.call("/v3/kv/range", EtcdWire.Range(key: key, range_end: end), operation)
            do throws(WireError) {
                return try EtcdWire.rangeResult(bytes)
            } catch {
                throw EtcdError(endpoint: endpoint, operation: operation, reason: .malformed(error.description))
            }
        }
    }

    @discardableResult
    public func delete(_ range: KeyRange) async throws(EtcdError) -> Int64 {
        try await blocking { client throws(EtcdError) in
            let operation = "delete \(range)"
            let (key, end) = EtcdWire.range(range)
            let (endpoint, bytes) = try client.call("/v3/kv/deleterange", EtcdWire.Range(key: key, range_end: end), operation)
            return try client.read(EtcdWire.DeleteAnswer.self, bytes, endpoint, operation).deleted?.value ?? 0
        }
    }

    public func watch(_ range: KeyRange, fromRevision: Int64?) -> AsyncThrowingStream<WatchBatch, any Error> {
        let (stream, continuation) = AsyncThrowingStream<WatchBatch, any Error>.makeStream()
        let cancellation = CurlRequest.Cancellation()
        continuation.onTermination = { _ in cancellation.cancel() }
        let body = EtcdWire.encode(EtcdWire.watch(range, fromRevision: fromRevision))
        let operation = "watch \(range)"
        LoopThread.detach(name: "etcd-watch") { [self] in
            do {
                try streamWatch(body, operation, cancellation) { continuation.yield($0) }
                continuation.finish()
            } catch {
                continuation.finish(throwing: error)
            }
        }
        return stream
    }

    // MARK: Requests

    private func transaction(_ txn: EtcdWire.Txn, _ operation: String) async throws(EtcdError) -> Bool {
        try await blocking { client throws(EtcdError) in
            let (endpoint, bytes) = try client.call("/v3/kv/txn", txn, operation)
            return try client.read(EtcdWire.TxnAnswer.self, bytes, endpoint, operation).succeeded ?? false
        }
    }

    /// Runs `body` on a thread of its own and waits for it without holding one of the pool's.
    private func blocking<T: Sendable>(_ body: @escaping @Sendable (EtcdClient) throws(EtcdError) -> T) async throws(EtcdError) -> T {
        let result: Result<T, EtcdError> = await LoopThread.value(name: "etcd") { [self] in
            Result { () throws(EtcdError) -> T in try body(self) }
        }
        return try result.get()
    }

    private func read<T: Decodable>(_ type: T.Type, _ bytes: [UInt8], _ endpoint: String, _ operation: String) throws(EtcdError) -> T {
        do {
            return try EtcdWire.decode(type, bytes)
        } catch {
            throw EtcdError(endpoint: endpoint, operation: operation, reason: .malformed(error.description))
        }
    }

    /// What one endpoint made of a request.
    private enum Exchange {
        case answered([UInt8])
        /// Try the next endpoint: curl's words, or etcd's "unavailable".
        case unreachable(String)
        case refused(EtcdError)
    }

    /// POSTs `request` to `path` on each endpoint in turn, from the one that
    /// answered last, until one answers; answers that endpoint and the body
    /// of its 200.
    private func call(_ path: String, _ request: some Encodable, _ operation: String) throws(EtcdError) -> (String, [UInt8]) {
        let body = EtcdWire.encode(request)
        let endpoints = configuration.endpoints
        let start = state.withLock { $0.preferred }
        var failures: [String] = []
        for step in endpoints.indices {
            let index = (start + step) % endpoints.count
            switch exchange(index, path, body, operation) {
            case .answered(let bytes):
                state.withLock { $0.preferred = index }
                return (endpoints[index], bytes)
            case .refused(let error):
                state.withLock { $0.preferred = index }
                throw error
            case .unreachable(let text):
                failures.append(endpoints.count == 1 ? text : "\(endpoints[index]): \(text)")
            }
        }
        throw EtcdError(endpoint: endpoints.joined(separator: ", "), operation: operation,
                        reason: .unreachable(failures.joined(separator: "; ")))
    }

    /// One request to one endpoint, authenticating first when needed and once
    /// more when the member calls the token invalid.
    private func exchange(_ index: Int, _ path: String, _ body: [UInt8], _ operation: String) -> Exchange {
        let endpoint = configuration.endpoints[index]
        var renewed = false
        while true {
            let token: String?
            switch authToken(index, renew: renewed) {
            case .token(let value): token = value
            case .failed(let exchange): return exchange
            }
            let response: CurlRequest.Response
            switch post(endpoint + path, body, token: token).perform() {
            case .failure(let error): return .unreachable(error.message)
            case .success(let answer): response = answer
            }
            if response.status == 200 { return .answered(response.body) }
            let (code, message) = EtcdWire.failure(response.body)
            if configuration.credentials != nil, !renewed, Self.isAuthFailure(code: code, message: message) {
                renewed = true
                continue
            }
            // Unavailable: no leader, leader changed, a request that timed
            // out inside the cluster. Another member may do better.
            if response.status == 503 || code == 14 {
                return .unreachable(code.map { "\(message) (code \($0))" } ?? "\(message) (HTTP \(response.status))")
            }
            return .refused(EtcdError(endpoint: endpoint, operation: operation,
                                      reason: .refused(status: response.status, code: code, message: message)))
        }
    }

    private enum AuthOutcome {
        case token(String?)
        case failed(Exchange)
    }

    /// A token issued by endpoint `index` (asking it for one when the one held
    /// is another member's, or `renew`), or nil without credentials.
    private func authToken(_ index: Int, renew: Bool) -> AuthOutcome {
        guard let credentials = configuration.credentials else { return .token(nil) }
        if !renew, let token = state.withLock({ $0.token }), token.endpoint == index { return .token(token.value) }
        let endpoint = configuration.endpoints[index]
        let operation = "authenticate as \(credentials.user)"
        let request = post(endpoint + "/v3/auth/authenticate",
                           EtcdWire.encode(EtcdWire.Authenticate(name: credentials.user, password: credentials.password)),
                           token: nil)
        switch request.perform() {
        case .failure(let error):
            return .failed(.unreachable(error.message))
        case .success(let response) where response.status == 200:
            guard let token = try? EtcdWire.decode(EtcdWire.AuthAnswer.self, response.body).token, !token.isEmpty else {
                return .failed(.refused(EtcdError(endpoint: endpoint, operation: operation,
                                                   reason: .malformed("authenticate answer without a token"))))
            }
            state.withLock {
                $0.token = (index, token)
                $0.authentications += 1
            }
            return .token(token)
        case .success(let response):
            let (code, message) = EtcdWire.failure(response.body)
            return .failed(.refused(EtcdError(endpoint: endpoint, operation: operation,
                                               reason: .refused(status: response.status, code: code, message: message))))
        }
    }

    /// etcd's words when a request lacks a valid token: 16 is gRPC's
    /// Unauthenticated; "user name is empty" comes when none was sent.
    static func isAuthFailure(code: Int?, message: String) -> Bool {
        code == 16 || message.contains("invalid auth token") || message.contains("user name is empty")
    }

    private func post(_ url: String, _ body: [UInt8], token: String?) -> CurlRequest {
        var headers: [(name: String, value: String)] = [("Content-Type", "application/json"), ("Expect", "")]
        if let token { headers.append(("Authorization", token)) }
        return CurlRequest(method: "POST", url: url, headers: headers, body: body, timeout: configuration.requestTimeout,
                           maxResponseBytes: 64 << 20, userAgent: "vitals", protocols: "http,https",
                           http11Only: true, tls: configuration.tls)
    }

    // MARK: Watch

    /// What one watch stream delivered, seen from its callback.
    private final class WatchProgress {
        var parser = WatchStreamParser()
        var started = false
        var ended: EtcdWire.WatchEnd?
    }

    /// Runs the watch on the calling thread until it ends or `cancellation`
    /// fires (then it returns normally). Connects to each endpoint in turn
    /// until one takes the watch; after that, the stream's end is the watch's.
    private func streamWatch(_ body: [UInt8], _ operation: String, _ cancellation: CurlRequest.Cancellation,
                             deliver: @escaping (WatchBatch) -> Void) throws(EtcdError) {
        let endpoints = configuration.endpoints
        let start = state.withLock { $0.preferred }
        var failures: [String] = []
        for step in endpoints.indices {
            let index = (start + step) % endpoints.count
            let endpoint = endpoints[index]
            var renewed = false
            attempt: while true {
                if cancellation.isCancelled { return }
                let token: String?
                switch authToken(index, renew: renewed) {
                case .token(let value): token = value
                case .failed(.unreachable(let text)):
                    failures.append("\(endpoint): \(text)")
                    break attempt
                case .failed(.refused(let error)): throw error
                case .failed(.answered): return // authToken never answers with a body
                }
                let progress = WatchProgress()
                let handle: (WatchStreamParser.Message) -> Void = { message in
                    switch EtcdWire.watchStep(message) {
                    case .deliver(let batch):
                        progress.started = true
                        deliver(batch)
                    case .ignore:
                        break
                    case .end(let end):
                        progress.ended = end
                    }
                }
                let result = post(endpoint + "/v3/watch", body, token: token)
                    .performStreaming(cancellation: cancellation) { chunk in
                        for message in progress.parser.feed(chunk) where progress.ended == nil { handle(message) }
                        return progress.ended == nil
                    }
                if progress.ended == nil { for message in progress.parser.finish() { handle(message) } }
                if let end = progress.ended {
                    if !progress.started, configuration.credentials != nil, !renewed, Self.isAuthFailure(code: nil, message: end.text) {
                        renewed = true
                        continue attempt
                    }
                    state.withLock { $0.preferred = index }
                    throw EtcdError(endpoint: endpoint, operation: operation, reason: end.reason)
                }
                if cancellation.isCancelled { return }
                switch result {
                case .failure(let error) where !progress.started:
                    failures.append("\(endpoint): \(error.message)")
                    break attempt
                case .failure(let error):
                    throw EtcdError(endpoint: endpoint, operation: operation,
                                    reason: .watchEnded(reason: error.message, compactRevision: 0))
                case .success(let response):
                    throw EtcdError(endpoint: endpoint, operation: operation,
                                    reason: .watchEnded(reason: "the member closed the stream (HTTP \(response.status))",
                                                        compactRevision: 0))
                }
            }
        }
        throw EtcdError(endpoint: endpoints.joined(separator: ", "), operation: operation,
                        reason: .unreachable(failures.joined(separator: "; ")))
    }
}

extension EtcdWire {
    /// Why a watch stream stopped before its consumer let go.
    enum WatchEnd: Equatable {
        case canceled(reason: String, compactRevision: Int64)
        case failed(String)

        var text: String {
            switch self {
            case .canceled(let reason, _): reason
            case .failed(let text): text
            }
        }

        var reason: EtcdError.Reason {
            switch self {
            case .canceled(let reason, let compactRevision): .watchEnded(reason: reason, compactRevision: compactRevision)
            case .failed(let text): .refused(status: 200, code: nil, message: text)
            }
        }
    }

    enum WatchStep: Equatable {
        case deliver(WatchBatch)
        case ignore
        case end(WatchEnd)
    }

    /// What the watch does with one message of its stream.
    static func watchStep(_ message: WatchStreamParser.Message) -> WatchStep {
        switch message {
        case .created(let revision): .deliver(WatchBatch(revision: revision, events: []))
        case .events(let batch): .deliver(batch)
        case .progress: .ignore
        case .canceled(let reason, let compactRevision): .end(.canceled(reason: reason, compactRevision: compactRevision))
        case .failed(let text): .end(.failed(text))
        }
    }
}
