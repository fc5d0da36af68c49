import Foundation
import VitalsCore

/// ICMP echo packets and the verdict on a round of them. Pure: no I/O.
public enum ICMPEcho {
    public enum Family: Sendable, Equatable {
        case v4, v6

        /// Echo request and reply types: ICMP 8/0, ICMPv6 128/129.
        var requestType: UInt8 { self == .v4 ? 8 : 128 }
        var replyType: UInt8 { self == .v4 ? 0 : 129 }
    }

    /// Bytes after the 8-byte header: a marker, so a stray packet with the
    /// same identifier and sequence is still not taken for ours.
    public static let payload: [UInt8] = Array("vitals-echo-0001".utf8)

    /// An echo request. The checksum is filled in for ICMPv4; for ICMPv6
    /// the kernel computes it (it covers the IPv6 pseudo-header, which only
    /// the kernel knows), and on datagram sockets it also sets the identifier.
    public static func request(family: Family, identifier: UInt16, sequence: UInt16) -> [UInt8] {
        var packet: [UInt8] = [family.requestType, 0, 0, 0,
                               UInt8(identifier >> 8), UInt8(identifier & 0xff),
                               UInt8(sequence >> 8), UInt8(sequence & 0xff)]
        packet += payload
        if family == .v4 {
            let sum = checksum(packet)
            packet[2] = UInt8(sum >> 8)
            packet[3] = UInt8(sum & 0xff)
        }
        return packet
    }

    /// The Internet checksum (RFC 1071): the ones' complement of the ones'
    /// complement sum of the 16-bit big-endian words, an odd byte padded.
    public static func checksum(_ bytes: some Collection<UInt8>) -> UInt16 {
        var sum: UInt32 = 0
        var iterator = bytes.makeIterator()
        while let high = iterator.next() {
            let low = iterator.next() ?? 0
            sum += UInt32(high) << 8 | UInt32(low)
        }
        while sum >> 16 != 0 { sum = (sum & 0xffff) + (sum >> 16) }
        return ~UInt16(sum)
    }

    /// An echo reply's identifier and sequence, or nil for anything else
    /// (another type, a short packet, a foreign payload). A raw IPv4
    /// socket delivers the IP header first (`includesIPHeader`); IPv6 raw
    /// and every datagram socket deliver the ICMP message alone.
    public static func reply(_ bytes: some Collection<UInt8>, family: Family,
                             includesIPHeader: Bool) -> (identifier: UInt16, sequence: UInt16)? {
        var message = Array(bytes)[...]
        if includesIPHeader {
            guard let first = message.first, first >> 4 == 4 else { return nil }
            let headerLength = Int(first & 0x0f) * 4
            guard headerLength >= 20, message.count >= headerLength else { return nil }
            message = message.dropFirst(headerLength)
        }
        guard message.count >= 8 + payload.count else { return nil }
        let start = message.startIndex
        guard message[start] == family.replyType, message[start + 1] == 0 else { return nil }
        guard message[(start + 8)..<(start + 8 + payload.count)].elementsEqual(payload) else { return nil }
        let identifier = UInt16(message[start + 4]) << 8 | UInt16(message[start + 5])
        let sequence = UInt16(message[start + 6]) << 8 | UInt16(message[start + 7])
        return (identifier, sequence)
    }

    /// How far apart a probe's requests go out: spread over the first half
    /// of the timeout, at most 100ms apart, so the last one has time to come back.
    public static func spacing(count: Int, timeout: Duration) -> Duration {
        guard count > 1 else { return .zero }
        return min(.milliseconds(100), timeout / (2 * count))
    }

    /// The verdict on `sent` requests and the round trips of those that
    /// came back: failed when all are lost, when more than `max_loss` are
    /// lost, or when the average round trip is over `max_rtt`. The latency
    /// is the average round trip. `sendError` (why a send failed, if one
    /// did) is added to a loss reason.
    public static func verdict(_ check: ICMPCheck, sent: Int, roundTrips: [Duration],
                               sendError: String? = nil) -> (verdict: ProbeVerdict, latency: Duration?) {
        let received = roundTrips.count
        let lost = max(0, sent - received)
        let because = sendError.map { " (\($0))" } ?? ""
        guard received > 0 else { return (.failed("\(lost) of \(sent) lost\(because)"), nil) }
        let average = roundTrips.reduce(Duration.zero, +) / received
        if let maxLoss = check.maxLoss, Double(lost) / Double(max(1, sent)) > maxLoss + 1e-9 {
            return (.failed("\(lost) of \(sent) lost, more than max_loss \(percent(maxLoss))\(because)"), average)
        }
        if let maxRTT = check.maxRTT, average > maxRTT {
            return (.failed("rtt \(milliseconds(average)) > max_rtt \(DurationText.format(maxRTT))"), average)
        }
        return (.ok, average)
    }

    /// `34%`, `12.5%`.
    static func percent(_ share: Double) -> String {
        let value = share * 100
        return value == value.rounded() ? "\(Int(value))%" : String(format: "%.1f%%", value)
    }

    /// `72ms`, `0.4ms`: whole milliseconds from 10ms, one decimal below.
    static func milliseconds(_ duration: Duration) -> String {
        let ms = Double(duration.components.seconds) * 1000 + Double(duration.components.attoseconds) / 1e15
        return ms >= 10 ? "\(Int(ms.rounded()))ms" : String(format: "%.1fms", ms)
    }
}
