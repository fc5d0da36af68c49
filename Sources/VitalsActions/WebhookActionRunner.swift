#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CCurl
import Foundation
import VitalsCore
import VitalsCurl
import VitalsSystem

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

    /// Sends the request once, on a thread of its own. Cancelling the task aborts the transfer.
    func send() async -> ActionAttempt {
        let cancellation = CurlRequest.Cancellation()
        return await withTaskCancellationHandler {
            await LoopThread.value(name: "vitals-webhook") { perform(cancellation) }
        } onCancel: {
            cancellation.cancel()
        }
    }

    /// The blocking part.
    private func perform(_ cancellation: CurlRequest.Cancellation) -> ActionAttempt {
        let bodyless = method == "GET" || method == "HEAD"
        let request = CurlRequest(method: method, url: url,
                                  // No 100-continue round trip for bodies over 1 KiB.
                                  headers: headers.map { ($0.0, $0.1) } + [("Expect", "")],
                                  body: bodyless ? nil : body, timeout: timeout,
                                  maxResponseBytes: maxResponseBytes, userAgent: userAgent, protocols: "http,https")
        switch request.perform(cancellation: cancellation) {
        case .failure(let error):
            if error.code == CURLE_ABORTED_BY_CALLBACK && cancellation.isCancelled {
                return ActionAttempt(result: .cancelled)
            }
            if error.code == CURLE_OPERATION_TIMEDOUT { return ActionAttempt(result: .timedOut(after: timeout)) }
            return ActionAttempt(result: .error("\(Self.words(for: error)) (\(Self.origin(of: url)))"))
        case .success(let response):
            if (200...299).contains(response.status) { return ActionAttempt(result: .ok) }
            let responseBody = CapturedText(bytes: response.body, totalBytes: response.totalBytes)
            return ActionAttempt(result: .failed(.httpStatus(response.status)), output: ActionOutput(responseBody: responseBody))
        }
    }

    /// A curl failure in an operator's words.
    static func words(for error: CurlError) -> String {
        let (code, osErrno, detail) = (error.code, error.osErrno, error.detail)
        switch code {
        case CURLE_COULDNT_CONNECT:
            switch osErrno {
            case ECONNREFUSED: return "connect refused"
            case EHOSTUNREACH: return "host unreachable"
            case ENETUNREACH: return "network unreachable"
            case ETIMEDOUT: return "connect timed out"
            case 0: return "cannot connect"
            default: return "cannot connect: \(Posix.errorText(osErrno))"
            }
        case CURLE_COULDNT_RESOLVE_HOST:
            return "cannot resolve host \(URLComponents(string: error.url)?.host ?? "in URL")"
        case CURLE_URL_MALFORMAT:
            return "malformed URL"
        case CURLE_UNSUPPORTED_PROTOCOL:
            return "unsupported protocol (http and https only)"
        case CURLE_GOT_NOTHING:
            return "empty reply from server"
        case CURLE_SEND_ERROR, CURLE_RECV_ERROR:
            return osErrno == ECONNRESET ? "connection reset" : (detail.isEmpty ? "connection failed" : detail)
        case CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CONNECT_ERROR, CURLE_SSL_CERTPROBLEM, CURLE_SSL_CACERT_BADFILE:
            return "TLS: " + error.message
        default:
            return error.message
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
