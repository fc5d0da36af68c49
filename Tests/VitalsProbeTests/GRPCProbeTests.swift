import Foundation
import Testing
import VitalsCore
@testable import VitalsProbe
import VitalsTestKit

func grpcService(port: UInt16, service: String = "", tls: GRPCTLS? = nil, name: String = "rpc",
                 timeout: Duration = .seconds(2)) -> ServiceConfig {
    ServiceConfig(name: name, check: .grpc(GRPCCheck(host: "127.0.0.1", port: port, service: service, tls: tls)),
                  timing: ProbeTiming(timeout: timeout))
}

@Suite("gRPC health framing and verdicts")
struct GRPCHealthWireTests {
    @Test func theRequestForTheWholeServerIsAnEmptyMessage() {
        #expect(GRPCHealth.requestBody(service: "") == [0, 0, 0, 0, 0])
    }

    @Test func theRequestCarriesTheServiceNameAsField1() {
        #expect(GRPCHealth.requestBody(service: "cart") == [0, 0, 0, 0, 6, 0x0a, 4] + Array("cart".utf8))
    }

    @Test func aLongNameHasAMultiByteLength() {
        let name = String(repeating: "a", count: 300)
        // 300 = 0b1_0010_1100: varint 0xac 0x02; message 1 + 2 + 300 = 303 = 0x012f.
        #expect(Array(GRPCHealth.requestBody(service: name).prefix(8)) == [0, 0, 0, 0x01, 0x2f, 0x0a, 0xac, 0x02])
    }

    @Test(arguments: [
        ([0, 0, 0, 0, 2, 0x08, 0x01], GRPCHealth.ServingStatus.serving),
        ([0, 0, 0, 0, 2, 0x08, 0x02], .notServing),
        ([0, 0, 0, 0, 2, 0x08, 0x03], .serviceUnknown),
        ([0, 0, 0, 0, 0], .unknown), // proto3 leaves UNKNOWN (0) out
        ([0, 0, 0, 0, 2, 0x08, 0x07], .other(7)),
        // An unknown length-delimited field 2 and a fixed32 field 3 before the status are skipped.
        ([0, 0, 0, 0, 11, 0x12, 0x02, 0x68, 0x69, 0x1d, 1, 2, 3, 4, 0x08, 0x01], .serving),
    ] as [([UInt8], GRPCHealth.ServingStatus)])
    func responsesAreRead(bytes: [UInt8], status: GRPCHealth.ServingStatus) {
        #expect(GRPCHealth.servingStatus(in: bytes) == .success(status))
    }

    @Test(arguments: [
        ([], GRPCHealth.ResponseError.empty),
        ([0, 0, 0], .truncated),
        ([0, 0, 0, 0, 2, 0x08], .truncated),
        ([1, 0, 0, 0, 2, 0x08, 0x01], .compressed),
        ([0, 0, 0, 0, 1, 0x08], .malformed("bad varint")),
        ([0, 0, 0, 0, 2, 0x0f, 0x01], .malformed("wire type 7")),
    ] as [([UInt8], GRPCHealth.ResponseError)])
    func brokenResponsesAreNamed(bytes: [UInt8], error: GRPCHealth.ResponseError) {
        #expect(GRPCHealth.servingStatus(in: bytes) == .failure(error))
    }

    @Test func trailersAreTakenFromHeaderLines() {
        var trailers = GRPCHealth.Trailers()
        for line in ["HTTP/2 200\r\n", "content-type: application/grpc\r\n", "Grpc-Status: 5\r\n",
                     "grpc-message: unknown%20service%3A cart\r\n", "\r\n"] {
            trailers.take(line: Array(line.utf8))
        }
        #expect(trailers == GRPCHealth.Trailers(status: 5, message: "unknown service: cart"))
    }

    @Test func verdicts() {
        let serving: [UInt8] = [0, 0, 0, 0, 2, 0x08, 0x01]
        let notServing: [UInt8] = [0, 0, 0, 0, 2, 0x08, 0x02]
        let ok = GRPCHealth.Trailers(status: 0)
        #expect(GRPCHealth.verdict(httpStatus: 200, trailers: ok, body: serving, service: "") == .ok)
        #expect(GRPCHealth.verdict(httpStatus: 200, trailers: ok, body: notServing, service: "")
                == .failed("grpc health: NOT_SERVING"))
        #expect(GRPCHealth.verdict(httpStatus: 200, trailers: ok, body: [0, 0, 0, 0, 2, 0x08, 0x03], service: "cart")
                == .failed(#"grpc health of "cart": SERVICE_UNKNOWN"#))
        #expect(GRPCHealth.verdict(httpStatus: 200, trailers: .init(status: 12, message: "Method not found!"),
                                   body: [], service: "") == .failed("grpc-status 12 UNIMPLEMENTED: Method not found!"))
        #expect(GRPCHealth.verdict(httpStatus: 200, trailers: .init(status: 5), body: [], service: "x")
                == .failed("grpc-status 5 NOT_FOUND"))
        #expect(GRPCHealth.verdict(httpStatus: 200, trailers: .init(status: 99), body: [], service: "")
                == .failed("grpc-status 99"))
        #expect(GRPCHealth.verdict(httpStatus: 404, trailers: .init(), body: [], service: "")
                == .failed("status 404, expected 200 from a gRPC server"))
        #expect(GRPCHealth.verdict(httpStatus: 200, trailers: ok, body: [], service: "")
                == .failed("grpc health: no response message"))
    }
}

@Suite("gRPC health against a grpcio server",
       .enabled(if: TestGRPCServer.available,
                "needs python grpcio and grpcio-health-checking in .build/peers-venv: scripts/install-deps.sh test installs them"))
struct GRPCProbeTests {
    @Test func servingIsUpAndNotServingIsDownNamingIt() throws {
        let server = try TestGRPCServer()
        defer { server.stop() }
        let prober = CurlMultiProber()
        let whole = grpcService(port: server.port)
        let first = probe(whole, prober: prober)
        #expect(first.outcome == .ok, "\(first.reason)")
        #expect(first.latency != nil)

        try server.set("", "NOT_SERVING")
        let down = probe(whole, prober: prober)
        #expect(down.outcome == .failed)
        #expect(down.reason == "grpc health: NOT_SERVING")

        try server.set("", "SERVING")
        #expect(probe(whole, prober: prober).outcome == .ok)
    }

    @Test func aNamedServiceSwitchesBetweenServingAndNotServing() throws {
        let server = try TestGRPCServer()
        defer { server.stop() }
        let cart = grpcService(port: server.port, service: "shop.Cart")
        try server.set("shop.Cart", "SERVING")
        let prober = CurlMultiProber()
        #expect(probeRepeatedly(cart, times: 3, prober: prober).map(\.outcome) == [.ok, .ok, .ok])
        try server.set("shop.Cart", "NOT_SERVING")
        let down = probe(cart, prober: prober)
        #expect(down.outcome == .failed)
        #expect(down.reason == #"grpc health of "shop.Cart": NOT_SERVING"#)
        try server.set("shop.Cart", "SERVICE_UNKNOWN")
        #expect(probe(cart, prober: prober).reason == #"grpc health of "shop.Cart": SERVICE_UNKNOWN"#)
        try server.set("shop.Cart", "SERVING")
        #expect(probe(cart, prober: prober).outcome == .ok)
    }

    @Test func anUnknownServiceIsDownWithItsGRPCStatus() throws {
        let server = try TestGRPCServer()
        defer { server.stop() }
        let result = probe(grpcService(port: server.port, service: "no.Such"))
        #expect(result.outcome == .failed)
        // grpcio answers NOT_FOUND (5) for a name it was never told about.
        #expect(result.reason.hasPrefix("grpc-status 5 NOT_FOUND"), "\(result.reason)")
    }

    @Test func aDeadPortIsRefused() throws {
        let port = try RefusingPort()
        let result = probe(grpcService(port: port.port))
        #expect(result.outcome == .failed)
        #expect(result.reason == "connect refused")
    }

    @Test func anHTTP1ServerIsNotTakenForGRPC() throws {
        // A plain TCP listener that never speaks HTTP/2: the probe times out rather than passing.
        let server = try TestTCPServer(banner: [])
        defer { server.stop() }
        let result = probe(grpcService(port: server.port, timeout: .milliseconds(300)))
        #expect(result.outcome == .failed)
        #expect(result.reason == "timeout after 300ms", "\(result.reason)")
    }

    @Test(.enabled(if: TestPKI.available, "needs openssl"))
    func overTLSWithALPN() throws {
        let pki = try TestPKI()
        defer { pki.remove() }
        let (certificate, key) = try pki.serverCertificate(.days(2))
        let server = try TestGRPCServer(certificate: (certificate, key))
        defer { server.stop() }
        let verified = GRPCTLS(serverName: TestPKI.serverName, caFile: pki.caFile)
        let up = probe(grpcService(port: server.port, tls: verified))
        #expect(up.outcome == .ok, "\(up.reason)")
        try server.set("", "NOT_SERVING")
        #expect(probe(grpcService(port: server.port, tls: verified)).reason == "grpc health: NOT_SERVING")
        // The system's CAs do not know the test CA.
        let unknownCA = probe(grpcService(port: server.port, tls: GRPCTLS(serverName: TestPKI.serverName)))
        #expect(unknownCA.outcome == .failed)
        #expect(unknownCA.reason.hasPrefix("TLS: certificate verify failed"), "\(unknownCA.reason)")
    }
}
