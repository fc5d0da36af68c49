/// The body a job sent with a ping (its output, an error message), as the
/// agent keeps it: the *tail*, since the end of a job's output is where it
/// says why it failed.
///
/// At most `limit` bytes are kept, cut at a character boundary (a UTF-8
/// sequence split by the cut is dropped whole); bytes that are not UTF-8
/// are shown as U+FFFD.
public struct PingBody: Sendable, Equatable, Codable {
    /// The kept tail, as text.
    public var text: String
    /// How many bytes the job sent.
    public var totalBytes: Int
    /// How many of them `text` holds.
    public var keptBytes: Int

    public init(text: String, totalBytes: Int, keptBytes: Int) {
        self.text = text
        self.totalBytes = totalBytes
        self.keptBytes = keptBytes
    }

    /// Whether the head was dropped.
    public var truncated: Bool { keptBytes < totalBytes }

    /// Default `agent.ping_body_limit`: 10 KiB.
    public static let defaultLimit = 10 << 10

    /// The tail of `bytes`, at most `limit` bytes; nil for an empty body or a limit of 0.
    public static func tail(of bytes: some Collection<UInt8>, limit: Int) -> PingBody? {
        let total = bytes.count
        guard total > 0, limit > 0 else { return nil }
        var kept = Array(bytes.suffix(limit))
        if kept.count < total {
            // Skip continuation bytes (10xxxxxx) left by the cut: at most three.
            var drop = 0
            while drop < min(3, kept.count), kept[drop] & 0xC0 == 0x80 { drop += 1 }
            kept.removeFirst(drop)
        }
        return PingBody(text: String(decoding: kept, as: UTF8.self), totalBytes: total, keptBytes: kept.count)
    }

    private enum CodingKeys: String, CodingKey { case text, totalBytes, keptBytes, truncated }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        text = try c.decode(String.self, forKey: .text)
        totalBytes = try c.decode(Int.self, forKey: .totalBytes)
        keptBytes = try c.decode(Int.self, forKey: .keptBytes)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(text, forKey: .text)
        try c.encode(totalBytes, forKey: .totalBytes)
        try c.encode(keptBytes, forKey: .keptBytes)
        try c.encode(truncated, forKey: .truncated)
    }
}
