import CCurl

/// The libcurl boundary shared by the prober, webhooks and the command line.
public enum Curl {
    private static let globalInit: Void = { curl_global_init(Int(CURL_GLOBAL_ALL)) }()

    /// `curl_global_init`, exactly once per process, before any thread uses curl.
    public static func initialize() { _ = globalInit }

    /// libcurl's own words for `code` (`curl_easy_strerror`).
    public static func text(_ code: CURLcode) -> String { String(cString: curl_easy_strerror(code)) }

    /// libcurl's own words for a multi-handle `code` (`curl_multi_strerror`).
    public static func text(_ code: CURLMcode) -> String { String(cString: curl_multi_strerror(code)) }
}

/// A transfer to `url` failed with `code`.
public struct CurlError: Error, Sendable, CustomStringConvertible {
    public var url: String
    public var code: CURLcode
    /// `CURLINFO_OS_ERRNO`, 0 when unknown.
    public var osErrno: Int32
    /// The `CURLOPT_ERRORBUFFER` text, may be empty.
    public var detail: String

    public init(url: String, code: CURLcode, osErrno: Int32 = 0, detail: String = "") {
        self.url = url
        self.code = code
        self.osErrno = osErrno
        self.detail = detail
    }

    /// curl's words for the code.
    public var text: String { Curl.text(code) }

    /// The error buffer when curl filled it (it names the host or the
    /// certificate), else curl's words for the code.
    public var message: String { detail.isEmpty ? text : detail }

    /// "http://127.0.0.1:1/v1/status: Failed to connect to 127.0.0.1 port 1 …".
    public var description: String { "\(url): \(message)" }
}
