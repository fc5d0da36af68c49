import Foundation
import VitalsCore
import VitalsSystem

/// Resolves `SecretText` when an action runs: `${NAME}` from the agent's
/// environment, `*_file` from the file (trailing line breaks and spaces
/// dropped). What goes wrong is said without the value: the variable's name
/// or the file's path, and the config key.
public struct SecretResolver: Sendable {
    public var environment: [String: String]
    /// Reads a file; tests may stand in.
    public var readFile: @Sendable (String) -> Result<[UInt8], SystemCallError>

    public init(environment: [String: String] = ProcessInfo.processInfo.environment,
                readFile: @escaping @Sendable (String) -> Result<[UInt8], SystemCallError> = { path in
                    Result { () throws(SystemCallError) in try Posix.readFile(path) }
                }) {
        self.environment = environment
        self.readFile = readFile
    }

    /// The value, or why it cannot be had (naming `key`, never the value).
    public func resolve(_ secret: SecretText, key: String) -> Result<String, SecretError> {
        switch secret {
        case .text(let text):
            return EnvironmentReferences.expand(text, environment: environment)
                .mapError { SecretError(message: "\(key): environment variable \($0.name) is not set") }
        case .file(let path):
            switch readFile(path) {
            case .success(let bytes):
                let text = String(decoding: bytes, as: UTF8.self)
                let trimmed = String(text.reversed().drop { $0.isWhitespace }.reversed())
                guard !trimmed.isEmpty else { return .failure(SecretError(message: "\(key)_file \(path) is empty")) }
                return .success(trimmed)
            case .failure(let error):
                return .failure(SecretError(message: "\(key)_file \(path): cannot read: \(Posix.errorText(error.errno))"))
            }
        }
    }

    /// Header values with their `${NAME}`s filled in.
    public func headers(_ fields: [HTTPHeaderField]) -> Result<[HTTPHeaderField], SecretError> {
        var out: [HTTPHeaderField] = []
        for field in fields {
            switch resolve(.text(field.value), key: "headers.\(field.name)") {
            case .success(let value): out.append(HTTPHeaderField(name: field.name, value: value))
            case .failure(let error): return .failure(error)
            }
        }
        return .success(out)
    }
}

public struct SecretError: Error, Sendable, Equatable {
    public var message: String
}

/// Takes resolved secrets out of what an action reports: result messages and
/// captured answers are journaled, logged and served, and a server may echo
/// what it was sent (a URL with its token, a key it refused).
struct Redaction: Sendable {
    static let mask = "[redacted]"
    private let secrets: [String]

    /// Values shorter than 4 characters are not looked for: they would mask ordinary words.
    init(_ secrets: [String?]) {
        self.secrets = secrets.compactMap { $0 }.filter { $0.count >= 4 }.sorted { $0.count > $1.count }
    }

    func text(_ text: String) -> String {
        secrets.reduce(text) { $0.replacingOccurrences(of: $1, with: Self.mask) }
    }

    func result(_ result: ActionResult) -> ActionResult {
        switch result {
        case .error(let message): .error(text(message))
        case .spawnFailed(let message): .spawnFailed(text(message))
        case .skipped(let why): .skipped(text(why))
        case .ok, .failed, .timedOut, .cancelled: result
        }
    }

    func output(_ output: ActionOutput) -> ActionOutput {
        var output = output
        if var body = output.responseBody {
            body.text = text(body.text)
            output.responseBody = body
        }
        return output
    }
}
