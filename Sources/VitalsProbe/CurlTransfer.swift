import CCurl
import VitalsCurl
import Foundation
import VitalsCore
import VitalsSystem

/// What one service's probes need, prepared once per check: the C strings and
/// header list handed to curl, the conditions, and what must outlive a single
/// probe (the certificate expiry seen on the last handshake). Small: holds no
/// easy handle. Touched only by the prober's loop thread.
final class CurlTarget {
    enum Kind {
        case http(HTTPConditions)
        /// Connect, report, close.
        case tcp
        /// Connect, then send and judge the reply (`TCPConversation`).
        case exchange(send: [UInt8], judge: ReplyJudge)
        /// Connect and handshake, then judge the certificate.
        case tls(TLSConditions)
        /// POST a gRPC health check over HTTP/2, then judge the answer (`GRPCHealth`).
        case grpc(service: String)
    }

    let slot: Int
    /// What the target was built from; a change rebuilds it.
    let check: Check
    let timeout: Duration
    let interval: Duration
    let kind: Kind
    /// `scheme://host:port` of an HTTP check, for sizing the connection cache.
    let origin: String?
    /// The pooled handle running this service's probe, if one is in flight.
    var transfer: CurlTransfer?
    /// The earliest certificate expiry seen on this service's last TLS
    /// handshake. A reused connection reports no certificates, so it is kept.
    var certificateExpiry: Date?
    /// The send/expect exchange in progress, once curl has connected.
    var conversation: TCPConversation?

    let url: UnsafeMutablePointer<CChar>
    /// `tls:` — `ca_file`, and where to connect when `server_name` is not the host.
    let caFile: UnsafeMutablePointer<CChar>?
    let connectTo: UnsafeMutablePointer<curl_slist>?
    let customMethod: UnsafeMutablePointer<CChar>?
    let noBody: Bool
    let headers: UnsafeMutablePointer<curl_slist>?
    let followRedirects: Bool
    let tlsVerify: Bool
    let certificateInfo: Bool
    let bodyLimit: Int
    let timeoutMs: Int
    /// Idle connections older than this are not reused (CURLOPT_MAXAGE_CONN):
    /// long enough to outlive this service's interval, short enough that a
    /// burst's extra connections age out.
    let maxConnectionAgeSeconds: Int
    /// `grpc:` — the framed request, sent as the POST body; nil for the other kinds.
    private(set) var postFields: UnsafeMutablePointer<UInt8>?
    private(set) var postFieldsCount = 0

    init(slot: Int, service: ServiceConfig) {
        self.slot = slot
        check = service.check
        timeout = service.timing.timeout
        interval = service.timing.interval
        timeoutMs = max(1, Int(service.timing.timeout.millisecondsRoundedUp))
        let intervalSeconds = Int(service.timing.interval.components.seconds)
        maxConnectionAgeSeconds = min(600, max(30, 2 * intervalSeconds + 5))

        switch service.check {
        case .http(let http):
            let conditions = HTTPConditions(http)
            kind = .http(conditions)
            url = strdup(http.url)
            switch http.method.uppercased() {
            case "GET":
                customMethod = nil
                noBody = false
            case "HEAD":
                customMethod = nil
                noBody = true
            default:
                customMethod = strdup(http.method)
                noBody = false
            }
            var list: UnsafeMutablePointer<curl_slist>?
            for field in http.headers {
                list = curl_slist_append(list, "\(field.name): \(field.value)")
            }
            headers = list
            followRedirects = http.followRedirects
            tlsVerify = http.tlsVerify
            certificateInfo = http.certMinDays != nil
            bodyLimit = conditions.needsBody ? max(0, http.maxBodyBytes) : 0
            origin = Self.origin(of: http.url)
            caFile = nil
            connectTo = nil
        case .tcp(let tcp):
            let host = Self.bracketed(tcp.host)
            if let tls = tcp.tls {
                kind = .tls(TLSConditions(tls))
                // The URL's host is what curl sends as SNI and verifies the
                // certificate against; CONNECT_TO sends the connection to
                // the configured host instead when the two differ.
                url = strdup("https://\(Self.bracketed(tls.serverName ?? tcp.host)):\(tcp.port)/")
                connectTo = tls.serverName.flatMap { $0 == tcp.host ? nil : curl_slist_append(nil, "::\(host):\(tcp.port)") }
                caFile = tls.caFile.map { strdup($0) }
                certificateInfo = tls.certMinDays != nil
            } else {
                if let expect = tcp.expect {
                    kind = .exchange(send: tcp.send ?? [], judge: ReplyJudge(expect))
                } else {
                    kind = .tcp
                }
                url = strdup("http://\(host):\(tcp.port)/")
                connectTo = nil
                caFile = nil
                certificateInfo = false
            }
            customMethod = nil
            noBody = false
            headers = nil
            followRedirects = false
            tlsVerify = true
            bodyLimit = 0
            origin = nil
        case .grpc(let grpc):
            kind = .grpc(service: grpc.service)
            let host = Self.bracketed(grpc.host)
            if let tls = grpc.tls {
                url = strdup("https://\(Self.bracketed(tls.serverName ?? grpc.host)):\(grpc.port)\(GRPCHealth.path)")
                connectTo = tls.serverName.flatMap {
                    $0 == grpc.host ? nil : curl_slist_append(nil, "::\(host):\(grpc.port)")
                }
                caFile = tls.caFile.map { strdup($0) }
                tlsVerify = tls.verify
            } else {
                url = strdup("http://\(host):\(grpc.port)\(GRPCHealth.path)")
                connectTo = nil
                caFile = nil
                tlsVerify = true
            }
            var list = curl_slist_append(nil, "content-type: application/grpc")
            list = curl_slist_append(list, "te: trailers")
            // No 100-continue round trip before the body.
            list = curl_slist_append(list, "Expect:")
            headers = list
            customMethod = nil
            noBody = false
            followRedirects = false
            certificateInfo = false
            origin = nil // never reused: see CurlTransfer.prepare
            // A HealthCheckResponse is 7 bytes framed; room for unknown fields.
            bodyLimit = 4096
            let body = GRPCHealth.requestBody(service: grpc.service)
            let buffer = UnsafeMutablePointer<UInt8>.allocate(capacity: max(1, body.count))
            buffer.initialize(from: body, count: body.count)
            postFields = buffer
            postFieldsCount = body.count
        case .exec, .heartbeat, .icmp, .dns:
            preconditionFailure("CurlTarget is for http, tcp, tls and grpc checks")
        }
    }

    deinit {
        postFields?.deallocate()
        free(url)
        free(customMethod)
        free(caFile)
        if let headers { curl_slist_free_all(headers) }
        if let connectTo { curl_slist_free_all(connectTo) }
    }

    /// An IPv6 literal in brackets, as URLs and CONNECT_TO want it.
    static func bracketed(_ host: String) -> String {
        host.contains(":") ? "[\(host)]" : host
    }

    /// Lower-cased `scheme://host:port`, the port defaulted from the scheme.
    static func origin(of url: String) -> String {
        guard let components = URLComponents(string: url), let scheme = components.scheme?.lowercased(),
              let host = components.host?.lowercased() else { return url }
        let port = components.port ?? (scheme == "https" ? 443 : 80)
        return "\(scheme)://\(host):\(port)"
    }
}

/// A pooled easy handle. Before each probe it is reset and every option is
/// set from the probe's `CurlTarget`, so nothing one service set (headers,
/// method, NOBODY, CONNECT_ONLY, TLS verification, certinfo, redirects, body
/// limit) carries over to the next. Connections live in the multi handle's
/// cache, not in the easy handle, so keep-alive survives the handle changing.
/// Touched only by the prober's loop thread.
final class CurlTransfer {
    let easy: UnsafeMutableRawPointer
    /// The target of the probe in flight (or just finished).
    private(set) var target: CurlTarget?
    /// When the probe in flight started.
    private(set) var startedAt = MonotonicInstant(nanoseconds: 0)

    let errorBuffer: UnsafeMutablePointer<CChar>
    private var bodyLimit = 0
    private(set) var body: UnsafeMutableRawPointer?
    private var bodyCapacity = 0
    private(set) var bodyCount = 0
    /// The first option curl refused while preparing, if any.
    private var setupFailure: String?
    /// `grpc-status` and `grpc-message` seen so far (headers and trailers).
    private(set) var grpcTrailers = GRPCHealth.Trailers()

    /// Body buffers above this are released when the handle goes idle.
    private static let idleBodyCapacity = 16 * 1024

    init?() {
        guard let easy = curl_easy_init() else { return nil }
        self.easy = easy
        errorBuffer = .allocate(capacity: Int(CURL_ERROR_SIZE) + 1)
        errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
    }

    deinit {
        curl_easy_cleanup(easy)
        errorBuffer.deallocate()
        free(body)
    }

    /// Resets the handle and configures it for one probe of `target`.
    /// Returns why curl refused an option, if it did.
    func prepare(for target: CurlTarget, userAgent: UnsafePointer<CChar>) -> String? {
        curl_easy_reset(easy)
        self.target = target
        startedAt = .now()
        bodyLimit = target.bodyLimit
        bodyCount = 0
        errorBuffer[0] = 0
        setupFailure = nil
        grpcTrailers = GRPCHealth.Trailers()

        set(CURLOPT_NOSIGNAL, 1)
        set(CURLOPT_TIMEOUT_MS, target.timeoutMs)
        set(CURLOPT_CONNECTTIMEOUT_MS, target.timeoutMs)
        set(CURLOPT_ERRORBUFFER, pointer: UnsafeMutableRawPointer(errorBuffer))
        set(CURLOPT_PRIVATE, pointer: Unmanaged.passUnretained(self).toOpaque())
        set(CURLOPT_URL, target.url)
        set(CURLOPT_MAXAGE_CONN, target.maxConnectionAgeSeconds)

        switch target.kind {
        case .grpc:
            // HTTP/2 without an upgrade: with prior knowledge in cleartext
            // (h2c), by ALPN over TLS. gRPC servers speak nothing else.
            set(CURLOPT_PROTOCOLS_STR, "http,https")
            set(CURLOPT_PROXY, "")
            set(CURLOPT_HTTP_VERSION, Int(CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE))
            // A fresh connection per probe: libcurl 7.88.1 (Debian 12) fails a
            // second POST on a reused HTTP/2 connection with CURLE_HTTP2
            // ("Error in the HTTP2 framing layer"), the curl command line
            // too (`curl --http2-prior-knowledge ... --next ...`). A new
            // connection also checks what a new client would meet.
            set(CURLOPT_FRESH_CONNECT, 1)
            set(CURLOPT_FORBID_REUSE, 1)
            set(CURLOPT_USERAGENT, userAgent)
            set(CURLOPT_POST, 1)
            set(CURLOPT_POSTFIELDSIZE, target.postFieldsCount)
            if let body = target.postFields { set(CURLOPT_POSTFIELDS, pointer: UnsafeMutableRawPointer(body)) }
            if let headers = target.headers { set(CURLOPT_HTTPHEADER, pointer: UnsafeMutableRawPointer(headers)) }
            set(CURLOPT_SSL_VERIFYPEER, target.tlsVerify ? 1 : 0)
            set(CURLOPT_SSL_VERIFYHOST, target.tlsVerify ? 2 : 0)
            if let caFile = target.caFile { set(CURLOPT_CAINFO, caFile) }
            if let connectTo = target.connectTo { set(CURLOPT_CONNECT_TO, pointer: UnsafeMutableRawPointer(connectTo)) }
            // Trailers (grpc-status, grpc-message) come through the header callback after the body.
            note(CURLOPT_HEADERFUNCTION, vitals_easy_setopt_header_function(easy) { data, size, count, context in
                let transfer = Unmanaged<CurlTransfer>.fromOpaque(context!).takeUnretainedValue()
                let total = size * count
                if let data, total > 0 {
                    transfer.grpcTrailers.take(line: UnsafeRawBufferPointer(start: data, count: total))
                }
                return total
            })
            set(CURLOPT_HEADERDATA, pointer: Unmanaged.passUnretained(self).toOpaque())
            storeBody()
        case .http:
            set(CURLOPT_PROTOCOLS_STR, "http,https")
            set(CURLOPT_USERAGENT, userAgent)
            if target.noBody { set(CURLOPT_NOBODY, 1) }
            if let method = target.customMethod { set(CURLOPT_CUSTOMREQUEST, method) }
            if let headers = target.headers { set(CURLOPT_HTTPHEADER, pointer: UnsafeMutableRawPointer(headers)) }
            if target.followRedirects {
                set(CURLOPT_FOLLOWLOCATION, 1)
                set(CURLOPT_MAXREDIRS, 10)
                set(CURLOPT_REDIR_PROTOCOLS_STR, "http,https")
            }
            set(CURLOPT_SSL_VERIFYPEER, target.tlsVerify ? 1 : 0)
            set(CURLOPT_SSL_VERIFYHOST, target.tlsVerify ? 2 : 0)
            if target.certificateInfo { set(CURLOPT_CERTINFO, 1) }
            storeBody()
        case .tcp:
            // Connect, report, close: a TCP check measures a fresh connect every time.
            // Straight to the host: never through a proxy named by http_proxy
            // or https_proxy in the agent's environment (nor for tls, exchange).
            set(CURLOPT_PROXY, "")
            set(CURLOPT_CONNECT_ONLY, 1)
            set(CURLOPT_FRESH_CONNECT, 1)
            set(CURLOPT_FORBID_REUSE, 1)
        case .exchange:
            // A fresh connect, kept open after the transfer ends so the prober
            // can take its socket (`TCPConversation`): FORBID_REUSE would close
            // it first. Removing the handle then closes curl's side.
            set(CURLOPT_PROXY, "")
            set(CURLOPT_CONNECT_ONLY, 1)
            set(CURLOPT_FRESH_CONNECT, 1)
        case .tls:
            // CONNECT_ONLY on an https:// URL: connect and handshake (with
            // verification against the CA and the URL's host, the server
            // name), then stop, without a byte of the protocol above TLS.
            // The expiry comes from CURLOPT_CERTINFO rather than
            // CURLINFO_TLS_SSL_PTR: certinfo is the same text on every TLS
            // backend libcurl may be built with and needs no OpenSSL headers
            // here, and the HTTPS check already reads it the same way.
            set(CURLOPT_PROTOCOLS_STR, "https")
            set(CURLOPT_PROXY, "")
            set(CURLOPT_CONNECT_ONLY, 1)
            set(CURLOPT_FRESH_CONNECT, 1)
            set(CURLOPT_FORBID_REUSE, 1)
            // Never resume a session: every probe does a full handshake, so the
            // certificate judged is the one the server sends now.
            set(CURLOPT_SSL_SESSIONID_CACHE, 0)
            set(CURLOPT_SSL_VERIFYPEER, 1)
            set(CURLOPT_SSL_VERIFYHOST, 2)
            if target.certificateInfo { set(CURLOPT_CERTINFO, 1) }
            if let caFile = target.caFile { set(CURLOPT_CAINFO, caFile) }
            if let connectTo = target.connectTo { set(CURLOPT_CONNECT_TO, pointer: UnsafeMutableRawPointer(connectTo)) }
        }
        return setupFailure
    }

    /// Keeps the body (up to `bodyLimit`) through the write callback.
    private func storeBody() {
        note(CURLOPT_WRITEFUNCTION, vitals_easy_setopt_write_function(easy) { data, size, count, context in
            let transfer = Unmanaged<CurlTransfer>.fromOpaque(context!).takeUnretainedValue()
            let total = size * count
            if let data, total > 0 { transfer.store(UnsafeRawPointer(data), count: total) }
            return total
        })
        set(CURLOPT_WRITEDATA, pointer: Unmanaged.passUnretained(self).toOpaque())
    }

    /// Forgets the target and trims the body buffer; the handle goes idle.
    func finish() {
        target = nil
        bodyCount = 0
        if bodyCapacity > Self.idleBodyCapacity {
            free(body)
            body = nil
            bodyCapacity = 0
        }
    }

    /// Keeps up to `bodyLimit` bytes; the rest of the body is read and dropped
    /// so the transfer completes and its connection stays reusable.
    func store(_ data: UnsafeRawPointer, count: Int) {
        let room = bodyLimit - bodyCount
        guard room > 0 else { return }
        let take = min(room, count)
        if bodyCount + take > bodyCapacity {
            let capacity = min(bodyLimit, max(bodyCapacity * 2, bodyCount + take, 1024))
            guard let grown = realloc(body, capacity) else { return }
            body = grown
            bodyCapacity = capacity
        }
        (body! + bodyCount).copyMemory(from: data, byteCount: take)
        bodyCount += take
    }

    var bodyBytes: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: body, count: bodyCount)
    }

    var errorDetail: String {
        var text = String(cString: errorBuffer)
        while text.last == "\n" { text.removeLast() }
        return text
    }

    // MARK: Options

    private func set(_ option: CURLoption, _ value: Int) {
        note(option, vitals_easy_setopt_long(easy, option, value))
    }

    private func set(_ option: CURLoption, _ value: UnsafePointer<CChar>) {
        note(option, vitals_easy_setopt_string(easy, option, value))
    }

    private func set(_ option: CURLoption, pointer: UnsafeMutableRawPointer) {
        note(option, vitals_easy_setopt_pointer(easy, option, pointer))
    }

    private func note(_ option: CURLoption, _ code: CURLcode) {
        if code != CURLE_OK && setupFailure == nil {
            setupFailure = "cannot set up probe: \(Curl.text(code)) (option \(option.rawValue))"
        }
    }
}
