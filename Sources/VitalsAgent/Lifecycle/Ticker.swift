import Foundation
import Logging
import Synchronization
import VitalsCore
import VitalsStore

/// Every 250 ms: lets time-driven rules act (heartbeat deadlines, flapping,
/// maintenance expiry, deferred decisions), retries the journal, saves the
/// snapshot when the state changed, and keeps systemd informed (READY=1
/// after the first full round, STATUS= on change, WATCHDOG=1). Once, after
/// both loops have started: warns when they could not take the agent's nice.
final class Ticker: Sendable {
    private let owner: StateOwner
    private let store: AgentStore
    private let notifier: SystemdNotifier
    private let logger: Logger
    /// Whatever else must happen now and then (the refused pings' summary).
    private let everyTick: @Sendable () -> Void
    // Dispatch sources may be scheduled, resumed and cancelled from any thread.
    private nonisolated(unsafe) let timer: any DispatchSourceTimer
    private let progress = Mutex(Progress())

    /// What the ticker has done so far.
    private struct Progress {
        var savedVersion: UInt64 = 0
        /// The state version systemd was last told about.
        var seenVersion: UInt64?
        var ready = false
        var status = ""
        var lastWatchdog: ContinuousClock.Instant?
        /// Ticks left to look at the loops' priority.
        var priorityChecks = 20
    }

    init(owner: StateOwner, store: AgentStore, notifier: SystemdNotifier, logger: Logger,
         everyTick: @escaping @Sendable () -> Void = {}) {
        self.everyTick = everyTick
        self.owner = owner
        self.store = store
        self.notifier = notifier
        self.logger = logger
        timer = DispatchSource.makeTimerSource(queue: DispatchQueue(label: "vitals.ticker"))
    }

    func start() {
        timer.schedule(deadline: .now() + .milliseconds(250), repeating: .milliseconds(250))
        timer.setEventHandler { [self] in tick() }
        timer.resume()
    }

    func stop() {
        timer.cancel()
    }

    private func tick() {
        checkLoopPriority()
        owner.tick()
        everyTick()
        store.retryPending()
        let view = owner.view
        let version = view.core.stateVersion
        let changed = progress.withLock { progress in
            defer { progress.savedVersion = version }
            return progress.savedVersion != version
        }
        // While the state directory fails (a full disk), try the snapshot
        // again every tick: it must name what was decided meanwhile as soon
        // as the disk takes writes again, not at the next change.
        if changed || store.health.isDegraded { store.save(view.core.persistentSnapshot(at: view.publishedAt)) }
        guard notifier.isEnabled else { return }
        let now = ContinuousClock.now
        progress.withLock { progress in
            if progress.seenVersion != version {
                progress.seenVersion = version
                let line = AgentLog.statusLine(view)
                if !progress.ready, view.firstRoundComplete {
                    notifier.ready(status: line)
                    progress.ready = true
                    progress.status = line
                } else if progress.ready, line != progress.status {
                    notifier.status(line)
                    progress.status = line
                }
            }
            if let interval = notifier.watchdogInterval,
               progress.lastWatchdog.map({ now - $0 >= interval / 2 }) ?? true {
                notifier.watchdog()
                progress.lastWatchdog = now
            }
        }
    }

    /// Once both loops have started: do they run at the priority the agent was given?
    private func checkLoopPriority() {
        let warning = progress.withLock { progress -> String? in
            guard progress.priorityChecks > 0 else { return nil }
            let loops = LoopPriority.threadNice()
            progress.priorityChecks = loops.count == LoopPriority.loopNames.count ? 0 : progress.priorityChecks - 1
            guard progress.priorityChecks == 0 else { return nil }
            return LoopPriority.warning(processNice: LoopPriority.processNice, loops: loops)
        }
        if let warning { logger.warning("\(warning)") }
    }
}
