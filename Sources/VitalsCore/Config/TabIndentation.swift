/// YAML indents with spaces only, and libyaml's complaint about a tab
/// ("found character that cannot start any token") does not say so. When a
/// file does not parse, each line indented with a tab is reported instead,
/// with the key path its indentation suggests (a tab taken to the next
/// multiple of 8 columns). Tabs elsewhere (inside values, after a key) are
/// legal and never looked at.
enum TabIndentation {
    static let message = "a tab; YAML indents with spaces"

    static func errors(in text: String) -> [ConfigError] {
        var errors: [ConfigError] = []
        // Keys of the lines above, by the column they start at.
        var parents: [(indent: Int, key: String)] = []
        let lines = text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" })
        for (number, line) in lines.enumerated() {
            let leading = line.prefix { $0 == " " || $0 == "\t" }
            let rest = line.dropFirst(leading.count)
            guard !rest.isEmpty, !rest.hasPrefix("#") else { continue }
            var indent = 0
            for character in leading { indent = character == "\t" ? (indent / 8 + 1) * 8 : indent + 1 }
            while let last = parents.last, last.indent >= indent { parents.removeLast() }
            let key = Self.key(rest)
            if let tab = leading.firstIndex(of: "\t") {
                let path = (parents.map(\.key) + (key.map { [$0] } ?? [])).joined(separator: ".")
                errors.append(ConfigError(path: path, message: message, line: number + 1,
                                          column: leading.distance(from: leading.startIndex, to: tab) + 1))
                continue
            }
            if let key { parents.append((indent, key)) }
        }
        return errors
    }

    /// The key a line starts with (`key:` or `- key:`), if any.
    private static func key(_ rest: Substring) -> String? {
        var text = rest
        while text.hasPrefix("- ") { text = text.dropFirst(2).drop { $0 == " " } }
        guard let first = text.first, !"{[\"'&*!|>#".contains(first) else { return nil }
        guard let colon = text.firstIndex(of: ":") else { return nil }
        let after = text[text.index(after: colon)...]
        guard after.isEmpty || after.first == " " || after.first == "\t" else { return nil }
        let key = text[..<colon].trimmingCharacters(in: .whitespaces)
        return key.isEmpty ? nil : key
    }
}
