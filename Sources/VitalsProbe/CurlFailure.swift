import CCurl
import VitalsCurl
import Foundation
import VitalsCore
import VitalsSystem

/// Turns a failed transfer into an operator's reason.
enum CurlFailure {
    /// - Parameters:
    ///   - osErrno: `CURLINFO_OS_ERRNO`, 0 when unknown.
    ///   - detail: the `CURLOPT_ERRORBUFFER` text, may be empty.
    ///   - timeout: the probe's whole-probe bound, named in timeout reasons.
    static func reason(code: CURLcode, osErrno: Int32, detail: String, timeout: Duration) -> String {
        switch code {
        case CURLE_COULDNT_CONNECT:
            if osErrno == ECONNREFUSED { return "connect refused" }
            if osErrno == ETIMEDOUT { return "timeout after \(DurationText.format(timeout))" }
            if osErrno != 0 { return "cannot connect: \(Posix.errorText(osErrno))" }
            return detail.isEmpty ? "cannot connect" : "cannot connect: \(detail)"
        case CURLE_OPERATION_TIMEDOUT:
            return "timeout after \(DurationText.format(timeout))"
        case CURLE_COULDNT_RESOLVE_HOST:
            return "cannot resolve host"
        case CURLE_PEER_FAILED_VERIFICATION:
            let trimmed = strip(detail, prefixes: ["SSL certificate problem: ", "SSL: "])
            return trimmed.isEmpty ? "TLS: certificate verify failed" : "TLS: certificate verify failed: \(trimmed)"
        case CURLE_SSL_CACERT_BADFILE:
            return detail.isEmpty ? "TLS: cannot use the CA file" : "TLS: cannot use the CA file: \(detail)"
        case CURLE_SSL_CONNECT_ERROR:
            return detail.isEmpty ? "TLS: handshake failed" : "TLS: handshake failed: \(detail)"
        case CURLE_GOT_NOTHING:
            return "empty reply"
        case CURLE_RECV_ERROR, CURLE_PARTIAL_FILE:
            return "connection closed mid-response"
        default:
            let text = Curl.text(code)
            if detail.isEmpty || detail == text { return text }
            return "\(text): \(detail)"
        }
    }

    private static func strip(_ text: String, prefixes: [String]) -> String {
        for prefix in prefixes where text.hasPrefix(prefix) {
            return String(text.dropFirst(prefix.count))
        }
        return text
    }
}

/// Dates as OpenSSL prints them in curl's certinfo.
enum CertificateDates {
    private static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                 "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    /// Parses the value of a certinfo `Expire date:` line, as OpenSSL's
    /// `ASN1_TIME_print` writes it: `Nov  8 21:01:48 2026 GMT`.
    static func parse(_ text: some StringProtocol) -> Date? {
        let parts = text.split(separator: " ")
        guard parts.count >= 4,
              let month = months.firstIndex(of: String(parts[0])),
              let day = Int(parts[1]),
              let year = Int(parts[3]) else { return nil }
        let clock = parts[2].split(separator: ":")
        guard clock.count == 3, let h = Int(clock[0]), let m = Int(clock[1]),
              let s = Int(clock[2].prefix(2)) else { return nil }
        var components = DateComponents()
        components.calendar = Calendar(identifier: .gregorian)
        components.timeZone = TimeZone(identifier: "UTC")
        components.year = year
        components.month = month + 1
        components.day = day
        components.hour = h
        components.minute = m
        components.second = s
        return components.date
    }

    /// The earliest `Expire date:` among certinfo lines (one list per certificate).
    static func earliestExpiry(in lines: [String]) -> Date? {
        var earliest: Date?
        for line in lines where line.hasPrefix("Expire date:") {
            if let date = parse(line.dropFirst("Expire date:".count)) {
                earliest = earliest.map { min($0, date) } ?? date
            }
        }
        return earliest
    }
}
