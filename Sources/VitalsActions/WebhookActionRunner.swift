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

/// `webhook` actions: sends the event to a URL through libcurl.
///
/// - Method: the configured one (POST by default in config). GET and HEAD
///   send no body; every other method sends it.
/// - Body: with a `preset`, the preset's (`WebhookPreset.request`); with
///   `body`, the template filled from the event (`EventTemplate`),
///   JSON-escaped when the Content-Type is JSON (the default); otherwise the
///   event JSON.
/// - Headers: `Content-Type: application/json` unless the action sets its own
///   Content-Type, then the preset's, then the action's (`${NAME}`s filled
///   in). `Expect: 100-continue` is never sent.
/// - Secrets (`url_file`, `${NAME}` in the URL or a header, the preset's key)
///   are read when the action runs; one that cannot be had is an `.error`
///   naming the key, and is not retried. Resolved secrets are taken out of
///   every result message and captured answer (`[redacted]`).
/// - A preset with nothing to say about an event (PagerDuty and Opsgenie
///   for `switchover`, `held`, …) reports `skipped`.
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
    public var secrets: SecretResolver

    public init(maxResponseBytes: Int = 512, userAgent: String = "vitals", retry: RetryPolicy = .init(),
                clock: any VitalsClock = SystemClock(), secrets: SecretResolver = .init()) {
        self.maxResponseBytes = maxResponseBytes
        self.userAgent = userAgent
        self.retry = retry
        self.clock = clock
        self.secrets = secrets
    }

    /// What one event makes a webhook send: the URL, headers and body.
    public struct Request: Sendable, Equatable {
        public var url: String
        public var headers: [HTTPHeaderField]
        public var body: [UInt8]
        /// The resolved secrets, to take out of what is reported.
        var secrets: [String]
    }

    /// The request for `event`, nil when a preset sends nothing for it, or
    /// why it cannot be made (a secret that cannot be had).
    public static func request(for hook: WebhookAction, event: AgentEvent,
                               secrets: SecretResolver) -> Result<Request?, SecretError> {
        var revealed: [String] = []
        func resolve(_ secret: SecretText, _ key: String) -> Result<String, SecretError> {
            secrets.resolve(secret, key: key).map { value in
                revealed.append(value)
                return value
            }
        }
        /// The values of the variables `text` names: secrets, even where the text around them is not.
        func referenced(_ text: String) -> [String] {
            (EnvironmentReferences.names(in: text) ?? []).compactMap { secrets.environment[$0] }
        }
        let url: String
        if let given = hook.url {
            switch secrets.resolve(given, key: "url") {
            case .success(let value): url = value
            case .failure(let error): return .failure(error)
            }
            switch given {
            case .file:
                // A URL kept apart is a secret: its path and query (a Slack
                // hook's token) too, wherever they are echoed.
                revealed.append(url)
                if let parts = URLComponents(string: url) {
                    revealed.append(parts.percentEncodedPath)
                    if let query = parts.percentEncodedQuery { revealed.append(query) }
                }
            case .text(let text):
                revealed += referenced(text)
            }
        } else {
            url = hook.preset?.defaultURL ?? ""
        }
        var key: String?
        if let secret = hook.key, let name = hook.preset?.keyName {
            switch resolve(secret, name) {
            case .success(let value): key = value
            case .failure(let error): return .failure(error)
            }
        }
        let headers: [HTTPHeaderField]
        switch secrets.headers(hook.headers) {
        case .success(let value): headers = value
        case .failure(let error): return .failure(error)
        }
        // What header values took from the environment is secret too.
        for written in hook.headers { revealed += referenced(written.value) }
        var fields: [HTTPHeaderField] = []
        let contentType = headers.last { $0.name.lowercased() == "content-type" }?.value ?? "application/json"
        if !headers.contains(where: { $0.name.lowercased() == "content-type" }) {
            fields.append(HTTPHeaderField(name: "Content-Type", value: "application/json"))
        }
        var target = url
        let body: [UInt8]
        if let preset = hook.preset {
            guard let made = preset.request(for: event, key: key) else { return .success(nil) }
            target = made.path.isEmpty ? url : (url.hasSuffix("/") ? String(url.dropLast()) : url) + made.path
            fields += made.headers
            body = Array(made.body.utf8)
        } else if let template = hook.body, let parsed = try? EventTemplate(template) {
            let json = contentType.lowercased().contains("json")
            body = Array(parsed.render(event, escaping: json ? .json : .none).utf8)
        } else {
            body = event.json
        }
        fields += headers
        return .success(Request(url: target, headers: fields, body: body, secrets: revealed))
    }

    public func run(_ event: AgentEvent, action: ActionConfig) async -> ActionOutcome {
        let started = clock.now()
        let startedInstant = ContinuousClock.now
        guard case .webhook(let hook) = action.kind else {
            return .notRun(action, event: event, result: .error("webhook runner cannot run a \(action.kind.name) action"), at: started)
        }
        func outcome(_ result: ActionResult, attempts: Int, output: ActionOutput = .init()) -> ActionOutcome {
            ActionOutcome(action: action.name, kind: action.kind.name, eventID: event.id, eventKind: event.kind,
                          group: event.group, result: result, attempts: attempts, started: started,
                          finished: clock.now(), duration: ContinuousClock.now - startedInstant, output: output)
        }
        let made: Request
        switch Self.request(for: hook, event: event, secrets: secrets) {
        case .failure(let error):
            return outcome(.error(error.message), attempts: 1)
        case .success(nil):
            return outcome(.skipped("\(hook.preset?.rawValue ?? "preset") sends nothing for \(event.kind.rawValue)"),
                           attempts: 0)
        case .success(let request?):
            made = request
        }
        let request = WebhookRequest(url: made.url, method: hook.method.uppercased(),
                                     headers: made.headers.map { ($0.name, $0.value) },
                                     body: made.body, timeout: action.timeout,
                                     maxResponseBytes: maxResponseBytes, userAgent: userAgent)
        let (last, attempts) = await retry.perform(retries: action.retries) { _ in
            await request.send()
        }
        let redaction = Redaction(made.secrets)
        return outcome(redaction.result(last.result), attempts: attempts, output: redaction.output(last.output))
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
