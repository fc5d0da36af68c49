import Testing
@testable import VitalsCluster

/// Lines as Debian's etcd 3.4 gateway sent them (headers trimmed).
private enum Lines {
    static let created = #"{"result":{"header":{"cluster_id":"1","revision":"5","raft_term":"2"},"created":true}}"#
    static let put = #"{"result":{"header":{"revision":"6"},"events":[{"kv":{"key":"YQ==","create_revision":"4","mod_revision":"6","version":"3","value":"Yg==","lease":"42"}}]}}"#
    static let delete = #"{"result":{"header":{"revision":"8"},"events":[{"type":"DELETE","kv":{"key":"YQ==","mod_revision":"8"}}]}}"#
    static let compacted = #"{"result":{"header":{"raft_term":"2"},"canceled":true,"compact_revision":"7"}}"#
    static let badToken = #"{"result":{"header":{"revision":"8"},"watch_id":"-1","created":true,"canceled":true,"cancel_reason":"rpc error: code = Unauthenticated desc = etcdserver: invalid auth token"}}"#
    static let streamError = #"{"error":{"grpc_code":14,"http_code":503,"message":"etcdserver: no leader","http_status":"Service Unavailable"}}"#
    static let unaryError = #"{"error":"etcdserver: invalid auth token","message":"etcdserver: invalid auth token","code":16}"#
    static let progress = #"{"result":{"header":{"revision":"9"}}}"#
}

private let putEvent = WatchEvent(kind: .put, kv: KeyValue(key: "a", value: Array("b".utf8), createRevision: 4,
                                                           modRevision: 6, version: 3, lease: 42))
private let deleteEvent = WatchEvent(kind: .delete, kv: KeyValue(key: "a", value: [], modRevision: 8))

@Suite("watch stream parser")
struct WatchStreamParserTests {
    @Test("each line is one message",
          arguments: [
              (Lines.created, WatchStreamParser.Message.created(revision: 5)),
              (Lines.put, .events(WatchBatch(revision: 6, events: [putEvent]))),
              (Lines.delete, .events(WatchBatch(revision: 8, events: [deleteEvent]))),
              (Lines.compacted, .canceled(reason: "", compactRevision: 7)),
              (Lines.badToken, .canceled(reason: "rpc error: code = Unauthenticated desc = etcdserver: invalid auth token",
                                         compactRevision: 0)),
              (Lines.streamError, .failed("no leader (code 14)")),
              (Lines.unaryError, .failed("invalid auth token (code 16)")),
              (Lines.progress, .progress(revision: 9)),
              (#"{"result":{"events":[{"type":"PATCH","kv":{"key":"YQ=="}}]}}"#, .failed("watch event of unknown type PATCH")),
              (#"{"result":{"events":[{"type":"PUT"}]}}"#, .failed("watch event without a key")),
              (#"{"header":{}}"#, .failed(#"watch line without a result: {"header":{}}"#)),
              ("<html>", .failed("unreadable watch line: <html>")),
          ] as [(String, WatchStreamParser.Message)])
    func line(text: String, message: WatchStreamParser.Message) {
        var parser = WatchStreamParser()
        #expect(parser.feed(Array((text + "\n").utf8)) == [message])
        #expect(parser.finish() == [])
    }

    @Test("chunks split lines anywhere; every split gives the same messages")
    func chunking() {
        let stream = Array((Lines.created + "\n" + Lines.put + "\n\n" + Lines.delete + "\n").utf8)
        let expected: [WatchStreamParser.Message] = [
            .created(revision: 5),
            .events(WatchBatch(revision: 6, events: [putEvent])),
            .events(WatchBatch(revision: 8, events: [deleteEvent])),
        ]
        for size in [1, 2, 7, 64, stream.count] {
            var parser = WatchStreamParser()
            var messages: [WatchStreamParser.Message] = []
            var offset = 0
            while offset < stream.count {
                messages += parser.feed(stream[offset..<min(offset + size, stream.count)])
                offset += size
            }
            messages += parser.finish()
            #expect(messages == expected, "chunks of \(size) bytes")
        }
    }

    @Test("a line without its newline waits, and finish reads it (a unary error body)")
    func finish() {
        var parser = WatchStreamParser()
        #expect(parser.feed(Array(Lines.unaryError.utf8)) == [])
        #expect(parser.finish() == [.failed("invalid auth token (code 16)")])
        #expect(parser.finish() == [])
    }

    @Test("a line longer than the limit is reported, and the next line still reads")
    func overlong() {
        var parser = WatchStreamParser(maxLineBytes: 200)
        let messages = parser.feed(Array((String(repeating: "x", count: 500) + "\n" + Lines.created + "\n").utf8))
        #expect(messages == [.failed("watch line longer than 200 bytes"), .created(revision: 5)])
    }

    @Test("what the watch does with each message",
          arguments: [
              (WatchStreamParser.Message.created(revision: 5), EtcdWire.WatchStep.deliver(WatchBatch(revision: 5, events: []))),
              (.events(WatchBatch(revision: 6, events: [putEvent])), .deliver(WatchBatch(revision: 6, events: [putEvent]))),
              (.progress(revision: 9), .ignore),
              (.canceled(reason: "", compactRevision: 7), .end(.canceled(reason: "", compactRevision: 7))),
              (.failed("no leader (code 14)"), .end(.failed("no leader (code 14)"))),
          ] as [(WatchStreamParser.Message, EtcdWire.WatchStep)])
    func step(message: WatchStreamParser.Message, step: EtcdWire.WatchStep) {
        #expect(EtcdWire.watchStep(message) == step)
    }
}
