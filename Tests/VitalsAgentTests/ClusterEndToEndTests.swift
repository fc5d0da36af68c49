#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
import VitalsProbe
import VitalsTestKit

/// Several agents on real etcd members of the test's own, with real
/// backends and a real promote script: who acts, who takes over, and what
/// happens when etcd or an agent goes away.
@Suite(.serialized, .enabled(if: haveEtcd, "needs Debian's etcd-server (scripts/install-deps.sh test installs it)"))
struct ClusterEndToEndTests {
    /// Backends, one group and a promote script that names the agent that ran it.
    final class Setup: @unchecked Sendable {
        let dir: URL
        let primary: Backend
        let backup: Backend
        let etcd: EtcdMembers
        var agents: [String: AgentProcess] = [:]

        /// - Parameter slowPromote: the promote script marks its start, takes 3 s, then writes its record.
        init(etcdMembers: Int = 1, serverTLS: TestCertificates? = nil, namespace: NetworkNamespace? = nil,
             slowPromote: Bool = false) async throws {
            dir = try makeTemporaryDirectory()
            primary = try Backend(alsoOn: namespace.map { [$0.backendHost] } ?? [])
            backup = try Backend(alsoOn: namespace.map { [$0.backendHost] } ?? [])
            etcd = try await EtcdMembers(count: etcdMembers, serverTLS: serverTLS,
                                         alsoOn: namespace.map { [$0.etcdHost] } ?? [])
            let script = dir.appendingPathComponent("promote.sh")
            try """
            #!/bin/sh
            # $1: the agent that runs it
            touch "$(dirname "$0")/started-$1-$VITALS_EVENT_ID"
            \(slowPromote ? "sleep 3" : "")
            echo "$VITALS_EVENT $VITALS_FROM $VITALS_TO" > "$(dirname "$0")/promote-$1-$VITALS_EVENT_ID"
            """.write(to: script, atomically: true, encoding: .utf8)
            chmod(script.path, 0o755)
        }

        /// Writes agent `name`'s config: the same services, group and
        /// cluster for every agent; its own state folder.
        func config(_ name: String, ttl: String = "10s", endpoints: [String]? = nil, backendHost: String = "127.0.0.1",
                    extra: String = "") throws -> URL {
            let url = dir.appendingPathComponent("\(name).yaml")
            let list = (endpoints ?? etcd.endpoints).joined(separator: ", ")
            try """
            agent: { listen: 127.0.0.1:0, state_dir: \(dir.path)/\(name)-state }
            defaults: { interval: 200ms, timeout: 300ms, rise: 2, fall: 2, jitter: 0ms }
            services:
              web-1: { http: { url: "http://\(backendHost):\(primary.port)/health" } }
              web-2: { http: { url: "http://\(backendHost):\(backup.port)/health" } }
            groups:
              web:
                members: [web-1, web-2]
                failback: manual
                cooldown: 0s
                on: { failover: [promote] }
            actions:
              promote: { exec: [\(dir.path)/promote.sh, \(name)], timeout: 5s }
            cluster:
              etcd: [\(list)]
              scope: test
              name: \(name)
              ttl: \(ttl)
            \(extra)
            """.write(to: url, atomically: true, encoding: .utf8)
            return url
        }

        @discardableResult
        func start(_ name: String, ttl: String = "10s", extra: String = "") throws -> AgentProcess {
            let agent = try AgentProcess(config: try config(name, ttl: ttl, extra: extra), directory: dir,
                                         environment: ["HOSTNAME": name])
            agents[name] = agent
            return agent
        }

        /// Agent a, then agent b: a leads, b follows, and b's group has made its first choice.
        func startLeaderAndFollower() throws -> (leader: AgentProcess, follower: AgentProcess) {
            let a = try start("a")
            try a.waitForLine(containing: "this agent (a) is the leader")
            let b = try start("b")
            try b.waitForLine(containing: "following a")
            try b.waitForLine(containing: "group web: activated")
            return (a, b)
        }

        /// Waits until `agent` has heard the views of `count` agents (its own included).
        func waitForViews(on agent: AgentProcess, count: Int, timeout: Double = 10) throws {
            let deadline = Date().addingTimeInterval(timeout)
            while Date() < deadline, (try ClusterEndToEndTests.cluster(agent)["agents"] as? [[String: Any]])?.count ?? 0 < count {
                usleep(50_000)
            }
        }

        /// Promote runs so far: "agent event-id: kind from to".
        var promotions: [String] {
            ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? [])
                .filter { $0.hasPrefix("promote-") && !$0.hasSuffix(".sh") }.sorted()
                .map { name in
                    let text = (try? String(contentsOfFile: dir.path + "/" + name, encoding: .utf8)) ?? ""
                    return "\(name.dropFirst("promote-".count)): \(text.trimmingCharacters(in: .whitespacesAndNewlines))"
                }
        }

        func waitForPromotions(_ count: Int, timeout: Double = 15) -> [String] {
            let deadline = Date().addingTimeInterval(timeout)
            while Date() < deadline {
                if promotions.count >= count { return promotions }
                usleep(20_000)
            }
            return promotions
        }

        func stop() {
            for agent in agents.values { _ = agent.stop() }
            primary.stop()
            backup.stop()
            etcd.stop()
            try? FileManager.default.removeItem(at: dir)
        }
    }

    static func json(_ url: String) throws -> [String: Any] {
        let response = try HTTPFetch.request(url: url).get()
        return try #require(try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any], "\(response.text)")
    }

    static func cluster(_ agent: AgentProcess) throws -> [String: Any] {
        try json(try agent.baseURL() + "/v1/cluster")
    }

    /// Scenario 1: the promote script runs once, on the leader; the
    /// follower shows what it would have done.
    @Test func onlyTheLeaderRunsTheFailoverAndTheFollowerShowsIt() async throws {
        let setup = try await Setup()
        defer { setup.stop() }
        let (a, b) = try setup.startLeaderAndFollower()
        try a.waitForLine(containing: "group web: activated")
        // Both agents' views have reached each other: a failover needs both.
        try setup.waitForViews(on: a, count: 2)
        let members = try #require(try Self.cluster(a)["agents"] as? [[String: Any]])
        #expect(members.compactMap { $0["name"] as? String }.sorted() == ["a", "b"])
        #expect(members.allSatisfy { $0["live"] as? Bool == true })

        setup.primary.answer(503)
        try a.waitForLine(containing: "group web: failover web-1 → web-2")
        try b.waitForLine(containing: "group web: failover web-1 → web-2")
        let runs = setup.waitForPromotions(1)
        try a.waitForLine(containing: "action promote (exec) for event")
        let skipped = try b.waitForLine(containing: "action promote (exec) for event")
        #expect(skipped.contains("follower") && skipped.contains("a leads"), "\(skipped)")
        usleep(500_000)
        #expect(setup.promotions.count == 1 && runs.first?.hasPrefix("a-") == true, "\(setup.promotions)")

        // Status on each side.
        let status = try Self.json(try b.baseURL() + "/v1/status")
        let cluster = try #require((status["agent"] as? [String: Any])?["cluster"] as? [String: Any])
        #expect(cluster["role"] as? String == "follower")
        #expect(cluster["leader"] as? String == "a")
        let printed = try VitalsBinary.run(["status", "--url", try b.baseURL()])
        #expect(printed.out.hasPrefix("CLUSTER  agent b, role follower, leader a (\(try a.baseURL()))"), "\(printed.out)")
        let leaderView = try Self.cluster(a)
        #expect(leaderView["role"] as? String == "leader" && leaderView["leader"] as? String == "a")
        #expect(leaderView["may_act"] as? Bool == true)

        // A write on the follower names the leader's address.
        let token = try String(contentsOfFile: setup.dir.path + "/b-state/token", encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let refused = try HTTPFetch.request("POST", url: try b.baseURL() + "/v1/groups/web/hold",
                                            headers: ["Authorization": "Bearer \(token)"], body: Array("{}".utf8)).get()
        #expect(refused.status == 409, "\(refused.text)")
        #expect(refused.text.contains(try a.baseURL().replacingOccurrences(of: "http://", with: "")), "\(refused.text)")
        let metrics = try HTTPFetch.request(url: try a.baseURL() + "/metrics").get().text
        #expect(metrics.contains("vitals_cluster_leader{agent=\"a\"} 1"))
    }

    /// Scenarios 2 and 3: kill -9 hands over within ttl + 2 s, SIGTERM
    /// within a second; nothing runs twice; a later failover runs once.
    @Test func theOtherAgentTakesOverAfterKillAndAfterSigterm() async throws {
        let setup = try await Setup()
        defer { setup.stop() }
        let (a, b) = try setup.startLeaderAndFollower()
        setup.primary.answer(503)
        #expect(setup.waitForPromotions(1).count == 1)
        setup.primary.answer(200)
        try b.waitForLine(containing: "web-1: down → up")

        // kill -9 the leader: b leads within ttl + 2 s, and the failover a made is not made again.
        let killed = Date()
        kill(a.process.processIdentifier, SIGKILL)
        a.process.waitUntilExit()
        try b.waitForLine(containing: "this agent (b) is the leader", timeout: 12)
        let takeover = Date().timeIntervalSince(killed)
        print("cluster: takeover after kill -9 of the leader: \(String(format: "%.2f", takeover)) s (ttl 10 s)")
        #expect(takeover < 12)
        usleep(1_000_000)
        #expect(setup.promotions.count == 1, "\(setup.promotions)")
        let stateOfB = try Self.json(try b.baseURL() + "/v1/groups/web")
        #expect(stateOfB["active"] as? [String] == ["web-2"] || stateOfB["active_member"] as? String == "web-2",
                "\(stateOfB)")

        // A failover after the takeover runs once, on b.
        setup.backup.answer(503)
        let runs = setup.waitForPromotions(2)
        usleep(500_000)
        #expect(setup.promotions.count == 2, "\(setup.promotions)")
        #expect(runs.last?.hasPrefix("b-") == true && runs.last?.hasSuffix("failover web-2 web-1") == true, "\(runs)")
        setup.backup.answer(200)

        // SIGTERM b with a running again: a leads within a second.
        let c = try setup.start("c")
        try c.waitForLine(containing: "following b")
        let signalled = Date()
        b.process.interrupt()
        try c.waitForLine(containing: "this agent (c) is the leader", timeout: 5)
        let handover = Date().timeIntervalSince(signalled)
        print("cluster: planned handover (SIGTERM): \(Int(handover * 1000)) ms")
        #expect(handover < 1.0)
        b.process.waitUntilExit()
        #expect(b.process.terminationStatus == 0)
        usleep(500_000)
        #expect(setup.promotions.count == 2, "the new leader repeats nothing: \(setup.promotions)")
    }

    /// Scenario 6: with etcd gone nobody acts and both say why; when it
    /// returns, one leader resumes and makes the missed failover once.
    @Test func withoutEtcdNobodyActsAndOneLeaderResumesAfterwards() async throws {
        let setup = try await Setup()
        defer { setup.stop() }
        let (a, b) = try setup.startLeaderAndFollower()
        usleep(500_000)

        setup.etcd.kill(0)
        try a.waitForLine(containing: "no leader:", timeout: 12)
        try b.waitForLine(containing: "no leader:", timeout: 12)
        let healthz = try HTTPFetch.request(url: try a.baseURL() + "/healthz").get()
        #expect(healthz.status == 200 && healthz.text.contains("no leader"), "\(healthz.text)")
        let doc = try Self.cluster(b)
        #expect(doc["leader"] == nil || doc["leader"] is NSNull)
        #expect((doc["status"] as? String)?.contains("etcd unreachable since") == true, "\(doc)")

        // A failure while nobody may act: decided in shadow (or withheld while
        // the other's last view still counts), never run.
        setup.primary.answer(503)
        try a.waitForLine(containing: "web-1: up → down")
        try b.waitForLine(containing: "web-1: up → down")
        try a.waitForLine(containing: "group web: failover web-1 → web-2", timeout: 15)
        usleep(1_000_000)
        #expect(setup.promotions.isEmpty, "\(setup.promotions)")

        // etcd returns: one leader, which makes the failover once.
        try await setup.etcd.restart(0)
        let runs = setup.waitForPromotions(1, timeout: 20)
        usleep(1_500_000)
        #expect(setup.promotions.count == 1, "\(setup.promotions)")
        #expect(runs.first?.contains("failover web-1 web-2") == true, "\(runs)")
        let leaders = try [a, b].map { try Self.cluster($0)["leader"] as? String }
        #expect(leaders[0] != nil && leaders[0] == leaders[1], "\(leaders)")
    }

    /// Scenario 4: three etcd members; the one both agents talk to dies.
    /// Leadership holds or moves once, and a failover afterwards runs once.
    @Test func killingTheEtcdMemberTheLeaderTalksToMovesLeadershipAtMostOnce() async throws {
        let setup = try await Setup(etcdMembers: 3)
        defer { setup.stop() }
        let (a, b) = try setup.startLeaderAndFollower()
        let before = try #require(try Self.cluster(b)["leader_changes"] as? Int)

        setup.etcd.kill(0)
        // Longer than a lease: a leader that could not renew would have lost it by now.
        try await Task.sleep(for: .seconds(11))
        let leaders = try [a, b].map { try Self.cluster($0)["leader"] as? String }
        #expect(leaders[0] != nil && leaders[0] == leaders[1], "one leader both agree on: \(leaders)")
        let after = try #require(try Self.cluster(b)["leader_changes"] as? Int)
        #expect(after - before <= 1, "leadership held or moved once: \(before) → \(after)")

        setup.primary.answer(503)
        let runs = setup.waitForPromotions(1)
        usleep(1_000_000)
        #expect(setup.promotions.count == 1, "\(setup.promotions)")
        #expect(runs.first?.hasPrefix("\(leaders[0] ?? "?")-") == true, "run by the leader: \(runs)")
    }

    /// Scenario 7: etcd over TLS with client certificates the test made;
    /// an agent with the wrong CA refuses the member and never leads.
    @Test func agentsReachEtcdOverTLSAndRefuseAServerTheirCADidNotSign() async throws {
        let certs = try Scratch()
        defer { certs.remove() }
        let tls = try TestCertificates(in: certs)
        let setup = try await Setup(serverTLS: tls)
        defer { setup.stop() }
        let a = try setup.start("a", extra: """
          ca_file: \(tls.caFile)
          cert_file: \(tls.clientCertificate)
          key_file: \(tls.clientKey)
        """)
        try a.waitForLine(containing: "this agent (a) is the leader")
        let wrong = try setup.start("x", extra: """
          ca_file: \(tls.otherCAFile)
          cert_file: \(tls.clientCertificate)
          key_file: \(tls.clientKey)
        """)
        let failure = try wrong.waitForLine(containing: "etcd request failed")
        #expect(failure.lowercased().contains("certificate") || failure.contains("SSL"), "\(failure)")
        let doc = try Self.cluster(wrong)
        #expect(doc["role"] as? String == "none", "\(doc)")
        #expect((doc["status"] as? String)?.contains("etcd unreachable") == true, "\(doc)")
        // The right one still leads alone, and acts.
        try a.waitForLine(containing: "group web: activated")
        setup.primary.answer(503)
        #expect(setup.waitForPromotions(1).first?.hasPrefix("a-") == true, "\(setup.promotions)")
    }

    /// Scenario 5: the leader alone is cut off from the backends (its own
    /// network namespace, its backend link down; etcd still reachable). It
    /// sees everything down, but the other agent does not: nothing moves,
    /// nothing runs, and the event says why.
    @Test(.enabled(if: NetworkNamespace.available, "needs root and iproute2 to make a network namespace"))
    func anAgentCutOffFromTheBackendsCannotCauseAFailover() async throws {
        let namespace = try NetworkNamespace()
        defer { namespace.remove() }
        let setup = try await Setup(namespace: namespace)
        defer { setup.stop() }
        let port = { (url: String) in url.split(separator: ":").last.map(String.init) ?? "" }
        let inside = try setup.config("b", endpoints: setup.etcd.endpoints.map { "http://\(namespace.etcdHost):\(port($0))" },
                                      backendHost: namespace.backendHost)
        let b = try AgentProcess(config: inside, directory: setup.dir, launcher: namespace.launcher)
        setup.agents["b"] = b
        try b.waitForLine(containing: "this agent (b) is the leader")
        let a = try setup.start("a")
        try a.waitForLine(containing: "following b")
        try b.waitForLine(containing: "group web: activated")
        try a.waitForLine(containing: "group web: activated")
        // b's quorum counts a once a's view has arrived.
        try setup.waitForViews(on: a, count: 2)

        try namespace.cutBackends()
        try b.waitForLine(containing: "web-1: up → down", timeout: 10)
        let withheld = try b.waitForLine(containing: "withheld", timeout: 10)
        #expect(withheld.contains("web-1 unusable for 1 of 2 live agents, quorum 2"), "\(withheld)")
        #expect(withheld.contains("a: up"), "a's view is named: \(withheld)")
        usleep(2_000_000)
        #expect(setup.promotions.isEmpty, "\(setup.promotions)")
        #expect(!b.output.contains { $0.contains("group web: failover ") }, "nothing moved")
        // The follower shows the leader's view of web-1 beside its own.
        let doc = try Self.cluster(a)
        let views = (doc["agents"] as? [[String: Any]])?.first { $0["name"] as? String == "b" }?["views"] as? [String: Any]
        #expect((views?["web-1"] as? [String: Any])?["state"] as? String == "down", "\(doc)")
    }

    /// kill -9 of the leader while its promote script runs: the new leader
    /// records the decision's action as interrupted and does not run it again.
    @Test func aDecisionUnderWayWhenTheLeaderDiesIsReportedInterruptedNotRunTwice() async throws {
        let setup = try await Setup(slowPromote: true)
        defer { setup.stop() }
        let (a, b) = try setup.startLeaderAndFollower()
        setup.primary.answer(503)
        let deadline = Date().addingTimeInterval(10)
        func started() -> [String] {
            ((try? FileManager.default.contentsOfDirectory(atPath: setup.dir.path)) ?? []).filter { $0.hasPrefix("started-") }
        }
        while started().isEmpty && Date() < deadline { usleep(10_000) }
        #expect(started().first?.hasPrefix("started-a-") == true, "\(started())")
        kill(a.process.processIdentifier, SIGKILL)
        a.process.waitUntilExit()

        try b.waitForLine(containing: "this agent (b) is the leader", timeout: 12)
        let warning = try b.waitForLine(containing: "was under way when the previous leader stopped")
        #expect(warning.contains("failover"), "\(warning)")
        usleep(4_000_000)
        #expect(started().count == 1, "promote ran once, on a: \(started())")
        let doc = try Self.cluster(b)
        let interrupted = try #require((doc["interrupted"] as? [[String: Any]])?.first, "\(doc)")
        #expect(interrupted["kind"] as? String == "failover")
        let actions = interrupted["actions"] as? [[String: Any]] ?? []
        #expect(actions.first?["action"] as? String == "promote")
        #expect("\(actions.first?["result"] ?? "")".contains("not run again"), "\(actions)")
        // The failover a made stands on b: nothing to decide again.
        let group = try Self.json(try b.baseURL() + "/v1/groups/web")
        #expect(group["active_member"] as? String == "web-2", "\(group)")
    }

    /// kill -9 of the leader right after it acknowledged a hold and a
    /// maintenance: the new leader has both.
    @Test func aCommandTheLeaderAcknowledgedSurvivesItsKillMinus9() async throws {
        let setup = try await Setup()
        defer { setup.stop() }
        let (a, b) = try setup.startLeaderAndFollower()
        try a.waitForLine(containing: "group web: activated")
        let token = try String(contentsOfFile: setup.dir.path + "/a-state/token", encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let auth = ["Authorization": "Bearer \(token)"]
        let base = try a.baseURL()
        let maintenance = try HTTPFetch.request("POST", url: base + "/v1/services/web-2/maintenance", headers: auth,
                                                body: Array(#"{"reason":"disk swap"}"#.utf8)).get()
        #expect(maintenance.status == 200, "\(maintenance.text)")
        let held = try HTTPFetch.request("POST", url: base + "/v1/groups/web/hold", headers: auth,
                                         body: Array(#"{"reason":"db migration"}"#.utf8)).get()
        let answeredAt = Date()
        #expect(held.status == 200, "\(held.text)")
        // Acknowledged means stored where a new leader looks: read it straight from etcd.
        let key = Data("/vitals/test/state/web".utf8).base64EncodedString()
        let range = try setup.etcd.raw(setup.etcd.endpoints[0], "/v3/kv/range", #"{"key":"\#(key)"}"#).get()
        let kvs = (try JSONSerialization.jsonObject(with: Data(range.body)) as? [String: Any])?["kvs"] as? [[String: Any]]
        let stored = (kvs?.first?["value"] as? String).flatMap { Data(base64Encoded: $0) }.map { String(decoding: $0, as: UTF8.self) }
        #expect(stored?.contains("db migration") == true, "the hold is in etcd when acknowledged: \(stored ?? "nothing")")
        #expect(stored?.contains("disk swap") == true, "and the maintenance: \(stored ?? "nothing")")
        kill(a.process.processIdentifier, SIGKILL)
        a.process.waitUntilExit()
        let killedAt = Date()
        print("cluster: kill -9 \(Int(killedAt.timeIntervalSince(answeredAt) * 1000)) ms after the hold was acknowledged")

        try b.waitForLine(containing: "this agent (b) is the leader", timeout: 12)
        let deadline = Date().addingTimeInterval(5)
        var group: [String: Any] = [:]
        while Date() < deadline {
            group = try Self.json(try b.baseURL() + "/v1/groups/web")
            if group["held"] as? Bool == true { break }
            usleep(50_000)
        }
        #expect(group["held"] as? Bool == true, "\(group)")
        #expect((group["hold"] as? [String: Any])?["reason"] as? String == "db migration", "\(group)")
        let service = try Self.json(try b.baseURL() + "/v1/services/web-2")
        #expect(service["state"] as? String == "maintenance", "\(service)")
    }
}
