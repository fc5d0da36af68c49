import Foundation

/// An RFC 5322 plain-text message, as `email` actions send it: the bytes
/// given to SMTP's DATA (the server's dot-stuffing is libcurl's).
///
/// - Headers: `From`, `To` (every recipient), `Subject`, `Date`,
///   `Message-ID`, `MIME-Version`, `Content-Type: text/plain; charset=utf-8`,
///   `Content-Transfer-Encoding: 8bit`, `Auto-Submitted: auto-generated`
///   (RFC 3834: no vacation replies to an alert).
/// - A subject that is not plain ASCII is encoded as RFC 2047 says
///   (`=?UTF-8?B?…?=`); line breaks in it become spaces.
/// - Lines end in CRLF; a body line longer than 998 bytes (SMTP's limit) is
///   broken into lines of at most 998 bytes.
public struct MailMessage: Sendable, Equatable {
    public var from: String
    public var to: [String]
    public var subject: String
    public var body: String
    public var date: Date
    /// Without the angle brackets: `vitals.42.1764687600000@host`.
    public var messageID: String

    public init(from: String, to: [String], subject: String, body: String, date: Date, messageID: String) {
        self.from = from
        self.to = to
        self.subject = subject
        self.body = body
        self.date = date
        self.messageID = messageID
    }

    public var bytes: [UInt8] {
        var text = ""
        text += "From: \(from)\r\n"
        text += "To: \(to.joined(separator: ", "))\r\n"
        text += "Subject: \(Self.encodedHeader(subject))\r\n"
        text += "Date: \(Self.rfc5322(date))\r\n"
        text += "Message-ID: <\(messageID)>\r\n"
        text += "MIME-Version: 1.0\r\n"
        text += "Content-Type: text/plain; charset=utf-8\r\n"
        text += "Content-Transfer-Encoding: 8bit\r\n"
        text += "Auto-Submitted: auto-generated\r\n"
        text += "\r\n"
        var bytes = Array(text.utf8)
        let normalized = body.replacingOccurrences(of: "\r\n", with: "\n")
        for line in normalized.split(separator: "\n", omittingEmptySubsequences: false).dropLast(normalized.hasSuffix("\n") ? 1 : 0) {
            var rest = Array(line.utf8)
            repeat {
                var cut = min(998, rest.count)
                // Not inside a UTF-8 sequence.
                while cut < rest.count, cut > 1, rest[cut] & 0xC0 == 0x80 { cut -= 1 }
                bytes += rest[..<cut]
                bytes += [13, 10]
                rest.removeFirst(cut)
            } while !rest.isEmpty
        }
        return bytes
    }

    /// A header value as it may be sent: ASCII as it is, anything else in RFC 2047's B encoding.
    public static func encodedHeader(_ value: String) -> String {
        let flat = value.split(whereSeparator: \.isNewline).joined(separator: " ")
        if flat.unicodeScalars.allSatisfy({ $0.isASCII && $0.value >= 0x20 && $0.value != 0x7f }) { return flat }
        // Encoded words of at most 75 characters (RFC 2047 §2): 45 bytes of UTF-8 each, whole characters.
        var words: [String] = []
        var chunk: [UInt8] = []
        for character in flat {
            let utf8 = Array(String(character).utf8)
            if chunk.count + utf8.count > 45, !chunk.isEmpty {
                words.append("=?UTF-8?B?\(Data(chunk).base64EncodedString())?=")
                chunk = []
            }
            chunk += utf8
        }
        if !chunk.isEmpty { words.append("=?UTF-8?B?\(Data(chunk).base64EncodedString())?=") }
        return words.joined(separator: "\r\n ")
    }

    /// `Wed, 02 Dec 2026 15:04:05 +0000`.
    public static func rfc5322(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss '+0000'"
        return formatter.string(from: date)
    }
}
