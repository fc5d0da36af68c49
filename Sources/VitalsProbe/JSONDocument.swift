import Foundation
import VitalsCore

/// A parsed JSON document, just enough to look fields up by dotted path and
/// compare them with a `JSONScalar`.
enum JSONValue: Decodable, Equatable {
    case string(String)
    case number(Double)
    case bool(Bool)
    case null
    case array([JSONValue])
    case object([String: JSONValue])

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let b = try? container.decode(Bool.self) {
            self = .bool(b)
        } else if let n = try? container.decode(Double.self) {
            self = .number(n)
        } else if let s = try? container.decode(String.self) {
            self = .string(s)
        } else if let a = try? container.decode([JSONValue].self) {
            self = .array(a)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }

    /// Parses a whole document; nil when the bytes are not JSON.
    static func parse(_ bytes: some Collection<UInt8>) -> JSONValue? {
        try? JSONDecoder().decode(JSONValue.self, from: Data(bytes))
    }

    /// The value at a dotted path (`checks.db.state`); a numeric component
    /// indexes an array (`items.0.name`). Nil when any step is missing.
    func value(at path: String) -> JSONValue? {
        var current = self
        for component in path.split(separator: ".", omittingEmptySubsequences: false) {
            switch current {
            case .object(let fields):
                guard let next = fields[String(component)] else { return nil }
                current = next
            case .array(let items):
                guard let index = Int(component), items.indices.contains(index) else { return nil }
                current = items[index]
            case .string, .number, .bool, .null:
                return nil
            }
        }
        return current
    }

    /// Whether this value equals the expected scalar. Types must match: the
    /// string `"1"` is not the number `1`, nor is `1` the boolean `true`.
    func matches(_ expected: JSONScalar) -> Bool {
        switch (self, expected) {
        case (.string(let a), .string(let b)): a == b
        case (.number(let a), .number(let b)): a == b
        case (.bool(let a), .bool(let b)): a == b
        case (.null, .null): true
        default: false
        }
    }

    /// The value as an operator reads it in a reason.
    var rendered: String {
        switch self {
        case .string(let s): JSONScalar.string(s).description
        case .number(let n): JSONScalar.number(n).description
        case .bool(let b): JSONScalar.bool(b).description
        case .null: "null"
        case .array: "an array"
        case .object: "an object"
        }
    }
}
