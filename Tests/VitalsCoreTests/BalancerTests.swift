import Foundation
import Testing
@testable import VitalsCore

// Load-balancing selection: every policy on fixed candidate lists, the
// distribution of rendezvous hashing over 100,000 client keys, and the
// config keys that feed it. Nothing here reads a clock or does I/O.

/// 100,000 client keys shaped like IPv4 addresses: `10.0.0.0` ... `10.1.134.159`.
private let clientKeys: [String] = (0..<100_000).map { i in "10.\(i >> 16).\((i >> 8) & 255).\(i & 255)" }

private func up(_ name: String, weight: Int = 1, latency: Duration? = nil) -> BalanceCandidate {
    BalanceCandidate(name: name, weight: weight, state: .up, latency: latency)
}

private func degraded(_ name: String, weight: Int = 1, latency: Duration? = nil) -> BalanceCandidate {
    BalanceCandidate(name: name, weight: weight, state: .degraded, latency: latency)
}

private func member(_ name: String, _ state: HealthState) -> BalanceCandidate {
    BalanceCandidate(name: name, state: state)
}

/// The member each key hashes to.
private func assignment(_ candidates: [BalanceCandidate], keys: [String] = clientKeys) -> [String] {
    var balancer = Balancer(policy: .hash)
    return keys.map { balancer.pick(key: $0, candidates: candidates)?.member ?? "-" }
}

/// Each member's share of `assigned`.
private func shares(_ assigned: [String]) -> [String: Double] {
    var counts: [String: Int] = [:]
    for name in assigned { counts[name, default: 0] += 1 }
    return counts.mapValues { Double($0) / Double(assigned.count) }
}

/// `count` picks in a row from one balancer.
private func sequence(_ balancer: inout Balancer, _ candidates: [BalanceCandidate], count: Int,
                      key: String? = nil) -> [String] {
    (0..<count).map { _ in balancer.pick(key: key, candidates: candidates)?.member ?? "-" }
}

private func loadErrors(_ yaml: String) -> [String] {
    do {
        let config = try ConfigLoader.load(yaml: yaml)
        Issue.record("expected errors, loaded \(config)")
        return []
    } catch {
        return error.messages
    }
}

@Suite struct BalancerTests {
    // MARK: stable hash

    /// Pinned values: a change here re-homes every client of every agent.
    @Test func stableHashIsPinned() {
        #expect(StableHash.fnv1a("".utf8) == 0xcbf2_9ce4_8422_2325)
        #expect(StableHash.fnv1a("a".utf8) == 0xaf63_dc4c_8601_ec8c)
        #expect(StableHash.fnv1a("foobar".utf8) == 0x8594_4171_f739_67e8)
        #expect(StableHash.hash(key: "10.0.0.7", member: "web-1") == 0x0484_4514_d062_f44b)
        #expect(StableHash.hash(key: "ab", member: "c") != StableHash.hash(key: "a", member: "bc"))
        let u = RendezvousHash.unit(key: "10.0.0.7", member: "web-1")
        #expect(u > 0 && u < 1)
    }

    // MARK: hash

    @Test func hashSpreadsEqualMembersEvenly() {
        let candidates = ["a", "b", "c", "d"].map { up($0) }
        let share = shares(assignment(candidates))
        #expect(share.count == 4)
        for name in ["a", "b", "c", "d"] {
            let s = share[name] ?? 0
            #expect(abs(s - 0.25) <= 0.015, "\(name) got \(s)")
        }
    }

    @Test func hashHonoursWeights() {
        let share = shares(assignment([up("a", weight: 3), up("b", weight: 1)]))
        #expect(abs((share["a"] ?? 0) - 0.75) <= 0.02, "a got \(share["a"] ?? 0)")
        #expect(abs((share["b"] ?? 0) - 0.25) <= 0.02, "b got \(share["b"] ?? 0)")
    }

    @Test func hashGivesADegradedMemberALowerShare() {
        // Degraded keeps half its weight: 0.5 / 3.5 of the keys, the others 1 / 3.5 each.
        let candidates = [up("a"), up("b"), degraded("c"), up("d")]
        let share = shares(assignment(candidates))
        #expect(abs((share["c"] ?? 0) - 0.5 / 3.5) <= 0.015, "c got \(share["c"] ?? 0)")
        for name in ["a", "b", "d"] {
            #expect(abs((share[name] ?? 0) - 1 / 3.5) <= 0.015, "\(name) got \(share[name] ?? 0)")
        }
    }

    /// Removing one of five members moves exactly its keys (all of them);
    /// adding it back restores every key; marking it down is the same as removing it.
    @Test func hashMovesOnlyTheKeysOfARemovedMember() {
        let names = ["web-1", "web-2", "web-3", "web-4", "web-5"]
        let all = names.map { up($0) }
        let before = assignment(all)
        let without = assignment(all.filter { $0.name != "web-3" })
        let downed = assignment(all.map { $0.name == "web-3" ? member("web-3", .down) : $0 })
        let restored = assignment(all)

        let held = before.filter { $0 == "web-3" }.count
        #expect(held > 15_000 && held < 25_000)
        var moved = 0
        for (old, new) in zip(before, without) {
            if old == "web-3" {
                #expect(new != "web-3")
                moved += 1
            } else if old != new {
                Issue.record("a key of \(old) moved to \(new)")
                return
            }
        }
        #expect(moved == held)
        #expect(downed == without)
        #expect(restored == before)
    }

    @Test func hashIsIndependentOfCandidateOrderAndBalancerInstance() {
        let keys = Array(clientKeys.prefix(2000))
        let forward = assignment(["a", "b", "c"].map { up($0) }, keys: keys)
        let backward = assignment(["c", "b", "a"].map { up($0) }, keys: keys)
        #expect(forward == backward)
    }

    @Test func hashWithoutKeyRotatesByWeight() {
        var balancer = Balancer(policy: .hash)
        let candidates = [up("a", weight: 5), up("b"), up("c")]
        #expect(sequence(&balancer, candidates, count: 7) == ["a", "a", "b", "a", "c", "a", "a"])
        #expect(balancer.pick(key: "", candidates: candidates)?.reason
            == "no key given; weighted round-robin, weight 5 of 7")
    }

    // MARK: weighted and round-robin

    /// nginx's documented sequence for weights 5, 1, 1 (ngx_http_upstream_round_robin.c).
    @Test func smoothWeightedMatchesNginx() {
        var balancer = Balancer(policy: .weighted)
        let candidates = [up("a", weight: 5), up("b", weight: 1), up("c", weight: 1)]
        let expected = ["a", "a", "b", "a", "c", "a", "a"]
        #expect(sequence(&balancer, candidates, count: 7) == expected)
        #expect(sequence(&balancer, candidates, count: 7) == expected, "the cycle repeats")
    }

    @Test(arguments: [
        // (weights, picks, expected counts)
        ([1, 1, 1], 30, [10, 10, 10]),
        ([3, 2, 1], 60, [30, 20, 10]),
        ([1000, 1], 1001, [1000, 1]),
    ])
    func smoothWeightedGivesExactSharesPerCycle(_ weights: [Int], _ picks: Int, _ counts: [Int]) {
        var balancer = Balancer(policy: .weighted)
        let candidates = weights.enumerated().map { up("m\($0)", weight: $1) }
        let picked = sequence(&balancer, candidates, count: picks)
        #expect(candidates.map { c in picked.filter { $0 == c.name }.count } == counts)
    }

    @Test func weightedGivesADegradedMemberLessThanItsWeight() {
        // a: 4 (degraded: 2), b: 2.
        var balancer = Balancer(policy: .weighted)
        let candidates = [degraded("a", weight: 4), up("b", weight: 2)]
        let picked = sequence(&balancer, candidates, count: 400)
        #expect(picked.filter { $0 == "a" }.count == 200)
        #expect(balancer.pick(key: nil, candidates: candidates)?.reason
            == "weighted round-robin, weight 2 of 4 (degraded)")
    }

    @Test func roundRobinCyclesIgnoringWeights() {
        var balancer = Balancer(policy: .roundRobin)
        let candidates = [up("a", weight: 9), up("b"), up("c")]
        #expect(sequence(&balancer, candidates, count: 7) == ["a", "b", "c", "a", "b", "c", "a"])
    }

    @Test func roundRobinSkipsMembersThatDoNotServe() {
        var balancer = Balancer(policy: .roundRobin)
        let candidates = [up("a"), member("b", .down), up("c"), member("d", .maintenance),
                          member("e", .flapping), member("f", .unknown)]
        #expect(sequence(&balancer, candidates, count: 4) == ["a", "c", "a", "c"])
        #expect(balancer.pick(key: nil, candidates: candidates)?.reason == "round-robin over 2 serving members")
    }

    @Test func roundRobinGivesADegradedMemberHalfTurns() {
        var balancer = Balancer(policy: .roundRobin)
        let picked = sequence(&balancer, [up("a"), degraded("b")], count: 300)
        #expect(picked.filter { $0 == "b" }.count == 100)
    }

    @Test func degradedShareNeverFallsBelowTheMinimum() {
        var balancer = Balancer(policy: .weighted, degradedWeight: 0)
        #expect(balancer.degradedWeight == Balancer.minimumDegradedShare)
        let picked = sequence(&balancer, [up("a"), degraded("b")], count: 101)
        #expect(picked.filter { $0 == "b" }.count == 1)
    }

    @Test func rotationCountersSurviveAMemberLeaving() {
        // As nginx keeps a down peer's current weight: c has waited two turns and
        // takes both of the next ones; b comes back with its counter as it left it.
        var balancer = Balancer(policy: .roundRobin)
        let all = [up("a"), up("b"), up("c")]
        #expect(sequence(&balancer, all, count: 2) == ["a", "b"])
        #expect(sequence(&balancer, [up("a"), up("c")], count: 2) == ["c", "c"])
        #expect(sequence(&balancer, all, count: 6) == ["a", "c", "b", "a", "c", "b"])
    }

    // MARK: least-latency

    @Test func leastLatencySharesNearEqualMembersOnly() {
        var balancer = Balancer(policy: .leastLatency, latencyTolerance: 0.1)
        let candidates = [up("slow", latency: .milliseconds(20)), up("a", latency: .milliseconds(10)),
                          up("b", latency: .microseconds(10_500))]
        let picked = sequence(&balancer, candidates, count: 100)
        #expect(picked.filter { $0 == "a" }.count == 50)
        #expect(picked.filter { $0 == "b" }.count == 50)
        #expect(!picked.contains("slow"))
    }

    @Test func leastLatencyWithZeroToleranceTakesTheLowest() {
        var balancer = Balancer(policy: .leastLatency, latencyTolerance: 0)
        let candidates = [up("a", latency: .microseconds(10_500)), up("b", latency: .milliseconds(10))]
        #expect(Set(sequence(&balancer, candidates, count: 10)) == ["b"])
    }

    @Test func leastLatencyPutsUnmeasuredMembersLast() {
        var balancer = Balancer(policy: .leastLatency)
        #expect(sequence(&balancer, [up("new"), up("old", latency: .milliseconds(30))], count: 3)
            == ["old", "old", "old"])
        #expect(sequence(&balancer, [up("x"), up("y")], count: 4) == ["x", "y", "x", "y"])
        #expect(balancer.pick(key: nil, candidates: [up("x"), up("y")])?.reason
            == "no latency measured yet; round-robin over 2 serving members")
    }

    @Test func leastLatencyIgnoresTheLatencyOfMembersThatDoNotServe() {
        var balancer = Balancer(policy: .leastLatency)
        let candidates = [BalanceCandidate(name: "dead", state: .down, latency: .milliseconds(1)),
                          up("alive", latency: .milliseconds(40))]
        #expect(balancer.pick(key: nil, candidates: candidates)
            == BalancePick(member: "alive", policy: .leastLatency, reason: "lowest latency 40ms"))
    }

    @Test func leastLatencyReasons() {
        var balancer = Balancer(policy: .leastLatency, latencyTolerance: 0.1)
        #expect(balancer.pick(key: nil, candidates: [up("a", latency: .microseconds(3100)),
                                                     up("b", latency: .milliseconds(9))])?.reason
            == "lowest latency 3.1ms")
        let near = [up("a", latency: .milliseconds(10)), up("b", latency: .microseconds(10_500))]
        #expect(balancer.pick(key: nil, candidates: near)?.reason
            == "lowest latency 10ms, taking turns with 1 other within 10%")
        #expect(balancer.pick(key: nil, candidates: near)?.reason
            == "latency 10.5ms, within 10% of the lowest 10ms")
    }

    @Test(arguments: [
        ([10, 20, 30, 40, 50], 30.0),
        ([10, 20, 30, 40], 25.0),
        ([5], 5.0),
    ])
    func recentLatencyIsTheMedian(_ milliseconds: [Int], _ expected: Double) {
        let results = milliseconds.map {
            ProbeResult(time: Date(timeIntervalSince1970: 0), latency: .milliseconds($0), outcome: .ok)
        }
        #expect(Balancer.recentLatency(of: results) == .microseconds(Int(expected * 1000)))
    }

    @Test func recentLatencySkipsFailuresAndLooksOnlyAtTheLastProbes() {
        let t = Date(timeIntervalSince1970: 0)
        let results = [
            ProbeResult(time: t, latency: .milliseconds(900), outcome: .ok),
            ProbeResult(time: t, latency: .milliseconds(1), outcome: .failed),
            ProbeResult(time: t, latency: .milliseconds(8), outcome: .ok),
            ProbeResult(time: t, latency: .milliseconds(12), outcome: .degraded),
            ProbeResult(time: t, latency: nil, outcome: .failed),
        ]
        #expect(Balancer.recentLatency(of: results, last: 2) == .milliseconds(10))
        #expect(Balancer.recentLatency(of: []) == nil)
        #expect(Balancer.recentLatency(of: [ProbeResult(time: t, latency: .milliseconds(1), outcome: .failed)]) == nil)
    }

    // MARK: priority

    @Test(arguments: [
        ([member("a", .up), member("b", .up)], "a", "first serving member in priority order"),
        ([member("a", .down), member("b", .degraded), member("c", .up)], "b",
         "first serving member in priority order; skipped a (down); it is degraded"),
        ([member("a", .maintenance), member("b", .unknown), member("c", .up)], "c",
         "first serving member in priority order; skipped a (maintenance), b (unknown)"),
    ])
    func priorityPicksTheFirstServing(_ candidates: [BalanceCandidate], _ expected: String, _ reason: String) {
        var balancer = Balancer(policy: .priority)
        for _ in 0..<3 {
            #expect(balancer.pick(key: "10.0.0.7", candidates: candidates)
                == BalancePick(member: expected, policy: .priority, reason: reason))
        }
    }

    // MARK: nothing to pick

    @Test(arguments: BalancePolicy.allCases)
    func noServingCandidateIsNil(_ policy: BalancePolicy) {
        var balancer = Balancer(policy: policy)
        #expect(balancer.pick(key: "10.0.0.7", candidates: []) == nil)
        #expect(balancer.pick(key: nil, candidates: [member("a", .down), member("b", .maintenance),
                                                     member("c", .flapping), member("d", .unknown)]) == nil)
    }

    @Test func hashReasonNamesTheKey() {
        var balancer = Balancer(policy: .hash)
        #expect(balancer.pick(key: "10.0.0.7", candidates: [up("a"), up("b")])?.reason == "hash of key 10.0.0.7")
    }

    @Test func duplicateCandidatesCountOnce() {
        var balancer = Balancer(policy: .roundRobin)
        #expect(sequence(&balancer, [up("a"), up("a"), up("b")], count: 4) == ["a", "b", "a", "b"])
    }

    // MARK: groups

    @Test func balancerTakesItsSettingsFromTheGroup() {
        let group = GroupConfig(name: "web", mode: .activeActive(minHealthy: 1), members: ["a", "b"],
                                balance: .leastLatency, latencyTolerance: 0.2, degradedWeight: 0.25)
        let balancer = Balancer(group: group)
        #expect(balancer.policy == .leastLatency)
        #expect(balancer.latencyTolerance == 0.2)
        #expect(balancer.degradedWeight == 0.25)
        #expect(balancer.matches(group))
        var changed = group
        changed.degradedWeight = 0.5
        #expect(!balancer.matches(changed))
    }

    @Test func activePassiveCandidatesPutTheActiveMemberFirst() {
        let t0 = Date(timeIntervalSince1970: 1_800_000_000)
        let group = GroupConfig(name: "web", mode: .activePassive(failback: .manual, failbackDelay: .seconds(10)),
                                members: ["web-1", "web-2", "web-3"])
        var engine = GroupEngine(group: group, startedAt: t0)
        var states: [String: ServiceView] = [
            "web-1": ServiceView(state: .down, since: t0),
            "web-2": ServiceView(state: .up, since: t0),
            "web-3": ServiceView(state: .up, since: t0),
        ]
        _ = engine.update(states: states, at: t0)
        #expect(engine.activeMember == "web-2")
        // web-1 recovers; failback is manual, so web-2 stays active and stays the pick.
        states["web-1"] = ServiceView(state: .up, since: t0.addingTimeInterval(5))
        _ = engine.update(states: states, at: t0.addingTimeInterval(5))
        #expect(engine.activeMember == "web-2")

        let candidates = engine.balanceCandidates(states: states, latencies: ["web-3": .milliseconds(2)])
        #expect(candidates == [up("web-2"), up("web-1"), up("web-3", latency: .milliseconds(2))])
        var balancer = Balancer(group: group)
        #expect(balancer.pick(key: "10.0.0.7", candidates: candidates)?.member == "web-2")
    }

    @Test func candidatesLeaveOutMembersBlockedByADependency() {
        let t0 = Date(timeIntervalSince1970: 1_800_000_000)
        let group = GroupConfig(name: "web", mode: .activeActive(minHealthy: 1), members: ["web-1", "web-2"],
                                balance: .weighted, weights: ["web-2": 3])
        var engine = GroupEngine(group: group, dependsOn: ["web-1": ["db"]], startedAt: t0)
        let states: [String: ServiceView] = [
            "web-1": ServiceView(state: .up, since: t0),
            "web-2": ServiceView(state: .up, since: t0),
            "db": ServiceView(state: .down, since: t0),
        ]
        _ = engine.update(states: states, at: t0)
        #expect(engine.balanceCandidates(states: states, latencies: [:]) == [up("web-2", weight: 3)])
    }

    @Test func activeAddressesComeFromTheServices() throws {
        let config = try ConfigLoader.load(yaml: """
        services:
          web-1: { http: { url: http://10.0.0.1:8081/health }, address: 10.0.0.1:80 }
          web-2: { tcp: { host: 10.0.0.2, port: 8080 } }
        groups:
          web: { mode: active-active, members: [web-1, web-2] }
        """)
        let t0 = Date(timeIntervalSince1970: 1_800_000_000)
        var engine = GroupEngine(group: try #require(config.group(named: "web")), startedAt: t0)
        _ = engine.update(states: ["web-1": ServiceView(state: .up, since: t0),
                                   "web-2": ServiceView(state: .degraded, since: t0)], at: t0)
        #expect(engine.activeAddresses(in: config) == [
            MemberAddress(member: "web-1", address: ListenAddress(host: "10.0.0.1", port: 80)),
            MemberAddress(member: "web-2", address: ListenAddress(host: "10.0.0.2", port: 8080)),
        ])
    }

    // MARK: config

    @Test func balanceDefaultsFollowTheMode() throws {
        let config = try ConfigLoader.load(yaml: """
        services:
          a: { tcp: { host: 127.0.0.1, port: 1 } }
          b: { tcp: { host: 127.0.0.1, port: 2 } }
        groups:
          pair: { members: [a, b] }
          pool: { mode: active-active, members: [a, b] }
        """)
        let pair = try #require(config.group(named: "pair"))
        #expect(pair.balance == .priority)
        #expect(pair.weights.isEmpty)
        #expect(pair.weight(of: "a") == 1)
        #expect(pair.latencyTolerance == 0.1)
        #expect(pair.degradedWeight == 0.5)
        #expect(try #require(config.group(named: "pool")).balance == .roundRobin)
    }

    @Test func balanceKeysLoad() throws {
        let config = try ConfigLoader.load(yaml: """
        services:
          web-1: { http: { url: http://10.0.0.1:8081/health }, address: 10.0.0.1:80 }
          web-2: { http: { url: https://web-2.internal/health } }
          web-3: { tcp: { host: "fd00::3", port: 8080 } }
          job: { exec: [/bin/true], address: "[fd00::9]:9000" }
        groups:
          hashed:
            mode: active-active
            members: [web-1, web-2, web-3]
            balance: hash
            weights: { web-1: 5, web-3: 1000 }
            degraded_weight: 25%
          fast:
            mode: active-active
            members: [web-1, web-2]
            balance: least-latency
            latency_tolerance: 20%
          rr: { mode: active-active, members: [web-1, web-2], balance: round-robin, degraded_weight: 0.75 }
          ordered: { members: [web-1, web-2], balance: weighted, weights: { web-2: 2 } }
        """)
        let hashed = try #require(config.group(named: "hashed"))
        #expect(hashed.balance == .hash)
        #expect(hashed.weights == ["web-1": 5, "web-3": 1000])
        #expect(hashed.weight(of: "web-2") == 1)
        #expect(hashed.degradedWeight == 0.25)
        let fast = try #require(config.group(named: "fast"))
        #expect(fast.balance == .leastLatency)
        #expect(fast.latencyTolerance == 0.2)
        #expect(try #require(config.group(named: "rr")).degradedWeight == 0.75)
        let ordered = try #require(config.group(named: "ordered"))
        #expect(ordered.balance == .weighted)
        #expect(ordered.weights == ["web-2": 2])

        #expect(config.service(named: "web-1")?.address == ListenAddress(host: "10.0.0.1", port: 80))
        #expect(config.service(named: "web-2")?.address == ListenAddress(host: "web-2.internal", port: 443))
        #expect(config.service(named: "web-3")?.address?.description == "[fd00::3]:8080")
        #expect(config.service(named: "job")?.address == ListenAddress(host: "fd00::9", port: 9000))
    }

    @Test(arguments: [
        (Check.http(HTTPCheck(url: "http://10.0.0.1/health")), "10.0.0.1:80"),
        (.http(HTTPCheck(url: "https://api.example.com/health")), "api.example.com:443"),
        (.http(HTTPCheck(url: "HTTP://10.0.0.1:8081/health")), "10.0.0.1:8081"),
        (.http(HTTPCheck(url: "http://[::1]:8081/health")), "[::1]:8081"),
        (.tcp(TCPCheck(host: "db.internal", port: 5432)), "db.internal:5432"),
        (.exec(ExecCheck(argv: ["/bin/true"])), nil),
        (.heartbeat(HeartbeatCheck(every: .seconds(60))), nil),
    ] as [(Check, String?)])
    func addressIsDerivedFromTheCheck(_ check: Check, _ expected: String?) {
        #expect(check.derivedAddress?.description == expected)
        #expect(ServiceConfig(name: "s", check: check).address?.description == expected)
    }

    @Test func explicitAddressWins() {
        let service = ServiceConfig(name: "s", check: .tcp(TCPCheck(host: "127.0.0.1", port: 1)),
                                    address: ListenAddress(host: "10.0.0.5", port: 80))
        #expect(service.address == ListenAddress(host: "10.0.0.5", port: 80))
    }

    private static let twoServices = """
    services:
      web-1: { tcp: { host: 127.0.0.1, port: 1 } }
      web-2: { tcp: { host: 127.0.0.1, port: 2 } }
      db: { tcp: { host: 127.0.0.1, port: 3 } }

    """

    @Test(arguments: [
        ("groups: { g: { members: [web-1], balance: random } }",
         "groups.g.balance: expected one of hash, round-robin, weighted, least-latency, priority, got \"random\" (line 5, column 43)"),
        ("groups: { g: { members: [web-1], balance: hash, weights: { web-1: 0 } } }",
         "groups.g.weights.web-1: expected a whole number ≥ 1, got \"0\" (line 5, column 67)"),
        ("groups: { g: { members: [web-1], balance: hash, weights: { web-1: 1001 } } }",
         "groups.g.weights.web-1: must be at most 1000, got \"1001\" (line 5, column 67)"),
        ("groups: { g: { members: [web-1], balance: hash, weights: { web-3: 2 } } }",
         "groups.g.weights.web-3: unknown member \"web-3\", did you mean \"web-1\"? (line 5, column 60)"),
        ("groups: { g: { members: [web-1], balance: hash, weights: { db: 2 } } }",
         "groups.g.weights.db: \"db\" is not a member of this group; members: web-1 (line 5, column 60)"),
        ("groups: { g: { members: [web-1], balance: hash, weights: [web-1] } }",
         "groups.g.weights: expected a mapping, got a list (line 5, column 58)"),
        ("groups: { g: { members: [web-1], weights: { web-1: 2 } } }",
         "groups.g.weights: only applies with balance: hash or weighted (balance here: priority, the default for active-passive groups) (line 5, column 34)"),
        ("groups: { g: { members: [web-1], balance: round-robin, latency_tolerance: 10% } }",
         "groups.g.latency_tolerance: only applies with balance: least-latency (balance here: round-robin) (line 5, column 56)"),
        ("groups: { g: { members: [web-1], balance: least-latency, latency_tolerance: 5ms } }",
         "groups.g.latency_tolerance: expected a share of the lowest latency like 10% or 0.1 (0% to 100%), got \"5ms\" (line 5, column 77)"),
        ("groups: { g: { members: [web-1], balance: least-latency, latency_tolerance: 150% } }",
         "groups.g.latency_tolerance: expected a share of the lowest latency like 10% or 0.1 (0% to 100%), got \"150%\" (line 5, column 77)"),
        ("groups: { g: { members: [web-1], balance: hash, degraded_weight: 0 } }",
         "groups.g.degraded_weight: expected a share of the member's weight like 0.5 or 50% (1% to 100%), got \"0\" (line 5, column 66)"),
        ("groups: { g: { members: [web-1], degraded_weight: 0.5 } }",
         "groups.g.degraded_weight: only applies with balance: hash, round-robin, weighted or least-latency (balance here: priority, the default for active-passive groups) (line 5, column 34)"),
        ("groups: { g: { members: [web-1], balanse: hash } }",
         "groups.g.balanse: unknown key, did you mean \"balance\"? (line 5, column 34)"),
    ])
    func badBalanceKeysAreReported(_ groups: String, _ expected: String) {
        #expect(loadErrors(Self.twoServices + groups) == [expected])
    }

    @Test(arguments: [
        ("10.0.0.5", "\"10.0.0.5\""),
        ("10.0.0.5:0", "\"10.0.0.5:0\""),
        ("10.0.0.5:99999", "\"10.0.0.5:99999\""),
        ("'[::1:80'", "\"[::1:80\""),
        ("[a, b]", "a list"),
    ])
    func badAddressIsReported(_ address: String, _ got: String) {
        let errors = loadErrors("services:\n  web-1:\n    tcp: { host: 127.0.0.1, port: 1 }\n    address: \(address)\n")
        #expect(errors == [
            "services.web-1.address: expected host:port like 10.0.0.5:8080 or [fd00::5]:8080 (port 1-65535), got \(got) (line 4, column 14)",
        ])
    }
}
