import Foundation
import Testing
import VitalsCore

// The agent cut off from every backend at once, as the probe loop would see
// it: six services probed on their own jittered schedules, results fed one
// at a time (each its own round, the worst case), a tick every 250ms. The
// randomness is seeded, so every run replays the same twenty trials.

private let t0 = Date(timeIntervalSince1970: 1_800_000_000)
private func at(_ seconds: Double) -> Date { t0.addingTimeInterval(seconds) }

private let cutOffYAML = """
    defaults: { interval: 200ms, timeout: 100ms, rise: 2, fall: 2, jitter: 100ms }
    services:
      a-1: { tcp: { host: 10.0.0.1, port: 80 } }
      a-2: { tcp: { host: 10.0.0.2, port: 80 } }
      b-1: { tcp: { host: 10.0.0.3, port: 80 } }
      b-2: { tcp: { host: 10.0.0.4, port: 80 } }
      c-1: { tcp: { host: 10.0.0.5, port: 80 } }
      c-2: { tcp: { host: 10.0.0.6, port: 80 } }
    groups:
      a: { members: [a-1, a-2], cooldown: 0s, on: { failover: [promote], group_down: [promote] } }
      b: { members: [b-1, b-2], cooldown: 0s, on: { failover: [promote], group_down: [promote] } }
      c: { members: [c-1, c-2], cooldown: 0s, on: { failover: [promote], group_down: [promote] } }
    actions:
      promote: { exec: [/bin/true] }
    """

/// SplitMix64, so the trials are the same on every run.
private struct Seeded: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// One trial: every service up, then every probe fails from `cut` to `back`,
/// then up again. Probes follow the scheduler's grid (a phase within one
/// interval, then every interval plus fresh jitter); a failed probe reports
/// at its timeout, a good one after 2ms.
private func trial(_ random: inout Seeded, cut: Double, back: Double, end: Double) throws -> [AgentEvent] {
    let config = try ConfigLoader.load(yaml: cutOffYAML)
    var core = AgentCore(config: config, startedAt: t0)
    var results: [(time: Double, service: String, ok: Bool)] = []
    for service in config.services.map(\.name) {
        let phase = Double.random(in: 0..<0.2, using: &random)
        var grid = phase
        while grid < end {
            let start = grid + Double.random(in: 0...0.1, using: &random)
            let ok = start < cut || start >= back
            results.append((start + (ok ? 0.002 : 0.1), service, ok))
            grid += 0.2
        }
    }
    results.sort { $0.time < $1.time }

    var events: [AgentEvent] = []
    var nextTick = 0.25
    for result in results {
        while nextTick <= result.time {
            events += try core.apply(.tick, at: at(nextTick))
            nextTick += 0.25
        }
        let probe = ProbeResult(time: at(result.time), latency: .milliseconds(result.ok ? 2 : 100),
                                outcome: result.ok ? .ok : .failed, reason: result.ok ? "" : "timeout")
        events += try core.apply(.probeResult(probe, service: result.service), at: at(result.time))
        events += try core.apply(.roundEnded, at: at(result.time))
    }
    return events
}

extension AgentCoreTests {
    /// Three active-passive groups, six backends, all cut off in one probe
    /// round and back in another, twenty times with fresh jitter: no group
    /// moves, and the only group events after the start are the isolation
    /// notices.
    @Test func aCutOffAgentMovesNoGroupInTwentyJitteredTrials() throws {
        var random = Seeded(state: 20_270_115)
        for number in 1...20 {
            let cut = 5 + Double.random(in: 0..<0.2, using: &random)
            let events = try trial(&random, cut: cut, back: cut + 10, end: cut + 20)
            let decisions = events.compactMap { event -> String? in
                guard let kind = event.kind.groupKind, kind != .activated else { return nil }
                return "\(kind.rawValue) \(event.group ?? "")"
            }
            #expect(decisions == ["isolated a", "isolated b", "isolated c",
                                  "isolation_ended a", "isolation_ended b", "isolation_ended c"],
                    "trial \(number): \(decisions)")
        }
    }
}

extension AgentCoreTests {
    /// The price of the settle: a real failure of one member (the others
    /// stay up) is acted on `settle` after it is detected, at the first tick
    /// from then on. Here settle is interval 200ms + jitter 100ms = 300ms and
    /// ticks come every 250ms, so the added delay is 300 to 550ms.
    @Test func aRealFailureIsActedOnAfterTheSettle() throws {
        let config = try ConfigLoader.load(yaml: cutOffYAML)
        #expect(FailoverCoordinator.settle(for: config) == .milliseconds(300))
        var random = Seeded(state: 7)
        var delays: [Double] = []
        for _ in 1...20 {
            var core = AgentCore(config: config, startedAt: t0)
            for service in config.services.map(\.name) {
                for time in [0.1, 0.3] {
                    let ok = ProbeResult(time: at(time), latency: .milliseconds(2), outcome: .ok)
                    _ = try core.apply(.probeResult(ok, service: service), at: at(time))
                }
            }
            _ = try core.apply(.roundEnded, at: at(0.3))
            let failedAt = 1 + Double.random(in: 0..<0.25, using: &random)
            var events: [AgentEvent] = []
            for time in [failedAt, failedAt + 0.2] {
                let failed = ProbeResult(time: at(time), latency: .milliseconds(100), outcome: .failed, reason: "timeout")
                events += try core.apply(.probeResult(failed, service: "a-1"), at: at(time))
                events += try core.apply(.roundEnded, at: at(time))
            }
            var tick = 1.25
            while !events.contains(where: { $0.kind == .group(.failover) }), tick < 5 {
                events += try core.apply(.tick, at: at(tick))
                tick += 0.25
            }
            let down = try #require(events.first { $0.kind == .stateChange && $0.to == "down" })
            let failover = try #require(events.first { $0.kind == .group(.failover) })
            #expect(failover.service == "a-1")
            delays.append(failover.time.timeIntervalSince(down.time))
        }
        #expect(delays.allSatisfy { $0 >= 0.3 && $0 < 0.55 }, "\(delays)")
        print("settle delay over 20 failures: min \(delays.min() ?? 0)s, max \(delays.max() ?? 0)s")
    }
}
