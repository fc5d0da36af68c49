#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CCurl
import Foundation
import Synchronization
import VitalsCore

/// `webhook` actions: sends the event JSON to a URL through libcurl.
///
/// - Method: the configured one (POST by default in config). GET and HEAD
///   send no body; every other method sends it.
/// - Body: the action's `body` when set, sent literally (no templating: the
///   bytes in the config are the bytes on the wire); otherwise the event JSON.
/// - Headers: `Content-Type: application/json` unless the action sets its own
///   Content-Type, then the action's headers. `Expect: 100-continue` is never sent.
/// - Success is a 2xx answer within `action.timeout` (which bounds the whole
///   request, connect included). Redirects are not followed. Anything else is
///   retried per `RetryPolicy`; the outcome keeps the status code and the
///   first `maxResponseBytes` of the answer.
/// - Connection errors are put in words ("connect refused", "cannot resolve
///   host hooks.example"), followed by the URL's scheme, host and port only:
///   webhook URLs often carry a secret in the path or query, and outcomes are
///   journaled and served.
/// - Each attempt is one blocking `curl_easy_perform` on a thread of its own.
///   Cancellation aborts it from the progress callback (within about a second).
public struct WebhookActionRunner: ActionRunner {
    /// Response bytes kept for a failed request. Default: 512.
    public var maxResponseBytes: Int
    public var userAgent: String
    public var retry: RetryPolicy
    public var clock: any VitalsClock

    public init(maxResponseBytes: Int = 512, userAgent: String = "vitals", retry: RetryPolicy = .init(),
                clock: any VitalsClock = SystemClock()) {
        self.maxResponseBytes = maxResponseBytes
        self.userAgent = userAgent
        self.retry = retry
        self.clock = clock
    }

    public func run(_ event: AgentEvent, action: ActionConfig) async -> ActionOutcome {
        let started = clock.now()
        let startedInstant = ContinuousClock.now
        guard case .webhook(let url, let method, let body, let headers) = action.kind else {
            return .notRun(action, event: event, result: .error("webhook runner cannot run a \(action.kind.name) action"), at: started)
        }
        var fields: [(String, String)] = []
        if !headers.contains(where: { $0.name.lowercased() == "content-type" }) {
            fields.append(("Content-Type", "application/json"))
        }
        fields += headers.map { ($0.name, $0.value) }
        let request = WebhookRequest(url: url, method: method.uppercased(), headers: fields,
                                     body: body.map { Array($0.utf8) } ?? event.json, timeout: action.timeout,
                                     maxResponseBytes: maxResponseBytes, userAgent: userAgent)
        let (last, attempts) = await retry.perform(retries: action.retries) { _ in
            await request.send()
        }
        return ActionOutcome(action: action.name, kind: action.kind.name, eventID: event.id, eventKind: event.kind,
                             group: event.group, result: last.result, attempts: attempts, started: started,
                             finished: clock.now(), duration: ContinuousClock.now - startedInstant, output: last.output)
    }
}

/// One HTTP request, sent with libcurl easy on a thread of its own.
struct WebhookRequest: Sendable {
    var url: String
    var method: String
    var headers: [(String, String)]
    var body: [UInt8]
    var timeout: Duration
    var maxResponseBytes: Int
    var userAgent: String

    /// Sends the request once. Cancelling the task aborts the transfer.
    func send() async -> ActionAttempt {
        let transfer = Transfer(limit: maxResponseBytes)
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<ActionAttempt, Never>) in
                let thread = Thread { continuation.resume(returning: perform(transfer)) }
                thread.name = "vitals-webhook"
                thread.start()
            }
        } onCancel: {
            transfer.cancelled.store(true, ordering: .releasing)
        }
    }

    /// What the curl callbacks see: the first bytes of the answer, and whether to abort.
    final class Transfer: Sendable {
        let limit: Int
        let cancelled = Atomic<Bool>(false)
        let received = Mutex<(bytes: [UInt8], total: Int)>(([], 0))
        init(limit: Int) { self.limit = limit }
    }

    /// The blocking part.
    private func perform(_ transfer: Transfer) -> ActionAttempt {
        CurlGlobal.initialize()
        guard let easy = curl_easy_init() else { return ActionAttempt(result: .error("cannot start libcurl")) }
        defer { curl_easy_cleanup(easy) }
        let errorBuffer = UnsafeMutablePointer<CChar>.allocate(capacity: Int(CURL_ERROR_SIZE) + 1)
        errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
        defer { errorBuffer.deallocate() }
        var list: UnsafeMutablePointer<curl_slist>?
        for (name, value) in headers { list = curl_slist_append(list, "\(name): \(value)") }
        list = curl_slist_append(list, "Expect:") // no 100-continue round trip for bodies over 1 KiB
        defer { curl_slist_free_all(list) }
        let context = Unmanaged.passUnretained(transfer).toOpaque()
        let timeoutMs = max(1, Int(timeout.milliseconds))

        vitals_easy_setopt_string(easy, CURLOPT_URL, url)
        vitals_easy_setopt_string(easy, CURLOPT_PROTOCOLS_STR, "http,https")
        vitals_easy_setopt_long(easy, CURLOPT_NOSIGNAL, 1)
        vitals_easy_setopt_long(easy, CURLOPT_TIMEOUT_MS, timeoutMs)
        vitals_easy_setopt_long(easy, CURLOPT_CONNECTTIMEOUT_MS, timeoutMs)
        vitals_easy_setopt_string(easy, CURLOPT_USERAGENT, userAgent)
        vitals_easy_setopt_pointer(easy, CURLOPT_ERRORBUFFER, errorBuffer)
        vitals_easy_setopt_slist(easy, CURLOPT_HTTPHEADER, list)
        vitals_easy_setopt_pointer(easy, CURLOPT_WRITEDATA, context)
        vitals_easy_setopt_write_function(easy) { data, size, count, user in
            let transfer = Unmanaged<Transfer>.fromOpaque(user!).takeUnretainedValue()
            let n = size * count
            transfer.received.withLock { received in
                received.total += n
                let room = transfer.limit - received.bytes.count
                if let data, room > 0 {
                    received.bytes.append(contentsOf: UnsafeRawBufferPointer(start: data, count: min(n, room)))
                }
            }
            return n // the rest is read and dropped
        }
        vitals_easy_setopt_long(easy, CURLOPT_NOPROGRESS, 0)
        vitals_easy_setopt_pointer(easy, CURLOPT_XFERINFODATA, context)
        vitals_easy_setopt_xferinfo_function(easy) { user, _, _, _, _ in
            let transfer = Unmanaged<Transfer>.fromOpaque(user!).takeUnretainedValue()
            return transfer.cancelled.load(ordering: .acquiring) ? 1 : 0
        }

        var payload = body
        let code: CURLcode = payload.withUnsafeMutableBytes { raw in
            switch method {
            case "GET":
                vitals_easy_setopt_long(easy, CURLOPT_HTTPGET, 1)
            case "HEAD":
                vitals_easy_setopt_long(easy, CURLOPT_NOBODY, 1)
            default:
                if method != "POST" { vitals_easy_setopt_string(easy, CURLOPT_CUSTOMREQUEST, method) }
                vitals_easy_setopt_long(easy, CURLOPT_POSTFIELDSIZE, raw.count)
                vitals_easy_setopt_pointer(easy, CURLOPT_POSTFIELDS, raw.baseAddress ?? UnsafeMutableRawPointer(errorBuffer))
            }
            return curl_easy_perform(easy)
        }

        let received = transfer.received.withLock { $0 }
        let responseBody = CapturedText(bytes: received.bytes, totalBytes: received.total)
        guard code == CURLE_OK else {
            if code == CURLE_ABORTED_BY_CALLBACK && transfer.cancelled.load(ordering: .acquiring) {
                return ActionAttempt(result: .cancelled)
            }
            if code == CURLE_OPERATION_TIMEDOUT { return ActionAttempt(result: .timedOut(after: timeout)) }
            var osErrno = 0
            vitals_easy_getinfo_long(easy, CURLINFO_OS_ERRNO, &osErrno)
            let words = Self.words(for: code, osErrno: Int32(osErrno), detail: String(cString: errorBuffer), url: url)
            return ActionAttempt(result: .error("\(words) (\(Self.origin(of: url)))"))
        }
        var status = 0
        vitals_easy_getinfo_long(easy, CURLINFO_RESPONSE_CODE, &status)
        if (200...299).contains(status) { return ActionAttempt(result: .ok) }
        return ActionAttempt(result: .failed(.httpStatus(status)), output: ActionOutput(responseBody: responseBody))
    }

    /// A curl failure in an operator's words.
    static func words(for code: CURLcode, osErrno: Int32, detail: String, url: String) -> String {
        switch code {
        case CURLE_COULDNT_CONNECT:
            switch osErrno {
            case ECONNREFUSED: return "connect refused"
            case EHOSTUNREACH: return "host unreachable"
            case ENETUNREACH: return "network unreachable"
            case ETIMEDOUT: return "connect timed out"
            case 0: return "cannot connect"
            default: return "cannot connect: \(String(cString: strerror(osErrno)))"
            }
        case CURLE_COULDNT_RESOLVE_HOST:
            return "cannot resolve host \(URLComponents(string: url)?.host ?? "in URL")"
        case CURLE_URL_MALFORMAT:
            return "malformed URL"
        case CURLE_UNSUPPORTED_PROTOCOL:
            return "unsupported protocol (http and https only)"
        case CURLE_GOT_NOTHING:
            return "empty reply from server"
        case CURLE_SEND_ERROR, CURLE_RECV_ERROR:
            return osErrno == ECONNRESET ? "connection reset" : (detail.isEmpty ? "connection failed" : detail)
        case CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CONNECT_ERROR, CURLE_SSL_CERTPROBLEM, CURLE_SSL_CACERT_BADFILE:
            return "TLS: " + (detail.isEmpty ? String(cString: curl_easy_strerror(code)) : detail)
        default:
            return detail.isEmpty ? String(cString: curl_easy_strerror(code)) : detail
        }
    }

    /// `https://hooks.example:443`: enough to say where, without a path or
    /// query that may hold a token, and without credentials.
    static func origin(of url: String) -> String {
        guard let parts = URLComponents(string: url), let scheme = parts.scheme, let host = parts.host, !host.isEmpty else {
            return "webhook URL"
        }
        let shownHost = host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host
        return "\(scheme)://\(shownHost)" + (parts.port.map { ":\($0)" } ?? "")
    }
}

/// `curl_global_init` exactly once per process, before any thread uses curl.
/// (libcurl 7.84+ makes it thread-safe and reference-counted, so a second
/// module doing the same is harmless.)
enum CurlGlobal {
    private static let once: Void = { curl_global_init(Int(CURL_GLOBAL_ALL)) }()
    static func initialize() { _ = once }
}
