#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Synchronization
import VitalsActions
import VitalsCore
import VitalsTestKit

/// A failover event as the engine would hand it over.
func sampleEvent(id: UInt64 = 42, group: String? = "web", service: String? = nil,
                 kind: EventKind = .group(.failover)) -> AgentEvent {
    AgentEvent(id: id, time: Date(timeIntervalSince1970: 1_800_000_000.25), kind: kind, group: group,
               service: service, from: "web-1", to: "web-2", reason: "web-1 down (status 503); chose web-2")
}

/// Backoff that records each wait and waits for real (they are milliseconds).
final class BackoffRecorder: Sendable {
    private let waits = Mutex<[Duration]>([])
    var recorded: [Duration] { waits.withLock { $0 } }

    func policy(base: Duration = .milliseconds(10)) -> RetryPolicy {
        RetryPolicy(base: base, cap: .seconds(1)) { [self] delay in
            waits.withLock { $0.append(delay) }
            try await Task.sleep(for: delay)
        }
    }
}

/// Collects outcomes as a queue delivers them; tests await a count with a deadline.
final class OutcomeRecorder: Sendable {
    private struct State {
        var outcomes: [ActionOutcome] = []
        var waiters: [(id: Int, count: Int, continuation: CheckedContinuation<[ActionOutcome], Never>)] = []
        var nextID = 0
    }
    private let state = Mutex(State())

    var outcomes: [ActionOutcome] { state.withLock { $0.outcomes } }

    /// For `ActionQueue(deliver:)`.
    var deliver: @Sendable (ActionOutcome) -> Void {
        { [self] outcome in
            let ready = state.withLock { state -> [(CheckedContinuation<[ActionOutcome], Never>, [ActionOutcome])] in
                state.outcomes.append(outcome)
                let done = state.waiters.filter { $0.count <= state.outcomes.count }
                state.waiters.removeAll { $0.count <= state.outcomes.count }
                return done.map { ($0.continuation, state.outcomes) }
            }
            for (continuation, outcomes) in ready { continuation.resume(returning: outcomes) }
        }
    }

    /// The outcomes once there are at least `count`, or whatever arrived by the deadline.
    func wait(for count: Int, within limit: Duration = .seconds(10)) async -> [ActionOutcome] {
        await withCheckedContinuation { continuation in
            let id = state.withLock { state -> Int? in
                if state.outcomes.count >= count { return nil }
                state.nextID += 1
                state.waiters.append((state.nextID, count, continuation))
                return state.nextID
            }
            guard let id else {
                continuation.resume(returning: outcomes)
                return
            }
            Task.detached { [self] in
                try? await Task.sleep(for: limit)
                let expired = state.withLock { state -> (CheckedContinuation<[ActionOutcome], Never>, [ActionOutcome])? in
                    guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return nil }
                    return (state.waiters.remove(at: index).continuation, state.outcomes)
                }
                if let (continuation, outcomes) = expired { continuation.resume(returning: outcomes) }
            }
        }
    }
}

/// A one-shot gate: `wait` suspends until `open`.
final class Gate: Sendable {
    private let state = Mutex<(open: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))

    func open() {
        let waiters = state.withLock { state in
            state.open = true
            defer { state.waiters.removeAll() }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    func wait() async {
        await withCheckedContinuation { continuation in
            let open = state.withLock { state in
                if !state.open { state.waiters.append(continuation) }
                return state.open
            }
            if open { continuation.resume() }
        }
    }
}
