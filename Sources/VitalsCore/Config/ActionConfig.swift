/// One entry under `actions:`.
public struct ActionConfig: Sendable, Equatable {
    public var name: String
    public var kind: ActionKind
    /// Whole-run bound. Default 30s.
    public var timeout: Duration
    /// Extra attempts after a failure, with exponential backoff. Default 0.
    public var retries: Int
    public init(name: String, kind: ActionKind, timeout: Duration = .seconds(30), retries: Int = 0) {
        self.name = name
        self.kind = kind
        self.timeout = timeout
        self.retries = retries
    }
}

public enum ActionKind: Sendable, Equatable {
    /// Run argv directly (no shell) with the event in the environment.
    case exec(argv: [String], env: [String: String])
    /// Send the event JSON (or a template, or a preset's body) to a URL.
    case webhook(WebhookAction)
    /// Mail the event as plain text through SMTP.
    case email(EmailAction)
    /// Write the event to the agent's log.
    case log

    public var name: String {
        switch self {
        case .exec: "exec"
        case .webhook: "webhook"
        case .email: "email"
        case .log: "log"
        }
    }
}
