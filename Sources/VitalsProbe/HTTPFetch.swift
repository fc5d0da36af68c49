import CCurl
import Foundation

/// One blocking HTTP request through libcurl, for the command-line client
/// (`vitals status`) and other one-off calls. Not for probing: probes go
/// through the scheduler's multi handle.
public enum HTTPFetch {
    public struct Response: Sendable {
        public var status: Int
        public var body: [UInt8]
        public var text: String { String(decoding: body, as: UTF8.self) }
    }

    public struct Failure: Error, CustomStringConvertible {
        public var url: String
        public var message: String
        public var description: String { "\(url): \(message)" }
    }

    private final class Sink {
        var bytes: [UInt8] = []
        let limit: Int
        init(limit: Int) { self.limit = limit }
    }

    /// Sends `method` to `url` and returns the status and up to `maxBodyBytes` of the body.
    public static func request(_ method: String = "GET", url: String, headers: [String: String] = [:],
                               body: [UInt8]? = nil, timeout: Duration = .seconds(5),
                               maxBodyBytes: Int = 16 << 20) -> Result<Response, Failure> {
        CurlGlobal.initialize()
        guard let easy = curl_easy_init() else { return .failure(Failure(url: url, message: "cannot start libcurl")) }
        defer { curl_easy_cleanup(easy) }
        let sink = Sink(limit: maxBodyBytes)
        let context = Unmanaged.passUnretained(sink).toOpaque()
        let errorBuffer = UnsafeMutablePointer<CChar>.allocate(capacity: Int(CURL_ERROR_SIZE) + 1)
        errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
        defer { errorBuffer.deallocate() }
        var list: UnsafeMutablePointer<curl_slist>?
        for (name, value) in headers { list = curl_slist_append(list, "\(name): \(value)") }
        defer { curl_slist_free_all(list) }

        vitals_easy_setopt_string(easy, CURLOPT_URL, url)
        vitals_easy_setopt_string(easy, CURLOPT_CUSTOMREQUEST, method)
        vitals_easy_setopt_long(easy, CURLOPT_NOSIGNAL, 1)
        vitals_easy_setopt_long(easy, CURLOPT_TIMEOUT_MS, Int(timeout.milliseconds))
        vitals_easy_setopt_pointer(easy, CURLOPT_ERRORBUFFER, errorBuffer)
        vitals_easy_setopt_slist(easy, CURLOPT_HTTPHEADER, list)
        vitals_easy_setopt_pointer(easy, CURLOPT_WRITEDATA, context)
        vitals_easy_setopt_write_function(easy) { data, size, count, user in
            let sink = Unmanaged<Sink>.fromOpaque(user!).takeUnretainedValue()
            let n = size * count
            let room = max(0, sink.limit - sink.bytes.count)
            if let data, room > 0 {
                sink.bytes.append(contentsOf: UnsafeRawBufferPointer(start: data, count: min(n, room)))
            }
            return n
        }
        if method == "HEAD" { vitals_easy_setopt_long(easy, CURLOPT_NOBODY, 1) }
        var payload = body ?? []
        let code: CURLcode = payload.withUnsafeMutableBytes { raw in
            if body != nil {
                vitals_easy_setopt_long(easy, CURLOPT_POSTFIELDSIZE, raw.count)
                vitals_easy_setopt_pointer(easy, CURLOPT_POSTFIELDS, raw.baseAddress ?? UnsafeMutableRawPointer(errorBuffer))
            }
            return curl_easy_perform(easy)
        }
        guard code == CURLE_OK else {
            let detail = String(cString: errorBuffer)
            return .failure(Failure(url: url, message: detail.isEmpty ? String(cString: curl_easy_strerror(code)) : detail))
        }
        var status = 0
        vitals_easy_getinfo_long(easy, CURLINFO_RESPONSE_CODE, &status)
        return .success(Response(status: status, body: sink.bytes))
    }
}

/// `curl_global_init` exactly once per process, before any thread uses curl.
enum CurlGlobal {
    private static let once: Void = { curl_global_init(Int(CURL_GLOBAL_ALL)) }()
    static func initialize() { _ = once }
}
