import Foundation
import Logging
import Synchronization
import VitalsCluster
import VitalsCore
import VitalsCurl

/// This agent's seat in a cluster on etcd: the edge that turns etcd's
/// answers into `ClusterInput`s for the core, and the core's decisions into
/// etcd writes. The rules themselves (who may act, when a lease is fenced,
/// quorum, takeover) are the core's (`Leadership`, `ClusterViews`,
/// `DecisionState`); this type only talks.
///
/// Keys under the cluster's prefix:
/// - `leader`: `{"name": ..., "address": ...}` bound to the leader's lease;
/// - `views/<agent>`: each agent's `AgentReport`, bound to its own lease;
/// - `state/<group>`: each group's `DecisionState`, written by the leader
///   only, in a transaction that checks it still holds `leader` under its
///   lease; bound to no lease, so it outlives every agent.
///
/// One loop task: grant a lease, renew it every ttl/3, try the leader key
/// when it is free, publish this agent's report when it changes, re-read
/// every view each ttl/3 (a watch that died says nothing), and, while
/// leading, store each group's decision state when it changes. A watch on
/// the prefix brings a deleted leader key and changed views at once.
final class ClusterMember: Sendable {
    let settings: ClusterSettings
    let agent: String
    let address: String
    let etcd: any Coordination
    let owner: StateOwner
    let logger: Logger
    let metrics: ClusterMetrics
    private let monotonic: @Sendable () -> MonotonicTime

    private struct LoopState {
        var stopping = false
        var lease: Int64?
        /// Each group's decision under way (with the outcomes so far).
        var inFlight: [String: AgentEvent] = [:]
        /// Each group's state as last stored (without its time), to store only changes.
        var stored: [String: [UInt8]] = [:]
        var lastReport: [String: ServiceView]?
        var lastReportSent: MonotonicTime?
        /// The core's state version the last report and the last stored states were made from.
        var reportVersion: UInt64?
        var storedVersion: UInt64?
        var lastRefresh: MonotonicTime?
        /// Events with ids below this were decided before this agent took
        /// over: their actions never run here.
        var actingFrom: UInt64 = .max
        var lastRole = ""
        var lastError: String?
    }

    private let state = Mutex(LoopState())
    private let wakeup = Wakeup()
    private let writes = AsyncLock()
    private let tasks = Mutex<[Task<Void, Never>]>([])

    var leaderKey: String { settings.prefix + "leader" }
    var viewsPrefix: String { settings.prefix + "views/" }
    var statePrefix: String { settings.prefix + "state/" }
    private var ttlSeconds: Int64 { max(2, settings.ttl.components.seconds) }

    init(settings: ClusterSettings, agent: String, address: String, etcd: any Coordination, owner: StateOwner,
         logger: Logger, metrics: ClusterMetrics,
         monotonic: @escaping @Sendable () -> MonotonicTime = StateOwner.systemMonotonic) {
        self.settings = settings
        self.agent = agent
        self.address = address
        self.etcd = etcd
        self.owner = owner
        self.logger = logger
        self.metrics = metrics
        self.monotonic = monotonic
    }

    /// The etcd client for `settings`, with the password read from its file.
    static func client(for settings: ClusterSettings) throws -> EtcdClient {
        var credentials: EtcdConfiguration.Credentials?
        if let auth = settings.auth {
            guard let data = FileManager.default.contents(atPath: auth.passwordFile) else {
                throw AgentError.cluster("cluster.auth.password_file: cannot read \(auth.passwordFile)")
            }
            let password = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            credentials = .init(user: auth.user, password: password)
        }
        let tls = settings.tls.map {
            CurlRequest.TLSFiles(caFile: $0.caFile, certificateFile: $0.certFile, keyFile: $0.keyFile)
        }
        return EtcdClient(EtcdConfiguration(endpoints: settings.etcd, requestTimeout: settings.requestTimeout,
                                            tls: tls, credentials: credentials))
    }

    // MARK: Running

    func start() {
        let loop = Task.detached { [self] in await runLoop() }
        let watch = Task.detached { [self] in await runWatch() }
        tasks.withLock { $0 = [loop, watch] }
    }

    /// Stops the loops and revokes the lease, so the leader key and this
    /// agent's view go at once and another agent takes over without
    /// waiting for the lease to expire (a planned restart).
    func stop() {
        let lease = state.withLock { state in
            state.stopping = true
            return state.lease
        }
        let all = tasks.withLock { $0 }
        for task in all { task.cancel() }
        wakeup.poke()
        guard let lease else { return }
        let done = DispatchSemaphore(value: 0)
        Task.detached { [self] in
            do {
                try await timed { try await self.etcd.revoke(lease: lease) }
                self.logger.notice("cluster: revoked lease \(lease); another agent can lead at once")
            } catch {
                self.logger.warning("cluster: could not revoke lease \(lease) (\(error)); another agent leads when it expires")
            }
            done.signal()
        }
        _ = done.wait(timeout: .now() + .milliseconds(Int(settings.requestTimeout.components.seconds * 1000 + 500)))
        owner.tick()
    }

    private var stopping: Bool { state.withLock { $0.stopping } }

    private func runLoop() async {
        while !stopping && !Task.isCancelled {
            await step()
            logRoleChange()
            let cluster = owner.clusterState()
            let now = monotonic()
            var wait: Duration = .milliseconds(250)
            if let renewal = cluster?.leadership.nextRenewal { wait = min(wait, max(.zero, renewal - now)) }
            if state.withLock({ $0.lastError }) != nil { wait = max(wait, .milliseconds(500)) }
            await wakeup.wait(for: wait)
        }
    }

    /// One pass: lease, leader key, report, refresh, decision states.
    func step() async {
        defer { fenceIfNotActing() }
        guard await keepLease() else { return }
        await contendForLeader()
        await resumeIfRegained()
        await publishReport()
        await refreshIfDue()
        if owner.mayAct().0 { await storeStates() }
    }

    /// Once this agent may not act (fenced, follower, no etcd), nothing
    /// decided until it leads again runs: decisions made meanwhile were
    /// made without the right to act, and the stored state is the truth.
    private func fenceIfNotActing() {
        guard !owner.mayAct().0 else { return }
        state.withLock { $0.actingFrom = .max }
    }

    /// A leader that was fenced (etcd unreachable past its deadline) and
    /// renewed its lease afterwards continues from the state it last stored,
    /// as a new leader would: its decisions meanwhile ran nothing, so they
    /// are made again, under the quorum, with their actions.
    private func resumeIfRegained() async {
        guard owner.mayAct().0, state.withLock({ $0.actingFrom == .max }) else { return }
        do {
            let stored = try await storedStates()
            let marker = owner.view.core.nextEventID
            let known = owner.clusterState()?.interrupted.count ?? 0
            feed(.adopt(stored, at: monotonic()))
            for event in (owner.clusterState()?.interrupted ?? []).dropFirst(known) {
                logger.warning("cluster: event \(event.id) \(event.kind.rawValue) of group \(event.group ?? "-") was under way when the previous leader stopped; its unfinished actions are recorded as interrupted, not run again")
            }
            state.withLock {
                $0.actingFrom = marker
                $0.stored = [:]
                $0.storedVersion = nil
                $0.inFlight = [:]
            }
            reached()
        } catch {
            failed(error)
        }
    }

    // MARK: Lease

    /// Grants a lease when there is none, renews it when due. False when
    /// etcd did not answer (the next pass tries again).
    private func keepLease() async -> Bool {
        guard let lease = state.withLock({ $0.lease }) else {
            let sent = monotonic()
            do {
                let granted = try await timed { try await self.etcd.grantLease(ttlSeconds: self.ttlSeconds) }
                state.withLock { $0.lease = granted.id }
                feed(.leadership(.leaseGranted(id: granted.id, ttl: .seconds(granted.ttlSeconds), sentAt: sent), at: monotonic()))
                reached()
                return true
            } catch {
                failed(error)
                return false
            }
        }
        guard let due = owner.clusterState()?.leadership.nextRenewal, monotonic() >= due else { return true }
        let sent = monotonic()
        do {
            switch try await timed({ try await self.etcd.keepAlive(lease: lease) }) {
            case .alive(let ttl):
                feed(.leadership(.renewed(remaining: .seconds(ttl), sentAt: sent), at: monotonic()))
                reached()
                return true
            case .lost:
                leaseLost("etcd no longer knows lease \(lease): it expired")
                return false
            }
        } catch {
            failed(error)
            return false
        }
    }

    private func leaseLost(_ reason: String) {
        state.withLock {
            $0.lease = nil
            $0.lastReport = nil
        }
        feed(.leadership(.leaseLost(reason: reason), at: monotonic()))
    }

    // MARK: Leader key

    private struct LeaderRecord: Codable {
        var name: String
        var address: String?
    }

    /// Tries the leader key when nobody holds it; a new leader first
    /// adopts the decision state the previous one stored.
    private func contendForLeader() async {
        guard let cluster = owner.clusterState(), let lease = state.withLock({ $0.lease }) else { return }
        guard !cluster.leadership.holdsKey, cluster.leadership.holder == nil else {
            // Our own name under an older lease: left by this agent before a crash.
            if cluster.leadership.holder == agent, !cluster.leadership.holdsKey { await readLeader() }
            return
        }
        let record = (try? JSONEncoder().encode(LeaderRecord(name: agent, address: address))).map(Array.init) ?? []
        do {
            let created = try await timed { try await self.etcd.create(self.leaderKey, value: record, lease: lease) }
            guard created else { return await readLeader() }
            // Leading, but acting only once `resumeIfRegained` adopted the
            // stored state (`actingFrom` is still .max until then).
            feed(.leadership(.acquired(lease: lease), at: monotonic()))
            feed(.leaderKey(holder: agent, address: address, lease: lease, at: monotonic()))
            metrics.leadershipAcquired()
            reached()
        } catch {
            failed(error)
        }
    }

    private func storedStates() async throws -> [DecisionState] {
        let range = try await timed { try await self.etcd.get(.prefix(self.statePrefix)) }
        var states: [DecisionState] = []
        for kv in range.kvs {
            do {
                states.append(try DecisionState(json: kv.value))
            } catch {
                logger.warning("cluster: ignoring unreadable decision state \(kv.key): \(error)")
            }
        }
        return states
    }

    private func readLeader() async {
        do {
            let range = try await timed { try await self.etcd.get(.key(self.leaderKey)) }
            observeLeader(range.kvs.first)
            reached()
        } catch {
            failed(error)
        }
    }

    private func observeLeader(_ kv: KeyValue?) {
        guard let kv else {
            feed(.leaderKey(holder: nil, address: nil, lease: nil, at: monotonic()))
            wakeup.poke()
            return
        }
        let record = try? JSONDecoder().decode(LeaderRecord.self, from: Data(kv.value))
        let holder = record?.name ?? kv.text
        feed(.leaderKey(holder: holder, address: record?.address, lease: kv.lease, at: monotonic()))
        let ours = state.withLock { $0.lease }
        if holder == agent, kv.lease != ours, kv.lease != 0 {
            // This agent's own key from before a restart: end that lease
            // rather than wait for it to expire.
            let old = kv.lease
            Task.detached { [self] in
                try? await timed { try await self.etcd.revoke(lease: old) }
                self.logger.notice("cluster: revoked lease \(old), left by this agent before it restarted")
                self.wakeup.poke()
            }
        }
    }

    // MARK: Views

    /// Publishes this agent's report when its views changed, and at least
    /// every ttl/3.
    private func publishReport() async {
        guard let lease = state.withLock({ $0.lease }) else { return }
        let core = owner.view.core
        let now = monotonic()
        let (last, sent, version) = state.withLock { ($0.lastReport, $0.lastReportSent, $0.reportVersion) }
        let stale = sent.map { now - $0 >= settings.ttl / 3 } ?? true
        if !stale, version == core.stateVersion { return }
        let report = AgentReport(agent: agent, time: Date(), views: core.ownReport(at: Date()).views, address: address)
        guard last.map({ !Self.sameViews($0, report.views) }) ?? true || stale else { return }
        do {
            let json = try StoredJSON.encoder().encode(report)
            try await timed { try await self.etcd.put(self.viewsPrefix + self.agent, value: Array(json), lease: lease) }
            state.withLock {
                $0.lastReport = report.views
                $0.lastReportSent = now
                $0.reportVersion = core.stateVersion
            }
            reached()
        } catch {
            failed(error)
        }
    }

    /// Views equal in what other agents judge by: state and since.
    private static func sameViews(_ a: [String: ServiceView], _ b: [String: ServiceView]) -> Bool {
        guard a.count == b.count else { return false }
        for (name, view) in a {
            guard let other = b[name], other.state == view.state, other.since == view.since else { return false }
        }
        return true
    }

    /// Every ttl/3: every agent's view and lease, and the leader key.
    private func refreshIfDue() async {
        let now = monotonic()
        if let last = state.withLock({ $0.lastRefresh }), now - last < settings.ttl / 3 { return }
        do {
            _ = try await refresh()
            state.withLock { $0.lastRefresh = now }
        } catch {
            failed(error)
        }
    }

    /// Reads every view and the leader key; answers the revision read.
    @discardableResult
    private func refresh() async throws -> Int64 {
        let views = try await timed { try await self.etcd.get(.prefix(self.viewsPrefix)) }
        let at = monotonic()
        var seen: Set<String> = []
        var leases: [String: Int64] = [:]
        for kv in views.kvs {
            guard let report = try? StoredJSON.decoder().decode(AgentReport.self, from: Data(kv.value)) else { continue }
            seen.insert(report.agent)
            leases[report.agent] = kv.lease
            feed(.report(report, at: at))
        }
        for (name, _) in owner.clusterState()?.views.heard ?? [:] where !seen.contains(name) {
            feed(.reportEnded(agent: name, at: at))
        }
        var remaining: [String: Duration] = [:]
        for (name, lease) in leases where lease != 0 {
            if let left = try? await timed({ try await self.etcd.timeToLive(lease: lease) }) {
                remaining[name] = .seconds(left)
            }
        }
        feed(.leaseRemaining(remaining, at: monotonic()))
        let leader = try await timed { try await self.etcd.get(.key(self.leaderKey)) }
        observeLeader(leader.kvs.first)
        reached()
        return max(views.revision, leader.revision)
    }

    private func runWatch() async {
        while !stopping && !Task.isCancelled {
            var revision: Int64
            do {
                revision = try await refresh()
            } catch {
                failed(error)
                try? await Task.sleep(for: .seconds(1))
                continue
            }
            do {
                for try await batch in etcd.watch(.prefix(settings.prefix), fromRevision: revision + 1) {
                    revision = max(revision, batch.revision)
                    for event in batch.events { watched(event) }
                    if stopping { return }
                }
            } catch {
                if !stopping { logger.info("cluster: watch ended (\(error)); watching again") }
            }
            try? await Task.sleep(for: .milliseconds(500))
        }
    }

    private func watched(_ event: WatchEvent) {
        let key = event.kv.key
        let at = monotonic()
        if key == leaderKey {
            observeLeader(event.kind == .put ? event.kv : nil)
        } else if key.hasPrefix(viewsPrefix) {
            let name = String(key.dropFirst(viewsPrefix.count))
            switch event.kind {
            case .put:
                if let report = try? StoredJSON.decoder().decode(AgentReport.self, from: Data(event.kv.value)) {
                    feed(.report(report, at: at))
                }
            case .delete:
                feed(.reportEnded(agent: name, at: at))
            }
        }
    }

    // MARK: Decision state

    /// The state of `group` as the leader stores it; `maintenance` is the
    /// core's (`AgentCore.maintenanceRecords`), taken once per pass.
    private func decisionState(_ group: String, core: AgentCore,
                               maintenance all: [String: AgentSnapshot.Maintenance]? = nil) -> DecisionState? {
        guard let engine = core.coordinator.engine(named: group) else { return nil }
        let records = all ?? core.maintenanceRecords
        var maintenance: [String: AgentSnapshot.Maintenance] = [:]
        for member in engine.group.members { maintenance[member] = records[member] }
        return DecisionState(group: group, leader: agent, writtenAt: Date(), engine: engine.persisted,
                             maintenance: maintenance, lastEventID: core.nextEventID - 1,
                             decision: state.withLock { $0.inFlight[group] })
    }

    /// Stores each group's state that changed since it was last stored;
    /// nothing to do while the core's state did not change.
    private func storeStates() async {
        let core = owner.view.core
        guard state.withLock({ $0.storedVersion }) != core.stateVersion else { return }
        let maintenance = core.maintenanceRecords
        var complete = true
        for engine in core.coordinator.engines {
            let written = (try? await store(engine.group.name, core: core, force: false, maintenance: maintenance)) ?? false
            complete = complete && written
        }
        if complete { state.withLock { $0.storedVersion = core.stateVersion } }
    }

    /// Stores what changed now, while leading (an operator's command waits
    /// for it before it is acknowledged).
    func storeNow() async {
        guard owner.mayAct().0, state.withLock({ $0.actingFrom != .max }) else { return }
        await storeStates()
    }

    /// Writes one group's state under the leader guard. True when written
    /// (or unchanged), false when this agent no longer holds the leader key.
    private func store(_ group: String, core: AgentCore, force: Bool,
                       maintenance: [String: AgentSnapshot.Maintenance]? = nil) async throws -> Bool {
        await writes.lock()
        do {
            let written = try await storeLocked(group, core: core, force: force, maintenance: maintenance)
            await writes.unlock()
            return written
        } catch {
            await writes.unlock()
            throw error
        }
    }

    private func storeLocked(_ group: String, core: AgentCore, force: Bool,
                             maintenance: [String: AgentSnapshot.Maintenance]?) async throws -> Bool {
        guard let lease = state.withLock({ $0.lease }),
              var decision = decisionState(group, core: core, maintenance: maintenance) else {
            return false
        }
        let comparable = decision.comparable
        if !force, state.withLock({ $0.stored[group] }) == comparable { return true }
        decision.writtenAt = Date()
        let json = decision.json
        let written = try await timed {
            try await self.etcd.put(self.statePrefix + group, value: json, lease: 0,
                                    if: LeaseGuard(key: self.leaderKey, lease: lease))
        }
        if written {
            state.withLock { $0.stored[group] = comparable }
        } else {
            await readLeader()
        }
        return written
    }

    // MARK: Actions

    /// Whether `event`'s actions may run here; nil when they may, else why
    /// not. A leader first stores the group's state with the decision
    /// under way, in the transaction that checks it still leads.
    func refusal(for event: AgentEvent) async -> String? {
        let (may, role) = owner.mayAct()
        guard may else {
            switch owner.clusterState()?.role {
            case .follower(let leader)?: return "not run here: this agent is a follower; \(leader) leads and acts"
            default: return "not run: this agent does not lead (\(role))"
            }
        }
        guard event.id >= state.withLock({ $0.actingFrom }) else {
            return "not run: decided before this agent took over as leader"
        }
        guard let group = event.group else { return nil }
        state.withLock { $0.inFlight[group] = event }
        do {
            if try await store(group, core: owner.view.core, force: true) { return nil }
            state.withLock { $0.inFlight[group] = nil }
            return "not run: this agent no longer holds the leader key"
        } catch {
            state.withLock { $0.inFlight[group] = nil }
            return "not run: the decision could not be stored in etcd before its actions (\(error))"
        }
    }

    /// After each action of a decision: store how far it got.
    func finished(_ event: AgentEvent, outcome: ActionOutcome, last: Bool) async {
        guard let group = event.group, owner.clusterState()?.leadership.holdsKey == true else { return }
        state.withLock { state in
            if last {
                state.inFlight[group] = nil
            } else if var decision = state.inFlight[group] {
                decision.actions.append(outcome)
                state.inFlight[group] = decision
            }
        }
        _ = try? await store(group, core: owner.view.core, force: true)
    }

    // MARK: Plumbing

    private func feed(_ input: ClusterInput) {
        _ = try? owner.apply(.cluster(input))
    }

    private func reached() {
        let was = state.withLock { state -> String? in
            defer { state.lastError = nil }
            return state.lastError
        }
        if was != nil { logger.notice("cluster: etcd answers again") }
    }

    private func failed(_ error: any Error) {
        let text = "\(error)"
        feed(.leadership(.requestFailed(reason: text), at: monotonic()))
        let first = state.withLock { state -> Bool in
            defer { state.lastError = text }
            return state.lastError == nil
        }
        if first { logger.error("cluster: etcd request failed: \(text)") }
    }

    private func logRoleChange() {
        guard let cluster = owner.clusterState() else { return }
        let role = cluster.role.description
        let changed = state.withLock { state -> Bool in
            defer { state.lastRole = role }
            return state.lastRole != role
        }
        guard changed else { return }
        switch cluster.role {
        case .leader: logger.notice("cluster: this agent (\(agent)) is the leader: it runs actions")
        case .follower(let leader): logger.notice("cluster: following \(leader): deciding in shadow, running no action")
        case .noLeader(let reason): logger.warning("cluster: no leader: \(reason); no action runs here")
        }
    }

    /// Counts and times one etcd request.
    private func timed<T>(_ body: @Sendable () async throws -> T) async throws -> T {
        let start = monotonic()
        do {
            let value = try await body()
            metrics.request(seconds: (monotonic() - start).seconds, failed: false)
            return value
        } catch {
            metrics.request(seconds: (monotonic() - start).seconds, failed: true)
            throw error
        }
    }
}

extension DecisionState {
    /// What decides whether the state must be stored again: all but the time written.
    var comparable: [UInt8] {
        var copy = self
        copy.writtenAt = Date(timeIntervalSince1970: 0)
        copy.lastEventID = 0
        return copy.json
    }
}

/// The cluster's figures for `/metrics`.
final class ClusterMetrics: Sendable {
    private struct Figures {
        var requests: UInt64 = 0
        var errors: UInt64 = 0
        var seconds: Double = 0
        var acquired: UInt64 = 0
    }

    private let figures = Mutex(Figures())

    func request(seconds: Double, failed: Bool) {
        figures.withLock {
            $0.requests += 1
            $0.seconds += seconds
            if failed { $0.errors += 1 }
        }
    }

    func leadershipAcquired() {
        figures.withLock { $0.acquired += 1 }
    }

    var snapshot: (requests: UInt64, errors: UInt64, seconds: Double, acquired: UInt64) {
        figures.withLock { ($0.requests, $0.errors, $0.seconds, $0.acquired) }
    }
}

/// Wakes a waiting loop early; a poke with nobody waiting wakes the next wait at once.
final class Wakeup: Sendable {
    private struct State {
        var poked = false
        var waiter: CheckedContinuation<Void, Never>?
        var generation: UInt64 = 0
    }

    private let state = Mutex(State())

    func poke() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard let waiter = state.waiter else {
                state.poked = true
                return nil
            }
            state.waiter = nil
            return waiter
        }
        waiter?.resume()
    }

    func wait(for duration: Duration) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let generation = state.withLock { state -> UInt64? in
                if state.poked {
                    state.poked = false
                    return nil
                }
                state.generation += 1
                state.waiter = continuation
                return state.generation
            }
            guard let generation else { return continuation.resume() }
            Task.detached { [self] in
                try? await Task.sleep(for: duration)
                let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
                    guard state.generation == generation, let waiter = state.waiter else { return nil }
                    state.waiter = nil
                    return waiter
                }
                waiter?.resume()
            }
        }
    }
}

/// A lock for async code: one holder at a time, waiters in arrival order.
actor AsyncLock {
    private var busy = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    func lock() async {
        guard busy else {
            busy = true
            return
        }
        await withCheckedContinuation { waiters.append($0) }
    }

    func unlock() {
        if waiters.isEmpty {
            busy = false
        } else {
            waiters.removeFirst().resume()
        }
    }
}
