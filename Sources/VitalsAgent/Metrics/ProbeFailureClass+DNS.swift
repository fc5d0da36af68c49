import VitalsCore

extension ProbeFailureClass {
    /// The reasons a dns check gives about its answer (`DNSJudge`,
    /// `DNSQueries`): `rcode NXDOMAIN, expected NOERROR`, `A 10.0.0.7,
    /// expected 10.0.0.8`, `no MX records for example.com`, a malformed
    /// answer, a failed query. Its timeouts and unreachable servers are
    /// counted as `timeout` and `connect`, as for every kind.
    static func isDNSAnswerReason(_ reason: String) -> Bool {
        if reason.hasPrefix("rcode ") && reason.contains(", expected ") { return true }
        if reason.hasPrefix("malformed DNS answer from ") || reason.hasPrefix("DNS query failed: ")
            || reason.hasPrefix("cannot build the DNS query") { return true }
        for type in DNSRecordType.allCases {
            if reason.hasPrefix("no \(type.rawValue) records") { return true }
            if reason.hasPrefix("\(type.rawValue) ") && reason.contains(", expected ") { return true }
        }
        return false
    }
}
