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

/// `email` actions: a plain-text message per event through an SMTP server,
/// with libcurl.
///
/// - The message (`MailMessage`): `Subject:` is `[vitals] ` + the event's
///   summary (`EventText.summary`), or the action's `subject` template; the
///   body is `EventText.body` (summary, reason, facts, a ping's body), or the
///   action's `body` template. Both are filled without escaping.
/// - `smtp://` with `starttls` (required, opportunistic, never); `smtps://` is
///   TLS throughout. Certificates are verified against `ca_file`, else the
///   system's CAs.
/// - `username` and `password` (or `password_file`, or `${NAME}`) log in. The
///   password is read each time the action runs, and taken out of every
///   message reported (`[redacted]`).
/// - Success is the server's acceptance of DATA within `action.timeout`.
///   Anything else is retried per `RetryPolicy` (exponential backoff); a
///   password that cannot be read is not.
/// - Each attempt is one blocking transfer on a thread of its own;
///   cancellation aborts it.
public struct EmailActionRunner: ActionRunner {
    public var retry: RetryPolicy
    public var clock: any VitalsClock
    public var secrets: SecretResolver
    /// The host name in Message-ID. Default: this machine's.
    public var hostName: String

    public init(retry: RetryPolicy = .init(), clock: any VitalsClock = SystemClock(), secrets: SecretResolver = .init(),
                hostName: String = ProcessInfo.processInfo.hostName) {
        self.retry = retry
        self.clock = clock
        self.secrets = secrets
        self.hostName = hostName
    }

    /// The message for `event` (pure).
    public static func message(for mail: EmailAction, event: AgentEvent, hostName: String) -> MailMessage {
        let subject = mail.subject.flatMap { try? EventTemplate($0) }?.render(event, escaping: .none)
            ?? "[vitals] " + EventText.summary(event)
        let body = mail.body.flatMap { try? EventTemplate($0) }?.render(event, escaping: .none) ?? EventText.body(event)
        let stamp = Int64((event.time.timeIntervalSince1970 * 1000).rounded())
        return MailMessage(from: mail.from, to: mail.to, subject: subject, body: body, date: event.time,
                           messageID: "vitals.\(event.id).\(stamp)@\(hostName.isEmpty ? "localhost" : hostName)")
    }

    public func run(_ event: AgentEvent, action: ActionConfig) async -> ActionOutcome {
        let started = clock.now()
        let startedInstant = ContinuousClock.now
        guard case .email(let mail) = action.kind else {
            return .notRun(action, event: event, result: .error("email runner cannot run a \(action.kind.name) action"), at: started)
        }
        func outcome(_ result: ActionResult, attempts: Int) -> ActionOutcome {
            ActionOutcome(action: action.name, kind: action.kind.name, eventID: event.id, eventKind: event.kind,
                          group: event.group, result: result, attempts: attempts, started: started,
                          finished: clock.now(), duration: ContinuousClock.now - startedInstant)
        }
        var password: String?
        if let secret = mail.password {
            switch secrets.resolve(secret, key: "password") {
            case .success(let value): password = value
            case .failure(let error): return outcome(.error(error.message), attempts: 1)
            }
        }
        let tls: CurlMail.TLS = switch mail.starttls {
        case .required: .required
        case .opportunistic: .opportunistic
        case .never: .never
        }
        let submission = CurlMail(url: mail.url, from: mail.from, to: mail.to,
                                  message: Self.message(for: mail, event: event, hostName: hostName).bytes,
                                  tls: tls, username: mail.username, password: password, caFile: mail.caFile,
                                  timeout: action.timeout)
        let timeout = action.timeout
        let (last, attempts) = await retry.perform(retries: action.retries) { _ in
            let cancellation = CurlRequest.Cancellation()
            return await withTaskCancellationHandler {
                await LoopThread.value(name: "vitals-email") { Self.attempt(submission, cancellation, timeout: timeout) }
            } onCancel: {
                cancellation.cancel()
            }
        }
        return outcome(Redaction([password]).result(last.result), attempts: attempts)
    }

    /// The blocking part.
    static func attempt(_ submission: CurlMail, _ cancellation: CurlRequest.Cancellation, timeout: Duration) -> ActionAttempt {
        switch submission.send(cancellation: cancellation) {
        case .success:
            return ActionAttempt(result: .ok)
        case .failure(let failure):
            let error = failure.error
            if (error.code == CURLE_ABORTED_BY_CALLBACK || error.code == CURLE_READ_ERROR) && cancellation.isCancelled {
                return ActionAttempt(result: .cancelled)
            }
            if error.code == CURLE_OPERATION_TIMEDOUT { return ActionAttempt(result: .timedOut(after: timeout)) }
            return ActionAttempt(result: .error("\(words(for: failure)) (\(WebhookRequest.origin(of: submission.url)))"))
        }
    }

    /// An SMTP failure in an operator's words: `login denied (SMTP 535)`.
    static func words(for failure: CurlMail.Failure) -> String {
        let error = failure.error
        let reply = failure.replyCode > 0 ? " (SMTP \(failure.replyCode))" : ""
        switch error.code {
        case CURLE_LOGIN_DENIED:
            return "login denied" + reply
        case CURLE_USE_SSL_FAILED:
            return "the server does not offer STARTTLS (starttls: required)"
        case CURLE_UNSUPPORTED_PROTOCOL:
            return "unsupported protocol (smtp and smtps only)"
        case CURLE_COULDNT_CONNECT, CURLE_COULDNT_RESOLVE_HOST, CURLE_GOT_NOTHING, CURLE_SEND_ERROR, CURLE_RECV_ERROR,
             CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CONNECT_ERROR, CURLE_SSL_CACERT_BADFILE:
            return WebhookRequest.words(for: error)
        default:
            return error.message + reply
        }
    }
}
