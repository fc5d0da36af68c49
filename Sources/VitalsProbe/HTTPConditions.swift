import Foundation
import VitalsCore

/// A probe's verdict before any hysteresis: the outcome and, unless ok, why.
public struct ProbeVerdict: Sendable, Equatable, CustomStringConvertible {
    public var outcome: ProbeOutcome
    /// In an operator's words; empty when ok.
    public var reason: String

    public init(_ outcome: ProbeOutcome, _ reason: String = "") {
        self.outcome = outcome
        self.reason = reason
    }

    public static let ok = ProbeVerdict(.ok)
    public static func failed(_ reason: String) -> ProbeVerdict { ProbeVerdict(.failed, reason) }
    public static func degraded(_ reason: String) -> ProbeVerdict { ProbeVerdict(.degraded, reason) }

    public var description: String { reason.isEmpty ? outcome.rawValue : "\(outcome.rawValue): \(reason)" }
}

/// The conditions of an `HTTPCheck`, prepared once (needle bytes, compiled
/// regex) and evaluated against each response. Pure: no I/O, no clock.
///
/// Hard conditions, in this order, fail the probe with the first that does
/// not hold: status in one of the ranges, body contains, body matches the
/// regex, each JSON field equals its value, latency within `maxLatency`.
/// Soft conditions then make it degraded: latency within `slowLatency`, the
/// certificate valid for at least `certMinDays` more days.
public struct HTTPConditions: @unchecked Sendable {
    // @unchecked: NSRegularExpression, immutable once built, is thread-safe but not marked Sendable.
    public let check: HTTPCheck
    private let needle: [UInt8]?
    private let regex: NSRegularExpression?
    private let regexIsInvalid: Bool

    public init(_ check: HTTPCheck) {
        self.check = check
        needle = check.bodyContains.map { Array($0.utf8) }
        if let pattern = check.bodyRegex {
            regex = try? NSRegularExpression(pattern: pattern)
            regexIsInvalid = regex == nil
        } else {
            regex = nil
            regexIsInvalid = false
        }
    }

    /// Whether any condition looks at the body: if none does, the prober
    /// need not keep it.
    public var needsBody: Bool {
        check.bodyContains != nil || check.bodyRegex != nil || !check.json.isEmpty
    }

    /// Evaluates one response. `body` is what was read, at most `maxBodyBytes`;
    /// `certificateExpiry` is the earliest expiry in the served chain, if known.
    public func evaluate(status: Int, body: UnsafeRawBufferPointer, latency: Duration,
                         certificateExpiry: Date? = nil, now: Date) -> ProbeVerdict {
        if !check.status.contains(where: { $0.contains(status) }) {
            let expected = check.status.map(\.description).joined(separator: ", ")
            return .failed("status \(status), expected \(expected)")
        }
        if let needle, let text = check.bodyContains, !Self.contains(body, needle) {
            return .failed("body lacks \"\(text)\"")
        }
        if let pattern = check.bodyRegex {
            guard let regex else { return .failed("body_regex /\(pattern)/ is not a valid regular expression") }
            let text = String(decoding: body, as: UTF8.self)
            let range = NSRange(text.startIndex..<text.endIndex, in: text)
            if regex.firstMatch(in: text, range: range) == nil {
                return .failed("body does not match /\(pattern)/")
            }
        }
        if !check.json.isEmpty {
            guard let document = JSONValue.parse(body) else {
                return .failed("body is not JSON")
            }
            for expectation in check.json {
                guard let actual = document.value(at: expectation.path) else {
                    return .failed("$.\(expectation.path) missing")
                }
                if !actual.matches(expectation.expected) {
                    return .failed("$.\(expectation.path) is \(actual.rendered), expected \(expectation.expected)")
                }
            }
        }
        if let limit = check.maxLatency, latency > limit {
            return .failed("latency \(DurationText.format(latency)) over limit \(DurationText.format(limit))")
        }
        if let slow = check.slowLatency, latency > slow {
            return .degraded("slow: latency \(DurationText.format(latency)) over \(DurationText.format(slow))")
        }
        if let minimumDays = check.certMinDays, let expiry = certificateExpiry,
           let reason = Self.certificateReason(expiry: expiry, now: now, minimumDays: minimumDays) {
            return .degraded(reason)
        }
        return .ok
    }

    /// Convenience for callers holding the body as an array.
    public func evaluate(status: Int, body: [UInt8], latency: Duration,
                         certificateExpiry: Date? = nil, now: Date) -> ProbeVerdict {
        body.withUnsafeBytes {
            evaluate(status: status, body: $0, latency: latency, certificateExpiry: certificateExpiry, now: now)
        }
    }

    /// Nil while the certificate has at least `minimumDays` left; otherwise
    /// `certificate expires in 3 days (minimum 14)`. Days are whole days left,
    /// rounded down, so the number shown is always below the minimum.
    static func certificateReason(expiry: Date, now: Date, minimumDays: Int) -> String? {
        let remaining = expiry.timeIntervalSince(now)
        guard remaining < Double(minimumDays) * 86_400 else { return nil }
        if remaining <= 0 { return "certificate expired (minimum \(minimumDays) days)" }
        let days = Int((remaining / 86_400).rounded(.down))
        switch days {
        case 0: return "certificate expires in less than a day (minimum \(minimumDays))"
        case 1: return "certificate expires in 1 day (minimum \(minimumDays))"
        default: return "certificate expires in \(days) days (minimum \(minimumDays))"
        }
    }

    /// Byte-wise substring search; the body need not be valid UTF-8.
    static func contains(_ haystack: UnsafeRawBufferPointer, _ needle: [UInt8]) -> Bool {
        if needle.isEmpty { return true }
        guard haystack.count >= needle.count, let base = haystack.baseAddress else { return false }
        let first = Int32(needle[0])
        let lastStart = haystack.count - needle.count
        var offset = 0
        return needle.withUnsafeBytes { n in
            while offset <= lastStart {
                guard let hit = memchr(base + offset, first, lastStart - offset + 1) else { return false }
                let at = base.distance(to: UnsafeRawPointer(hit))
                if memcmp(base + at, n.baseAddress!, n.count) == 0 { return true }
                offset = at + 1
            }
            return false
        }
    }
}
