/// What an event is about, as `/v1/events`, the journal, `on:` lists and
/// action runners name it: a group decision (`failover`, `group_down`, …), a
/// service's change of state (`state_change`), a reload of the
/// configuration (`config_reloaded`) or a reload refused because the new
/// file is invalid (`reload_refused`). Encoded as its raw name.
public enum EventKind: Sendable, Hashable, Codable, CustomStringConvertible {
    case group(GroupEventKind)
    case stateChange
    case configReloaded
    /// SIGHUP or `POST /v1/reload` found the file invalid; the previous
    /// configuration stays in force. The reason lists every error.
    case reloadRefused

    public init?(rawValue: String) {
        switch rawValue {
        case "state_change": self = .stateChange
        case "config_reloaded": self = .configReloaded
        case "reload_refused": self = .reloadRefused
        default:
            guard let kind = GroupEventKind(rawValue: rawValue) else { return nil }
            self = .group(kind)
        }
    }

    public var rawValue: String {
        switch self {
        case .group(let kind): kind.rawValue
        case .stateChange: "state_change"
        case .configReloaded: "config_reloaded"
        case .reloadRefused: "reload_refused"
        }
    }

    /// The group decision, when this is one.
    public var groupKind: GroupEventKind? {
        if case .group(let kind) = self { kind } else { nil }
    }

    public var description: String { rawValue }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let kind = EventKind(rawValue: text) else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "unknown event kind '\(text)'")
        }
        self = kind
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }
}
