import Foundation
import Yams

/// A key path into the configuration: `services.web-1.depends_on[0]`.
struct ConfigPath: CustomStringConvertible {
    private enum Component {
        case key(String)
        case index(Int)
    }

    private var components: [Component] = []

    static let root = ConfigPath()

    func key(_ key: String) -> ConfigPath {
        var copy = self
        copy.components.append(.key(key))
        return copy
    }

    func index(_ index: Int) -> ConfigPath {
        var copy = self
        copy.components.append(.index(index))
        return copy
    }

    var description: String {
        var text = ""
        for component in components {
            switch component {
            case .key(let key): text += text.isEmpty ? key : ".\(key)"
            case .index(let index): text += "[\(index)]"
            }
        }
        return text
    }
}

/// One `key: value` pair of a mapping, with the path to its value.
struct ConfigEntry {
    let key: String
    let keyNode: Node
    let value: Node
    let path: ConfigPath
}

/// The entries of a mapping whose keys were checked against the allowed ones.
struct ConfigFields {
    let entries: [ConfigEntry]

    subscript(key: String) -> ConfigEntry? { entries.first { $0.key == key } }
}

/// Walks a composed YAML tree, collecting every problem instead of stopping
/// at the first. Each reader returns nil after recording why.
final class ConfigReader {
    private(set) var errors: [ConfigError] = []
    private let document: ComposedYAML
    /// Where relative `exec:` program paths are resolved from; nil: as written.
    var baseDirectory: String?

    init(document: ComposedYAML) {
        self.document = document
    }

    // MARK: Reporting

    func fail(_ path: ConfigPath, at node: Node, _ message: String) {
        fail(path, at: node.mark, message)
    }

    func fail(_ path: ConfigPath, at mark: Mark?, _ message: String) {
        let (line, column) = document.position(of: mark)
        errors.append(ConfigError(path: path.description, message: message, line: line, column: column))
    }

    /// How a found value is named in messages: `"two"`, `a list`, `nothing`.
    func describe(_ node: Node) -> String {
        switch node {
        case .scalar(let scalar):
            scalar.string.isEmpty && scalar.style == .plain ? "nothing" : "\"\(scalar.string)\""
        case .mapping: "a mapping"
        case .sequence: "a list"
        case .alias: "an alias"
        }
    }

    func isNull(_ node: Node) -> Bool {
        guard case .scalar(let scalar) = node, scalar.style == .plain else { return false }
        return ["", "~", "null", "Null", "NULL"].contains(scalar.string)
    }

    // MARK: Mappings

    /// The entries of a mapping in file order. Duplicate keys are reported at
    /// the later one and dropped; the first one stands. A plain null counts as
    /// an empty mapping when `nullIsEmpty`.
    func entries(_ node: Node, _ path: ConfigPath, nullIsEmpty: Bool = false) -> [ConfigEntry]? {
        guard case .mapping(let mapping) = node else {
            if nullIsEmpty, isNull(node) { return [] }
            fail(path, at: node, "expected a mapping, got \(describe(node))")
            return nil
        }
        var result: [ConfigEntry] = []
        var firstLine: [String: Int] = [:]
        for (keyNode, value) in mapping {
            guard case .scalar(let scalar) = keyNode else {
                fail(path, at: keyNode, "keys must be plain text, got \(describe(keyNode))")
                continue
            }
            let key = ComposedYAML.originalKey(scalar.string) ?? scalar.string
            if let line = firstLine[key] {
                fail(path, at: keyNode, "duplicate key \"\(key)\", first at line \(line)")
                continue
            }
            firstLine[key] = document.position(of: keyNode.mark).line
            result.append(ConfigEntry(key: key, keyNode: keyNode, value: value, path: path.key(key)))
        }
        return result
    }

    /// The entries of a mapping, each key one of `allowed`. Unknown keys are
    /// reported with the nearest allowed key, or the whole list when none is close.
    func fields(_ node: Node, _ path: ConfigPath, allowed: [String], nullIsEmpty: Bool = false) -> ConfigFields? {
        guard let entries = entries(node, path, nullIsEmpty: nullIsEmpty) else { return nil }
        var known: [ConfigEntry] = []
        for entry in entries {
            if allowed.contains(entry.key) {
                known.append(entry)
            } else if let near = Self.nearest(to: entry.key, in: allowed) {
                fail(entry.path, at: entry.keyNode, "unknown key, did you mean \"\(near)\"?")
            } else {
                fail(entry.path, at: entry.keyNode, "unknown key; valid keys: \(allowed.joined(separator: ", "))")
            }
        }
        return ConfigFields(entries: known)
    }

    /// Reports `missing required key "<key>"` at the mapping's own key.
    func require(_ key: String, in fields: ConfigFields, _ path: ConfigPath, at mark: Mark?) -> ConfigEntry? {
        if let entry = fields[key] { return entry }
        fail(path, at: mark, "missing required key \"\(key)\"")
        return nil
    }

    // MARK: Scalars

    /// The text of a scalar. Empty text is refused unless `allowEmpty`.
    func string(_ entry: ConfigEntry, allowEmpty: Bool = false) -> String? {
        string(entry.value, entry.path, allowEmpty: allowEmpty)
    }

    func string(_ node: Node, _ path: ConfigPath, allowEmpty: Bool = false) -> String? {
        guard case .scalar(let scalar) = node, allowEmpty || !scalar.string.isEmpty,
              !(scalar.style == .plain && scalar.string.isEmpty) else {
            fail(path, at: node, "expected \(allowEmpty ? "a string" : "a non-empty string"), got \(describe(node))")
            return nil
        }
        return scalar.string
    }

    /// `true` or `false` (any case). YAML 1.1's yes/no/on/off are refused: they surprise.
    func bool(_ entry: ConfigEntry) -> Bool? {
        if case .scalar(let scalar) = entry.value {
            switch scalar.string.lowercased() {
            case "true": return true
            case "false": return false
            default: break
            }
        }
        fail(entry.path, at: entry.value, "expected true or false, got \(describe(entry.value))")
        return nil
    }

    /// A whole number in `min...max`.
    func wholeNumber(_ entry: ConfigEntry, min: Int, max: Int? = nil) -> Int? {
        wholeNumber(entry.value, entry.path, min: min, max: max)
    }

    func wholeNumber(_ node: Node, _ path: ConfigPath, min: Int, max: Int? = nil) -> Int? {
        guard case .scalar(let scalar) = node, let value = Int(scalar.string), value >= min else {
            fail(path, at: node, "expected a whole number ≥ \(min), got \(describe(node))")
            return nil
        }
        if let max, value > max {
            fail(path, at: node, "must be at most \(max), got \(describe(node))")
            return nil
        }
        return value
    }

    /// A duration such as `250ms` or `1m30s`; with `positive`, more than zero;
    /// with `atLeast`, no less than that.
    func duration(_ entry: ConfigEntry, positive: Bool = false, atLeast: Duration? = nil) -> Duration? {
        let node = entry.value
        guard case .scalar(let scalar) = node, let value = DurationText.parse(scalar.string) else {
            fail(entry.path, at: node, "expected a duration like 250ms, 2s, 1m, got \(describe(node))")
            return nil
        }
        if positive, value <= .zero {
            fail(entry.path, at: node, "must be greater than 0, got \(describe(node))")
            return nil
        }
        if let atLeast, value < atLeast {
            fail(entry.path, at: node, "must be at least \(DurationText.format(atLeast)), got \(describe(node))")
            return nil
        }
        return value
    }

    /// One of an enumeration's raw values.
    func oneOf<T: RawRepresentable & CaseIterable>(_ entry: ConfigEntry, _ type: T.Type) -> T? where T.RawValue == String {
        if case .scalar(let scalar) = entry.value, let value = T(rawValue: scalar.string) {
            return value
        }
        let names = T.allCases.map(\.rawValue).joined(separator: ", ")
        fail(entry.path, at: entry.value, "expected one of \(names), got \(describe(entry.value))")
        return nil
    }

    /// A list of scalars, or a single scalar read as a list of one.
    func stringList(_ entry: ConfigEntry, allowSingle: Bool = true) -> [(String, Node, ConfigPath)]? {
        switch entry.value {
        case .sequence(let sequence):
            var items: [(String, Node, ConfigPath)] = []
            var ok = true
            for (i, node) in sequence.enumerated() {
                if let text = string(node, entry.path.index(i)) {
                    items.append((text, node, entry.path.index(i)))
                } else {
                    ok = false
                }
            }
            return ok ? items : nil
        case .scalar where allowSingle && !isNull(entry.value):
            guard let text = string(entry) else { return nil }
            return [(text, entry.value, entry.path)]
        default:
            fail(entry.path, at: entry.value, "expected a list of names, got \(describe(entry.value))")
            return nil
        }
    }

    /// A mapping of text to text, in file order: headers, environments.
    func stringPairs(_ entry: ConfigEntry, allowEmptyValues: Bool = true) -> [(String, String)]? {
        guard let entries = entries(entry.value, entry.path, nullIsEmpty: true) else { return nil }
        var pairs: [(String, String)] = []
        var ok = true
        for item in entries {
            if let value = string(item, allowEmpty: allowEmptyValues) {
                pairs.append((item.key, value))
            } else {
                ok = false
            }
        }
        return ok ? pairs : nil
    }

    // MARK: Names

    /// Names of services, groups and actions appear in URLs.
    static func isValidName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, isAlphanumeric(first) else { return false }
        return name.unicodeScalars.allSatisfy { isAlphanumeric($0) || $0 == "." || $0 == "_" || $0 == "-" }
    }

    private static func isAlphanumeric(_ c: Unicode.Scalar) -> Bool {
        ("a"..."z").contains(c) || ("A"..."Z").contains(c) || ("0"..."9").contains(c)
    }

    // MARK: Suggestions

    /// The candidate nearest `word` by edit distance, when it is close enough to be a typo.
    static func nearest(to word: String, in candidates: [String]) -> String? {
        var best: (name: String, distance: Int)?
        for candidate in candidates {
            let distance = editDistance(word.lowercased(), candidate.lowercased())
            // Lowercasing hides a case-only difference, which is still a typo.
            let effective = distance == 0 && word != candidate ? 1 : distance
            let limit = Swift.max(1, Swift.min(3, candidate.count / 3))
            if effective <= limit, effective < (best?.distance ?? .max) {
                best = (candidate, effective)
            }
        }
        return best?.name
    }

    /// Optimal string alignment distance: insertions, deletions, substitutions
    /// and transpositions of neighbours each cost one.
    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a)
        let b = Array(b)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous2 = [Int](repeating: 0, count: b.count + 1)
        var previous = Array(0...b.count)
        var current = [Int](repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            current[0] = i
            for j in 1...b.count {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                current[j] = Swift.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
                if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] {
                    current[j] = Swift.min(current[j], previous2[j - 2] + 1)
                }
            }
            (previous2, previous, current) = (previous, current, previous2)
        }
        return previous[b.count]
    }
}
