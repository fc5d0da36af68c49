import VitalsCore

extension StatusView {
    /// What one probe of a dns check must see, for `explain`: `ask
    /// 127.0.0.1:53 for www.example.com A (UDP, TCP when truncated); the
    /// answer must have rcode NOERROR and include 10.0.0.7 and 10.0.0.8 (in
    /// any order; other records may be there too), all within 500ms`.
    static func dnsCheckRule(_ dns: DNSCheck, timeout: Duration) -> String {
        let server = dns.server.map { "\($0)" } ?? "the system's DNS servers (/etc/resolv.conf)"
        let ask = "ask \(server) for \(dns.name) \(dns.type.rawValue) (UDP, TCP when truncated)"
        let within = "all within \(DurationText.format(timeout))"
        guard dns.rcode == .noError else { return "\(ask); the answer must have rcode \(dns.rcode), \(within)" }
        guard !dns.expect.isEmpty else {
            return "\(ask); the answer must have rcode NOERROR and at least one \(dns.type.rawValue) record, \(within)"
        }
        let values = dns.expect.map { value -> String in
            guard value.isNameOnly else { return "\(value)" }
            return switch dns.type {
            case .mx: "\(value) (any preference)"
            case .srv: "\(value) (any priority, weight and port)"
            default: "\(value) (any other fields)"
            }
        }
        let list = values.count == 1 ? values[0] : values.dropLast().joined(separator: ", ") + " and " + values.last!
        let order = values.count == 1 ? "other records may be there too" : "in any order; other records may be there too"
        return "\(ask); the answer must have rcode NOERROR and include \(list) (\(order)), \(within)"
    }
}
