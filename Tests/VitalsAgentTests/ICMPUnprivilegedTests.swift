import Foundation
import Testing
import VitalsTestKit

/// `vitals check` on icmp services as an unprivileged user (nobody, no
/// capabilities), inside a network namespace of the test's own whose
/// `net.ipv4.ping_group_range` the test sets: the datagram-socket path when
/// the range includes the group, and the reason when it does not.
private let unprivilegedPingPossible = geteuid() == 0
    && FileManager.default.isExecutableFile(atPath: "/usr/sbin/ip")
    && FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv")

@Suite(.enabled(if: unprivilegedPingPossible,
                "needs root, iproute2 and setpriv (util-linux) to run vitals as nobody in a namespace"))
struct ICMPUnprivilegedTests {
    static let ip = "/usr/sbin/ip"
    static let setpriv = "/usr/bin/setpriv"

    @Test func datagramSocketsWhereThePingGroupRangeAllowsAndAReasonWhereNot() throws {
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: dir.path)
        let config = dir.appendingPathComponent("icmp.yaml").path
        try """
        services:
          lo4: { icmp: { host: 127.0.0.1, max_loss: 0 } }
          lo6: { icmp: { host: "::1", max_loss: 0 } }
        """.write(toFile: config, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: config)

        let namespace = "vitals-ping-\(String(UInt32.random(in: 0...0xFFFFFF), radix: 16))"
        try run([Self.ip, "netns", "add", namespace])
        defer { _ = try? run([Self.ip, "netns", "del", namespace]) }
        try run([Self.ip, "-n", namespace, "link", "set", "lo", "up"])
        let asNobody = [Self.ip, "netns", "exec", namespace, Self.setpriv, "--reuid=65534", "--regid=65534",
                        "--clear-groups", VitalsBinary.url.path, "check", "-c", config]

        try run([Self.ip, "netns", "exec", namespace, "sysctl", "-q", "-w", "net.ipv4.ping_group_range=0 2147483647"])
        let allowed = try run(asNobody, allowFailure: true)
        #expect(allowed.status == 0, "\(allowed.output)")
        #expect(allowed.output.hasPrefix("VITALS OK - 2 up"), "\(allowed.output)")

        try run([Self.ip, "netns", "exec", namespace, "sysctl", "-q", "-w", "net.ipv4.ping_group_range=1 0"])
        let refused = try run(asNobody, allowFailure: true)
        #expect(refused.status == 2)
        #expect(refused.output.contains("lo4 (cannot open an ICMP socket: net.ipv4.ping_group_range excludes the "
            + "agent's group and it lacks CAP_NET_RAW)"), "\(refused.output)")
    }

    @discardableResult
    private func run(_ arguments: [String], allowFailure: Bool = false) throws -> (status: Int32, output: String) {
        try runCommand(arguments, allowFailure: allowFailure)
    }
}
