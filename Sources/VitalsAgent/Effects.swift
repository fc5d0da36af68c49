import Foundation
import Logging
import VitalsActions
import VitalsCore
import VitalsStore

/// What the agent does with each batch of events the owner publishes, on
/// the owner's effects queue, in order: journal (fsync'd before any action
/// starts), log, count, queue the actions, save the snapshot. And what it
/// does with each action's outcome: log, count, journal, record.
final class Effects: Sendable {
    let store: AgentStore
    let logger: Logger
    let metrics: ProbeMetrics
    let owner: Late<StateOwner>
    let actions: Late<ActionQueue>
    /// This agent's seat in a cluster; nil while it decides alone.
    let cluster: Late<ClusterMember>

    init(store: AgentStore, logger: Logger, metrics: ProbeMetrics) {
        self.store = store
        self.logger = logger
        self.metrics = metrics
        self.owner = Late()
        self.actions = Late()
        self.cluster = Late()
    }

    /// Effects are recorded before they are done: each decision is on disk
    /// before its actions start.
    func published(_ events: [AgentEvent]) {
        var decided = false
        for event in events {
            store.record(event)
            AgentLog.event(event, to: logger)
            metrics.record(event: event)
            if event.kind.groupKind != nil { decided = true }
            let config = owner.value?.view.config ?? VitalsConfig()
            actions.value?.enqueue(event, actions: config.actions(for: event))
        }
        if decided, let owner = owner.value { store.save(owner.persistentSnapshot()) }
    }

    func finished(_ outcome: ActionOutcome) {
        AgentLog.outcome(outcome, to: logger)
        metrics.record(outcome: outcome)
        store.record(outcome, forEvent: outcome.eventID)
        _ = try? owner.value?.apply(.actionsFinished([outcome]))
    }

    /// Right before an event's actions run: the target may have failed while
    /// the event waited. A new decision is published with its own actions.
    /// In a cluster, only the leader runs actions, and only once it has
    /// stored the decision in etcd (`ClusterMember.refusal(for:)`).
    func beforeRun(_ event: AgentEvent) async -> ActionQueue.BeforeRunDecision {
        guard let owner = owner.value else { return .run }
        do {
            let replacement = try owner.apply(.confirmTarget(eventID: event.id))
            if !replacement.isEmpty { return .skip("target no longer up; a new decision replaces this one") }
        } catch {
            return .skip(error.description)
        }
        if let cluster = cluster.value, let why = await cluster.refusal(for: event) { return .skip(why) }
        return .run
    }

    /// After each action that ran: a cluster leader stores how far the decision got.
    func afterAction(_ event: AgentEvent, _ outcome: ActionOutcome, last: Bool) async {
        await cluster.value?.finished(event, outcome: outcome, last: last)
    }

    /// After a restart: actions of recovered decisions that never reported
    /// are journaled as interrupted, not run again.
    func reportInterrupted(journal: [AgentEvent]) {
        guard let owner = owner.value, (try? owner.apply(.restarted(journal: journal))) != nil else { return }
        let recent = owner.view.core.recentEvents
        for event in journal {
            let before = Set(event.actions.map(\.action))
            for outcome in recent.event(event.id)?.actions ?? [] where !before.contains(outcome.action) {
                logger.warning("action \(outcome.action) for event \(event.id) \(outcome.eventKind) was interrupted by a restart; it is not run again")
                store.record(outcome, forEvent: event.id)
            }
        }
    }
}
