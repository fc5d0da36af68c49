import Foundation
import Testing
@testable import VitalsCluster

@Suite("etcd wire format")
struct EtcdWireTests {
    @Test("the range end of a prefix raises its last byte below 0xff",
          arguments: [
              ("/vitals/", Array("/vitals0".utf8)),
              ("a", Array("b".utf8)),
              ("a\u{7f}", [0x61, 0x80]),
              ("", [0]),
          ] as [(String, [UInt8])])
    func prefixEnd(prefix: String, end: [UInt8]) {
        #expect(EtcdWire.prefixEnd(prefix) == end)
    }

    @Test func prefixEndDropsTrailing0xff() {
        // "é" is C3 A9: A9 + 1.
        #expect(EtcdWire.prefixEnd("é") == [0xc3, 0xaa])
        // U+FFFF's last UTF-8 byte is BF; a real 0xff never appears in UTF-8,
        // so check the rule on the bytes a prefix could end with.
        #expect(EtcdWire.prefixEnd("\u{FFFF}") == [0xef, 0xbf, 0xc0])
    }

    @Test("requests: base64 keys and values, int64 as strings, defaults left out",
          arguments: [
              (json(EtcdWire.createIfAbsent("/l", Array("me".utf8), lease: 7)),
               #"{"compare":[{"create_revision":"0","key":"L2w=","result":"EQUAL","target":"CREATE"}],"success":[{"requestPut":{"key":"L2w=","lease":"7","value":"bWU="}}]}"#),
              (json(EtcdWire.putGuarded("/s", Array("x".utf8), lease: 0, guardKey: "/l", guardLease: 7)),
               #"{"compare":[{"key":"L2w=","lease":"7","result":"EQUAL","target":"LEASE"}],"success":[{"requestPut":{"key":"L3M=","value":"eA=="}}]}"#),
              (json(EtcdWire.watch(.prefix("/v/"), fromRevision: 12)),
               #"{"create_request":{"key":"L3Yv","range_end":"L3Yw","start_revision":"12"}}"#),
              (json(EtcdWire.watch(.key("/v"), fromRevision: nil)),
               #"{"create_request":{"key":"L3Y="}}"#),
              (json(EtcdWire.LeaseGrant(TTL: "10")), #"{"ID":"0","TTL":"10"}"#),
          ] as [(String, String)])
    func request(encoded: String, expected: String) {
        #expect(encoded == expected)
    }

    @Test("keepalive: a TTL renews, none means the lease is gone",
          arguments: [
              (#"{"result":{"header":{"revision":"5"},"ID":"99","TTL":"10"}}"#, KeepAlive.alive(ttlSeconds: 10)),
              (#"{"result":{"header":{"revision":"5"},"ID":"99"}}"#, .lost),
              (#"{"result":{"ID":"99","TTL":"0"}}"#, .lost),
              (#"{"result":{"ID":"99","TTL":3}}"#, .alive(ttlSeconds: 3)),
          ] as [(String, KeepAlive)])
    func keepAlive(body: String, answer: KeepAlive) throws {
        #expect(try EtcdWire.keepAlive(Array(body.utf8)) == answer)
    }

    @Test func keepAliveWithoutResultIsAnError() {
        #expect(throws: WireError.self) { try EtcdWire.keepAlive(Array(#"{"error":"x"}"#.utf8)) }
    }

    @Test("range answers: kvs absent is empty, fields decoded")
    func range() throws {
        let empty = try EtcdWire.rangeResult(Array(#"{"header":{"revision":"8"}}"#.utf8))
        #expect(empty == RangeResult(revision: 8, kvs: []))
        let one = try EtcdWire.rangeResult(Array(#"""
            {"header":{"revision":"9"},"kvs":[{"key":"L2w=","create_revision":"2","mod_revision":"3","version":"2","value":"bWU=","lease":"7587"}],"count":"1"}
            """#.utf8))
        #expect(one == RangeResult(revision: 9, kvs: [KeyValue(key: "/l", value: Array("me".utf8), createRevision: 2,
                                                                   modRevision: 3, version: 2, lease: 7587)]))
        // A key written with an empty value has no "value" field.
        let bare = try EtcdWire.rangeResult(Array(#"{"kvs":[{"key":"L2w="}]}"#.utf8))
        #expect(bare.kvs == [KeyValue(key: "/l", value: [])])
    }

    @Test("undecodable answers are errors that quote them",
          arguments: [#"{"kvs":[{"key":"!!"}]}"#, "not json", #"{"kvs":[{"key":"L2w=","value":"%%"}]}"#])
    func malformed(body: String) {
        #expect(throws: WireError.self) { try EtcdWire.rangeResult(Array(body.utf8)) }
    }

    @Test("transaction answers: succeeded absent is false",
          arguments: [(#"{"header":{"revision":"4"},"succeeded":true}"#, true),
                      (#"{"header":{"revision":"4"}}"#, false)] as [(String, Bool)])
    func txn(body: String, succeeded: Bool) throws {
        #expect((try EtcdWire.decode(EtcdWire.TxnAnswer.self, Array(body.utf8))).succeeded ?? false == succeeded)
    }

    @Test("error answers give etcd's code and words",
          arguments: [
              (#"{"error":"etcdserver: requested lease not found","message":"etcdserver: requested lease not found","code":5}"#,
               5, "requested lease not found"),
              (#"{"error":"etcdserver: invalid auth token","message":"etcdserver: invalid auth token","code":16}"#,
               16, "invalid auth token"),
              ("Bad Gateway", nil, "Bad Gateway"),
          ] as [(String, Int?, String)])
    func failure(body: String, code: Int?, message: String) {
        let failure = EtcdWire.failure(Array(body.utf8))
        #expect(failure.code == code)
        #expect(failure.message == message)
    }

    @Test func errorsNameTheEndpointAndWhatFailed() {
        let error = EtcdError(endpoint: "http://127.0.0.1:2379", operation: "revoke lease 7587",
                              reason: .refused(status: 404, code: 5, message: "requested lease not found"))
        #expect(error.description == "etcd http://127.0.0.1:2379: revoke lease 7587: requested lease not found (code 5)")
        #expect(error.code == 5)
        let gone = EtcdError(endpoint: "http://a, http://b", operation: "lease grant",
                             reason: .unreachable("http://a: Connection refused; http://b: timed out"))
        #expect(gone.isUnreachable)
        #expect(gone.description == "etcd http://a, http://b: lease grant: http://a: Connection refused; http://b: timed out")
    }

    @Test("auth failures are recognised by code or words",
          arguments: [(16, "x", true), (nil, "invalid auth token", true), (3, "user name is empty", true),
                      (3, "authentication failed, invalid user ID or password", false), (5, "lease not found", false)]
              as [(Int?, String, Bool)])
    func authFailure(code: Int?, message: String, isAuth: Bool) {
        #expect(EtcdClient.isAuthFailure(code: code, message: message) == isAuth)
    }
}

private func json(_ value: some Encodable) -> String { String(decoding: EtcdWire.encode(value), as: UTF8.self) }
