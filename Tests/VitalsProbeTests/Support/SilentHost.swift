import Foundation
import VitalsTestKit

/// A network namespace of the test's own, joined to this one by a veth
/// pair, whose far end can be told to ignore echo requests: an address that
/// is routed and reachable but never answers a ping. IPv4 `10.215.N.1`
/// (here) / `.2` (there), IPv6 `fd00:215:N::1` / `::2`. Needs root and
/// iproute2; `available` says whether this machine allows it.
final class SilentHost: @unchecked Sendable {
    let name: String
    let v4: String
    let v6: String
    private let link: String

    static let ip = "/usr/sbin/ip"

    static let available: Bool = {
        guard geteuid() == 0, FileManager.default.isExecutableFile(atPath: ip) else { return false }
        let probe = "vitals-icmp-probe-\(getpid())"
        defer { _ = try? run([ip, "netns", "del", probe]) }
        return (try? run([ip, "netns", "add", probe])) != nil
    }()

    /// - Parameter silent: whether the far end ignores echo requests.
    init(silent: Bool = true) throws {
        let n = Int.random(in: 1...250)
        let tag = String(UInt32.random(in: 0...0xFFFFFF), radix: 16)
        name = "vitals-icmp-\(tag)"
        link = "vih\(tag)"
        v4 = "10.215.\(n).2"
        v6 = "fd00:215:\(String(n, radix: 16))::2"
        let there = "vin\(tag)"
        do {
            try Self.run([Self.ip, "netns", "add", name])
            try Self.run([Self.ip, "link", "add", link, "type", "veth", "peer", "name", there])
            try Self.run([Self.ip, "link", "set", there, "netns", name])
            try Self.run([Self.ip, "addr", "add", "10.215.\(n).1/30", "dev", link])
            try Self.run([Self.ip, "-6", "addr", "add", "fd00:215:\(String(n, radix: 16))::1/64", "dev", link, "nodad"])
            try Self.run([Self.ip, "link", "set", link, "up"])
            try Self.run([Self.ip, "-n", name, "addr", "add", "\(v4)/30", "dev", there])
            try Self.run([Self.ip, "-n", name, "-6", "addr", "add", "\(v6)/64", "dev", there, "nodad"])
            try Self.run([Self.ip, "-n", name, "link", "set", there, "up"])
            let ignore = silent ? "1" : "0"
            try Self.run([Self.ip, "netns", "exec", name, "sysctl", "-q", "-w", "net.ipv4.icmp_echo_ignore_all=\(ignore)"])
            try Self.run([Self.ip, "netns", "exec", name, "sysctl", "-q", "-w", "net.ipv6.icmp.echo_ignore_all=\(ignore)"])
        } catch {
            remove()
            throw error
        }
    }

    func remove() {
        _ = try? Self.run([Self.ip, "netns", "del", name])
        _ = try? Self.run([Self.ip, "link", "del", link])
    }

    @discardableResult
    static func run(_ arguments: [String]) throws -> String {
        try runCommand(arguments).output
    }
}
