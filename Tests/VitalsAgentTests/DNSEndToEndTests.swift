import Foundation
import Testing
import VitalsProbe
import VitalsTestKit

/// A dns check in the real binary against a DNS server of the test's own
/// whose answer changes: the state, the reason, `explain` and `/metrics`.
@Suite(.serialized, .enabled(if: TestDNSServer.available, "needs python3-dnslib: scripts/install-deps.sh test installs it"))
struct DNSEndToEndTests {
    @Test func aMovedRecordTakesTheServiceDownAndBack() throws {
        let server = try TestDNSServer(zone: ["www.vitals.test": .init(a: ["10.0.0.7"])])
        defer { server.stop() }
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let config = dir.appendingPathComponent("vitals.yaml")
        try """
        agent: { listen: 127.0.0.1:0, state_dir: \(dir.path)/state }
        defaults: { interval: 200ms, timeout: 500ms, rise: 2, fall: 2, jitter: 0ms }
        services:
          www-dns: { dns: { name: www.vitals.test, server: "127.0.0.1:\(server.port)", expect: [10.0.0.7] } }
        """.write(to: config, atomically: true, encoding: .utf8)

        let agent = try AgentProcess(config: config, directory: dir)
        let base = try agent.baseURL()
        try agent.waitForLine(containing: "www-dns: unknown → up")

        let mark = agent.output.count
        try server.setZone(["www.vitals.test": .init(a: ["10.0.0.8"])])
        let down = try agent.waitForLine(containing: "www-dns: up → down", after: mark)
        #expect(down.contains("A 10.0.0.8, expected 10.0.0.7"), "\(down)")

        let explain = try fetch(base + "/v1/services/www-dns/explain")
        #expect(explain.contains(#""kind":"dns""#), "\(explain)")
        #expect(explain.contains("ask 127.0.0.1:\(server.port) for www.vitals.test A"), "\(explain)")
        let metrics = try fetch(base + "/metrics")
        #expect(metrics.contains("vitals_probe_failures_total{service=\"www-dns\",reason=\"dns\"} "), "\(metrics)")
        #expect(!metrics.contains("vitals_probe_failures_total{service=\"www-dns\",reason=\"dns\"} 0\n"))

        let back = agent.output.count
        try server.setZone(["www.vitals.test": .init(a: ["10.0.0.8", "10.0.0.7"])])
        try agent.waitForLine(containing: "www-dns: down → up", after: back)
    }

    private func fetch(_ url: String) throws -> String {
        switch HTTPFetch.request(url: url) {
        case .success(let response): return response.text
        case .failure(let failure): throw failure
        }
    }
}
