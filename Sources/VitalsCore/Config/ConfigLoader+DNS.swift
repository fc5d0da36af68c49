import Foundation
import Yams

// MARK: - dns

extension ConfigReader {
    static let dnsKeys = ["name", "type", "server", "expect", "rcode"]

    /// `dns: { name: www.example.com, type: A, server: 10.0.0.2:53, expect: [10.0.0.7], rcode: NOERROR }`.
    func readDNS(_ entry: ConfigEntry) -> DNSCheck? {
        guard let fields = fields(entry.value, entry.path, allowed: Self.dnsKeys) else { return nil }
        let errorsBefore = errors.count
        let name = require("name", in: fields, entry.path, at: entry.keyNode.mark).flatMap { readDNSName($0) }
        var type: DNSRecordType? = .a
        if let e = fields["type"] { type = readRecordType(e) }
        let server = fields["server"].flatMap { readDNSServer($0) }
        var rcode = DNSResponseCode.noError
        if let e = fields["rcode"], let v = readResponseCode(e) { rcode = v }
        var expect: [DNSRecordValue] = []
        if let e = fields["expect"], let type {
            expect = readDNSExpect(e, type: type) ?? []
            if rcode != .noError, let written = fields["rcode"] {
                fail(written.path, at: written.value,
                     "expect needs rcode NOERROR: an answer with rcode \(rcode) has no records to match")
            }
        }
        guard errors.count == errorsBefore, let name, let type else { return nil }
        return DNSCheck(name: name, type: type, server: server, expect: expect, rcode: rcode)
    }

    private func readDNSName(_ entry: ConfigEntry) -> String? {
        if case .scalar(let scalar) = entry.value, DNSName.isValid(scalar.string) { return scalar.string }
        fail(entry.path, at: entry.value, "expected a domain name like www.example.com, got \(describe(entry.value))")
        return nil
    }

    /// `A`, `AAAA`, … in any case.
    private func readRecordType(_ entry: ConfigEntry) -> DNSRecordType? {
        if case .scalar(let scalar) = entry.value, let type = DNSRecordType(rawValue: scalar.string.uppercased()) {
            return type
        }
        let names = DNSRecordType.allCases.map(\.rawValue).joined(separator: ", ")
        fail(entry.path, at: entry.value, "expected a record type, one of \(names), got \(describe(entry.value))")
        return nil
    }

    private func readDNSServer(_ entry: ConfigEntry) -> DNSServer? {
        if case .scalar(let scalar) = entry.value, let server = DNSServer.parse(scalar.string) { return server }
        fail(entry.path, at: entry.value,
             "expected an IP address with an optional port like 10.0.0.2, 10.0.0.2:5353 or [2001:db8::2]:53, "
                 + "got \(describe(entry.value))")
        return nil
    }

    private func readResponseCode(_ entry: ConfigEntry) -> DNSResponseCode? {
        if case .scalar(let scalar) = entry.value, let code = DNSResponseCode(name: scalar.string) { return code }
        fail(entry.path, at: entry.value,
             "expected a response code, one of \(DNSResponseCode.allNames.joined(separator: ", ")), got \(describe(entry.value))")
        return nil
    }

    /// A value, or a list of values, each of the form `type` takes.
    private func readDNSExpect(_ entry: ConfigEntry, type: DNSRecordType) -> [DNSRecordValue]? {
        let items: [(Node, ConfigPath)]
        switch entry.value {
        case .sequence(let sequence):
            guard !sequence.isEmpty else {
                fail(entry.path, at: entry.value, "expected at least one value")
                return nil
            }
            items = sequence.enumerated().map { ($1, entry.path.index($0)) }
        case .scalar:
            items = [(entry.value, entry.path)]
        default:
            fail(entry.path, at: entry.value,
                 "expected a value or a list of values (\(type.valueForm)), got \(describe(entry.value))")
            return nil
        }
        var values: [DNSRecordValue] = []
        var ok = true
        for (node, path) in items {
            guard let text = string(node, path, allowEmpty: type == .txt) else {
                ok = false
                continue
            }
            if let value = DNSRecordValue.parse(text, type: type) {
                if !values.contains(value) { values.append(value) }
            } else {
                fail(path, at: node, "expected \(type.rawValue) data, \(type.valueForm); got \(describe(node))")
                ok = false
            }
        }
        return ok ? values : nil
    }
}
