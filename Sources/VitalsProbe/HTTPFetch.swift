import VitalsCurl

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

    /// Sends `method` to `url` and returns the status and up to `maxBodyBytes` of the body.
    public static func request(_ method: String = "GET", url: String, headers: [String: String] = [:],
                               body: [UInt8]? = nil, timeout: Duration = .seconds(5),
                               maxBodyBytes: Int = 16 << 20) -> Result<Response, Failure> {
        let request = CurlRequest(method: method, url: url, headers: headers.map { ($0.key, $0.value) }, body: body,
                                  timeout: timeout, maxResponseBytes: maxBodyBytes)
        switch request.perform() {
        case .success(let response): return .success(Response(status: response.status, body: response.body))
        case .failure(let error): return .failure(Failure(url: url, message: error.message))
        }
    }
}
