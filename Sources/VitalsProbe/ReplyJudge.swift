import Foundation
import VitalsCore

/// The judging side of a send/expect check: what the bytes received so far
/// say, and in an operator's words why a reply was refused. Pure: no I/O,
/// no clock.
///
/// - `expect:` (`.prefix`): the reply must start with the bytes. It is
///   decided as soon as that many bytes are in, or one of them differs, so a
///   wrong answer (`-ERR ...` for `+PONG`) fails at once instead of waiting
///   for the timeout.
/// - `expect_regex:` (`.regex`): the pattern must match somewhere in what has
///   arrived, each byte one character (ISO 8859-1, so `\x00` in the pattern
///   matches a zero byte). Only a match decides early; otherwise reading goes
///   on until the peer closes, the reply limit is reached or the timeout.
public struct ReplyJudge: @unchecked Sendable {
    // @unchecked: NSRegularExpression, immutable once built, is thread-safe but not marked Sendable.

    public enum Judgement: Sendable, Equatable {
        case matched
        /// No further byte can make it match.
        case mismatched
        /// More bytes may decide.
        case undecided
    }

    /// Why reading stopped without a match.
    public enum Ending: Sendable, Equatable {
        /// The reply differs from the expected start.
        case mismatch
        /// The peer closed the connection.
        case closed
        /// The reply limit was reached.
        case full
        /// The probe's timeout passed.
        case timeout(Duration)
        /// A send or receive failed: `send failed: Connection reset by peer`.
        case error(String)
    }

    public let expectation: ReplyExpectation
    private let regex: NSRegularExpression?

    public init(_ expectation: ReplyExpectation) {
        self.expectation = expectation
        if case .regex(let pattern) = expectation {
            regex = try? NSRegularExpression(pattern: pattern)
        } else {
            regex = nil
        }
    }

    public func judge(_ received: some Collection<UInt8>) -> Judgement {
        switch expectation {
        case .prefix(let expected):
            for (have, want) in zip(received, expected) where have != want { return .mismatched }
            return received.count >= expected.count ? .matched : .undecided
        case .regex:
            // The loader refuses an invalid pattern; one that slipped through never matches.
            guard let regex, !received.isEmpty else { return .undecided }
            let text = Self.latin1(received)
            let range = NSRange(text.startIndex..<text.endIndex, in: text)
            return regex.firstMatch(in: text, range: range) == nil ? .undecided : .matched
        }
    }

    /// `"+PONG"` or `/^220 /`, as reasons name the expectation.
    public var expected: String {
        switch expectation {
        case .prefix(let bytes): ByteEscapes.quoted(bytes)
        case .regex(let pattern): "/\(pattern)/"
        }
    }

    /// Why `received` was refused: `expected "+PONG", got "-ERR unknown command"`.
    /// What was received is shown escaped and cut at 100 bytes.
    public func reason(received: some Collection<UInt8>, ending: Ending) -> String {
        let got = received.isEmpty ? "nothing" : ByteEscapes.quoted(received)
        return switch ending {
        case .mismatch: "expected \(expected), got \(got)"
        case .closed: "expected \(expected), got \(got) before the connection closed"
        case .full: "expected \(expected) within the first \(received.count) bytes, got \(got)"
        case .timeout(let timeout): "timeout after \(DurationText.format(timeout)): expected \(expected), got \(got)"
        case .error(let failure): "\(failure); expected \(expected), got \(got)"
        }
    }

    /// Each byte as the character of the same number.
    static func latin1(_ bytes: some Collection<UInt8>) -> String {
        var text = String()
        text.unicodeScalars.reserveCapacity(bytes.count)
        for byte in bytes { text.unicodeScalars.append(Unicode.Scalar(byte)) }
        return text
    }
}

/// The certificate conditions of a `tls:` check, after the handshake and
/// the verification (against the CA, for the server name) succeeded. Pure.
public struct TLSConditions: Sendable {
    public let options: TLSOptions

    public init(_ options: TLSOptions) {
        self.options = options
    }

    /// Ok while the certificate has at least `cert_min_days` left (or no
    /// minimum is set); failed otherwise, or when the expiry is unknown.
    /// `certificateExpiry` is the earliest expiry in the served chain.
    public func evaluate(certificateExpiry: Date?, now: Date) -> ProbeVerdict {
        guard let minimumDays = options.certMinDays else { return .ok }
        guard let certificateExpiry else {
            return .failed("certificate expiry unknown: the TLS library gave no certificate details")
        }
        return Self.expiryReason(expiry: certificateExpiry, now: now, minimumDays: minimumDays).map(ProbeVerdict.failed) ?? .ok
    }

    /// Nil while at least `minimumDays` are left; otherwise
    /// `certificate expires in 3 days, less than cert_min_days 14`. Days are
    /// whole days left, rounded down, so the number shown is always below
    /// the minimum.
    static func expiryReason(expiry: Date, now: Date, minimumDays: Int) -> String? {
        let remaining = expiry.timeIntervalSince(now)
        guard remaining < Double(minimumDays) * 86_400 else { return nil }
        let limit = "less than cert_min_days \(minimumDays)"
        if remaining <= 0 { return "certificate has expired" }
        let days = Int((remaining / 86_400).rounded(.down))
        return switch days {
        case 0: "certificate expires in less than a day, \(limit)"
        case 1: "certificate expires in 1 day, \(limit)"
        default: "certificate expires in \(days) days, \(limit)"
        }
    }
}
