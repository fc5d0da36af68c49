import Foundation
import VitalsCore
import VitalsHTTP

/// The fields one write endpoint takes, each with its type. Every write
/// goes through `parse`, the one place that reads query items and the JSON
/// body and answers 400 naming the field at fault:
///
/// - a field the endpoint does not take: `unknown field "x" (expected: reason, force)`;
/// - a value of the wrong type: `to: expected a string, got 1`;
/// - a field given twice (in the query and the body, twice in the query, or
///   under a name and its alias): refused, never one silently winning;
/// - two fields that exclude each other (`for` and `until`);
/// - a time that must be in the future and is not.
///
/// Query items carry the same fields as text: `?force=true`, `?for=30m`.
struct WriteFields: Sendable {
    enum Kind: Sendable {
        case text
        case flag
        /// A duration longer than zero: "30m", "2h".
        case duration
        /// An ISO 8601 time after now.
        case futureTime

        var expected: String {
            switch self {
            case .text: "a string"
            case .flag: "true or false"
            case .duration: "a duration like 30m or 2h"
            case .futureTime: "an ISO 8601 time like 2026-11-28T06:00:00Z"
            }
        }
    }

    struct Field: Sendable {
        var name: String
        var kind: Kind
        /// Other names accepted for this field (older spellings).
        var aliases: [String] = []
    }

    var fields: [Field]
    /// Pairs of fields of which at most one may be given.
    var exclusive: [(String, String)] = []

    static let none = WriteFields(fields: [])
    static let switchover = WriteFields(fields: [Field(name: "to", kind: .text, aliases: ["member"])])
    static let hold = WriteFields(fields: [Field(name: "reason", kind: .text), Field(name: "force", kind: .flag)])
    static let maintenance = WriteFields(
        fields: [Field(name: "reason", kind: .text), Field(name: "for", kind: .duration, aliases: ["duration"]),
                 Field(name: "until", kind: .futureTime), Field(name: "force", kind: .flag)],
        exclusive: [("for", "until")])
    static let ready = WriteFields(fields: [Field(name: "reason", kind: .text)])

    /// One field's value, checked and converted.
    enum Value {
        case text(String)
        case flag(Bool)
        case duration(Duration)
        case time(Date)
    }

    /// The fields given, by their own name (not an alias).
    struct Arguments {
        var values: [String: Value] = [:]

        func text(_ name: String) -> String? {
            if case .text(let text)? = values[name] { text } else { nil }
        }
        /// False when not given.
        func flag(_ name: String) -> Bool {
            if case .flag(let on)? = values[name] { on } else { false }
        }
        func duration(_ name: String) -> Duration? {
            if case .duration(let duration)? = values[name] { duration } else { nil }
        }
        func time(_ name: String) -> Date? {
            if case .time(let date)? = values[name] { date } else { nil }
        }
    }

    /// Reads `query` then `body` (empty, or a JSON object) at `now`; the
    /// error is the message of a 400 answer.
    func parse(query: [HTTPQueryItem], body: [UInt8], now: Date) -> Result<Arguments, Rejection> {
        var given: [(name: String, value: JSON)] = query.map { ($0.name, .string($0.value)) }
        if !body.isEmpty {
            guard let object = try? JSONDecoder().decode([String: JSON].self, from: Data(body)) else {
                return .failure(.notAnObject)
            }
            // Sorted, so that of several faults the same one is named each time.
            given += object.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        }
        var arguments = Arguments()
        var spelled: [String: String] = [:]
        for (name, json) in given {
            guard let field = fields.first(where: { $0.name == name || $0.aliases.contains(name) }) else {
                return .failure(.unknown(name, expected: fields.map(\.name)))
            }
            if let earlier = spelled[field.name] {
                return .failure(earlier == name ? .givenTwice(name)
                                : .sameField(field.name, field.name == name ? earlier : name))
            }
            spelled[field.name] = name
            switch value(of: json, as: field.kind, now: now) {
            case .success(let value): arguments.values[field.name] = value
            case .failure(let fault): return .failure(fault.named(name))
            }
        }
        for (first, second) in exclusive where spelled[first] != nil && spelled[second] != nil {
            return .failure(.exclusive(first, second))
        }
        return .success(arguments)
    }

    private enum Fault: Error {
        case wrongType(Kind, got: JSON)
        case notAfterNow(String, now: Date)

        func named(_ name: String) -> Rejection {
            switch self {
            case .wrongType(let kind, let got): .wrongType(name, kind, got: got.description)
            case .notAfterNow(let text, let now): .notAfterNow(name, text, now: now)
            }
        }
    }

    private func value(of json: JSON, as kind: Kind, now: Date) -> Result<Value, Fault> {
        switch (kind, json) {
        case (.text, .string(let text)):
            return .success(.text(text))
        case (.flag, .bool(let on)):
            return .success(.flag(on))
        case (.flag, .string(let text)) where ["true", "false", "1", "0"].contains(text):
            // Only a query item arrives as text; in a body, a flag is a JSON boolean.
            return .success(.flag(text == "true" || text == "1"))
        case (.duration, .string(let text)):
            guard let duration = DurationText.parse(text), duration > .zero else { break }
            return .success(.duration(duration))
        case (.futureTime, .string(let text)):
            guard let date = ISOTime.parse(text) else { break }
            guard date > now else { return .failure(.notAfterNow(text, now: now)) }
            return .success(.time(date))
        case (.text, _), (.flag, _), (.duration, _), (.futureTime, _):
            break
        }
        return .failure(.wrongType(kind, got: json))
    }

    /// Why a write's fields were refused: the message of a 400 answer.
    enum Rejection: Error, Equatable, CustomStringConvertible {
        case notAnObject
        case unknown(String, expected: [String])
        case wrongType(String, Kind, got: String)
        case givenTwice(String)
        case sameField(String, String)
        case exclusive(String, String)
        case notAfterNow(String, String, now: Date)

        var description: String {
            switch self {
            case .notAnObject:
                #"the body must be a JSON object, e.g. {"reason": "..."}"#
            case .unknown(let name, let expected):
                expected.isEmpty
                    ? "unknown field \"\(name)\" (this endpoint takes no fields)"
                    : "unknown field \"\(name)\" (expected: \(expected.joined(separator: ", ")))"
            case .wrongType(let name, let kind, let got):
                "\(name): expected \(kind.expected), got \(got)"
            case .givenTwice(let name):
                "\(name): given more than once; give it once"
            case .sameField(let first, let second):
                "\(first) and \(second) are the same field; give one"
            case .exclusive(let first, let second):
                "give \(first) or \(second), not both"
            case .notAfterNow(let name, let text, let now):
                "\(name): \(text) is not after now (\(ISOTime.format(now)))"
            }
        }
    }

    /// Any JSON value, as a write's body holds it.
    private enum JSON: Decodable, Sendable, CustomStringConvertible {
        case string(String), bool(Bool), number(Double), null, array, object

        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if container.decodeNil() {
                self = .null
            } else if let on = try? container.decode(Bool.self) {
                self = .bool(on)
            } else if let number = try? container.decode(Double.self) {
                self = .number(number)
            } else if let text = try? container.decode(String.self) {
                self = .string(text)
            } else if (try? container.decode([JSON].self)) != nil {
                self = .array
            } else {
                _ = try container.decode([String: JSON].self)
                self = .object
            }
        }

        /// As the message quotes what was sent: `"yes"`, `1`, `true`, `null`, `an array`.
        var description: String {
            switch self {
            case .string(let text): "\"\(text)\""
            case .bool(let on): String(on)
            case .number(let number):
                number == number.rounded() && abs(number) < 1e15 ? String(Int64(number)) : String(number)
            case .null: "null"
            case .array: "an array"
            case .object: "an object"
            }
        }
    }
}

extension StatusAPI {
    /// Token-checked POST whose fields `fields` parses and checks (400 on any fault).
    func write(_ request: HTTPRequest, _ fields: WriteFields,
               _ body: (WriteFields.Arguments) -> HTTPResponse) -> HTTPResponse {
        guard request.method == .post else { return notAllowed([.post]) }
        if let denied = authorize(request) { return denied }
        switch fields.parse(query: request.queryItems, body: request.body, now: clock.now()) {
        case .success(let arguments): return body(arguments)
        case .failure(let rejection): return .error(status: .badRequest, message: rejection.description)
        }
    }
}
