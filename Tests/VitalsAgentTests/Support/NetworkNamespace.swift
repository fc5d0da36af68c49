import Foundation
import VitalsTestKit

/// A network namespace of the test's own, joined to this one by two veth
/// pairs: one that carries etcd, one that carries the backends, so a test
/// can cut an agent off from the services while etcd stays reachable.
///
/// Addresses: etcd side `10.213.N.1` (here) / `.2` (there); backends side
/// `10.214.N.1` / `.2`. Needs root and iproute2; `available` says whether
/// this machine allows it.
final class NetworkNamespace: @unchecked Sendable {
    let name: String
    let etcdHost: String
    let backendHost: String
    private let tag: String

    static let ip = "/usr/sbin/ip"

    /// Whether a namespace and a veth pair can be made here.
    static let available: Bool = {
        guard geteuid() == 0, FileManager.default.isExecutableFile(atPath: ip) else { return false }
        let probe = "vitals-probe-\(getpid())"
        defer { _ = try? run([ip, "netns", "del", probe]) }
        return (try? run([ip, "netns", "add", probe])) != nil
    }()

    init() throws {
        let n = Int.random(in: 1...250)
        tag = String(UInt32.random(in: 0...0xFFFFFF), radix: 16)
        name = "vitals-\(tag)"
        etcdHost = "10.213.\(n).1"
        backendHost = "10.214.\(n).1"
        do {
            try Self.run([Self.ip, "netns", "add", name])
            try Self.run([Self.ip, "-n", name, "link", "set", "lo", "up"])
            for (side, net) in [("e", "10.213.\(n)"), ("b", "10.214.\(n)")] {
                let here = "v\(side)h\(tag)", there = "v\(side)n\(tag)"
                try Self.run([Self.ip, "link", "add", here, "type", "veth", "peer", "name", there])
                try Self.run([Self.ip, "link", "set", there, "netns", name])
                try Self.run([Self.ip, "addr", "add", "\(net).1/30", "dev", here])
                try Self.run([Self.ip, "link", "set", here, "up"])
                try Self.run([Self.ip, "-n", name, "addr", "add", "\(net).2/30", "dev", there])
                try Self.run([Self.ip, "-n", name, "link", "set", there, "up"])
            }
        } catch {
            remove()
            throw error
        }
    }

    /// The command prefix that runs a program inside.
    var launcher: [String] { [Self.ip, "netns", "exec", name] }

    /// Takes the backends' link down inside: the agent there reaches etcd, not the services.
    func cutBackends() throws {
        try Self.run([Self.ip, "-n", name, "link", "set", "vbn\(tag)", "down"])
    }

    func remove() {
        _ = try? Self.run([Self.ip, "netns", "del", name])
        for side in ["e", "b"] { _ = try? Self.run([Self.ip, "link", "del", "v\(side)h\(tag)"]) }
    }

    @discardableResult
    static func run(_ arguments: [String]) throws -> String {
        try runCommand(arguments).output
    }
}
