import Foundation
import Testing
import VitalsCore
@testable import VitalsProbe
import VitalsSystem
import VitalsTestKit

func sendExpectService(port: UInt16, send: String? = nil, expect: ReplyExpectation, name: String = "cache",
                       timeout: Duration = .seconds(2)) -> ServiceConfig {
    ServiceConfig(name: name, check: .tcp(TCPCheck(host: "127.0.0.1", port: port, send: send.map { Array($0.utf8) },
                                                   expect: expect)),
                  timing: ProbeTiming(timeout: timeout))
}

func prefix(_ text: String) -> ReplyExpectation { .prefix(Array(text.utf8)) }

@Suite("send/expect against redis-server",
       .enabled(if: TestRedis.available, "needs redis-server: scripts/install-deps.sh test installs it"))
struct RedisSendExpectTests {
    @Test func pingGetsPong() throws {
        let redis = try TestRedis()
        defer { redis.stop() }
        let result = probe(sendExpectService(port: redis.port, send: "PING\r\n", expect: prefix("+PONG")))
        #expect(result.outcome == .ok)
        #expect(result.reason == "")
        #expect(result.latency != nil)
    }

    @Test func aWrongAnswerFailsAtOnceNamingWhatCame() throws {
        let redis = try TestRedis()
        defer { redis.stop() }
        let started = MonotonicInstant.now()
        let result = probe(sendExpectService(port: redis.port, send: "PINGX\r\n", expect: prefix("+PONG"),
                                             timeout: .seconds(5)))
        #expect(result.outcome == .failed)
        #expect(result.reason.hasPrefix(#"expected "+PONG", got "-ERR unknown command 'PINGX'"#), "\(result.reason)")
        #expect(result.reason.hasSuffix(#"\r\n""#), "\(result.reason)")
        // Decided by the first byte, not by the timeout.
        #expect(MonotonicInstant.now() - started < .seconds(4))
    }

    @Test func expectRegexMatchesInTheReply() throws {
        let redis = try TestRedis()
        defer { redis.stop() }
        let result = probe(sendExpectService(port: redis.port, send: "INFO server\r\n",
                                             expect: .regex(#"redis_version:\d+\.\d+"#)))
        #expect(result.outcome == .ok)
    }

    @Test func repeatedProbesCloseTheirConnections() throws {
        let redis = try TestRedis()
        defer { redis.stop() }
        let prober = CurlMultiProber()
        let ping = sendExpectService(port: redis.port, send: "PING\r\n", expect: prefix("+PONG"))
        let results = probeRepeatedly(ping, times: 5, prober: prober)
        #expect(results.map(\.outcome) == Array(repeating: .ok, count: 5))
        // Redis counts the asking connection itself: 1 once every earlier one is closed.
        let onlyMe = sendExpectService(port: redis.port, send: "INFO clients\r\n",
                                       expect: .regex("connected_clients:1\r\n"), name: "clients")
        #expect(eventually { probeRepeatedly(onlyMe, times: 1, prober: prober).first?.outcome == .ok })
    }
}

@Suite("send/expect against a listener of the test's own")
struct SendExpectProbeTests {
    @Test func aBannerAloneCanBeExpected() throws {
        let server = try TestTCPServer(banner: Array("220 mail.vitals.test ESMTP ready\r\n".utf8))
        defer { server.stop() }
        #expect(probe(sendExpectService(port: server.port, expect: prefix("220 "))).outcome == .ok)
        #expect(probe(sendExpectService(port: server.port, expect: .regex("^220 .*ESMTP"))).outcome == .ok)
        // Nothing was sent.
        #expect(server.received == [[], []])
    }

    @Test func aWrongBannerIsShownEscaped() throws {
        let server = try TestTCPServer(banner: Array("554 go away\r\n".utf8))
        defer { server.stop() }
        let result = probe(sendExpectService(port: server.port, expect: prefix("220 ")))
        #expect(result.outcome == .failed)
        #expect(result.reason == #"expected "220 ", got "554 go away\r\n""#)
    }

    @Test func binaryBytesAreSentAndExpectedExactly() throws {
        let request: [UInt8] = [0x00, 0x01, 0xFF, 0x0A]
        let server = try TestTCPServer(requestBytes: request.count, reply: [0x00, 0xFF, 0x4F, 0x4B])
        defer { server.stop() }
        let check = TCPCheck(host: "127.0.0.1", port: server.port, send: try ByteEscapes.decode(#"\x00\x01\xff\n"#),
                             expect: .prefix(try ByteEscapes.decode(#"\0\xffOK"#)))
        let result = probe(ServiceConfig(name: "bin", check: .tcp(check), timing: ProbeTiming(timeout: .seconds(2))))
        #expect(result.outcome == .ok)
        #expect(server.received == [request])
    }

    @Test func aBinaryMismatchIsShownWithHexEscapes() throws {
        let server = try TestTCPServer(requestBytes: 1, reply: [0x01, 0x02, 0x7F])
        defer { server.stop() }
        let check = TCPCheck(host: "127.0.0.1", port: server.port, send: [0x00],
                             expect: .prefix(try ByteEscapes.decode(#"\x00\xff"#)))
        let result = probe(ServiceConfig(name: "bin", check: .tcp(check), timing: ProbeTiming(timeout: .seconds(2))))
        #expect(result.reason == #"expected "\x00\xff", got "\x01\x02\x7f""#)
    }

    @Test func silenceIsATimeoutAfterTheProbesTimeout() throws {
        let server = try TestTCPServer()
        defer { server.stop() }
        let result = probe(sendExpectService(port: server.port, send: "PING\r\n", expect: prefix("+PONG"),
                                             timeout: .milliseconds(300)))
        #expect(result.outcome == .failed)
        #expect(result.reason == #"timeout after 300ms: expected "+PONG", got nothing"#)
    }

    @Test func aPartialReplyAtTheTimeoutIsShown() throws {
        let server = try TestTCPServer(reply: Array("+PO".utf8))
        defer { server.stop() }
        let result = probe(sendExpectService(port: server.port, expect: prefix("+PONG"), timeout: .milliseconds(300)))
        #expect(result.reason == #"timeout after 300ms: expected "+PONG", got "+PO""#)
    }

    @Test func aCloseBeforeTheReplyIsNamed() throws {
        let server = try TestTCPServer(requestBytes: 6, then: .close)
        defer { server.stop() }
        let result = probe(sendExpectService(port: server.port, send: "PING\r\n", expect: prefix("+PONG")))
        #expect(result.outcome == .failed)
        #expect(result.reason == #"expected "+PONG", got nothing before the connection closed"#)
    }

    @Test func aRegexThatNeverMatchesStopsAtTheReplyLimit() throws {
        let server = try TestTCPServer(banner: Array(String(repeating: "x", count: 64).utf8))
        defer { server.stop() }
        let prober = CurlMultiProber(configuration: .init(maxReplyBytes: 16))
        let result = probe(sendExpectService(port: server.port, expect: .regex("^220")), prober: prober)
        #expect(result.reason == #"expected /^220/ within the first 16 bytes, got "xxxxxxxxxxxxxxxx""#)
    }

    @Test func refusedIsAConnectFailure() throws {
        let refusing = try RefusingPort()
        let result = probe(sendExpectService(port: refusing.port, send: "PING\r\n", expect: prefix("+PONG")))
        #expect(result.reason == "connect refused")
    }

    @Test func aCancelledExchangeClosesItsConnection() throws {
        let server = try TestTCPServer()
        defer { server.stop() }
        let prober = CurlMultiProber()
        prober.start(sendExpectService(port: server.port, send: "PING\r\n", expect: prefix("+PONG")), slot: 0)
        var finished: [ProbeCompletion] = []
        // Until the server has the request, the exchange is past its connect.
        #expect(eventually {
            prober.poll(timeout: .milliseconds(20), into: &finished)
            return server.received.count == 1
        })
        prober.cancel(slot: 0, forget: true)
        #expect(eventually { server.closedByPeer == 1 })
        #expect(finished.isEmpty)
    }

    @Test func exchangesRunSideBySideOnOneLoop() throws {
        // One silent peer must not hold up another that answers.
        let silent = try TestTCPServer()
        let answering = try TestTCPServer(requestBytes: 6, reply: Array("+PONG\r\n".utf8))
        defer {
            silent.stop()
            answering.stop()
        }
        let results = ProbeScheduler.probeOnceBlocking(services: [
            sendExpectService(port: silent.port, send: "PING\r\n", expect: prefix("+PONG"), name: "silent",
                              timeout: .milliseconds(800)),
            sendExpectService(port: answering.port, send: "PING\r\n", expect: prefix("+PONG"), name: "answering",
                              timeout: .milliseconds(800)),
        ], prober: CurlMultiProber())
        #expect(results["answering"]?.outcome == .ok)
        #expect(try #require(results["answering"]?.latency) < .milliseconds(800))
        #expect(results["silent"]?.reason == #"timeout after 800ms: expected "+PONG", got nothing"#)
    }
}

@Suite("Reply judging")
struct ReplyJudgeTests {
    @Test(arguments: [
        ("+PONG\r\n", ReplyJudge.Judgement.matched),
        ("+PONG", .matched),
        ("+PO", .undecided),
        ("", .undecided),
        ("-ERR", .mismatched),
        ("+POX", .mismatched),
    ])
    func prefixIsDecidedAsSoonAsItCanBe(_ received: String, _ judgement: ReplyJudge.Judgement) {
        #expect(ReplyJudge(prefix("+PONG")).judge(Array(received.utf8)) == judgement)
    }

    @Test func regexMatchesAnywhereAndNeverDecidesAMismatchEarly() {
        let judge = ReplyJudge(.regex("ESMTP"))
        #expect(judge.judge(Array("220 mx ESMTP\r\n".utf8)) == .matched)
        #expect(judge.judge(Array("220 mx SMTP\r\n".utf8)) == .undecided)
        #expect(judge.judge([UInt8]()) == .undecided)
    }

    @Test func regexSeesEachByteAsOneCharacter() {
        #expect(ReplyJudge(.regex(#"^\x00\xff"#)).judge([0x00, 0xFF, 0x01]) == .matched)
        #expect(ReplyJudge(.regex(#"^\x00\xff"#)).judge([0x00, 0xC3, 0xBF]) == .undecided)
    }

    @Test(arguments: [
        (ReplyJudge.Ending.mismatch, "-ERR", #"expected "+PONG", got "-ERR""#),
        (.closed, "", #"expected "+PONG", got nothing before the connection closed"#),
        (.closed, "+P", #"expected "+PONG", got "+P" before the connection closed"#),
        (.timeout(.milliseconds(500)), "", #"timeout after 500ms: expected "+PONG", got nothing"#),
        (.error("receive failed: Connection reset by peer"), "",
         #"receive failed: Connection reset by peer; expected "+PONG", got nothing"#),
    ])
    func reasonsNameWhatCame(_ ending: ReplyJudge.Ending, _ received: String, _ reason: String) {
        #expect(ReplyJudge(prefix("+PONG")).reason(received: Array(received.utf8), ending: ending) == reason)
    }

    @Test func longRepliesAreCutInTheReason() {
        let reply = Array(String(repeating: "a", count: 150).utf8)
        let reason = ReplyJudge(prefix("+PONG")).reason(received: reply, ending: .mismatch)
        #expect(reason == #"expected "+PONG", got ""# + String(repeating: "a", count: 100) + #""… (150 bytes)"#)
    }

    @Test func regexIsNamedBetweenSlashes() {
        let judge = ReplyJudge(.regex("^220 "))
        #expect(judge.reason(received: Array("554\r\n".utf8), ending: .closed)
            == #"expected /^220 /, got "554\r\n" before the connection closed"#)
    }
}
