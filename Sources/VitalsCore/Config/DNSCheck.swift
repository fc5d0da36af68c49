import Foundation

/// `dns: { name, type, server, expect, rcode }` — one query to a DNS server;
/// up when the answer's response code is `rcode` (default NOERROR) and,
/// with NOERROR, when the answer holds records of `type`, every `expect`
/// value among them (order does not matter; other records may be there too).
public struct DNSCheck: Sendable, Equatable {
    /// The name asked for, as written (a trailing dot is allowed).
    public var name: String
    public var type: DNSRecordType
    /// Where the query goes. Nil: the servers in /etc/resolv.conf.
    public var server: DNSServer?
    /// Values that must all be in the answer, normalised (`DNSRecordValue`).
    public var expect: [DNSRecordValue]
    public var rcode: DNSResponseCode

    public init(name: String, type: DNSRecordType = .a, server: DNSServer? = nil, expect: [DNSRecordValue] = [],
                rcode: DNSResponseCode = .noError) {
        self.name = name
        self.type = type
        self.server = server
        self.expect = expect
        self.rcode = rcode
    }

    /// `www.example.com A @127.0.0.1:5353`, as `dig` is told it.
    public var target: String {
        "\(name) \(type.rawValue)" + (server.map { " @\($0)" } ?? "")
    }
}

/// The record types a `dns:` check can ask for.
public enum DNSRecordType: String, Sendable, Equatable, CaseIterable {
    case a = "A"
    case aaaa = "AAAA"
    case cname = "CNAME"
    case mx = "MX"
    case txt = "TXT"
    case srv = "SRV"
    case ns = "NS"
    case soa = "SOA"

    /// The type's number on the wire (RFC 1035, 2782, 3596).
    public var code: Int {
        switch self {
        case .a: 1
        case .ns: 2
        case .cname: 5
        case .soa: 6
        case .mx: 15
        case .txt: 16
        case .aaaa: 28
        case .srv: 33
        }
    }

    /// How one value of this type is written, for errors and the reference.
    public var valueForm: String {
        switch self {
        case .a: "an IPv4 address like 10.0.0.7"
        case .aaaa: "an IPv6 address like 2001:db8::7"
        case .cname, .ns: "a host name like www.example.com"
        case .mx: "a mail host like mail.example.com, or preference and host like \"10 mail.example.com\""
        case .txt: "the record's text"
        case .srv: "a target like sip.example.com, or \"priority weight port target\" like \"10 5 5060 sip.example.com\""
        case .soa: "the primary server like ns1.example.com, or all seven fields "
            + "\"mname rname serial refresh retry expire minimum\""
        }
    }
}

/// A DNS response code (RFC 1035 4.1.1, RFC 2136). Codes without a name
/// here show as `RCODE12`.
public struct DNSResponseCode: Sendable, Equatable, Hashable, CustomStringConvertible {
    public let code: Int

    public init(code: Int) { self.code = code }

    public static let noError = DNSResponseCode(code: 0)
    public static let formErr = DNSResponseCode(code: 1)
    public static let servFail = DNSResponseCode(code: 2)
    public static let nxDomain = DNSResponseCode(code: 3)
    public static let notImp = DNSResponseCode(code: 4)
    public static let refused = DNSResponseCode(code: 5)

    static let names = ["NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED",
                        "YXDOMAIN", "YXRRSET", "NXRRSET", "NOTAUTH", "NOTZONE"]

    /// `NOERROR`, `NXDOMAIN`, …; case-insensitive.
    public init?(name: String) {
        guard let index = Self.names.firstIndex(of: name.uppercased()) else { return nil }
        code = index
    }

    public var description: String { code < Self.names.count ? Self.names[code] : "RCODE\(code)" }

    public static var allNames: [String] { names }
}

/// `server:` — an IP address and port (default 53): `10.0.0.2`,
/// `10.0.0.2:5353`, `2001:db8::2`, `[2001:db8::2]:5353`.
public struct DNSServer: Sendable, Equatable, CustomStringConvertible {
    /// The address in its canonical text (IPv6 compressed, lower case).
    public var host: String
    public var port: UInt16

    public init(host: String, port: UInt16 = 53) {
        self.host = host
        self.port = port
    }

    public var isIPv6: Bool { host.contains(":") }

    /// `10.0.0.2:53`, `[2001:db8::2]:53`.
    public var description: String { isIPv6 ? "[\(host)]:\(port)" : "\(host):\(port)" }

    public static func parse(_ text: String) -> DNSServer? {
        if let v4 = IPAddressText.ipv4(text) { return DNSServer(host: IPAddressText.format(ipv4: v4)) }
        if let v6 = IPAddressText.ipv6(text) { return DNSServer(host: IPAddressText.format(ipv6: v6)) }
        guard let address = ListenAddress.parse(text), address.port > 0 else { return nil }
        // IPv6 only in brackets, IPv4 only without.
        if text.hasPrefix("[") {
            return IPAddressText.ipv6(address.host).map { DNSServer(host: IPAddressText.format(ipv6: $0), port: address.port) }
        }
        return IPAddressText.ipv4(address.host).map { DNSServer(host: IPAddressText.format(ipv4: $0), port: address.port) }
    }
}

/// One record's data in a comparable form: names in lower case without the
/// trailing dot, numbers in decimal, addresses in their canonical text,
/// TXT as its text (its character-strings joined). Both `expect:` values
/// and answered records take this form, so matching is equality of fields.
public struct DNSRecordValue: Sendable, Equatable, Hashable, CustomStringConvertible {
    public let type: DNSRecordType
    /// A, AAAA: [address]; CNAME, NS: [name]; MX: [preference, host];
    /// SRV: [priority, weight, port, target]; SOA: [mname, rname, serial,
    /// refresh, retry, expire, minimum]; TXT: [text]. An expected MX, SRV or
    /// SOA value may be the name alone: [host], [target], [mname].
    public let fields: [String]

    public init(type: DNSRecordType, fields: [String]) {
        self.type = type
        self.fields = fields
    }

    /// Whether the name alone was written (MX host, SRV target, SOA mname).
    public var isNameOnly: Bool {
        switch type {
        case .mx, .srv, .soa: fields.count == 1
        case .a, .aaaa, .cname, .ns, .txt: false
        }
    }

    /// The field an expected name alone is compared with.
    var nameField: String? {
        switch type {
        case .mx: fields.count == 2 ? fields[1] : nil
        case .srv: fields.count == 4 ? fields[3] : nil
        case .soa: fields.count == 7 ? fields[0] : nil
        case .a, .aaaa, .cname, .ns, .txt: nil
        }
    }

    /// Whether this expected value is satisfied by `answered`: equal
    /// fields, or, for a name alone, the answered record's name.
    public func isSatisfied(by answered: DNSRecordValue) -> Bool {
        guard answered.type == type else { return false }
        if isNameOnly { return answered.nameField == fields[0] }
        return answered.fields == fields
    }

    /// As `dig` shows data: `10.0.0.7`, `10 mail.example.com`, TXT in quotes.
    public var description: String {
        switch type {
        case .txt: ByteEscapes.quoted(Array((fields.first ?? "").utf8))
        case .a, .aaaa, .cname, .mx, .srv, .ns, .soa: fields.joined(separator: " ")
        }
    }

    /// A name as compared: lower case, no trailing dot.
    public static func normalizedName(_ name: String) -> String {
        var text = name.lowercased()
        if text.count > 1, text.hasSuffix(".") { text.removeLast() }
        return text
    }

    /// Reads an `expect:` value written for `type`; nil when it is not one.
    public static func parse(_ text: String, type: DNSRecordType) -> DNSRecordValue? {
        let words = text.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        func name(_ word: String) -> String? { DNSName.isValid(word) ? normalizedName(word) : nil }
        func number(_ word: String, max: UInt32) -> String? {
            guard word.allSatisfy({ $0.isASCII && $0.isNumber }), let value = UInt32(word), value <= max else { return nil }
            return String(value)
        }
        let fields: [String?]
        switch type {
        case .a:
            fields = [IPAddressText.ipv4(text).map(IPAddressText.format(ipv4:))]
        case .aaaa:
            fields = [IPAddressText.ipv6(text).map(IPAddressText.format(ipv6:))]
        case .cname, .ns:
            fields = words.count == 1 ? [name(words[0])] : [nil]
        case .mx:
            switch words.count {
            case 1: fields = [name(words[0])]
            case 2: fields = [number(words[0], max: 65535), name(words[1])]
            default: fields = [nil]
            }
        case .srv:
            switch words.count {
            case 1: fields = [name(words[0])]
            case 4: fields = [number(words[0], max: 65535), number(words[1], max: 65535),
                              number(words[2], max: 65535), name(words[3])]
            default: fields = [nil]
            }
        case .soa:
            switch words.count {
            case 1: fields = [name(words[0])]
            case 7: fields = [name(words[0]), name(words[1])] + words[2...].map { number($0, max: UInt32.max) }
            default: fields = [nil]
            }
        case .txt:
            fields = [text]
        }
        guard !fields.contains(nil) else { return nil }
        return DNSRecordValue(type: type, fields: fields.compactMap { $0 })
    }
}

/// Domain names as a check may ask for them.
public enum DNSName {
    /// Labels of 1 to 63 printable ASCII characters other than space and
    /// backslash (`_sip._tcp.example.com` and `*.example.com` too), at most
    /// 253 characters without the trailing dot; `.` alone is the root.
    public static func isValid(_ name: String) -> Bool {
        if name == "." { return true }
        var text = Substring(name)
        if text.hasSuffix(".") { text = text.dropLast() }
        guard !text.isEmpty, text.utf8.count <= 253 else { return false }
        for label in text.split(separator: ".", omittingEmptySubsequences: false) {
            guard (1...63).contains(label.utf8.count),
                  label.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7f && $0 != "\\" }) else { return false }
        }
        return true
    }
}

/// IP addresses as text, without the C library: parsing and the canonical
/// form (RFC 5952 for IPv6: lower case, the longest run of two or more
/// zero groups as `::`, an IPv4-mapped tail kept as dotted quad).
public enum IPAddressText {
    /// `10.0.0.7` → its four bytes. Each part is 0-255, in decimal, without
    /// leading zeros (`010` is refused: some readers take it as octal).
    public static func ipv4(_ text: some StringProtocol) -> [UInt8]? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var bytes: [UInt8] = []
        for part in parts {
            guard (1...3).contains(part.count), part.allSatisfy({ $0.isASCII && $0.isNumber }),
                  part.count == 1 || part.first != "0", let value = UInt8(part) else { return nil }
            bytes.append(value)
        }
        return bytes
    }

    /// `2001:db8::7`, `::ffff:10.0.0.7` → its sixteen bytes.
    public static func ipv6(_ text: some StringProtocol) -> [UInt8]? {
        guard text.contains(":") else { return nil }
        let halves = text.components(separatedBy: "::")
        guard halves.count <= 2 else { return nil }
        func groups(_ part: String, allowIPv4Tail: Bool) -> [UInt8]? {
            if part.isEmpty { return [] }
            let pieces = part.split(separator: ":", omittingEmptySubsequences: false)
            var bytes: [UInt8] = []
            for (index, piece) in pieces.enumerated() {
                if index == pieces.count - 1, allowIPv4Tail, piece.contains(".") {
                    guard let tail = ipv4(piece) else { return nil }
                    bytes += tail
                    continue
                }
                guard (1...4).contains(piece.count), piece.allSatisfy(\.isHexDigit),
                      let value = UInt16(piece, radix: 16) else { return nil }
                bytes += [UInt8(value >> 8), UInt8(value & 0xff)]
            }
            return bytes
        }
        if halves.count == 1 {
            guard let bytes = groups(halves[0], allowIPv4Tail: true), bytes.count == 16 else { return nil }
            return bytes
        }
        guard let head = groups(halves[0], allowIPv4Tail: false), let tail = groups(halves[1], allowIPv4Tail: true),
              head.count + tail.count <= 14 else { return nil }
        return head + [UInt8](repeating: 0, count: 16 - head.count - tail.count) + tail
    }

    public static func format(ipv4 bytes: [UInt8]) -> String {
        bytes.map(String.init).joined(separator: ".")
    }

    /// RFC 5952's text for sixteen bytes.
    public static func format(ipv6 bytes: [UInt8]) -> String {
        precondition(bytes.count == 16, "an IPv6 address is 16 bytes")
        let groups = stride(from: 0, to: 16, by: 2).map { UInt16(bytes[$0]) << 8 | UInt16(bytes[$0 + 1]) }
        // ::ffff:a.b.c.d (IPv4-mapped) keeps its dotted tail, as inet_ntop writes it.
        if groups[0..<5].allSatisfy({ $0 == 0 }) && groups[5] == 0xffff {
            return "::ffff:" + format(ipv4: Array(bytes[12...]))
        }
        // The longest run of zero groups (the first of equal ones), if at least two long.
        var best: (start: Int, length: Int) = (-1, 0)
        var index = 0
        while index < 8 {
            guard groups[index] == 0 else { index += 1; continue }
            let start = index
            while index < 8 && groups[index] == 0 { index += 1 }
            if index - start > best.length { best = (start, index - start) }
        }
        let hex = groups.map { String($0, radix: 16) }
        guard best.length >= 2 else { return hex.joined(separator: ":") }
        let head = hex[..<best.start].joined(separator: ":")
        let tail = hex[(best.start + best.length)...].joined(separator: ":")
        return head + "::" + tail
    }
}
