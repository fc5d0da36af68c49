import CCurl
import Synchronization

/// One blocking SMTP submission on a libcurl easy handle: the envelope
/// (`MAIL FROM`, one `RCPT TO` per recipient) and the message bytes as DATA.
///
/// - `smtp://` upgrades with STARTTLS as `tls` says; `smtps://` is TLS from
///   the first byte. Certificates are verified (against `caFile`, else the
///   system's CAs).
/// - `username`/`password`, when given, log in with whatever the server
///   offers (libcurl picks among PLAIN, LOGIN, CRAM-MD5 …).
/// - `timeout` bounds the whole submission, the connect included.
/// - libcurl dot-stuffs the message and ends DATA itself.
public struct CurlMail: Sendable {
    public enum TLS: Sendable, Equatable {
        /// STARTTLS or fail (`CURLUSESSL_ALL`).
        case required
        /// STARTTLS when offered (`CURLUSESSL_TRY`).
        case opportunistic
        /// No STARTTLS (`CURLUSESSL_NONE`).
        case never
    }

    public var url: String
    public var from: String
    public var to: [String]
    public var message: [UInt8]
    public var tls: TLS
    public var username: String?
    public var password: String?
    public var caFile: String?
    public var timeout: Duration

    public init(url: String, from: String, to: [String], message: [UInt8], tls: TLS = .required, username: String? = nil,
                password: String? = nil, caFile: String? = nil, timeout: Duration = .seconds(30)) {
        self.url = url
        self.from = from
        self.to = to
        self.message = message
        self.tls = tls
        self.username = username
        self.password = password
        self.caFile = caFile
        self.timeout = timeout
    }

    /// The message being uploaded, on the performing thread only.
    private final class Upload {
        let bytes: [UInt8]
        var offset = 0
        let cancellation: CurlRequest.Cancellation?
        init(bytes: [UInt8], cancellation: CurlRequest.Cancellation?) {
            self.bytes = bytes
            self.cancellation = cancellation
        }
    }

    /// What the server said last (`CURLINFO_RESPONSE_CODE`), with the error.
    public struct Failure: Error, Sendable {
        public var error: CurlError
        /// The last SMTP reply code, 0 when none came.
        public var replyCode: Int
    }

    /// Sends the message on the calling thread and waits for the server's
    /// answer to DATA.
    public func send(cancellation: CurlRequest.Cancellation? = nil) -> Result<Void, Failure> {
        Curl.initialize()
        guard let easy = curl_easy_init() else {
            return .failure(Failure(error: CurlError(url: url, code: CURLE_FAILED_INIT), replyCode: 0))
        }
        defer { curl_easy_cleanup(easy) }
        let upload = Upload(bytes: message, cancellation: cancellation)
        let context = Unmanaged.passUnretained(upload).toOpaque()
        let errorBuffer = UnsafeMutablePointer<CChar>.allocate(capacity: Int(CURL_ERROR_SIZE) + 1)
        errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
        defer { errorBuffer.deallocate() }
        var recipients: UnsafeMutablePointer<curl_slist>?
        for address in to { recipients = curl_slist_append(recipients, "<\(address)>") }
        defer { curl_slist_free_all(recipients) }
        let timeoutMs = max(1, Int(timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000))

        vitals_easy_setopt_string(easy, CURLOPT_URL, url)
        vitals_easy_setopt_string(easy, CURLOPT_PROTOCOLS_STR, "smtp,smtps")
        vitals_easy_setopt_long(easy, CURLOPT_NOSIGNAL, 1)
        vitals_easy_setopt_long(easy, CURLOPT_TIMEOUT_MS, timeoutMs)
        vitals_easy_setopt_long(easy, CURLOPT_CONNECTTIMEOUT_MS, timeoutMs)
        vitals_easy_setopt_pointer(easy, CURLOPT_ERRORBUFFER, errorBuffer)
        let level = switch tls {
        case .required: CURLUSESSL_ALL
        case .opportunistic: CURLUSESSL_TRY
        case .never: CURLUSESSL_NONE
        }
        vitals_easy_setopt_long(easy, CURLOPT_USE_SSL, Int(level.rawValue))
        if let caFile { vitals_easy_setopt_string(easy, CURLOPT_CAINFO, caFile) }
        if let username { vitals_easy_setopt_string(easy, CURLOPT_USERNAME, username) }
        if let password { vitals_easy_setopt_string(easy, CURLOPT_PASSWORD, password) }
        vitals_easy_setopt_string(easy, CURLOPT_MAIL_FROM, "<\(from)>")
        vitals_easy_setopt_slist(easy, CURLOPT_MAIL_RCPT, recipients)
        vitals_easy_setopt_long(easy, CURLOPT_UPLOAD, 1)
        vitals_easy_setopt_off_t(easy, CURLOPT_INFILESIZE_LARGE, curl_off_t(message.count))
        vitals_easy_setopt_pointer(easy, CURLOPT_READDATA, context)
        vitals_easy_setopt_read_function(easy) { buffer, size, count, user in
            let upload = Unmanaged<Upload>.fromOpaque(user!).takeUnretainedValue()
            if upload.cancellation?.isCancelled == true { return Int(CURL_READFUNC_ABORT) }
            let n = min(size * count, upload.bytes.count - upload.offset)
            guard n > 0, let buffer else { return 0 }
            upload.bytes.withUnsafeBytes { raw in
                UnsafeMutableRawPointer(buffer).copyMemory(from: raw.baseAddress! + upload.offset, byteCount: n)
            }
            upload.offset += n
            return n
        }
        if cancellation != nil {
            vitals_easy_setopt_long(easy, CURLOPT_NOPROGRESS, 0)
            vitals_easy_setopt_pointer(easy, CURLOPT_XFERINFODATA, context)
            vitals_easy_setopt_xferinfo_function(easy) { user, _, _, _, _ in
                let upload = Unmanaged<Upload>.fromOpaque(user!).takeUnretainedValue()
                return upload.cancellation?.isCancelled == true ? 1 : 0
            }
        }
        let code = curl_easy_perform(easy)
        var reply = 0
        vitals_easy_getinfo_long(easy, CURLINFO_RESPONSE_CODE, &reply)
        guard code == CURLE_OK else {
            var osErrno = 0
            vitals_easy_getinfo_long(easy, CURLINFO_OS_ERRNO, &osErrno)
            return .failure(Failure(error: CurlError(url: url, code: code, osErrno: Int32(osErrno),
                                                     detail: String(cString: errorBuffer)), replyCode: reply))
        }
        return .success(())
    }
}
