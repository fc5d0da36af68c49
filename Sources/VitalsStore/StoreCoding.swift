import Foundation
import VitalsCore

/// How the store turns values into bytes: `StoredJSON` (sorted keys,
/// ISO 8601 dates to the millisecond), and how it words a decoding failure.
enum StoreCoding {
    static func encoder() -> JSONEncoder { StoredJSON.encoder() }

    static func decoder() -> JSONDecoder { StoredJSON.decoder() }

    /// A one-line account of why `bytes` did not decode, for warnings.
    static func explain(_ error: any Error) -> String {
        guard let error = error as? DecodingError else { return "\(error)" }
        func path(_ codingPath: [any CodingKey]) -> String {
            codingPath.isEmpty ? "the top level" : codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
        }
        switch error {
        case .dataCorrupted(let context):
            return context.codingPath.isEmpty ? "not valid JSON" : "bad value at \(path(context.codingPath)): \(context.debugDescription)"
        case .keyNotFound(let key, let context):
            return "missing key \"\(key.stringValue)\" at \(path(context.codingPath))"
        case .typeMismatch(_, let context), .valueNotFound(_, let context):
            return "wrong type at \(path(context.codingPath)): \(context.debugDescription)"
        @unknown default:
            return "\(error)"
        }
    }
}
