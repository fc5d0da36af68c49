import Foundation
import Testing
import VitalsCore
@testable import VitalsProbe
import VitalsSystem
import VitalsTestKit

func icmpService(_ host: String, count: Int = 3, maxLoss: Double? = nil, maxRTT: Duration? = nil,
                 name: String = "ping", timeout: Duration = .milliseconds(500)) -> ServiceConfig {
    ServiceConfig(name: name, check: .icmp(ICMPCheck(host: host, count: count, maxLoss: maxLoss, maxRTT: maxRTT)),
                  timing: ProbeTiming(timeout: timeout))
}

@Suite("ICMP echo packets and verdicts")
struct ICMPEchoTests {
    @Test func theChecksumIsRFC1071s() {
        // RFC 1071's example words: 0001 f203 f4f5 f6f7 sum to ddf2, complemented 220d.
        #expect(ICMPEcho.checksum([0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]) == 0x220d)
        // An odd byte is padded with a zero.
        #expect(ICMPEcho.checksum([0x01]) == ~UInt16(0x0100))
        // A packet with its checksum in place sums to zero.
        #expect(ICMPEcho.checksum(ICMPEcho.request(family: .v4, identifier: 0x1234, sequence: 7)) == 0)
    }

    @Test func requestsCarryTypeIdentifierAndSequence() {
        let v4 = ICMPEcho.request(family: .v4, identifier: 0xabcd, sequence: 0x0102)
        #expect(Array(v4.prefix(2)) == [8, 0])
        #expect(Array(v4[4..<8]) == [0xab, 0xcd, 0x01, 0x02])
        #expect(Array(v4.dropFirst(8)) == ICMPEcho.payload)
        let v6 = ICMPEcho.request(family: .v6, identifier: 1, sequence: 2)
        #expect(Array(v6.prefix(4)) == [128, 0, 0, 0]) // the kernel sums ICMPv6
    }

    @Test func repliesAreRecognised() {
        var reply = ICMPEcho.request(family: .v4, identifier: 0x4242, sequence: 9)
        reply[0] = 0
        let ipHeader: [UInt8] = [0x45] + Array(repeating: 0, count: 19)
        #expect(ICMPEcho.reply(ipHeader + reply, family: .v4, includesIPHeader: true)! == (0x4242, 9))
        #expect(ICMPEcho.reply(reply, family: .v4, includesIPHeader: false)! == (0x4242, 9))
        // Our own request looped back is not a reply.
        let request = ICMPEcho.request(family: .v4, identifier: 0x4242, sequence: 9)
        #expect(ICMPEcho.reply(ipHeader + request, family: .v4, includesIPHeader: true) == nil)
        // Someone else's echo with a foreign payload.
        #expect(ICMPEcho.reply(Array(reply.prefix(8)) + Array(repeating: 0x61, count: 16), family: .v4,
                               includesIPHeader: false) == nil)
        var v6 = ICMPEcho.request(family: .v6, identifier: 3, sequence: 4)
        v6[0] = 129
        #expect(ICMPEcho.reply(v6, family: .v6, includesIPHeader: false)! == (3, 4))
        #expect(ICMPEcho.reply(Array(v6.prefix(10)), family: .v6, includesIPHeader: false) == nil)
    }

    @Test func requestsAreSpreadOverTheFirstHalfOfTheTimeout() {
        #expect(ICMPEcho.spacing(count: 1, timeout: .seconds(1)) == .zero)
        #expect(ICMPEcho.spacing(count: 3, timeout: .milliseconds(300)) == .milliseconds(50))
        #expect(ICMPEcho.spacing(count: 3, timeout: .seconds(5)) == .milliseconds(100))
    }

    static let ms = Duration.milliseconds

    @Test(arguments: [
        // (count, max_loss, max_rtt, answered round trips, outcome, reason)
        (3, nil, nil, [ms(1), ms(3)], ProbeOutcome.ok, ""),
        (3, nil, nil, [], .failed, "3 of 3 lost"),
        (3, 0.34, nil, [ms(1), ms(1)], .ok, ""),
        (3, 0.34, nil, [ms(1)], .failed, "2 of 3 lost, more than max_loss 34%"),
        (3, 0.0, nil, [ms(1), ms(1)], .failed, "1 of 3 lost, more than max_loss 0%"),
        (4, 0.5, nil, [ms(1), ms(1)], .ok, ""), // exactly the share allowed
        (3, nil, ms(50), [ms(60), ms(84)], .failed, "rtt 72ms > max_rtt 50ms"),
        (3, nil, ms(50), [ms(40), ms(60)], .ok, ""), // the average counts
        (1, nil, ms(1), [.microseconds(1400)], .failed, "rtt 1.4ms > max_rtt 1ms"),
    ] as [(Int, Double?, Duration?, [Duration], ProbeOutcome, String)])
    func verdicts(count: Int, maxLoss: Double?, maxRTT: Duration?, roundTrips: [Duration], outcome: ProbeOutcome,
                  reason: String) {
        let check = ICMPCheck(host: "x", count: count, maxLoss: maxLoss, maxRTT: maxRTT)
        let (verdict, latency) = ICMPEcho.verdict(check, sent: count, roundTrips: roundTrips)
        #expect(verdict == ProbeVerdict(outcome, reason))
        if roundTrips.isEmpty {
            #expect(latency == nil)
        } else {
            #expect(latency == roundTrips.reduce(.zero, +) / roundTrips.count)
        }
    }

    @Test func aSendErrorIsNamedInTheLoss() {
        let (verdict, _) = ICMPEcho.verdict(ICMPCheck(host: "x"), sent: 3, roundTrips: [],
                                            sendError: "send failed: Network is unreachable")
        #expect(verdict.reason == "3 of 3 lost (send failed: Network is unreachable)")
    }

    @Test func literalsAndZonesAreParsed() {
        #expect(ICMPAddress.literal("127.0.0.1")?.family == .v4)
        #expect(ICMPAddress.literal("::1")?.family == .v6)
        #expect(ICMPAddress.literal("fe80::1%lo") != nil)
        #expect(ICMPAddress.literal("fe80::1%no-such-link") == nil)
        #expect(ICMPAddress.literal("localhost") == nil)
    }
}

/// Whether this process may open an ICMP socket (a datagram one, or raw with CAP_NET_RAW).
let icmpAvailable: Bool = {
    if case .success(let socket) = ICMPSockets().open(.v4) {
        Posix.close(socket.fd)
        return true
    }
    return false
}()

@Suite("ICMP echo on the probe loop",
       .enabled(if: icmpAvailable,
                "needs net.ipv4.ping_group_range to include this group, or CAP_NET_RAW (run as root)"))
struct ICMPProbeTests {
    @Test(arguments: ["127.0.0.1", "::1"])
    func loopbackAnswers(host: String) {
        let result = probe(icmpService(host, maxLoss: 0, maxRTT: .milliseconds(100)))
        #expect(result.outcome == .ok, "\(result.reason)")
        #expect(result.latency != nil)
        #expect(result.latency! < .milliseconds(100))
    }

    @Test func aNameIsResolvedOffTheLoop() {
        let result = probe(icmpService("localhost", count: 2))
        #expect(result.outcome == .ok, "\(result.reason)")
    }

    @Test func manyPingsAtOnceKeepTheirRepliesApart() {
        // Raw sockets each see every ICMP packet: replies are matched by identifier and sequence.
        let services = (0..<20).map { icmpService($0.isMultiple(of: 2) ? "127.0.0.1" : "::1", count: 3,
                                                  maxLoss: 0, name: "ping-\($0)") }
        let results = ProbeScheduler.probeOnceBlocking(services: services, prober: CurlMultiProber())
        #expect(results.count == 20)
        for (name, result) in results.sorted(by: { $0.key < $1.key }) {
            #expect(result.outcome == .ok, "\(name): \(result.reason)")
        }
    }

    @Test func repeatedProbesOfOneSlotCloseTheirSockets() {
        let prober = CurlMultiProber()
        let before = openDescriptors()
        let results = probeRepeatedly(icmpService("127.0.0.1", count: 1), times: 5, prober: prober)
        #expect(results.map(\.outcome) == Array(repeating: .ok, count: 5))
        #expect(openDescriptors() <= before)
    }

    private func openDescriptors() -> Int {
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count) ?? 0
    }
}

@Suite("ICMP to an address that never answers",
       .enabled(if: icmpAvailable && SilentHost.available,
                "needs an ICMP socket and a network namespace of the test's own (root and iproute2)"))
struct ICMPSilentHostTests {
    @Test func allLostIsDownAtTheTimeout() throws {
        let host = try SilentHost()
        defer { host.remove() }
        for address in [host.v4, host.v6] {
            let started = MonotonicInstant.now()
            let result = probe(icmpService(address, timeout: .milliseconds(300)))
            let took = MonotonicInstant.now() - started
            #expect(result.outcome == .failed)
            #expect(result.reason == "3 of 3 lost", "\(address): \(result.reason)")
            #expect(result.latency == nil)
            #expect(took >= .milliseconds(300))
            #expect(took < .seconds(2))
        }
    }

    @Test func theSameLinkAnswersWhenTheFarEndDoes() throws {
        let host = try SilentHost(silent: false)
        defer { host.remove() }
        for address in [host.v4, host.v6] {
            let result = probe(icmpService(address, maxLoss: 0, timeout: .seconds(1)))
            #expect(result.outcome == .ok, "\(address): \(result.reason)")
        }
    }
}
