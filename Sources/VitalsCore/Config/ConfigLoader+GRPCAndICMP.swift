import Foundation
import Yams

// MARK: - grpc, icmp

extension ConfigReader {
    static let grpcKeys = ["target", "service", "tls"]
    static let grpcTLSKeys = ["server_name", "ca_file", "verify"]
    static let icmpKeys = ["host", "count", "max_loss", "max_rtt"]

    /// `grpc: { target: host:port, service: NAME, tls: true | { server_name, ca_file, verify } }`.
    func readGRPC(_ entry: ConfigEntry) -> GRPCCheck? {
        guard let fields = fields(entry.value, entry.path, allowed: Self.grpcKeys) else { return nil }
        let errorsBefore = errors.count
        let target = require("target", in: fields, entry.path, at: entry.keyNode.mark).flatMap { readTarget($0) }
        var service = ""
        if let e = fields["service"], let name = string(e, allowEmpty: true) {
            // HealthCheckRequest.service is a protobuf string: text, not bytes.
            if name.utf8.count > 1024 {
                fail(e.path, at: e.value, "must be at most 1024 bytes long, got \(name.utf8.count)")
            }
            service = name
        }
        let tls = fields["tls"].flatMap { readGRPCTLS($0) }
        guard errors.count == errorsBefore, let target else { return nil }
        return GRPCCheck(host: target.host, port: target.port, service: service, tls: tls ?? nil)
    }

    /// `host:port`, IPv6 hosts in brackets.
    private func readTarget(_ entry: ConfigEntry) -> ListenAddress? {
        if case .scalar(let scalar) = entry.value, let address = ListenAddress.parse(scalar.string),
           address.port > 0, !address.host.isEmpty {
            return address
        }
        fail(entry.path, at: entry.value,
             "expected host:port like 127.0.0.1:50051 or [::1]:50051 (port 1-65535), got \(describe(entry.value))")
        return nil
    }

    /// `tls: false` → nil inside; `tls: true` → defaults; a mapping → its options.
    /// The outer nil means an error was reported.
    private func readGRPCTLS(_ entry: ConfigEntry) -> GRPCTLS?? {
        if case .scalar = entry.value {
            guard let on = bool(entry) else { return nil }
            return .some(on ? GRPCTLS() : nil)
        }
        guard let fields = fields(entry.value, entry.path, allowed: Self.grpcTLSKeys, nullIsEmpty: true) else {
            return nil
        }
        let errorsBefore = errors.count
        var tls = GRPCTLS()
        if let e = fields["server_name"] { tls.serverName = readServerName(e) }
        if let e = fields["ca_file"] { tls.caFile = string(e) }
        if let e = fields["verify"], let v = bool(e) { tls.verify = v }
        return errors.count == errorsBefore ? .some(tls) : nil
    }

    /// `icmp: { host, count, max_loss, max_rtt }`.
    func readICMP(_ entry: ConfigEntry) -> ICMPCheck? {
        guard let fields = fields(entry.value, entry.path, allowed: Self.icmpKeys) else { return nil }
        let errorsBefore = errors.count
        let host = require("host", in: fields, entry.path, at: entry.keyNode.mark).flatMap { readICMPHost($0) }
        var check = ICMPCheck(host: host ?? "")
        if let e = fields["count"], let v = wholeNumber(e, min: 1, max: 20) { check.count = v }
        if let e = fields["max_loss"] { check.maxLoss = readLoss(e) }
        if let e = fields["max_rtt"] { check.maxRTT = duration(e, positive: true) }
        guard errors.count == errorsBefore, host != nil else { return nil }
        return check
    }

    /// An IP address or a host name; no port, no brackets.
    private func readICMPHost(_ entry: ConfigEntry) -> String? {
        if case .scalar(let scalar) = entry.value, !scalar.string.isEmpty,
           scalar.string.unicodeScalars.allSatisfy({
               ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0)
                   || $0 == "." || $0 == "-" || $0 == ":" || $0 == "_" || $0 == "%"
           }) {
            return scalar.string
        }
        fail(entry.path, at: entry.value,
             "expected an IP address or host name like 10.0.0.5, fd00::5 or db.example.com, got \(describe(entry.value))")
        return nil
    }

    /// A share of lost requests in [0, 1], written `0.34` or `34%`.
    private func readLoss(_ entry: ConfigEntry) -> Double? {
        if case .scalar(let scalar) = entry.value {
            let text = scalar.string
            let value = text.hasSuffix("%") ? Double(text.dropLast()).map { $0 / 100 } : Double(text)
            if let value, value >= 0, value <= 1 { return value }
        }
        fail(entry.path, at: entry.value, "expected a share like 34% or 0.34 (0% to 100%), got \(describe(entry.value))")
        return nil
    }
}
