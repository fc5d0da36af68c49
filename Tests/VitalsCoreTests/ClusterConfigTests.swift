import Foundation
import Testing
@testable import VitalsCore

@Suite struct ClusterConfigTests {
    static let services = """
    services:
      web-1: { http: { url: http://127.0.0.1:8081/health } }

    """

    @Test func withoutAClusterSectionNothingChanges() throws {
        let config = try ConfigLoader.load(yaml: Self.services)
        #expect(config.cluster == nil)
    }

    @Test func theSmallestClusterTakesEveryDefault() throws {
        let config = try ConfigLoader.load(yaml: Self.services + """
        cluster:
          etcd: http://127.0.0.1:2379
          scope: web
        """)
        let cluster = try #require(config.cluster)
        #expect(cluster.etcd == ["http://127.0.0.1:2379"])
        #expect(cluster.scope == "web")
        #expect(cluster.name == nil)
        #expect(cluster.agentName(hostName: "host-a") == "host-a")
        #expect(cluster.ttl == .seconds(15))
        #expect(cluster.prefix == "/vitals/web/")
        #expect(cluster.quorum == nil)
        #expect(cluster.tls == nil)
        #expect(cluster.auth == nil)
        #expect(cluster.requestTimeout == .milliseconds(3750))
        #expect(cluster.requestTimeout < cluster.ttl / 3)
    }

    @Test func theRequestTimeoutFollowsTheTTL() throws {
        let config = try ConfigLoader.load(yaml: Self.services + """
        cluster: { etcd: [http://127.0.0.1:2379], scope: web, ttl: 10s }
        """)
        #expect(config.cluster?.requestTimeout == .milliseconds(2500))
    }

    @Test func everyKeyIsRead() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("Fixtures/valid/cluster.yaml")
        let config = try ConfigLoader.load(yaml: String(contentsOf: url, encoding: .utf8))
        let cluster = try #require(config.cluster)
        #expect(cluster == ClusterSettings(
            etcd: ["https://10.0.0.21:2379", "https://10.0.0.22:2379", "https://10.0.0.23:2379"],
            scope: "prod-db", name: "watcher-a", ttl: .seconds(20), prefix: "/vitals/prod-db/", quorum: 2,
            tls: ClusterTLS(caFile: "/etc/vitals/etcd-ca.pem", certFile: "/etc/vitals/etcd-client.pem",
                            keyFile: "/etc/vitals/etcd-client-key.pem"),
            auth: ClusterAuth(user: "vitals", passwordFile: "/etc/vitals/etcd-password"),
            requestTimeout: .seconds(4)))
        #expect(cluster.agentName(hostName: "ignored") == "watcher-a")
    }

    /// The shortest ttl is refused with the reason, at the key's line.
    @Test func aTTLUnderTenSecondsIsRefusedWithTheReason() {
        #expect(throws: ConfigErrors([
            ConfigError(path: "cluster.ttl",
                        message: "must be at least 10s, got \"9s\": " + ConfigReader.shortTTLReason,
                        line: 3, column: 60),
        ])) {
            try ConfigLoader.load(yaml: Self.services + """
            cluster: { etcd: [http://127.0.0.1:2379], scope: web, ttl: 9s }
            """)
        }
    }

    @Test func aTimeoutOfAThirdOfTheTTLIsRefused() throws {
        #expect(throws: ConfigErrors.self) {
            try ConfigLoader.load(yaml: Self.services + """
            cluster: { etcd: [http://127.0.0.1:2379], scope: web, ttl: 30s, request_timeout: 10s }
            """)
        }
        let config = try ConfigLoader.load(yaml: Self.services + """
        cluster: { etcd: [http://127.0.0.1:2379], scope: web, ttl: 30s, request_timeout: 9999ms }
        """)
        #expect(config.cluster?.requestTimeout == .milliseconds(9999))
    }

    @Test func clientFilesNeedAnHTTPSEndpoint() {
        #expect(throws: ConfigErrors([
            ConfigError(path: "cluster.ca_file", message: "TLS files are set but no etcd endpoint uses https://",
                        line: 6, column: 3),
        ])) {
            try ConfigLoader.load(yaml: Self.services + """
            cluster:
              etcd: [http://127.0.0.1:2379]
              scope: web
              ca_file: /etc/vitals/ca.pem
            """)
        }
    }

    /// The example file documents `cluster:` commented out; uncommented, it loads as documented.
    @Test func theExampleBlockLoadsWhenUncommented() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("etc/vitals.yaml")
        let text = try String(contentsOf: url, encoding: .utf8)
        let start = try #require(text.range(of: "\n# cluster:\n"))
        let block = text[start.lowerBound...].split(separator: "\n").filter { $0.hasPrefix("# ") }
            .map { $0.dropFirst(2) }.joined(separator: "\n")
        let config = try ConfigLoader.load(yaml: Self.services + block)
        let cluster = try #require(config.cluster)
        #expect(cluster.scope == "prod")
        #expect(cluster.prefix == "/vitals/prod/")
        #expect(cluster.requestTimeout == .seconds(3))
        #expect(cluster.tls?.keyFile == "/etc/vitals/etcd-client-key.pem")
        #expect(cluster.auth == ClusterAuth(user: "vitals", passwordFile: "/etc/vitals/etcd-password"))
    }
}
