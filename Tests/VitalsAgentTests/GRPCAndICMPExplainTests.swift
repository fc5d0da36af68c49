import Foundation
import Testing
import VitalsCore
@testable import VitalsAgent

/// `explain`'s rule and the `/metrics` reason class of grpc and icmp checks.
@Suite struct GRPCAndICMPExplainTests {
    @Test func grpcRules() {
        #expect(StatusView.checkRule(.grpc(GRPCCheck(host: "127.0.0.1", port: 50051, service: "shop.Cart")),
                                     timeout: .milliseconds(500))
            == #"grpc.health.v1.Health/Check for "shop.Cart" at 127.0.0.1:50051 (HTTP/2 cleartext) must answer "#
            + "SERVING with grpc-status 0 within 500ms")
        #expect(StatusView.checkRule(.grpc(GRPCCheck(host: "::1", port: 443,
                                                     tls: GRPCTLS(serverName: "rpc.example.com", caFile: "/etc/ca.pem"))),
                                     timeout: .seconds(1))
            == "grpc.health.v1.Health/Check for the server's overall health at [::1]:443 (HTTP/2 over TLS, verified "
            + "against the CA in /etc/ca.pem for rpc.example.com) must answer SERVING with grpc-status 0 within 1s")
    }

    @Test func icmpRules() {
        #expect(StatusView.checkRule(.icmp(ICMPCheck(host: "10.0.0.1", count: 3, maxLoss: 0.34, maxRTT: .milliseconds(50))),
                                     timeout: .milliseconds(500))
            == "3 echo requests to 10.0.0.1; fails when more than 34% are lost (1 of 3 may be) or the average "
            + "round trip is over 50ms; unanswered after 500ms counts as lost")
        #expect(StatusView.checkRule(.icmp(ICMPCheck(host: "fd00::1")), timeout: .seconds(1))
            == "3 echo requests to fd00::1; fails when all 3 are lost; unanswered after 1s counts as lost")
        #expect(StatusView.checkRule(.icmp(ICMPCheck(host: "gw", count: 1)), timeout: .seconds(1))
            == "1 echo request to gw; fails when it is lost; unanswered after 1s counts as lost")
    }

    @Test func explainCarriesTheKindAndRule() {
        let service = ServiceConfig(name: "gw", check: .icmp(ICMPCheck(host: "10.0.0.1")))
        let document = StatusView.explain(service, ServiceHealth(service: service, startedAt: Date()), nil)
        #expect(document.service.kind == "icmp")
        #expect(document.rules.check == StatusView.checkRule(service.check, timeout: service.timing.timeout))
    }

    @Test(arguments: [
        ("grpc health: NOT_SERVING", ProbeFailureClass.grpc),
        (#"grpc health of "shop.Cart": SERVICE_UNKNOWN"#, .grpc),
        ("grpc-status 12 UNIMPLEMENTED: Method not found!", .grpc),
        // The server's message is its own text: it stays grpc whatever it says.
        ("grpc-status 14 UNAVAILABLE: TLS timeout after 3s", .grpc),
        ("3 of 3 lost", .loss),
        ("2 of 3 lost, more than max_loss 34%", .loss),
        ("3 of 3 lost (send failed: Network is unreachable)", .loss),
        ("rtt 72ms > max_rtt 50ms", .latency),
        ("cannot open an ICMP socket: net.ipv4.ping_group_range excludes the agent's group and it lacks CAP_NET_RAW", .other),
    ])
    func reasonClasses(reason: String, expected: ProbeFailureClass) {
        #expect(ProbeFailureClass.classify(reason) == expected)
    }
}
