import CAres
import Foundation
import VitalsCore

/// Reads a DNS answer message into a `DNSAnswer`: the response code from
/// the header, and the asked type's records through c-ares' own parsers
/// (`ares_parse_a_reply`, `ares_parse_mx_reply`, …; Debian's c-ares 1.18
/// has no record-level API such as `ares_dnsrec`). No I/O: tests feed it
/// messages made by hand.
///
/// c-ares 1.18 has no CNAME parser. `ares_parse_a_reply` follows CNAMEs
/// and names the first one's target as the hostent's `h_name`, with the
/// CNAME owners as its aliases, so a CNAME answer is read from that.
/// At most `maxAddresses` A or AAAA records are read from one answer.
enum DNSAnswerReader {
    static let maxAddresses = 64

    enum Failure: Error, Equatable {
        /// Shorter than a header, or a parser refused it (c-ares' words).
        case malformed(String)
    }

    static func read(_ message: UnsafeBufferPointer<UInt8>, type: DNSRecordType) -> Result<DNSAnswer, Failure> {
        guard message.count >= 12, let base = message.baseAddress else { return .failure(.malformed("shorter than a DNS header")) }
        let rcode = DNSResponseCode(code: Int(vitals_dns_header_rcode(base)))
        let answerCount = Int(base[6]) << 8 | Int(base[7])
        // Records matter only in a NOERROR answer; an empty one needs no parser
        // (some, like ares_parse_soa_reply, call an empty answer malformed).
        guard rcode == .noError, answerCount > 0 else { return .success(DNSAnswer(rcode: rcode)) }
        let length = Int32(message.count)
        let parsed: Result<[DNSRecordValue], Failure> = switch type {
        case .a: addresses(base, length)
        case .aaaa: addresses6(base, length)
        case .cname: cname(base, length)
        case .ns: nameServers(base, length)
        case .mx: mailExchangers(base, length)
        case .srv: services(base, length)
        case .txt: texts(base, length)
        case .soa: authority(base, length)
        }
        return parsed.map { DNSAnswer(rcode: rcode, records: $0) }
    }

    /// ENODATA (no record of the type among the answers) is an empty list.
    private static func check(_ status: Int32) -> Failure? {
        status == ARES_SUCCESS || status == ARES_ENODATA ? nil : .malformed(String(cString: ares_strerror(status)))
    }

    private static func name(_ text: UnsafePointer<CChar>) -> String {
        DNSRecordValue.normalizedName(String(cString: text))
    }

    private static func addresses(_ base: UnsafePointer<UInt8>, _ length: Int32) -> Result<[DNSRecordValue], Failure> {
        var entries = [ares_addrttl](repeating: ares_addrttl(), count: maxAddresses)
        var count = Int32(maxAddresses)
        if let failure = check(ares_parse_a_reply(base, length, nil, &entries, &count)) { return .failure(failure) }
        return .success(entries.prefix(Int(count)).map { entry in
            let bytes = withUnsafeBytes(of: entry.ipaddr) { Array($0) } // network order in memory
            return DNSRecordValue(type: .a, fields: [IPAddressText.format(ipv4: bytes)])
        })
    }

    private static func addresses6(_ base: UnsafePointer<UInt8>, _ length: Int32) -> Result<[DNSRecordValue], Failure> {
        var entries = [ares_addr6ttl](repeating: ares_addr6ttl(), count: maxAddresses)
        var count = Int32(maxAddresses)
        if let failure = check(ares_parse_aaaa_reply(base, length, nil, &entries, &count)) { return .failure(failure) }
        return .success(entries.prefix(Int(count)).map { entry in
            let bytes = withUnsafeBytes(of: entry.ip6addr) { Array($0) }
            return DNSRecordValue(type: .aaaa, fields: [IPAddressText.format(ipv6: bytes)])
        })
    }

    private static func cname(_ base: UnsafePointer<UInt8>, _ length: Int32) -> Result<[DNSRecordValue], Failure> {
        var host: UnsafeMutablePointer<hostent>?
        let status = ares_parse_a_reply(base, length, &host, nil, nil)
        defer { if let host { ares_free_hostent(host) } }
        if let failure = check(status) { return .failure(failure) }
        // An alias is there only when a CNAME was answered; h_name is then its target.
        guard let host, let aliases = host.pointee.h_aliases, aliases[0] != nil,
              let target = host.pointee.h_name else { return .success([]) }
        return .success([DNSRecordValue(type: .cname, fields: [name(target)])])
    }

    private static func nameServers(_ base: UnsafePointer<UInt8>, _ length: Int32) -> Result<[DNSRecordValue], Failure> {
        var host: UnsafeMutablePointer<hostent>?
        let status = ares_parse_ns_reply(base, length, &host)
        defer { if let host { ares_free_hostent(host) } }
        if let failure = check(status) { return .failure(failure) }
        var records: [DNSRecordValue] = []
        if let aliases = host?.pointee.h_aliases {
            var index = 0
            while let alias = aliases[index] {
                records.append(DNSRecordValue(type: .ns, fields: [name(alias)]))
                index += 1
            }
        }
        return .success(records)
    }

    private static func mailExchangers(_ base: UnsafePointer<UInt8>, _ length: Int32) -> Result<[DNSRecordValue], Failure> {
        var list: UnsafeMutablePointer<ares_mx_reply>?
        let status = ares_parse_mx_reply(base, length, &list)
        defer { if let list { ares_free_data(list) } }
        if let failure = check(status) { return .failure(failure) }
        var records: [DNSRecordValue] = []
        var node = list
        while let entry = node {
            records.append(DNSRecordValue(type: .mx, fields: [String(entry.pointee.priority), name(entry.pointee.host)]))
            node = entry.pointee.next
        }
        return .success(records)
    }

    private static func services(_ base: UnsafePointer<UInt8>, _ length: Int32) -> Result<[DNSRecordValue], Failure> {
        var list: UnsafeMutablePointer<ares_srv_reply>?
        let status = ares_parse_srv_reply(base, length, &list)
        defer { if let list { ares_free_data(list) } }
        if let failure = check(status) { return .failure(failure) }
        var records: [DNSRecordValue] = []
        var node = list
        while let entry = node {
            let e = entry.pointee
            records.append(DNSRecordValue(type: .srv, fields: [String(e.priority), String(e.weight), String(e.port),
                                                                 name(e.host)]))
            node = e.next
        }
        return .success(records)
    }

    /// Each record's character-strings joined, as SPF and DKIM read them.
    private static func texts(_ base: UnsafePointer<UInt8>, _ length: Int32) -> Result<[DNSRecordValue], Failure> {
        var list: UnsafeMutablePointer<ares_txt_ext>?
        let status = ares_parse_txt_reply_ext(base, length, &list)
        defer { if let list { ares_free_data(list) } }
        if let failure = check(status) { return .failure(failure) }
        var joined: [[UInt8]] = []
        var node = list
        while let entry = node {
            let e = entry.pointee
            let chunk = e.txt.map { Array(UnsafeBufferPointer(start: $0, count: e.length)) } ?? []
            if e.record_start != 0 || joined.isEmpty {
                joined.append(chunk)
            } else {
                joined[joined.count - 1] += chunk
            }
            node = e.next
        }
        return .success(joined.map { DNSRecordValue(type: .txt, fields: [String(decoding: $0, as: UTF8.self)]) })
    }

    private static func authority(_ base: UnsafePointer<UInt8>, _ length: Int32) -> Result<[DNSRecordValue], Failure> {
        var soa: UnsafeMutablePointer<ares_soa_reply>?
        let status = ares_parse_soa_reply(base, length, &soa)
        defer { if let soa { ares_free_data(soa) } }
        if let failure = check(status) { return .failure(failure) }
        guard let e = soa?.pointee else { return .success([]) }
        return .success([DNSRecordValue(type: .soa, fields: [
            name(e.nsname), name(e.hostmaster), String(e.serial), String(e.refresh), String(e.retry),
            String(e.expire), String(e.minttl),
        ])])
    }
}
