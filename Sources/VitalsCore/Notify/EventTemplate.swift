import Foundation

/// A text with `{{placeholders}}` filled from an event: the body of a
/// webhook, the subject and body of an e-mail.
///
/// - Placeholders: `{{group}}`, `{{kind}}`, `{{from}}`, `{{to}}`,
///   `{{reason}}`, `{{time}}` (ISO 8601, UTC), `{{service}}`, `{{id}}`,
///   `{{rule}}`, `{{summary}}` (`EventText.summary`), `{{body}}` (the ping
///   body, for a heartbeat's event) and `{{event}}` (the whole event JSON).
///   Spaces inside the braces are allowed (`{{ service }}`). A value the
///   event does not have is empty.
/// - In `.json` mode each value is JSON-escaped without quotes (the template
///   has them: `{"text": "{{service}} is {{to}}"}`), except `{{event}}`,
///   which is a JSON object and goes in as it is.
/// - Anything else is copied as written; an unknown placeholder is refused
///   when the config is read (`validate`).
public struct EventTemplate: Sendable, Equatable {
    public enum Escaping: Sendable, Equatable {
        case none
        case json
    }

    public static let placeholders = ["group", "kind", "from", "to", "reason", "time", "service", "id", "rule",
                                      "summary", "body", "event"]

    private enum Piece: Sendable, Equatable {
        case text(String)
        case value(String)
    }

    private let pieces: [Piece]

    /// Reads `text`; throws the first unknown or unclosed placeholder, in words.
    public init(_ text: String) throws(TemplateError) {
        var pieces: [Piece] = []
        var rest = Substring(text)
        while let open = rest.range(of: "{{") {
            pieces.append(.text(String(rest[..<open.lowerBound])))
            let after = rest[open.upperBound...]
            guard let close = after.range(of: "}}") else {
                throw TemplateError(message: "\"{{\" without a closing \"}}\"")
            }
            let name = after[..<close.lowerBound].trimmingCharacters(in: .whitespaces)
            guard Self.placeholders.contains(name) else {
                let known = Self.placeholders.map { "{{\($0)}}" }.joined(separator: ", ")
                throw TemplateError(message: "unknown placeholder {{\(name)}}; known: \(known)")
            }
            pieces.append(.value(name))
            rest = after[close.upperBound...]
        }
        pieces.append(.text(String(rest)))
        self.pieces = pieces.filter { $0 != .text("") }
    }

    public struct TemplateError: Error, Sendable, Equatable, CustomStringConvertible {
        public var message: String
        public var description: String { message }
    }

    /// nil when `text` is a usable template, else why not.
    public static func validate(_ text: String) -> String? {
        do {
            _ = try EventTemplate(text)
            return nil
        } catch {
            return error.message
        }
    }

    /// The text with every placeholder filled from `event`.
    public func render(_ event: AgentEvent, escaping: Escaping) -> String {
        var out = ""
        for piece in pieces {
            switch piece {
            case .text(let text):
                out += text
            case .value("event"):
                // A JSON object either way: in JSON it is a value, elsewhere text.
                out += String(decoding: event.json, as: UTF8.self)
            case .value(let name):
                let value = Self.value(name, of: event)
                out += escaping == .json ? JSONText.escaped(value) : value
            }
        }
        return out
    }

    static func value(_ name: String, of event: AgentEvent) -> String {
        switch name {
        case "group": event.group ?? ""
        case "kind": event.kind.rawValue
        case "from": event.from ?? ""
        case "to": event.to ?? ""
        case "reason": event.reason
        case "time": event.timeText
        case "service": event.service ?? ""
        case "id": String(event.id)
        case "rule": event.rule ?? ""
        case "summary": EventText.summary(event)
        case "body": event.pingBody?.text ?? ""
        default: ""
        }
    }
}

/// JSON written by hand, keys in the order given, so a preset's body is the
/// same bytes every time and can be documented and tested exactly.
public indirect enum JSONText: Sendable, Equatable {
    case string(String)
    case number(Int)
    case bool(Bool)
    case array([JSONText])
    case object([(String, JSONText)])

    public static func == (a: JSONText, b: JSONText) -> Bool { a.rendered == b.rendered }

    /// One line, no spaces.
    public var rendered: String {
        switch self {
        case .string(let text): "\"" + Self.escaped(text) + "\""
        case .number(let n): String(n)
        case .bool(let b): b ? "true" : "false"
        case .array(let items): "[" + items.map(\.rendered).joined(separator: ",") + "]"
        case .object(let fields):
            "{" + fields.map { "\"" + Self.escaped($0.0) + "\":" + $0.1.rendered }.joined(separator: ",") + "}"
        }
    }

    /// `text` escaped for the inside of a JSON string (RFC 8259): `"`, `\`
    /// and control characters; everything else as it is.
    public static func escaped(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20 || scalar.value == 0x7f || scalar.value == 0x2028 || scalar.value == 0x2029:
                out += String(format: "\\u%04x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }
}

/// `${NAME}` references to environment variables inside a config value.
public enum EnvironmentReferences {
    /// The names referred to, in order; nil when a `${` is not closed or a
    /// name is not `[A-Za-z_][A-Za-z0-9_]*`.
    public static func names(in text: String) -> [String]? {
        var names: [String] = []
        var rest = Substring(text)
        while let open = rest.range(of: "${") {
            guard let close = rest[open.upperBound...].firstIndex(of: "}") else { return nil }
            let name = String(rest[open.upperBound..<close])
            guard isName(name) else { return nil }
            names.append(name)
            rest = rest[rest.index(after: close)...]
        }
        return names
    }

    static func isName(_ name: String) -> Bool {
        func letter(_ c: Unicode.Scalar) -> Bool { ("a"..."z").contains(c) || ("A"..."Z").contains(c) || c == "_" }
        guard let first = name.unicodeScalars.first, letter(first) else { return false }
        return name.unicodeScalars.allSatisfy { letter($0) || ("0"..."9").contains($0) }
    }

    /// `text` with every `${NAME}` replaced from `environment`, or the first
    /// name that is not set (or empty) there.
    public static func expand(_ text: String, environment: [String: String]) -> Result<String, MissingVariable> {
        var out = ""
        var rest = Substring(text)
        while let open = rest.range(of: "${"), let close = rest[open.upperBound...].firstIndex(of: "}") {
            out += rest[..<open.lowerBound]
            let name = String(rest[open.upperBound..<close])
            guard let value = environment[name], !value.isEmpty else { return .failure(MissingVariable(name: name)) }
            out += value
            rest = rest[rest.index(after: close)...]
        }
        out += rest
        return .success(out)
    }

    public struct MissingVariable: Error, Sendable, Equatable {
        public var name: String
    }
}
