import Foundation
import VitalsCore

/// What a DNS server answered, as far as a `dns:` check looks: the
/// response code and the data of the answer's records of the asked type.
public struct DNSAnswer: Sendable, Equatable {
    public var rcode: DNSResponseCode
    public var records: [DNSRecordValue]

    public init(rcode: DNSResponseCode, records: [DNSRecordValue] = []) {
        self.rcode = rcode
        self.records = records
    }
}

/// The judging side of a `dns:` check: whether an answer is the one wanted,
/// and in an operator's words why not. Pure: no I/O, no clock.
///
/// - The response code must be `rcode` (default NOERROR):
///   `rcode NXDOMAIN, expected NOERROR`.
/// - With NOERROR, at least one record of the asked type must be answered
///   (`no A records for www.example.com`): a name without the record is not
///   what a check of that record is for.
/// - Every `expect` value must be among the answered records, in any order;
///   other records may be there too: `A 10.0.0.7, expected 10.0.0.8`.
public struct DNSJudge: Sendable {
    public let check: DNSCheck

    /// Answers shown in a reason; the rest are counted.
    static let shownRecords = 5

    public init(_ check: DNSCheck) {
        self.check = check
    }

    public func evaluate(_ answer: DNSAnswer) -> ProbeVerdict {
        guard answer.rcode == check.rcode else {
            return .failed("rcode \(answer.rcode), expected \(check.rcode)")
        }
        guard check.rcode == .noError else { return .ok }
        let type = check.type.rawValue
        guard !answer.records.isEmpty else {
            if check.expect.isEmpty {
                return .failed("no \(type) records for \(DNSRecordValue.normalizedName(check.name))")
            }
            return .failed("no \(type) records, expected \(Self.list(check.expect))")
        }
        let missing = check.expect.filter { expected in !answer.records.contains(where: expected.isSatisfied) }
        guard !missing.isEmpty else { return .ok }
        let answered = Self.list(answer.records, limit: Self.shownRecords)
        if check.expect.count == 1 {
            return .failed("\(type) \(answered), expected \(Self.list(check.expect))")
        }
        return .failed("\(type) \(answered), expected \(Self.list(check.expect)) (missing \(Self.list(missing)))")
    }

    /// `10.0.0.7, 10.0.0.9`, cut after `limit` with the count:
    /// `10.0.0.1, … (12 records)`.
    static func list(_ values: [DNSRecordValue], limit: Int = .max) -> String {
        guard values.count > limit else { return values.map(\.description).joined(separator: ", ") }
        return values.prefix(limit).map(\.description).joined(separator: ", ") + ", … (\(values.count) records)"
    }

    /// Where the query went, for reasons: `127.0.0.1:5353`, or the system's servers.
    public var serverText: String {
        check.server.map { "\($0)" } ?? "the system's DNS servers"
    }

    /// The reason when no answer came within the probe's timeout.
    public func timeoutReason(_ timeout: Duration) -> String {
        "timeout after \(DurationText.format(timeout)): no answer from \(serverText)"
    }
}
