import Foundation
import Yams

/// A YAML node tree with positions, composed so that duplicate mapping keys
/// can be reported like any other configuration error.
///
/// Yams rejects a mapping with duplicate keys outright, naming only the first
/// key and no key path, and stops. So that duplicates are reported with their
/// path, their own position and alongside every other problem, each duplicate
/// Yams finds is renamed in the text (a marker is inserted in front of the
/// earlier key) and the text composed again. The walker recognises renamed
/// keys by `originalKey(_:)`, and `position(of:)` maps marks back to the text
/// the operator wrote.
struct ComposedYAML {
    /// An insertion into the text: `length` scalars at `line`:`column`.
    private struct Insertion {
        var line: Int
        var column: Int
        var length: Int
    }

    /// The root node; nil for an empty document.
    let root: Node?
    private let insertions: [Insertion]

    private static let markerPrefix = "__vitals_duplicate"
    private static let markerSuffix = "__"
    /// More duplicates than this in one file is not a typo worth itemising.
    private static let maxRenames = 200

    enum Outcome {
        case composed(ComposedYAML)
        /// The text is not YAML (or not one document); one error says why.
        case invalid(ConfigError)
    }

    static func compose(_ text: String) -> Outcome {
        var text = text
        var insertions: [Insertion] = []
        while true {
            do {
                let root = try Yams.compose(yaml: text)
                return .composed(ComposedYAML(root: root, insertions: insertions))
            } catch let YamlError.duplicatedKeysInMapping(duplicates, context) {
                let adjusted = ComposedYAML(root: nil, insertions: insertions)
                let (line, column) = adjusted.position(of: context.mark)
                let fallback = ConfigError(path: "", message: Self.duplicateMessage(duplicates),
                                           line: line, column: column)
                guard insertions.count < maxRenames,
                      let key = duplicates.first,
                      let insertion = rename(key: key, at: context.mark, number: insertions.count, in: &text)
                else { return .invalid(fallback) }
                insertions.append(insertion)
            } catch let error as YamlError {
                // A syntax error after a rename is a real one further on: renames
                // only happen where Yams located a key scalar.
                let adjusted = ComposedYAML(root: nil, insertions: insertions)
                return .invalid(adjusted.syntaxError(error, text: text))
            } catch {
                return .invalid(ConfigError(path: "", message: "invalid YAML: \(error)", line: 1, column: 1))
            }
        }
    }

    /// Line and column, 1-based, in the text as the operator wrote it.
    func position(of mark: Mark?) -> (line: Int, column: Int) {
        guard let mark else { return (1, 1) }
        var column = mark.column
        // Undo insertions newest first: each was made in the text left by the ones before it.
        for insertion in insertions.reversed() where insertion.line == mark.line && column > insertion.column {
            column -= insertion.length
        }
        return (mark.line, max(column, 1))
    }

    /// The key as written, for a key renamed to mark a duplicate; nil for any other key.
    static func originalKey(_ key: String) -> String? {
        guard key.hasPrefix(markerPrefix) else { return nil }
        let rest = key.dropFirst(markerPrefix.count).drop { $0.isASCII && $0.isNumber }
        guard rest.hasPrefix(markerSuffix) else { return nil }
        return String(rest.dropFirst(markerSuffix.count))
    }

    // MARK: - Renaming duplicates

    /// Inserts a marker in front of the key scalar at `mark` (inside its quotes
    /// if quoted). Nil when the text at `mark` is not that key.
    private static func rename(key: String, at mark: Mark, number: Int, in text: inout String) -> Insertion? {
        guard let start = index(ofLine: mark.line, column: mark.column, in: text) else { return nil }
        let marker = "\(markerPrefix)\(number)\(markerSuffix)"
        let scalars = text.unicodeScalars
        var at = start
        var column = mark.column
        // A key's mark is at its anchor or tag when it has one: `&a key:`, `!!str key:`.
        while at < scalars.endIndex, scalars[at] == "&" || scalars[at] == "!" {
            while at < scalars.endIndex, scalars[at] != " ", !isBreak(scalars[at]) {
                at = scalars.index(after: at)
                column += 1
            }
            while at < scalars.endIndex, scalars[at] == " " {
                at = scalars.index(after: at)
                column += 1
            }
        }
        if at < scalars.endIndex, scalars[at] == "\"" || scalars[at] == "'" {
            at = scalars.index(after: at)
            column += 1
        } else if !String(scalars[at...]).hasPrefix(key) || key.isEmpty {
            return nil
        }
        text.unicodeScalars.insert(contentsOf: marker.unicodeScalars, at: at)
        return Insertion(line: mark.line, column: column, length: marker.unicodeScalars.count)
    }

    /// The index of a 1-based line and column (in unicode scalars, as libyaml counts).
    private static func index(ofLine line: Int, column: Int, in text: String) -> String.UnicodeScalarView.Index? {
        let scalars = text.unicodeScalars
        var i = scalars.startIndex
        var currentLine = 1
        while currentLine < line {
            guard i < scalars.endIndex else { return nil }
            let c = scalars[i]
            i = scalars.index(after: i)
            if c == "\r", i < scalars.endIndex, scalars[i] == "\n" { i = scalars.index(after: i) }
            if isBreak(c) { currentLine += 1 }
        }
        for _ in 1..<max(column, 1) {
            guard i < scalars.endIndex, !isBreak(scalars[i]) else { return nil }
            i = scalars.index(after: i)
        }
        return i
    }

    private static func isBreak(_ c: Unicode.Scalar) -> Bool {
        c == "\n" || c == "\r" || c == "\u{85}" || c == "\u{2028}" || c == "\u{2029}"
    }

    // MARK: - Syntax errors

    /// Used only when a duplicate could not be renamed (a key that is not a scalar).
    private static func duplicateMessage(_ duplicates: [String]) -> String {
        // Yams names keys it cannot render "<uncovertable>".
        guard let key = duplicates.first, key != "<uncovertable>" else { return "duplicate key" }
        return "duplicate key \"\(key)\""
    }

    private func syntaxError(_ error: YamlError, text: String) -> ConfigError {
        func make(_ problem: String, _ context: YamlError.Context?, _ mark: Mark) -> ConfigError {
            let (line, column) = position(of: mark)
            // Yams' own wording for a second document reads backwards.
            if problem == "but found another document" {
                return ConfigError(path: "", message: "invalid YAML: expected one document, found another",
                                   line: line, column: column)
            }
            var message = "invalid YAML: \(problem)"
            if let context, !context.text.isEmpty {
                let (contextLine, contextColumn) = position(of: context.mark)
                message += ", \(context.text)"
                if (contextLine, contextColumn) != (line, column) {
                    message += " from line \(contextLine), column \(contextColumn)"
                }
            }
            return ConfigError(path: "", message: message, line: line, column: column)
        }
        switch error {
        case let .scanner(context, problem, mark, _),
             let .parser(context, problem, mark, _),
             let .composer(context, problem, mark, _):
            return make(problem, context, mark)
        case let .reader(problem, offset, _, _):
            let (line, column) = offset.map { Self.lineAndColumn(ofCharacterOffset: $0, in: text) } ?? (1, 1)
            return ConfigError(path: "", message: "invalid YAML: \(problem)", line: line, column: column)
        case let .duplicatedKeysInMapping(duplicates, context):
            let (line, column) = position(of: context.mark)
            return ConfigError(path: "", message: Self.duplicateMessage(duplicates), line: line, column: column)
        case .no, .memory, .writer, .emitter, .representer, .dataCouldNotBeDecoded:
            return ConfigError(path: "", message: "invalid YAML: \(error)", line: 1, column: 1)
        }
    }

    private static func lineAndColumn(ofCharacterOffset offset: Int, in text: String) -> (Int, Int) {
        var line = 1
        var column = 1
        for character in text.prefix(offset) {
            if character.isNewline {
                line += 1
                column = 1
            } else {
                column += character.unicodeScalars.count
            }
        }
        return (line, column)
    }
}
