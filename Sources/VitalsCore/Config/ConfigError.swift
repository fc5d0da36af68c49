/// One problem in a configuration file, at the place it was found.
///
/// Rendered `<key path>: <message> (line L, column C)`, for example
/// `groups.db.members[2]: unknown service "db-3" (line 41, column 9)`. Key paths
/// are dotted, sequence indices in brackets. Problems with the file as a whole
/// (YAML syntax, an empty file) have an empty path and render without the
/// `<key path>: ` prefix. Lines and columns count from 1.
public struct ConfigError: Error, Sendable, Hashable, CustomStringConvertible {
    /// Dotted key path to the offending value: `services.web-1.http.url`.
    public var path: String
    /// What is wrong, in an operator's words.
    public var message: String
    public var line: Int
    public var column: Int

    public init(path: String, message: String, line: Int, column: Int) {
        self.path = path
        self.message = message
        self.line = line
        self.column = column
    }

    public var description: String {
        let location = "(line \(line), column \(column))"
        return path.isEmpty ? "\(message) \(location)" : "\(path): \(message) \(location)"
    }
}

/// Every problem found in a configuration file: the loader never stops at the first.
///
/// Sorted by line, then column; problems at the same place keep the order in
/// which they were found. `description` prints one problem per line.
public struct ConfigErrors: Error, Sendable, Equatable, CustomStringConvertible {
    public let errors: [ConfigError]

    public init(_ errors: [ConfigError]) {
        self.errors = errors.enumerated().sorted { a, b in
            (a.element.line, a.element.column, a.offset) < (b.element.line, b.element.column, b.offset)
        }.map(\.element)
    }

    /// Each problem rendered as `description`, in order.
    public var messages: [String] { errors.map(\.description) }

    public var description: String { messages.joined(separator: "\n") }
}
