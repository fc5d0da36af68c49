import Foundation
import Testing
import VitalsCore
@testable import VitalsProbe

private func a(_ address: String) -> DNSRecordValue { DNSRecordValue(type: .a, fields: [address]) }

/// The verdicts of `DNSJudge`: no I/O.
@Suite struct DNSJudgeTests {
    private func judge(_ type: DNSRecordType = .a, expect: [String] = [], rcode: DNSResponseCode = .noError,
                       name: String = "www.vitals.test") -> DNSJudge {
        DNSJudge(DNSCheck(name: name, type: type, server: DNSServer(host: "127.0.0.1", port: 5353),
                          expect: expect.map { DNSRecordValue.parse($0, type: type)! }, rcode: rcode))
    }

    @Test func everyExpectedValueMustBeThereInAnyOrder() {
        let j = judge(expect: ["10.0.0.7", "10.0.0.8"])
        #expect(j.evaluate(DNSAnswer(rcode: .noError, records: [a("10.0.0.8"), a("10.0.0.7")])) == .ok)
        // Others may be there too.
        #expect(j.evaluate(DNSAnswer(rcode: .noError, records: [a("10.0.0.9"), a("10.0.0.8"), a("10.0.0.7")])) == .ok)
        #expect(j.evaluate(DNSAnswer(rcode: .noError, records: [a("10.0.0.7")]))
            == .failed("A 10.0.0.7, expected 10.0.0.7, 10.0.0.8 (missing 10.0.0.8)"))
    }

    @Test func theReasonNamesWhatWasAnswered() {
        #expect(judge(expect: ["10.0.0.8"]).evaluate(DNSAnswer(rcode: .noError, records: [a("10.0.0.7")]))
            == .failed("A 10.0.0.7, expected 10.0.0.8"))
        #expect(judge(expect: ["10.0.0.8"]).evaluate(DNSAnswer(rcode: .noError, records: [a("10.0.0.7"), a("10.0.0.9")]))
            == .failed("A 10.0.0.7, 10.0.0.9, expected 10.0.0.8"))
    }

    @Test func manyAnswersAreCut() {
        let records = (1...12).map { a("10.0.0.\($0)") }
        #expect(judge(expect: ["10.0.1.1"]).evaluate(DNSAnswer(rcode: .noError, records: records))
            == .failed("A 10.0.0.1, 10.0.0.2, 10.0.0.3, 10.0.0.4, 10.0.0.5, … (12 records), expected 10.0.1.1"))
    }

    @Test func theResponseCodeComesFirst() {
        #expect(judge(expect: ["10.0.0.8"]).evaluate(DNSAnswer(rcode: .nxDomain))
            == .failed("rcode NXDOMAIN, expected NOERROR"))
        #expect(judge().evaluate(DNSAnswer(rcode: .refused)) == .failed("rcode REFUSED, expected NOERROR"))
        #expect(judge().evaluate(DNSAnswer(rcode: DNSResponseCode(code: 12))) == .failed("rcode RCODE12, expected NOERROR"))
    }

    @Test func anExpectedFailureCodeIsASuccess() {
        let gone = judge(rcode: .nxDomain, name: "gone.vitals.test")
        #expect(gone.evaluate(DNSAnswer(rcode: .nxDomain)) == .ok)
        #expect(gone.evaluate(DNSAnswer(rcode: .noError, records: [a("10.0.0.7")]))
            == .failed("rcode NOERROR, expected NXDOMAIN"))
    }

    @Test func noErrorWithoutRecordsIsAFailure() {
        #expect(judge().evaluate(DNSAnswer(rcode: .noError)) == .failed("no A records for www.vitals.test"))
        #expect(judge(.mx, expect: ["mail.vitals.test"]).evaluate(DNSAnswer(rcode: .noError))
            == .failed("no MX records, expected mail.vitals.test"))
        #expect(judge().evaluate(DNSAnswer(rcode: .noError, records: [a("10.0.0.7")])) == .ok)
    }

    @Test func txtIsComparedExactlyAndShownQuoted() {
        let j = judge(.txt, expect: ["v=spf1 mx -all"])
        let answered = DNSRecordValue(type: .txt, fields: ["v=spf1 MX -all"])
        #expect(j.evaluate(DNSAnswer(rcode: .noError, records: [answered]))
            == .failed(#"TXT "v=spf1 MX -all", expected "v=spf1 mx -all""#))
    }

    @Test func mxBySomeOrAllFields() {
        let answer = DNSAnswer(rcode: .noError, records: [DNSRecordValue(type: .mx, fields: ["10", "mail.vitals.test"])])
        #expect(judge(.mx, expect: ["mail.vitals.test"]).evaluate(answer) == .ok)
        #expect(judge(.mx, expect: ["10 mail.vitals.test"]).evaluate(answer) == .ok)
        #expect(judge(.mx, expect: ["20 mail.vitals.test"]).evaluate(answer)
            == .failed("MX 10 mail.vitals.test, expected 20 mail.vitals.test"))
    }

    @Test func timeoutsNameTheServer() {
        #expect(judge().timeoutReason(.milliseconds(300)) == "timeout after 300ms: no answer from 127.0.0.1:5353")
        let system = DNSJudge(DNSCheck(name: "www.vitals.test"))
        #expect(system.timeoutReason(.seconds(1)) == "timeout after 1s: no answer from the system's DNS servers")
    }
}

/// Builds DNS messages by hand (RFC 1035 4.1), without name compression,
/// for `DNSAnswerReader`.
struct DNSMessage {
    var rcode = 0
    var truncated = false
    var question = "www.vitals.test"
    var questionType = 1
    var answers: [(name: String, type: Int, data: [UInt8])] = []

    static func name(_ text: String) -> [UInt8] {
        text.split(separator: ".").flatMap { [UInt8($0.utf8.count)] + Array($0.utf8) } + [0]
    }

    static func u16(_ value: Int) -> [UInt8] { [UInt8(value >> 8 & 0xff), UInt8(value & 0xff)] }
    static func u32(_ value: Int) -> [UInt8] { u16(value >> 16) + u16(value & 0xffff) }

    var bytes: [UInt8] {
        let flags = 0x8180 | (truncated ? 0x0200 : 0) | rcode
        var message = Self.u16(0x1234) + Self.u16(flags) + Self.u16(1) + Self.u16(answers.count) + Self.u16(0) + Self.u16(0)
        message += Self.name(question) + Self.u16(questionType) + Self.u16(1)
        for answer in answers {
            message += Self.name(answer.name) + Self.u16(answer.type) + Self.u16(1) + Self.u32(60)
                + Self.u16(answer.data.count) + answer.data
        }
        return message
    }
}

/// `DNSAnswerReader` on messages made by hand: c-ares' parsers, no socket.
@Suite struct DNSAnswerReaderTests {
    private func read(_ message: DNSMessage, _ type: DNSRecordType) -> Result<DNSAnswer, DNSAnswerReader.Failure> {
        message.bytes.withUnsafeBufferPointer { DNSAnswerReader.read($0, type: type) }
    }

    private func records(_ message: DNSMessage, _ type: DNSRecordType) throws -> [[String]] {
        try read(message, type).get().records.map(\.fields)
    }

    @Test func addresses() throws {
        var message = DNSMessage()
        message.answers = [("www.vitals.test", 1, [10, 0, 0, 7]), ("www.vitals.test", 1, [10, 0, 0, 8])]
        #expect(try records(message, .a) == [["10.0.0.7"], ["10.0.0.8"]])

        var six = DNSMessage(questionType: 28)
        six.answers = [("www.vitals.test", 28, [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [7])]
        #expect(try records(six, .aaaa) == [["2001:db8::7"]])
    }

    @Test func addressesBehindACNAME() throws {
        var message = DNSMessage()
        message.answers = [("www.vitals.test", 5, DNSMessage.name("web.vitals.test")),
                           ("web.vitals.test", 1, [10, 0, 0, 9])]
        #expect(try records(message, .a) == [["10.0.0.9"]])
    }

    @Test func cname() throws {
        var message = DNSMessage(questionType: 5)
        message.answers = [("www.vitals.test", 5, DNSMessage.name("Web.Vitals.test"))]
        #expect(try records(message, .cname) == [["web.vitals.test"]])
        // An empty NOERROR answer has no CNAME.
        #expect(try records(DNSMessage(questionType: 5), .cname) == [])
    }

    @Test func mxSrvNsSoa() throws {
        var mx = DNSMessage(question: "vitals.test", questionType: 15)
        mx.answers = [("vitals.test", 15, DNSMessage.u16(10) + DNSMessage.name("mail.vitals.test"))]
        #expect(try records(mx, .mx) == [["10", "mail.vitals.test"]])

        var srv = DNSMessage(question: "_sip._udp.vitals.test", questionType: 33)
        srv.answers = [("_sip._udp.vitals.test", 33,
                        DNSMessage.u16(10) + DNSMessage.u16(5) + DNSMessage.u16(5060) + DNSMessage.name("sip.vitals.test"))]
        #expect(try records(srv, .srv) == [["10", "5", "5060", "sip.vitals.test"]])

        var ns = DNSMessage(question: "vitals.test", questionType: 2)
        ns.answers = [("vitals.test", 2, DNSMessage.name("ns1.vitals.test")), ("vitals.test", 2, DNSMessage.name("ns2.vitals.test"))]
        #expect(try records(ns, .ns) == [["ns1.vitals.test"], ["ns2.vitals.test"]])

        var soa = DNSMessage(question: "vitals.test", questionType: 6)
        soa.answers = [("vitals.test", 6, DNSMessage.name("ns1.vitals.test") + DNSMessage.name("hostmaster.vitals.test")
                            + DNSMessage.u32(2024010101) + DNSMessage.u32(3600) + DNSMessage.u32(600)
                            + DNSMessage.u32(86400) + DNSMessage.u32(60))]
        #expect(try records(soa, .soa) == [["ns1.vitals.test", "hostmaster.vitals.test", "2024010101", "3600", "600", "86400", "60"]])
    }

    @Test func txtJoinsEachRecordsStrings() throws {
        var message = DNSMessage(questionType: 16)
        message.answers = [("www.vitals.test", 16, [5] + Array("v=spf".utf8) + [6] + Array("1 -all".utf8)),
                           ("www.vitals.test", 16, [3] + Array("two".utf8))]
        #expect(try records(message, .txt) == [["v=spf1 -all"], ["two"]])
    }

    @Test func aFailureCodeCarriesNoRecords() throws {
        var message = DNSMessage(rcode: 3)
        message.answers = [("www.vitals.test", 1, [10, 0, 0, 7])]
        #expect(try read(message, .a).get() == DNSAnswer(rcode: .nxDomain))
    }

    @Test func recordsOfAnotherTypeAreNotAnswers() throws {
        var message = DNSMessage(questionType: 15)
        message.answers = [("www.vitals.test", 1, [10, 0, 0, 7])]
        #expect(try records(message, .mx) == [])
    }

    @Test func malformedMessagesAreReported() {
        #expect(DNSAnswerReader.read(UnsafeBufferPointer(start: nil, count: 0), type: .a)
            == .failure(.malformed("shorter than a DNS header")))
        var message = DNSMessage()
        message.answers = [("www.vitals.test", 1, [10, 0, 0, 7])]
        let cut = Array(message.bytes.dropLast(3))
        let result = cut.withUnsafeBufferPointer { DNSAnswerReader.read($0, type: .a) }
        guard case .failure(.malformed(let detail)) = result else {
            Issue.record("expected a malformed answer, got \(result)")
            return
        }
        #expect(!detail.isEmpty)
    }
}
