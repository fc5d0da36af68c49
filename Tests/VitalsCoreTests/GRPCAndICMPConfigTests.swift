import Foundation
import Testing
@testable import VitalsCore

@Suite("grpc:, icmp: and fast intervals in the config")
struct GRPCAndICMPConfigTests {
    @Test func grpcChecksAreRead() throws {
        let config = try ConfigLoader.load(yaml: """
            services:
              whole: { grpc: { target: "127.0.0.1:50051" } }
              cart: { grpc: { target: "[::1]:50051", service: shop.Cart, tls: true } }
              pinned:
                grpc:
                  target: 10.0.0.7:443
                  service: ""
                  tls: { server_name: rpc.example.com, ca_file: /etc/vitals/ca.pem, verify: true }
              plain: { grpc: { target: "rpc.internal:50051", tls: false } }
            """)
        #expect(config.service(named: "whole")?.check == .grpc(GRPCCheck(host: "127.0.0.1", port: 50051)))
        #expect(config.service(named: "cart")?.check
                == .grpc(GRPCCheck(host: "::1", port: 50051, service: "shop.Cart", tls: GRPCTLS())))
        #expect(config.service(named: "pinned")?.check
                == .grpc(GRPCCheck(host: "10.0.0.7", port: 443, service: "",
                                   tls: GRPCTLS(serverName: "rpc.example.com", caFile: "/etc/vitals/ca.pem"))))
        #expect(config.service(named: "plain")?.check == .grpc(GRPCCheck(host: "rpc.internal", port: 50051)))
        // The target is where clients reach it.
        #expect(config.service(named: "cart")?.address == ListenAddress(host: "::1", port: 50051))
        #expect(config.service(named: "cart")?.check.kind == "grpc")
    }

    @Test func icmpChecksAreRead() throws {
        let config = try ConfigLoader.load(yaml: """
            services:
              gw: { icmp: { host: 10.0.0.1, count: 5, max_loss: 34%, max_rtt: 50ms } }
              gw6: { icmp: { host: "fd00::1", max_loss: 0 } }
              named: { icmp: { host: gateway.example.com } }
            """)
        #expect(config.service(named: "gw")?.check
                == .icmp(ICMPCheck(host: "10.0.0.1", count: 5, maxLoss: 0.34, maxRTT: .milliseconds(50))))
        #expect(config.service(named: "gw6")?.check == .icmp(ICMPCheck(host: "fd00::1", maxLoss: 0)))
        #expect(config.service(named: "named")?.check == .icmp(ICMPCheck(host: "gateway.example.com")))
        #expect(config.service(named: "gw")?.address == nil)
        #expect(config.service(named: "gw")?.isProbed == true)
    }

    @Test func intervalsDownTo10msAreAccepted() throws {
        let config = try ConfigLoader.load(yaml: """
            defaults: { interval: 10ms, fast_interval: 10ms, timeout: 5ms }
            services:
              fast: { tcp: { host: 127.0.0.1, port: 8081 } }
            """)
        #expect(config.services[0].timing.interval == .milliseconds(10))
        #expect(config.services[0].timing.fastInterval == .milliseconds(10))
        #expect(throws: ConfigErrors.self) {
            try ConfigLoader.load(yaml: "services: { a: { tcp: { host: 127.0.0.1, port: 1 }, fast_interval: 9ms } }")
        }
    }

    @Test func validateWarnsBelow100msWithTheCost() throws {
        let config = try ConfigLoader.load(yaml: """
            services:
              fast: { tcp: { host: 127.0.0.1, port: 8081 }, interval: 10ms }
              confirm: { tcp: { host: 127.0.0.1, port: 8082 }, interval: 1s, fast_interval: 30ms }
              calm: { tcp: { host: 127.0.0.1, port: 8083 }, interval: 100ms }
              still: { tcp: { host: 127.0.0.1, port: 8084 }, interval: 50ms, jitter: 5ms }
              beat: { heartbeat: { every: 1h } }
            """)
        let cost = " (each probe is a connection or request to the target, and CPU in the agent)"
        #expect(ConfigAdvice.warnings(config) == [
            "services.fast: interval 10ms: 100 probes/s for this service; jitter 100ms is more than half of 10ms, "
                + "so probes start late by up to that much; set jitter: 0 or below half the interval" + cost,
            "services.confirm: fast_interval 30ms: 33.3 probes/s for this service while a change is confirmed; "
                + "jitter 100ms is more than half of 30ms, so probes start late by up to that much; "
                + "set jitter: 0 or below half the interval" + cost,
            "services.still: interval 50ms: 20 probes/s for this service" + cost,
        ])
    }
}

/// The example file documents `grpc:` and `icmp:` commented out; uncommented, they load as documented.
@Suite struct ExampleGRPCAndICMPTests {
    private func uncommented(_ name: String) throws -> ServiceConfig? {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("etc/vitals.yaml")
        let lines = try String(contentsOf: url, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false)
        let start = try #require(lines.firstIndex { $0 == "  # \(name):" })
        let block = lines[start...].prefix { $0.hasPrefix("  # ") }.map { "  " + $0.dropFirst(4) }
        return try ConfigLoader.load(yaml: "services:\n" + block.joined(separator: "\n")).service(named: name)
    }

    @Test func grpc() throws {
        #expect(try uncommented("orders")?.check
                == .grpc(GRPCCheck(host: "127.0.0.1", port: 50051, service: "shop.Orders")))
    }

    @Test func icmp() throws {
        let gateway = try #require(try uncommented("gateway"))
        #expect(gateway.check == .icmp(ICMPCheck(host: "10.0.0.1", count: 3, maxLoss: 0.34, maxRTT: .milliseconds(50))))
        #expect(gateway.timing.interval == .seconds(2))
        #expect(gateway.timing.fall == 2)
    }
}
