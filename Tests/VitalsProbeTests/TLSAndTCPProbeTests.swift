import Foundation
import Testing
import VitalsCore
@testable import VitalsProbe
import VitalsTestKit

@Suite("HTTPS probes against openssl s_server")
struct TLSProbeTests {
    @Test func selfSignedFailsVerification() throws {
        let server = try TestTLSServer(days: 1)
        defer { server.stop() }
        let result = probe(httpService(server.url, timeout: .seconds(2)))
        #expect(result.outcome == .failed)
        #expect(result.reason == "TLS: certificate verify failed: self-signed certificate")
    }

    @Test func verifyOffAccepts() throws {
        let server = try TestTLSServer(days: 30)
        defer { server.stop() }
        let result = probe(httpService(server.url, timeout: .seconds(2)) {
            $0.tlsVerify = false
            $0.certMinDays = 14
        })
        #expect(result.outcome == .ok)
        #expect(result.reason == "")
    }

    @Test func certificateExpiringSoonDegrades() throws {
        let server = try TestTLSServer(days: 1)
        defer { server.stop() }
        let result = probe(httpService(server.url, timeout: .seconds(2)) {
            $0.tlsVerify = false
            $0.certMinDays = 14
        })
        #expect(result.outcome == .degraded)
        #expect(result.reason == "certificate expires in less than a day (minimum 14)")
    }

    @Test func repeatedProbesSeeTheSameExpiry() throws {
        let server = try TestTLSServer(days: 3)
        defer { server.stop() }
        let prober = CurlMultiProber()
        let service = httpService(server.url, timeout: .seconds(2)) {
            $0.tlsVerify = false
            $0.certMinDays = 14
        }
        let results = probeRepeatedly(service, times: 2, prober: prober)
        #expect(results.map(\.reason) == Array(repeating: "certificate expires in 2 days (minimum 14)", count: 2))
    }
}

@Suite("TCP probes")
struct TCPProbeTests {
    @Test func connects() throws {
        let (fd, port) = try TestSockets.listen(backlog: 16)
        defer { close(fd) }
        let result = probe(tcpService(port: port))
        #expect(result.outcome == .ok)
        #expect(result.reason == "")
        #expect(result.latency != nil)
    }

    @Test func refused() throws {
        let port = try LoopbackPort.unused()
        let result = probe(tcpService(port: port))
        #expect(result.outcome == .failed)
        #expect(result.reason == "connect refused")
    }

    @Test func timesOutWhenTheBacklogIsFull() throws {
        // Backlog 0 admits one pending connection; the next SYN is dropped.
        let (fd, port) = try TestSockets.listen(backlog: 0)
        let filler = TestSockets.connect(port: port)
        defer {
            close(filler)
            close(fd)
        }
        let result = probe(tcpService(port: port, timeout: .milliseconds(300)))
        #expect(result.outcome == .failed)
        #expect(result.reason == "timeout after 300ms")
    }

    @Test func eachProbeIsAFreshConnectionThatIsClosed() throws {
        let server = try TestHTTPServer()
        defer { server.stop() }
        let prober = CurlMultiProber()
        let results = probeRepeatedly(tcpService(port: server.port), times: 3, prober: prober)
        #expect(results.map(\.outcome) == [.ok, .ok, .ok])
        #expect(eventually { server.acceptedConnections == 3 })
    }
}
