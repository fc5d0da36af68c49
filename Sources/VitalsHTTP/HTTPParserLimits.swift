/// How much a client may send. Exceeding a limit is a rejection, never a
/// truncation; each limit names the status it produces.
public struct HTTPParserLimits: Sendable, Hashable {
    /// The longest request line (method, target and version, without the
    /// CRLF). Longer is `HTTPParseError.requestLineTooLong` (414).
    /// Default: 8,192 (8 KiB).
    public var maxRequestLineBytes: Int

    /// The largest header block: every header line with its CRLF, after the
    /// request line and up to the blank line. Larger is
    /// `HTTPParseError.headersTooLarge` (431). Default: 16,384 (16 KiB).
    public var maxHeaderBytes: Int

    /// The most header fields in one request. More is
    /// `HTTPParseError.tooManyHeaders` (431). Default: 100.
    public var maxHeaderCount: Int

    /// The largest request body (`Content-Length`). Larger is
    /// `HTTPParseError.bodyTooLarge` (413), decided from the header before
    /// any of the body is read. Default: 1,048,576 (1 MiB).
    public var maxBodyBytes: Int

    public init(
        maxRequestLineBytes: Int = 8 * 1024,
        maxHeaderBytes: Int = 16 * 1024,
        maxHeaderCount: Int = 100,
        maxBodyBytes: Int = 1024 * 1024
    ) {
        self.maxRequestLineBytes = maxRequestLineBytes
        self.maxHeaderBytes = maxHeaderBytes
        self.maxHeaderCount = maxHeaderCount
        self.maxBodyBytes = maxBodyBytes
    }

    /// The defaults above.
    public static let `default` = HTTPParserLimits()
}
