import Foundation
import Synchronization
import VitalsCore

/// The one owner of the agent's health state.
///
/// Probe results, heartbeats, operator commands and clock ticks all arrive
/// here and are applied one at a time under a single lock, so every change
/// has a total order and nothing else mutates state. Transitions are handed
/// to `onTransition` after the lock is released, in the order they happened.
public final class AgentState: Sendable {
    /// A copy of everything the status view shows, taken at one instant.
    public struct Snapshot: Sendable {
        public var config: VitalsConfig
        public var configPath: String
        public var startedAt: Date
        public var services: [(config: ServiceConfig, health: ServiceHealth, lastProbe: ProbeResult?)]
        /// Bumped by every change; equal versions mean equal snapshots.
        public var version: UInt64
        /// True once every probed service has reported at least one result.
        public var firstRoundComplete: Bool
    }

    /// Where a heartbeat stands after it was recorded.
    public struct HeartbeatReceipt: Sendable, Equatable {
        public var service: String
        public var kind: BeatKind
        public var state: HealthState
        public var deadline: Date
    }

    public enum HeartbeatRejection: Error, Equatable {
        case unknownService(String)
        case notAHeartbeatService(String, kind: String)
    }

    private struct Entry {
        var config: ServiceConfig
        var health: ServiceHealth
        var lastProbe: ProbeResult?
    }

    private struct Inner {
        var config: VitalsConfig
        var entries: [Entry]
        var index: [String: Int]
        var version: UInt64 = 0
        var stateVersion: UInt64 = 0
        var unprobed: Set<String>
    }

    private let inner: Mutex<Inner>
    private let clock: any VitalsClock
    private let onTransition: @Sendable (HealthTransition) -> Void
    public let startedAt: Date
    public let configPath: String

    public init(config: VitalsConfig, configPath: String, clock: any VitalsClock,
                onTransition: @escaping @Sendable (HealthTransition) -> Void) {
        let now = clock.now()
        self.clock = clock
        self.startedAt = now
        self.configPath = configPath
        self.onTransition = onTransition
        let entries = config.services.map { Entry(config: $0, health: ServiceHealth(service: $0, startedAt: now)) }
        var index: [String: Int] = [:]
        for (i, entry) in entries.enumerated() { index[entry.config.name] = i }
        let probed = config.services.filter { if case .heartbeat = $0.check { false } else { true } }.map(\.name)
        inner = Mutex(Inner(config: config, entries: entries, index: index, unprobed: Set(probed)))
    }

    /// Applies one probe result; answers how soon the service should be probed again.
    @discardableResult
    public func record(_ result: ProbeResult, for service: String) -> ProbeDelayHint {
        let (transition, hint): (HealthTransition?, ProbeDelayHint) = inner.withLock { state in
            guard let i = state.index[service], case .probed(var tracker) = state.entries[i].health else {
                return (nil, .normal)
            }
            let transition = tracker.record(result)
            state.entries[i].health = .probed(tracker)
            state.entries[i].lastProbe = result
            state.unprobed.remove(service)
            state.version &+= 1
            if transition != nil { state.stateVersion &+= 1 }
            return (transition, tracker.nextProbeDelayHint)
        }
        if let transition { onTransition(transition) }
        return hint
    }

    /// Applies one pushed heartbeat.
    public func beat(_ kind: BeatKind, for service: String, duration: Duration? = nil,
                     exitStatus: Int? = nil) -> Result<HeartbeatReceipt, HeartbeatRejection> {
        let now = clock.now()
        let outcome: Result<(HeartbeatReceipt, HealthTransition?), HeartbeatRejection> = inner.withLock { state in
            guard let i = state.index[service] else { return .failure(.unknownService(service)) }
            guard case .heartbeat(var tracker) = state.entries[i].health else {
                return .failure(.notAHeartbeatService(service, kind: state.entries[i].config.check.kind))
            }
            let transition = tracker.beat(kind, at: now, duration: duration, exitStatus: exitStatus)
            state.entries[i].health = .heartbeat(tracker)
            state.version &+= 1
            state.stateVersion &+= 1
            return .success((HeartbeatReceipt(service: service, kind: kind, state: tracker.state,
                                              deadline: tracker.deadline), transition))
        }
        switch outcome {
        case .success(let (receipt, transition)):
            if let transition { onTransition(transition) }
            return .success(receipt)
        case .failure(let rejection):
            return .failure(rejection)
        }
    }

    /// Lets time-driven rules act: heartbeat deadlines, the end of a flapping period.
    public func tick() {
        let now = clock.now()
        let transitions: [HealthTransition] = inner.withLock { state in
            var changes: [HealthTransition] = []
            for i in state.entries.indices {
                if let change = state.entries[i].health.tick(at: now) { changes.append(change) }
            }
            if !changes.isEmpty {
                state.version &+= 1
                state.stateVersion &+= 1
            }
            return changes
        }
        transitions.forEach(onTransition)
    }

    /// Puts a service in or out of maintenance.
    public func setMaintenance(_ on: Bool, for service: String, reason: String) -> Bool {
        let now = clock.now()
        let result: (found: Bool, HealthTransition?) = inner.withLock { state in
            guard let i = state.index[service] else { return (false, nil) }
            let change = state.entries[i].health.setMaintenance(on, reason: reason, at: now)
            state.version &+= 1
            state.stateVersion &+= 1
            return (true, change)
        }
        if let change = result.1 { onTransition(change) }
        return result.found
    }

    /// Bumped by every input; cheap, for deciding whether a rendered view is stale.
    public var version: UInt64 { inner.withLock { $0.version } }

    /// Bumped only when a state changes or an operator or heartbeat input lands:
    /// views re-render at once for these.
    public var stateVersion: UInt64 { inner.withLock { $0.stateVersion } }

    public func snapshot() -> Snapshot {
        inner.withLock { state in
            Snapshot(config: state.config, configPath: configPath, startedAt: startedAt,
                     services: state.entries.map { ($0.config, $0.health, $0.lastProbe) },
                     version: state.version, firstRoundComplete: state.unprobed.isEmpty)
        }
    }

    /// The health of one service, if it exists.
    public func health(of service: String) -> ServiceHealth? {
        inner.withLock { state in state.index[service].map { state.entries[$0].health } }
    }
}
