#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
@testable import VitalsCluster
import VitalsCurl
import VitalsTestKit

/// EtcdClient against real etcd members started by the test on loopback.
@Suite("etcd client against real members", .serialized, .timeLimit(.minutes(1)),
       .enabled(if: haveEtcd, "needs \(etcdBinary): scripts/install-deps.sh test installs etcd-server"))
struct EtcdClientTests {
    private func client(_ members: EtcdMembers, timeout: Duration = .seconds(2)) -> EtcdClient {
        EtcdClient(EtcdConfiguration(endpoints: members.endpoints, requestTimeout: timeout, tls: members.tls))
    }

    @Test("a lease is granted, kept alive and revoked; revoking takes its keys and a second revoke names the lease")
    func leaseLifecycle() async throws {
        let members = try await EtcdMembers()
        defer { members.stop() }
        print("etcd: one member ready in \(members.startup)")
        let etcd = client(members)

        let lease = try await etcd.grantLease(ttlSeconds: 10)
        #expect(lease.ttlSeconds == 10)
        #expect(try await etcd.keepAlive(lease: lease.id) == .alive(ttlSeconds: 10))
        #expect(try await etcd.create("/t/leader", value: Array("me".utf8), lease: lease.id))
        #expect(try await etcd.get(.key("/t/leader")).kvs.map(\.lease) == [lease.id])

        try await etcd.revoke(lease: lease.id)
        #expect(try await etcd.get(.key("/t/leader")).kvs.isEmpty)
        #expect(try await etcd.keepAlive(lease: lease.id) == .lost)
        let error = await #expect(throws: EtcdError.self) { try await etcd.revoke(lease: lease.id) }
        #expect(error?.code == 5)
        #expect(error?.description == "etcd \(members.endpoints[0]): revoke lease \(lease.id): requested lease not found (code 5)")
    }

    @Test("an expired lease answers keepalive without a TTL: lost, not renewed")
    func expiredLeaseIsLost() async throws {
        let members = try await EtcdMembers()
        defer { members.stop() }
        let etcd = client(members)
        let lease = try await etcd.grantLease(ttlSeconds: 2)
        #expect(try await etcd.create("/t/held", value: [], lease: lease.id))
        let granted = ContinuousClock.now
        // Not renewed: the key goes with the lease, 2 s plus etcd's ~500 ms expiry sweep.
        try await within(.seconds(4), "lease expiry") {
            while try await !etcd.get(.key("/t/held")).kvs.isEmpty { try await Task.sleep(for: .milliseconds(100)) }
        }
        print("etcd: TTL 2 lease expired \(ContinuousClock.now - granted) after its grant")
        #expect(try await etcd.keepAlive(lease: lease.id) == .lost)
    }

    @Test("two clients create the same key at once: exactly one wins, and the key is the winner's")
    func createIfAbsent() async throws {
        let members = try await EtcdMembers()
        defer { members.stop() }
        let first = client(members), second = client(members)
        for round in 0..<5 {
            let key = "/t/leader-\(round)"
            let (a, b) = (try await first.grantLease(ttlSeconds: 10), try await second.grantLease(ttlSeconds: 10))
            async let wonA = first.create(key, value: Array("a".utf8), lease: a.id)
            async let wonB = second.create(key, value: Array("b".utf8), lease: b.id)
            let (resultA, resultB) = try await (wonA, wonB)
            #expect(resultA != resultB, "round \(round): exactly one create succeeds")
            let stored = try await first.get(.key(key)).kvs
            #expect(stored.map(\.text) == [resultA ? "a" : "b"])
            #expect(stored.map(\.lease) == [resultA ? a.id : b.id])
        }
    }

    @Test("a write guarded by the leader key's lease succeeds while the lease lives, and fails once it is gone")
    func guardedPut() async throws {
        let members = try await EtcdMembers()
        defer { members.stop() }
        let etcd = client(members)
        let mine = try await etcd.grantLease(ttlSeconds: 10)
        let other = try await etcd.grantLease(ttlSeconds: 10)
        #expect(try await etcd.create("/t/leader", value: Array("me".utf8), lease: mine.id))

        let held = LeaseGuard(key: "/t/leader", lease: mine.id)
        #expect(try await etcd.put("/t/state", value: Array("1".utf8), lease: 0, if: held))
        #expect(try await !etcd.put("/t/state", value: Array("x".utf8), lease: 0, if: LeaseGuard(key: "/t/leader", lease: other.id)))
        try await etcd.revoke(lease: mine.id)
        #expect(try await !etcd.put("/t/state", value: Array("2".utf8), lease: 0, if: held))
        #expect(try await etcd.get(.key("/t/state")).kvs.map(\.text) == ["1"])
    }

    @Test("a prefix range holds the keys under it and nothing beside it; delete by prefix removes them")
    func prefixRange() async throws {
        let members = try await EtcdMembers()
        defer { members.stop() }
        let etcd = client(members)
        for key in ["/p/b", "/p/a", "/pz", "/p", "/q/a"] {
            try await etcd.put(key, value: Array(key.utf8), lease: 0)
        }
        let range = try await etcd.get(.prefix("/p/"))
        #expect(range.kvs.map(\.key) == ["/p/a", "/p/b"])
        #expect(range.kvs.map(\.text) == ["/p/a", "/p/b"])
        #expect(range.revision >= 5)
        #expect(try await etcd.get(.key("/nothing")).kvs.isEmpty)
        #expect(try await etcd.delete(.prefix("/p/")) == 2)
        #expect(try await etcd.get(.prefix("/p")).kvs.map(\.key) == ["/p", "/pz"])
        #expect(try await etcd.delete(.key("/q/a")) == 1)
    }

    @Test("a watch sees a PUT and a DELETE within a bounded time, and stops when let go")
    func watch() async throws {
        let members = try await EtcdMembers()
        defer { members.stop() }
        let etcd = client(members)
        let before = threads(named: "etcd-watch")
        let events = try await within(.seconds(5), "watch events") {
            var seen: [WatchEvent] = []
            var started: ContinuousClock.Instant?
            for try await batch in etcd.watch(.prefix("/w/"), fromRevision: nil) {
                if batch.events.isEmpty {
                    // In place: now make the changes it must see.
                    started = .now
                    try await etcd.put("/w/leader", value: Array("a".utf8), lease: 0)
                    try await etcd.put("/other", value: [], lease: 0)
                    try await etcd.delete(.key("/w/leader"))
                }
                seen += batch.events
                if seen.count >= 2 { break }
            }
            print("etcd: watch saw PUT and DELETE \(ContinuousClock.now - started!) after the put was sent")
            return seen
        }
        #expect(events.map(\.kind) == [.put, .delete])
        #expect(events.map(\.kv.key) == ["/w/leader", "/w/leader"])
        #expect(events.first?.kv.text == "a")
        // Letting go of the stream cancels the transfer; curl notices within about a second.
        try await within(.seconds(3), "watch thread ends") {
            while threads(named: "etcd-watch") > before { try await Task.sleep(for: .milliseconds(50)) }
        }
    }

    @Test("a watch from a compacted revision ends with the compaction, in etcd's 200 stream")
    func watchCompacted() async throws {
        let members = try await EtcdMembers()
        defer { members.stop() }
        let etcd = client(members)
        for value in ["1", "2", "3"] { try await etcd.put("/c", value: Array(value.utf8), lease: 0) }
        let revision = try await etcd.get(.key("/c")).revision
        let compacted = members.raw(members.endpoints[0], "/v3/kv/compaction", #"{"revision":"\#(revision)"}"#)
        #expect((try? compacted.get().status) == 200)
        let error = await #expect(throws: EtcdError.self) {
            try await within(.seconds(5), "compacted watch") {
                for try await _ in etcd.watch(.key("/c"), fromRevision: 1) {}
            }
        }
        #expect(error?.reason == .watchEnded(reason: "", compactRevision: revision))
        #expect(error?.description.contains("compacted at revision \(revision)") == true)
    }

    @Test("a closed port first: the client goes on to the next endpoint and stays with it")
    func failover() async throws {
        let members = try await EtcdMembers()
        defer { members.stop() }
        let closed = try RefusingPort()
        let dead = "http://127.0.0.1:\(closed.port)"
        let etcd = EtcdClient(EtcdConfiguration(endpoints: [dead] + members.endpoints, requestTimeout: .seconds(2)))
        try await etcd.put("/f", value: Array("x".utf8), lease: 0)
        #expect(etcd.currentEndpoint == members.endpoints[0])
        #expect(try await etcd.get(.key("/f")).kvs.map(\.text) == ["x"])
        // The watch, too, passes over the closed port.
        let watching = EtcdClient(EtcdConfiguration(endpoints: [dead] + members.endpoints, requestTimeout: .seconds(2)))
        let first = try await within(.seconds(5), "watch past a closed port") { () async throws -> WatchBatch? in
            for try await batch in watching.watch(.key("/f"), fromRevision: 1) where !batch.events.isEmpty { return batch }
            return nil
        }
        #expect(first?.events.map(\.kv.text) == ["x"])

        let nowhere = EtcdClient(EtcdConfiguration(endpoints: [dead, dead + "0"], requestTimeout: .seconds(1)))
        let error = await #expect(throws: EtcdError.self) { try await nowhere.grantLease(ttlSeconds: 10) }
        #expect(error?.isUnreachable == true)
        #expect(error?.description.hasPrefix("etcd \(dead), \(dead)0: lease grant: \(dead): ") == true, "\(String(describing: error))")
    }

    @Test("an endpoint that accepts and never answers costs one request timeout, then the next answers")
    func slowEndpoint() async throws {
        let members = try await EtcdMembers()
        defer { members.stop() }
        let (fd, port) = try LoopbackPort.bound()
        defer { close(fd) }
        #expect(listen(fd, 8) == 0) // the kernel accepts; nobody reads
        let etcd = EtcdClient(EtcdConfiguration(endpoints: ["http://127.0.0.1:\(port)"] + members.endpoints,
                                                requestTimeout: .milliseconds(500)))
        let started = ContinuousClock.now
        _ = try await etcd.grantLease(ttlSeconds: 10)
        let took = ContinuousClock.now - started
        #expect(took >= .milliseconds(450) && took < .seconds(2), "took \(took)")
        #expect(etcd.currentEndpoint == members.endpoints[0])
    }

    @Test("three members: killing the raft leader the client talks to, the client goes on with another member")
    func memberDies() async throws {
        let members = try await EtcdMembers(count: 3)
        defer { members.stop() }
        print("etcd: three members ready in \(members.startup)")
        // Put the raft leader first, so the kill costs both an endpoint and an election.
        let leader = try members.endpoints.firstIndex { endpoint in
            let body = try members.raw(endpoint, "/v3/maintenance/status", "{}").get().body
            let status = try JSONSerialization.jsonObject(with: Data(body)) as? [String: Any]
            let header = status?["header"] as? [String: Any]
            return (header?["member_id"] as? String) == (status?["leader"] as? String)
        }
        let leaderIndex = try #require(leader)
        let order = [leaderIndex] + members.endpoints.indices.filter { $0 != leaderIndex }
        let etcd = EtcdClient(EtcdConfiguration(endpoints: order.map { members.endpoints[$0] }, requestTimeout: .seconds(1)))
        let lease = try await etcd.grantLease(ttlSeconds: 10)
        #expect(try await etcd.create("/m/leader", value: Array("me".utf8), lease: lease.id))
        #expect(etcd.currentEndpoint == members.endpoints[leaderIndex])
        // A watch on the member that dies: its end must reach the caller.
        let watch = Task {
            var created = false
            for try await batch in etcd.watch(.key("/m/leader"), fromRevision: nil) where batch.events.isEmpty { created = true }
            return created
        }
        try await Task.sleep(for: .milliseconds(200))

        members.kill(leaderIndex)
        let killed = ContinuousClock.now
        let answer = try await within(.seconds(15), "keepalive after the leader's kill") {
            while true {
                do {
                    return try await etcd.keepAlive(lease: lease.id)
                } catch {
                    try await Task.sleep(for: .milliseconds(100))
                }
            }
        }
        print("etcd: keepalive renewed \(ContinuousClock.now - killed) after the raft leader was killed, via \(etcd.currentEndpoint)")
        #expect(answer == .alive(ttlSeconds: 10))
        #expect(etcd.currentEndpoint != members.endpoints[leaderIndex])
        #expect(try await etcd.put("/m/state", value: [], lease: 0, if: LeaseGuard(key: "/m/leader", lease: lease.id)))
        #expect(try await etcd.get(.key("/m/leader")).kvs.map(\.text) == ["me"])
        let ended = try await within(.seconds(3), "the watch's end") { await watch.result }
        guard case .failure(let error as EtcdError) = ended else {
            Issue.record("the watch did not end with an EtcdError: \(ended)")
            return
        }
        #expect(error.endpoint == members.endpoints[leaderIndex])
        print("etcd: watch on the killed member ended: \(error)")
    }

    @Test("TLS with client certificates: the right CA connects; a CA that did not sign the server is refused, clearly")
    func tls() async throws {
        let certificates = try Scratch()
        defer { certificates.remove() }
        let made = try TestCertificates(in: certificates)
        let members = try await EtcdMembers(serverTLS: made)
        defer { members.stop() }
        #expect(members.endpoints[0].hasPrefix("https://"))

        let etcd = client(members)
        try await etcd.put("/tls", value: Array("ok".utf8), lease: 0)
        #expect(try await etcd.get(.key("/tls")).kvs.map(\.text) == ["ok"])

        let strangers = EtcdClient(EtcdConfiguration(endpoints: members.endpoints, requestTimeout: .seconds(2),
                                                     tls: .init(caFile: made.otherCAFile, certificateFile: made.clientCertificate,
                                                                keyFile: made.clientKey)))
        let refused = await #expect(throws: EtcdError.self) { try await strangers.get(.key("/tls")) }
        #expect(refused?.isUnreachable == true)
        #expect(refused?.description.contains("etcd \(members.endpoints[0]): get /tls: SSL certificate problem") == true,
                "\(String(describing: refused))")

        // The member asks for a client certificate: without one, no answer.
        let anonymous = EtcdClient(EtcdConfiguration(endpoints: members.endpoints, requestTimeout: .seconds(2),
                                                     tls: .init(caFile: made.caFile)))
        let noCertificate = await #expect(throws: EtcdError.self) { try await anonymous.get(.key("/tls")) }
        #expect(noCertificate?.isUnreachable == true, "\(String(describing: noCertificate))")
        print("etcd: wrong CA: \(refused.map(String.init(describing:)) ?? "-")")
        print("etcd: no client certificate: \(noCertificate.map(String.init(describing:)) ?? "-")")
    }

    @Test("user and password: the client authenticates, and again when its token is no longer valid")
    func authentication() async throws {
        let members = try await EtcdMembers()
        defer { members.stop() }
        let endpoint = members.endpoints[0]
        for (path, body) in [("/v3/auth/role/add", #"{"name":"root"}"#),
                             ("/v3/auth/user/add", #"{"name":"root","password":"secret"}"#),
                             ("/v3/auth/user/grant", #"{"user":"root","role":"root"}"#),
                             ("/v3/auth/enable", "{}")] {
            #expect((try? members.raw(endpoint, path, body).get().status) == 200, "\(path)")
        }
        let etcd = EtcdClient(EtcdConfiguration(endpoints: members.endpoints,
                                                credentials: .init(user: "root", password: "secret")))
        try await etcd.put("/a", value: Array("1".utf8), lease: 0)
        #expect(try await etcd.get(.key("/a")).kvs.map(\.text) == ["1"])
        #expect(etcd.authentications == 1)

        // Changing the password (to the same one) invalidates the user's tokens.
        let token = try #require(try JSONSerialization.jsonObject(with: Data(
            members.raw(endpoint, "/v3/auth/authenticate", #"{"name":"root","password":"secret"}"#).get().body)) as? [String: Any])["token"] as? String
        let changed = members.raw(endpoint, "/v3/auth/user/changepw", #"{"name":"root","password":"secret"}"#,
                                  headers: [("Authorization", token ?? "")])
        #expect((try? changed.get().status) == 200)
        #expect(try await etcd.get(.key("/a")).kvs.map(\.text) == ["1"])
        #expect(etcd.authentications == 2)

        let anonymous = client(members)
        let refused = await #expect(throws: EtcdError.self) { try await anonymous.get(.key("/a")) }
        #expect(refused?.description == "etcd \(endpoint): get /a: user name is empty (code 3)")
        let wrong = EtcdClient(EtcdConfiguration(endpoints: members.endpoints, credentials: .init(user: "root", password: "nope")))
        let denied = await #expect(throws: EtcdError.self) { try await wrong.get(.key("/a")) }
        #expect(denied?.description == "etcd \(endpoint): authenticate as root: authentication failed, invalid user ID or password (code 3)")
    }
}
