/// A value that may be a secret (a password, a webhook URL with a token in
/// it, a routing key), so it never has to sit in the config: written out,
/// with `${NAME}` naming variables of the agent's environment, or read from a
/// file. Both are resolved each time the action runs (`SecretResolver` in
/// VitalsActions), so a rotated secret needs no reload, and the resolved
/// value is never logged, served or journaled.
public enum SecretText: Sendable, Equatable {
    /// As written; each `${NAME}` is replaced by the environment variable `NAME`.
    case text(String)
    /// The file's contents, without trailing line breaks and spaces.
    case file(String)
}

/// `webhook:` — an HTTP request per event.
public struct WebhookAction: Sendable, Equatable {
    /// Where to send. nil: the preset's default (PagerDuty, Opsgenie).
    public var url: SecretText?
    public var method: String
    /// A template (`EventTemplate`) for the body; nil: the preset's, else the event JSON.
    public var body: String?
    /// Header values may name `${VARIABLES}`.
    public var headers: [HTTPHeaderField]
    public var preset: WebhookPreset?
    /// The preset's key: PagerDuty's routing key (`routing_key`), Opsgenie's API key (`api_key`).
    public var key: SecretText?

    public init(url: SecretText?, method: String = "POST", body: String? = nil, headers: [HTTPHeaderField] = [],
                preset: WebhookPreset? = nil, key: SecretText? = nil) {
        self.url = url
        self.method = method
        self.body = body
        self.headers = headers
        self.preset = preset
        self.key = key
    }

    /// A plain webhook to a URL written in the config.
    public static func to(_ url: String, method: String = "POST", body: String? = nil,
                          headers: [HTTPHeaderField] = []) -> WebhookAction {
        WebhookAction(url: .text(url), method: method, body: body, headers: headers)
    }
}

/// The services `webhook: { preset: … }` knows how to speak to.
public enum WebhookPreset: String, Sendable, Equatable, CaseIterable {
    case slack, discord, teams, pagerduty, opsgenie

    /// Where the preset sends when no `url` is given; nil: `url` is required.
    public var defaultURL: String? {
        switch self {
        case .slack, .discord, .teams: nil
        case .pagerduty: "https://events.pagerduty.com/v2/enqueue"
        case .opsgenie: "https://api.opsgenie.com"
        }
    }

    /// The config key of the preset's secret, when it has one.
    public var keyName: String? {
        switch self {
        case .slack, .discord, .teams: nil
        case .pagerduty: "routing_key"
        case .opsgenie: "api_key"
        }
    }
}

/// `email:` — a plain-text message per event through an SMTP server.
public struct EmailAction: Sendable, Equatable {
    /// `smtp://host[:port]` or `smtps://host[:port]` (TLS from the first byte).
    public var url: String
    public var from: String
    public var to: [String]
    /// For `smtp://`: whether to upgrade the connection with STARTTLS.
    public var starttls: StartTLS
    public var username: String?
    public var password: SecretText?
    /// PEM file of the CA(s) that must have signed the server's certificate; nil: the system's.
    public var caFile: String?
    /// Templates (`EventTemplate`); nil: `EventText.subject` and `EventText.body`.
    public var subject: String?
    public var body: String?

    public enum StartTLS: String, Sendable, Equatable, CaseIterable {
        /// Upgrade, or fail when the server cannot (libcurl's CURLUSESSL_ALL).
        case required
        /// Upgrade when the server offers it (CURLUSESSL_TRY).
        case opportunistic
        /// Plain text (a local relay).
        case never
    }

    public init(url: String, from: String, to: [String], starttls: StartTLS = .required, username: String? = nil,
                password: SecretText? = nil, caFile: String? = nil, subject: String? = nil, body: String? = nil) {
        self.url = url
        self.from = from
        self.to = to
        self.starttls = starttls
        self.username = username
        self.password = password
        self.caFile = caFile
        self.subject = subject
        self.body = body
    }
}
