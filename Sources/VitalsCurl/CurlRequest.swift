#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CCurl
import Synchronization

/// One blocking HTTP request on a libcurl easy handle, for one-off calls
/// (the command line, webhooks). Probes go through the prober's multi handle.
///
/// - HEAD sends no body; any other method sends `body` when given (POST
///   with a body is curl's own, the rest are named as a custom request).
/// - `timeout` bounds the whole request, the connect included.
/// - The first `maxResponseBytes` of the answer are kept, the rest is read,
///   counted and dropped.
public struct CurlRequest: Sendable {
    public var method: String
    public var url: String
    /// Sent as `Name: value`; an empty value sends `Name:`, which stops curl
    /// from adding a header of that name itself (`Expect:`).
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]?
    public var timeout: Duration
    public var maxResponseBytes: Int
    /// nil: curl's default (none).
    public var userAgent: String?
    /// `CURLOPT_PROTOCOLS_STR`, e.g. "http,https"; nil: whatever curl supports.
    public var protocols: String?
    /// Speak HTTP/1.1 only (`CURLOPT_HTTP_VERSION`), for servers whose HTTP/2
    /// is not the same API (etcd's JSON gateway).
    public var http11Only: Bool
    /// Certificates for `https://`; nil: curl's defaults (the system CAs, no client certificate).
    public var tls: TLSFiles?

    public init(method: String = "GET", url: String, headers: [(name: String, value: String)] = [], body: [UInt8]? = nil,
                timeout: Duration = .seconds(5), maxResponseBytes: Int = 16 << 20,
                userAgent: String? = nil, protocols: String? = nil, http11Only: Bool = false, tls: TLSFiles? = nil) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.timeout = timeout
        self.maxResponseBytes = maxResponseBytes
        self.userAgent = userAgent
        self.protocols = protocols
        self.http11Only = http11Only
        self.tls = tls
    }

    /// PEM files for a TLS connection.
    public struct TLSFiles: Sendable, Equatable {
        /// The CA bundle that must have signed the server's certificate (`CURLOPT_CAINFO`); nil: the system's.
        public var caFile: String?
        /// The client certificate (`CURLOPT_SSLCERT`) and its key (`CURLOPT_SSLKEY`), for servers that ask for one.
        public var certificateFile: String?
        public var keyFile: String?

        public init(caFile: String? = nil, certificateFile: String? = nil, keyFile: String? = nil) {
            self.caFile = caFile
            self.certificateFile = certificateFile
            self.keyFile = keyFile
        }
    }

    /// The status and the first bytes of an answer.
    public struct Response: Sendable {
        public var status: Int
        public var body: [UInt8]
        /// Every body byte received, kept or not.
        public var totalBytes: Int
    }

    /// Aborts a `perform` from another thread; the request then fails with
    /// `CURLE_ABORTED_BY_CALLBACK`.
    public final class Cancellation: Sendable {
        private let flag = Atomic<Bool>(false)
        public init() {}
        public func cancel() { flag.store(true, ordering: .releasing) }
        public var isCancelled: Bool { flag.load(ordering: .acquiring) }
    }

    /// What the curl callbacks see, on the performing thread only.
    private final class Transfer {
        let limit: Int
        let cancellation: Cancellation?
        /// Streaming: takes each chunk as it arrives (false: stop), and nothing is kept.
        let sink: ((UnsafeRawBufferPointer) -> Bool)?
        var bytes: [UInt8] = []
        var total = 0
        init(limit: Int, cancellation: Cancellation?, sink: ((UnsafeRawBufferPointer) -> Bool)? = nil) {
            self.limit = limit
            self.cancellation = cancellation
            self.sink = sink
        }
    }

    /// Sends the request on the calling thread and waits for the answer.
    public func perform(cancellation: Cancellation? = nil) -> Result<Response, CurlError> {
        run(Transfer(limit: maxResponseBytes, cancellation: cancellation), streaming: false)
    }

    /// Sends the request on the calling thread and hands each chunk of the
    /// answer's body to `onData` as it arrives, for answers that stream for as
    /// long as the server likes (a watch). `timeout` then bounds the connect
    /// only: there is no total or low-speed limit, so an idle stream stays
    /// open until the server ends it or `cancellation` fires (noticed within
    /// about a second, when curl next reports progress) or `onData` answers
    /// false (the transfer then fails with `CURLE_WRITE_ERROR`). TCP keepalive
    /// is on. The response's `body` is empty.
    public func performStreaming(cancellation: Cancellation,
                                 onData: @escaping (UnsafeRawBufferPointer) -> Bool) -> Result<Response, CurlError> {
        run(Transfer(limit: 0, cancellation: cancellation, sink: onData), streaming: true)
    }

    private func run(_ transfer: Transfer, streaming: Bool) -> Result<Response, CurlError> {
        Curl.initialize()
        guard let easy = curl_easy_init() else { return .failure(CurlError(url: url, code: CURLE_FAILED_INIT)) }
        defer { curl_easy_cleanup(easy) }
        let cancellation = transfer.cancellation
        let context = Unmanaged.passUnretained(transfer).toOpaque()
        let errorBuffer = UnsafeMutablePointer<CChar>.allocate(capacity: Int(CURL_ERROR_SIZE) + 1)
        errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
        defer { errorBuffer.deallocate() }
        var list: UnsafeMutablePointer<curl_slist>?
        for (name, value) in headers { list = curl_slist_append(list, value.isEmpty ? "\(name):" : "\(name): \(value)") }
        defer { curl_slist_free_all(list) }
        let timeoutMs = max(1, Int(timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000))

        vitals_easy_setopt_string(easy, CURLOPT_URL, url)
        if let protocols { vitals_easy_setopt_string(easy, CURLOPT_PROTOCOLS_STR, protocols) }
        vitals_easy_setopt_long(easy, CURLOPT_NOSIGNAL, 1)
        if streaming {
            vitals_easy_setopt_long(easy, CURLOPT_TCP_KEEPALIVE, 1)
        } else {
            vitals_easy_setopt_long(easy, CURLOPT_TIMEOUT_MS, timeoutMs)
        }
        vitals_easy_setopt_long(easy, CURLOPT_CONNECTTIMEOUT_MS, timeoutMs)
        if http11Only { vitals_easy_setopt_long(easy, CURLOPT_HTTP_VERSION, Int(CURL_HTTP_VERSION_1_1)) }
        if let tls {
            if let caFile = tls.caFile { vitals_easy_setopt_string(easy, CURLOPT_CAINFO, caFile) }
            if let certificateFile = tls.certificateFile { vitals_easy_setopt_string(easy, CURLOPT_SSLCERT, certificateFile) }
            if let keyFile = tls.keyFile { vitals_easy_setopt_string(easy, CURLOPT_SSLKEY, keyFile) }
        }
        if let userAgent { vitals_easy_setopt_string(easy, CURLOPT_USERAGENT, userAgent) }
        vitals_easy_setopt_pointer(easy, CURLOPT_ERRORBUFFER, errorBuffer)
        vitals_easy_setopt_slist(easy, CURLOPT_HTTPHEADER, list)
        vitals_easy_setopt_pointer(easy, CURLOPT_WRITEDATA, context)
        vitals_easy_setopt_write_function(easy) { data, size, count, user in
            let transfer = Unmanaged<Transfer>.fromOpaque(user!).takeUnretainedValue()
            let n = size * count
            transfer.total += n
            if let sink = transfer.sink {
                return sink(UnsafeRawBufferPointer(start: data, count: n)) ? n : 0
            }
            let room = transfer.limit - transfer.bytes.count
            if let data, room > 0 {
                transfer.bytes.append(contentsOf: UnsafeRawBufferPointer(start: data, count: min(n, room)))
            }
            return n // the rest is read and dropped
        }
        if cancellation != nil {
            vitals_easy_setopt_long(easy, CURLOPT_NOPROGRESS, 0)
            vitals_easy_setopt_pointer(easy, CURLOPT_XFERINFODATA, context)
            vitals_easy_setopt_xferinfo_function(easy) { user, _, _, _, _ in
                let transfer = Unmanaged<Transfer>.fromOpaque(user!).takeUnretainedValue()
                return transfer.cancellation?.isCancelled == true ? 1 : 0
            }
        }

        var payload = body ?? []
        let code: CURLcode = payload.withUnsafeMutableBytes { raw in
            switch method {
            case "HEAD":
                vitals_easy_setopt_long(easy, CURLOPT_NOBODY, 1)
            case "GET" where body == nil:
                vitals_easy_setopt_long(easy, CURLOPT_HTTPGET, 1)
            default:
                // A POST without a body is curl's GET unless named.
                if method != "POST" || body == nil { vitals_easy_setopt_string(easy, CURLOPT_CUSTOMREQUEST, method) }
                if body != nil {
                    vitals_easy_setopt_long(easy, CURLOPT_POSTFIELDSIZE, raw.count)
                    vitals_easy_setopt_pointer(easy, CURLOPT_POSTFIELDS, raw.baseAddress ?? UnsafeMutableRawPointer(errorBuffer))
                }
            }
            return curl_easy_perform(easy)
        }
        guard code == CURLE_OK else {
            var osErrno = 0
            vitals_easy_getinfo_long(easy, CURLINFO_OS_ERRNO, &osErrno)
            return .failure(CurlError(url: url, code: code, osErrno: Int32(osErrno), detail: String(cString: errorBuffer)))
        }
        var status = 0
        vitals_easy_getinfo_long(easy, CURLINFO_RESPONSE_CODE, &status)
        return .success(Response(status: status, body: transfer.bytes, totalBytes: transfer.total))
    }
}
