import CCurl
import Foundation
import VitalsCore

/// One service's easy handle, configured once and re-added to the multi
/// handle for every probe, so its connection stays alive between probes and
/// nothing is rebuilt per probe. Touched only by the prober's loop thread.
final class CurlTransfer {
    enum Kind {
        case http(HTTPConditions)
        case tcp
    }

    let slot: Int
    let easy: UnsafeMutableRawPointer
    /// What the handle was built from; a change rebuilds it.
    let check: Check
    let timeout: Duration
    let kind: Kind
    /// The first option curl refused, if any: every probe then fails with it.
    private(set) var setupFailure: String?
    var inFlight = false
    /// The earliest certificate expiry seen on this service's last TLS
    /// handshake. A reused connection reports no certificates, so it is kept.
    var certificateExpiry: Date?

    private var headers: UnsafeMutablePointer<curl_slist>?
    let errorBuffer: UnsafeMutablePointer<CChar>
    private let bodyLimit: Int
    private(set) var body: UnsafeMutableRawPointer?
    private var bodyCapacity = 0
    private(set) var bodyCount = 0

    init?(slot: Int, service: ServiceConfig, userAgent: String) {
        guard let easy = curl_easy_init() else { return nil }
        self.slot = slot
        self.easy = easy
        self.check = service.check
        self.timeout = service.timing.timeout
        errorBuffer = .allocate(capacity: Int(CURL_ERROR_SIZE) + 1)
        errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)

        switch service.check {
        case .http(let http):
            let conditions = HTTPConditions(http)
            kind = .http(conditions)
            bodyLimit = conditions.needsBody ? max(0, http.maxBodyBytes) : 0
        case .tcp:
            kind = .tcp
            bodyLimit = 0
        case .exec, .heartbeat:
            preconditionFailure("CurlTransfer is for http and tcp checks")
        }
        configure(service: service, userAgent: userAgent)
    }

    deinit {
        curl_easy_cleanup(easy)
        if let headers { curl_slist_free_all(headers) }
        errorBuffer.deallocate()
        free(body)
    }

    /// Clears what the previous probe left.
    func reset() {
        bodyCount = 0
        errorBuffer[0] = 0
    }

    /// Keeps up to `bodyLimit` bytes; the rest of the body is read and dropped
    /// so the transfer completes and its connection stays reusable.
    func store(_ data: UnsafeRawPointer, count: Int) {
        let room = bodyLimit - bodyCount
        guard room > 0 else { return }
        let take = min(room, count)
        if bodyCount + take > bodyCapacity {
            let capacity = min(bodyLimit, max(bodyCapacity * 2, bodyCount + take, 1024))
            guard let grown = realloc(body, capacity) else { return }
            body = grown
            bodyCapacity = capacity
        }
        (body! + bodyCount).copyMemory(from: data, byteCount: take)
        bodyCount += take
    }

    var bodyBytes: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: body, count: bodyCount)
    }

    var errorDetail: String {
        var text = String(cString: errorBuffer)
        while text.last == "\n" { text.removeLast() }
        return text
    }

    // MARK: Options, set once

    private func configure(service: ServiceConfig, userAgent: String) {
        let timeoutMs = max(1, service.timing.timeout.millisecondsRoundedUp)
        set(CURLOPT_NOSIGNAL, 1)
        set(CURLOPT_TIMEOUT_MS, timeoutMs)
        set(CURLOPT_CONNECTTIMEOUT_MS, timeoutMs)
        set(CURLOPT_ERRORBUFFER, pointer: UnsafeMutableRawPointer(errorBuffer))
        set(CURLOPT_PRIVATE, pointer: Unmanaged.passUnretained(self).toOpaque())

        switch service.check {
        case .http(let http):
            set(CURLOPT_URL, http.url)
            set(CURLOPT_PROTOCOLS_STR, "http,https")
            set(CURLOPT_USERAGENT, userAgent)
            switch http.method.uppercased() {
            case "GET": break
            case "HEAD": set(CURLOPT_NOBODY, 1)
            default: set(CURLOPT_CUSTOMREQUEST, http.method)
            }
            for field in http.headers {
                headers = curl_slist_append(headers, "\(field.name): \(field.value)")
            }
            if let headers { set(CURLOPT_HTTPHEADER, pointer: UnsafeMutableRawPointer(headers)) }
            if http.followRedirects {
                set(CURLOPT_FOLLOWLOCATION, 1)
                set(CURLOPT_MAXREDIRS, 10)
                set(CURLOPT_REDIR_PROTOCOLS_STR, "http,https")
            }
            set(CURLOPT_SSL_VERIFYPEER, http.tlsVerify ? 1 : 0)
            set(CURLOPT_SSL_VERIFYHOST, http.tlsVerify ? 2 : 0)
            if http.certMinDays != nil { set(CURLOPT_CERTINFO, 1) }
            vitals_easy_setopt_write_function(easy) { data, size, count, context in
                let transfer = Unmanaged<CurlTransfer>.fromOpaque(context!).takeUnretainedValue()
                let total = size * count
                if let data, total > 0 { transfer.store(UnsafeRawPointer(data), count: total) }
                return total
            }
            set(CURLOPT_WRITEDATA, pointer: Unmanaged.passUnretained(self).toOpaque())
        case .tcp(let tcp):
            let host = tcp.host.contains(":") ? "[\(tcp.host)]" : tcp.host
            set(CURLOPT_URL, "http://\(host):\(tcp.port)/")
            // Connect, report, close: a TCP check measures a fresh connect every time.
            set(CURLOPT_CONNECT_ONLY, 1)
            set(CURLOPT_FRESH_CONNECT, 1)
            set(CURLOPT_FORBID_REUSE, 1)
        case .exec, .heartbeat:
            break
        }
    }

    private func set(_ option: CURLoption, _ value: Int) {
        note(option, vitals_easy_setopt_long(easy, option, value))
    }

    private func set(_ option: CURLoption, _ value: String) {
        note(option, vitals_easy_setopt_string(easy, option, value))
    }

    private func set(_ option: CURLoption, pointer: UnsafeMutableRawPointer) {
        note(option, vitals_easy_setopt_pointer(easy, option, pointer))
    }

    private func note(_ option: CURLoption, _ code: CURLcode) {
        if code != CURLE_OK && setupFailure == nil {
            setupFailure = "cannot set up probe: \(String(cString: curl_easy_strerror(code))) (option \(option.rawValue))"
        }
    }
}
