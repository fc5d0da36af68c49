/// Bytes written as text, for the `send:` and `expect:` of a tcp check, and
/// shown back as text in reasons. Pure.
///
/// Escapes: `\xHH` (one byte, two hex digits), `\r`, `\n`, `\t`, `\0` (a zero
/// byte), `\"` (a double quote) and `\\` (one backslash). Any other
/// character stands for its UTF-8 bytes. Rendering uses the same escapes, so
/// what a reason shows can be pasted back into the config.
public enum ByteEscapes {
    /// Why a text could not be read as bytes.
    public enum Problem: Error, Equatable, Sendable, CustomStringConvertible {
        /// `\q`: a backslash followed by a character that is no escape.
        case unknownEscape(Character)
        /// `\x4` or `\xg0`: `\x` without two hex digits after it.
        case badHexEscape(String)
        /// The text ends in a lone backslash.
        case trailingBackslash

        public var description: String {
            let known = #"use \xHH, \r, \n, \t, \0, \" or \\"#
            return switch self {
            case .unknownEscape(let c): "unknown escape \"\\\(c)\"; \(known)"
            case .badHexEscape(let text): "\"\\x\(text)\" needs two hex digits, like \\x00 or \\xff"
            case .trailingBackslash: "ends in a lone backslash; write \\\\ for a backslash"
            }
        }
    }

    /// The bytes `text` stands for.
    public static func decode(_ text: String) throws(Problem) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count)
        var rest = Substring(text)
        while let backslash = rest.firstIndex(of: "\\") {
            bytes.append(contentsOf: rest[..<backslash].utf8)
            let after = rest.index(after: backslash)
            guard after < rest.endIndex else { throw .trailingBackslash }
            let code = rest[after]
            var next = rest.index(after: after)
            switch code {
            case "\\": bytes.append(0x5C)
            case "\"": bytes.append(0x22)
            case "r": bytes.append(0x0D)
            case "n": bytes.append(0x0A)
            case "t": bytes.append(0x09)
            case "0": bytes.append(0x00)
            case "x":
                let digits = rest[next...].prefix(2)
                guard digits.count == 2, digits.allSatisfy(\.isHexDigit), let byte = UInt8(digits, radix: 16) else {
                    throw .badHexEscape(String(digits.prefix { $0 != "\\" }))
                }
                bytes.append(byte)
                next = rest.index(next, offsetBy: 2)
            default:
                throw .unknownEscape(code)
            }
            rest = rest[next...]
        }
        bytes.append(contentsOf: rest.utf8)
        return bytes
    }

    /// `bytes` in double quotes, escaped so every byte is visible: printable
    /// ASCII as is, `\r`, `\n`, `\t`, `\\`, `\"`, anything else `\xHH`. When
    /// there are more than `limit` bytes, the first `limit` are shown and the
    /// total follows: `"-ERR unknown…"… (120 bytes)`.
    public static func quoted(_ bytes: some Collection<UInt8>, limit: Int = 100) -> String {
        var text = "\""
        var shown = 0
        for byte in bytes {
            if shown == limit { break }
            shown += 1
            switch byte {
            case 0x5C: text += "\\\\"
            case 0x22: text += "\\\""
            case 0x0D: text += "\\r"
            case 0x0A: text += "\\n"
            case 0x09: text += "\\t"
            case 0x20...0x7E: text.unicodeScalars.append(Unicode.Scalar(byte))
            default: text += "\\x" + hex(byte)
            }
        }
        text += "\""
        if bytes.count > shown { text += "… (\(bytes.count) bytes)" }
        return text
    }

    private static func hex(_ byte: UInt8) -> String {
        let digits = Array("0123456789abcdef")
        return String([digits[Int(byte >> 4)], digits[Int(byte & 0x0F)]])
    }
}
