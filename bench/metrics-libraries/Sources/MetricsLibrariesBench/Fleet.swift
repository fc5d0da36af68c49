import Foundation
import VitalsAgent
import VitalsCore

/// N services held by a real `AgentState`, fed a few results so their
/// states differ: one in 100 (the 50th) is a heartbeat service, the rest are http.
/// Of the probed ones, per hundred: 3 down, 1 degraded, 1 never probed
/// (unknown), 1 in maintenance, the rest up.
struct Fleet {
    let clock = BenchClock()
    let state: AgentState
    /// Every service, in config order.
    let names: [String]
    /// The services that are probed (not heartbeat), in config order.
    let probed: [String]

    init(services count: Int) {
        var services: [ServiceConfig] = []
        services.reserveCapacity(count)
        for i in 0..<count {
            let name = "svc-\(i)"
            let check: Check = i % 100 == 49
                ? .heartbeat(HeartbeatCheck(every: .seconds(60), grace: .seconds(30)))
                : .http(HTTPCheck(url: "http://127.0.0.1:\(8000 + i % 1000)/health"))
            services.append(ServiceConfig(name: name, check: check))
        }
        names = services.map(\.name)
        probed = services.filter { if case .heartbeat = $0.check { false } else { true } }.map(\.name)
        state = AgentState(config: VitalsConfig(services: services), configPath: "bench.yaml", clock: clock) { _ in }

        // Default timing: rise 2, fall 3. Three results settle every state.
        for round in 0..<3 {
            for (i, name) in probed.enumerated() {
                let result: ProbeResult
                switch i % 100 {
                case 0, 1, 2:
                    result = ProbeResult(time: clock.now(), latency: .milliseconds(500), outcome: .failed,
                                         reason: "timeout after 500ms")
                case 3:
                    result = ProbeResult(time: clock.now(), latency: .milliseconds(150), outcome: .degraded,
                                         reason: "latency 150ms above slow_latency 100ms")
                case 4:
                    continue
                default:
                    result = ProbeResult(time: clock.now(), latency: .milliseconds(12), outcome: .ok)
                }
                state.record(result, for: name, deciding: false)
            }
            // As the probe loop does: record a round, then decide once.
            state.decidePending()
            clock.advance(by: .seconds(1))
            if round == 0 {
                for (i, name) in probed.enumerated() where i % 100 == 5 {
                    _ = state.setMaintenance(true, for: name, reason: "bench")
                }
            }
        }
        for service in services {
            if case .heartbeat = service.check { _ = state.beat(.success, for: service.name) }
        }
        clock.advance(by: .seconds(7))
        state.flush()
    }
}

/// Pre-generated probe results, so making them is not part of what is
/// measured: service k is probed in turn (k mod N); 94% ok, 1% degraded,
/// 5% failed across six reason texts.
struct ResultStream {
    static let reasons = [
        "timeout after 500ms",
        "cannot connect: connect refused",
        "status 503, expected 200-299",
        "body lacks \"ok\"",
        "$.status is \"down\", expected \"UP\"",
        "TLS handshake failed: certificate has expired",
    ]

    let count: Int
    private var kind: [UInt8] = []       // 0 ok, 1 degraded, 2+ failed with reasons[kind - 2]
    private var latency: [Int64] = []    // nanoseconds
    private let time = Date(timeIntervalSince1970: 1_800_000_100)

    init(count: Int, seed: UInt64 = 42) {
        self.count = count
        var rng = SplitMix64(seed: seed)
        kind.reserveCapacity(count)
        latency.reserveCapacity(count)
        for _ in 0..<count {
            let r = rng.unit()
            let k: UInt8 = r < 0.94 ? 0 : r < 0.95 ? 1 : UInt8(2 + rng.next() % UInt64(Self.reasons.count))
            kind.append(k)
            // ok: log-uniform 1 ms to 400 ms; degraded slower; timeouts at the limit.
            let seconds: Double = switch k {
            case 0: 0.001 * pow(400, rng.unit())
            case 1: 0.1 + 0.7 * rng.unit()
            case 2: 0.5
            default: 0.001 + 0.05 * rng.unit()
            }
            latency.append(Int64(seconds * 1e9))
        }
    }

    func result(_ k: Int) -> ProbeResult {
        let kind = kind[k]
        let outcome: ProbeOutcome = kind == 0 ? .ok : kind == 1 ? .degraded : .failed
        let reason = kind == 0 ? "" : kind == 1 ? "latency above slow_latency" : Self.reasons[Int(kind) - 2]
        return ProbeResult(time: time, latency: .nanoseconds(latency[k]), outcome: outcome, reason: reason)
    }
}

/// A small deterministic generator, so every run records the same results.
struct SplitMix64 {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    mutating func unit() -> Double { Double(next() >> 11) / Double(1 << 53) }
}

/// A clock that moves only when the fleet says so, so every run renders the same ages.
final class BenchClock: VitalsClock, @unchecked Sendable {
    private let lock = NSLock()
    private var current = Date(timeIntervalSince1970: 1_800_000_000)

    func now() -> Date {
        lock.lock(); defer { lock.unlock() }
        return current
    }

    func advance(by duration: Duration) {
        lock.lock(); defer { lock.unlock() }
        current = current.addingTimeInterval(duration.seconds)
    }
}
