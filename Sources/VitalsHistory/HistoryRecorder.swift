import Foundation
import Synchronization
import VitalsCore

/// The history store's edge: takes probe results, events and action
/// outcomes from any thread (a mutex held for an aggregation step, never
/// for I/O), and writes them to `history.sqlite` from a thread of its own:
/// buckets once a minute in one transaction, events and outages within a
/// second or so, everything at `stop()`.
///
/// History is derived data. A damaged file is moved aside and a new one
/// started; a file that cannot be written at all leaves history empty, with
/// a warning, and the agent probes and fails over as before.
public final class HistoryRecorder: Sendable {
    /// The uptime windows kept for metrics and the status page.
    public static let windows: [(name: String, seconds: Int64)] = [("24h", 86_400), ("7d", 7 * 86_400), ("30d", 30 * 86_400)]

    public let path: String
    public let settings: HistorySettings
    private let clock: any VitalsClock
    private let warn: @Sendable (String) -> Void

    private struct Pending {
        var aggregator = HistoryAggregator()
        var tracker = OutageTracker()
        var outages: [OutageTracker.Change] = []
        var events: [AgentEvent] = []
        var outcomes: [ActionOutcome] = []
        var stopping = false
    }
    private let pending = Mutex(Pending())
    private let wake = NSCondition()
    /// Signalled when the writer has tried to open the file.
    private let opened = NSCondition()

    private struct Writer {
        var db: SQLiteConnection?
        /// Bumped each time the file is replaced, so readers reopen.
        var generation = 0
        var lastRetention: Date?
        var uptimeRefreshed: [String: Date] = [:]
    }
    private let writer = Mutex(Writer())

    private struct Reader {
        var db: SQLiteConnection?
        var generation = -1
    }
    private let reader = Mutex(Reader())

    /// Shared between the writer and readers.
    private struct Shared {
        var generation = 0
        var ready = false
        /// Why the file could not be opened, if it could not.
        var failure: String?
        /// Minute buckets before this are on disk.
        var dataUntil: Date?
        /// service → window name → ratio, for `/metrics`.
        var uptimes: [String: [String: Double]] = [:]
        var lastFlush: FlushFigures?
    }
    private let shared = Mutex(Shared())
    private let threadStarted = Mutex(false)
    private let finished = DispatchSemaphore(value: 0)

    /// What the last flush wrote and how long it took.
    public struct FlushFigures: Sendable, Equatable {
        public var buckets: Int
        public var seconds: Double
    }

    public init(stateDir: String, settings: HistorySettings = .init(), clock: any VitalsClock,
                warn: @escaping @Sendable (String) -> Void) {
        self.path = HistoryDatabase.path(stateDir: stateDir)
        self.settings = settings
        self.clock = clock
        self.warn = warn
    }

    // MARK: Inputs (any thread, never waits for SQLite)

    public func record(_ result: ProbeResult, service: String) {
        pending.withLock { $0.aggregator.record(result, service: service) }
    }

    public func record(_ events: [AgentEvent]) {
        guard !events.isEmpty else { return }
        pending.withLock { p in
            for event in events {
                p.outages += p.tracker.apply(event)
                p.events.append(event)
            }
        }
        wake.lock(); wake.signal(); wake.unlock()
    }

    public func record(_ outcome: ActionOutcome) {
        pending.withLock { $0.outcomes.append(outcome) }
        wake.lock(); wake.signal(); wake.unlock()
    }

    // MARK: The writer

    /// Opens the file (recovering from damage), ends the outages the last
    /// run left open where its data ends, and starts outages for services
    /// already down. Called by `start`, or directly by tests that drive
    /// `flush` themselves.
    public func open(down services: [String] = []) {
        let now = clock.now()
        writer.withLock { w in
            openLocked(&w, now: now)
            guard let db = w.db else { return }
            do throws(SQLiteError) {
                let until = try HistoryDatabase.dataUntil(db)
                try HistoryDatabase.closeOpenOutages(at: until ?? now, db: db)
                shared.withLock { $0.dataUntil = until }
            } catch {
                handle(error, &w, now: now)
            }
        }
        pending.withLock { p in
            p.outages += p.tracker.seed(down: services, at: now, reason: "down when the agent started")
        }
    }

    private func openLocked(_ w: inout Writer, now: Date) {
        guard w.db == nil else { return }
        do {
            w.db = try HistoryDatabase.openForWriting(path: path, now: now, warn: warn)
            w.generation += 1
            let generation = w.generation
            shared.withLock {
                $0.generation = generation
                $0.ready = true
                $0.failure = nil
            }
        } catch {
            shared.withLock { $0.failure = error.description }
            warn("history: cannot open \(path): \(error); history is not recorded, probing and failover go on")
        }
        opened.lock(); opened.broadcast(); opened.unlock()
    }

    private func handle(_ error: SQLiteError, _ w: inout Writer, now: Date) {
        if error.isCorruption {
            w.db?.close()
            w.db = nil
            // Moves the damaged file aside on the next open.
            do {
                w.db = try HistoryDatabase.openForWriting(path: path, now: now, warn: warn)
                w.generation += 1
                let generation = w.generation
                shared.withLock { $0.generation = generation }
            } catch {
                warn("history: cannot start a new \(path): \(error)")
            }
        } else {
            warn("history: \(path): \(error)")
        }
    }

    /// Writes what waits: every finished minute (every minute with `all`),
    /// the events, outcomes and outage changes, in one transaction; then
    /// retention (hourly) and the uptime cache (when stale).
    public func flush(all: Bool = false, bucketsToo: Bool = true) {
        let now = clock.now()
        // Under the lock the probe loop takes: only moves (see HistoryAggregator).
        var (batch, taken) = pending.withLock { p in
            let batch = HistoryBatch(outages: p.outages, events: p.events, outcomes: p.outcomes)
            p.outages = []
            p.events = []
            p.outcomes = []
            let taken = bucketsToo || all ? p.aggregator.takeFinished(now: now, all: all) : []
            return (batch, taken)
        }
        if bucketsToo || all {
            batch.buckets = HistoryAggregator.flatten(taken)
            batch.dataUntil = all ? now : Date(timeIntervalSince1970: Double(HistoryBucket.start(of: now, length: 60)))
        }
        taken = []
        let started = ContinuousClock.now
        writer.withLock { w in
            openLocked(&w, now: now)
            guard let db = w.db else { return }
            do throws(SQLiteError) {
                try HistoryDatabase.write(batch, to: db)
            } catch {
                handle(error, &w, now: now)
                // Into the fresh file, if the old one was damaged.
                if error.isCorruption, let db = w.db { try? HistoryDatabase.write(batch, to: db) }
            }
            if let until = batch.dataUntil { shared.withLock { $0.dataUntil = until } }
            if batch.dataUntil != nil {
                let elapsed = (ContinuousClock.now - started).seconds
                shared.withLock { $0.lastFlush = FlushFigures(buckets: batch.buckets.count, seconds: elapsed) }
            }
            guard let db = w.db, bucketsToo || all else { return }
            if w.lastRetention.map({ now.timeIntervalSince($0) >= 3600 || now < $0 }) ?? true {
                do throws(SQLiteError) {
                    try HistoryDatabase.applyRetention(settings, now: now, db: db)
                    w.lastRetention = now
                } catch {
                    handle(error, &w, now: now)
                }
            }
            if !all { refreshUptimes(&w, now: now) }
        }
    }

    /// Each window's cache is refreshed when older than 1/1440 of the
    /// window (24h: every minute; 7d: every 7 minutes; 30d: every 30), so
    /// a scrape never runs a query and the writer never sums a month of
    /// rows every minute. The figures are `/metrics`' only; the API computes
    /// its own, to the minute.
    private func refreshUptimes(_ w: inout Writer, now: Date, force: Bool = false) {
        guard let db = w.db else { return }
        let until = Int64(HistoryBucket.start(of: now, length: 60))
        var fresh: [(String, [String: (minutes: Int64, up: Double)])] = []
        for window in Self.windows {
            if !force, let last = w.uptimeRefreshed[window.name], now >= last,
               now.timeIntervalSince(last) < Double(window.seconds) / 1440 { continue }
            // From hours, which are complete as soon as their minutes are
            // written: 24 rows a service for a day instead of 1,440. The
            // window then starts at the top of its first hour.
            let length = HistoryBucket.hour
            let from = HistoryBucket.floorStart(until - window.seconds, length: length)
            do {
                fresh.append((window.name, try HistoryDatabase.uptimeSums(from: from, to: until, length: length, db: db)))
                w.uptimeRefreshed[window.name] = now
            } catch {
                warn("history: uptime for \(window.name): \(error)")
            }
        }
        guard !fresh.isEmpty else { return }
        shared.withLock { s in
            for (name, sums) in fresh {
                for key in s.uptimes.keys where sums[key] == nil { s.uptimes[key]?[name] = nil }
                for (service, sum) in sums where sum.minutes > 0 {
                    s.uptimes[service, default: [:]][name] = sum.up / Double(sum.minutes)
                }
            }
        }
    }

    /// Refreshes every window's cached uptime now (tests, and after start).
    public func refreshUptimes() {
        let now = clock.now()
        writer.withLock { refreshUptimes(&$0, now: now, force: true) }
    }

    /// Starts the writer thread: flushes buckets a second after each minute
    /// ends, and events within a second of arriving.
    public func start(down services: [String] = []) {
        let body: @Sendable () -> Void = { [self] in
            open(down: services)
            refreshUptimes()
            run()
            finished.signal()
        }
        let t = Thread(block: body)
        t.name = "vitals-history"
        threadStarted.withLock { $0 = true }
        t.start()
    }

    private func run() {
        var nextMinute = nextFlush(after: clock.now())
        while true {
            wake.lock()
            var stopping = false
            while true {
                let state = pending.withLock { ($0.stopping, !$0.events.isEmpty || !$0.outcomes.isEmpty || !$0.outages.isEmpty) }
                stopping = state.0
                if stopping || state.1 || clock.now() >= nextMinute { break }
                let wait = min(nextMinute.timeIntervalSince(clock.now()), 60)
                _ = wake.wait(until: Date().addingTimeInterval(max(0.01, wait)))
            }
            wake.unlock()
            if stopping { break }
            let now = clock.now()
            if now >= nextMinute {
                flush()
                nextMinute = nextFlush(after: now)
            } else {
                // Events: let a burst gather for a moment, then write it.
                Thread.sleep(forTimeInterval: 0.5)
                flush(bucketsToo: false)
            }
        }
        flush(all: true)
    }

    private func nextFlush(after now: Date) -> Date {
        let minute = HistoryBucket.start(of: now, length: 60)
        return Date(timeIntervalSince1970: Double(minute + 60) + 1)
    }

    /// Writes everything that waits, including the current minute, and
    /// stops the writer thread. Returns when it is on disk.
    public func stop() {
        let running = threadStarted.withLock { $0 }
        pending.withLock { $0.stopping = true }
        wake.lock(); wake.broadcast(); wake.unlock()
        if running {
            finished.wait()
        } else {
            flush(all: true)
        }
        writer.withLock { w in
            w.db?.close()
            w.db = nil
        }
        // The last connection to close checkpoints the WAL into the file.
        reader.withLock { r in
            r.db?.close()
            r.db = nil
        }
    }

    // MARK: Reading (readers' threads; never the writer's connection)

    public var isReady: Bool { shared.withLock { $0.ready } }
    public var dataUntil: Date? { shared.withLock { $0.dataUntil } }
    public var uptimes: [String: [String: Double]] { shared.withLock { $0.uptimes } }
    public var lastFlush: FlushFigures? { shared.withLock { $0.lastFlush } }

    /// Runs `body` with a read connection of its own, opened anew when the
    /// file was replaced. Throws when history is not available.
    /// Right after start, waits up to `openTimeout` seconds for the writer
    /// to open (or replace) the file.
    public func read<T: Sendable>(openTimeout: Double = 5, _ body: (HistoryQueries) throws(SQLiteError) -> T) throws(SQLiteError) -> T {
        let deadline = Date().addingTimeInterval(openTimeout)
        opened.lock()
        while shared.withLock({ !$0.ready && $0.failure == nil }), opened.wait(until: deadline) {}
        opened.unlock()
        let (generation, ready, failure) = shared.withLock { ($0.generation, $0.ready, $0.failure) }
        guard ready else { throw SQLiteError(call: "open", code: 14, message: failure ?? "history is not open yet") }
        return try reader.withLock { (r: inout Reader) throws(SQLiteError) -> T in
            if r.db == nil || r.generation != generation {
                r.db?.close()
                r.db = try HistoryDatabase.openForReading(path: path)
                r.generation = generation
            }
            return try body(HistoryQueries(db: r.db!, settings: settings, dataUntil: dataUntil, now: clock.now()))
        }
    }
}

/// The questions the API and the command line ask of the history store.
public struct HistoryQueries: Sendable {
    let db: SQLiteConnection
    public let settings: HistorySettings
    /// Minute buckets before this are complete; later ones are not written yet.
    public let dataUntil: Date?
    public let now: Date

    /// Minutes when the span lies within the minutes' retention, else hours.
    public func length(from: Date) -> Int64 {
        from >= now.addingTimeInterval(-settings.minutes.seconds) ? HistoryBucket.minute : HistoryBucket.hour
    }

    /// Uptime over `[from, to)`, `to` no later than now. The minute in
    /// progress counts only once it has data on disk (a restart within it);
    /// before that it is not yet known, rather than "no data".
    public func uptime(service: String, from: Date, to: Date) throws(SQLiteError) -> UptimeFigure {
        let length = length(from: from)
        let start = Int64(from.timeIntervalSince1970.rounded(.down))
        let until = Int64(min(to, now).timeIntervalSince1970.rounded(.down))
        let current = HistoryBucket.start(of: now, length: 60)
        var end = max(start, length == HistoryBucket.minute ? HistoryBucket.floorStart(until + 59, length: 60) : until)
        let buckets = try HistoryDatabase.buckets(service: service, from: HistoryBucket.floorStart(start, length: length),
                                                  to: end, length: length, db: db)
        if length == HistoryBucket.minute, end > current, buckets.last?.start != current { end = max(start, current) }
        return Uptime.compute(buckets, from: start, to: end, length: length)
    }

    /// A group's uptime: minutes when its best member served (`Uptime.group`).
    public func groupUptime(group: String, members: [String], from: Date, to: Date) throws(SQLiteError) -> UptimeFigure {
        let length = length(from: from)
        let start = Int64(from.timeIntervalSince1970.rounded(.down))
        let until = Int64(min(to, now).timeIntervalSince1970.rounded(.down))
        let current = HistoryBucket.start(of: now, length: 60)
        var end = max(start, length == HistoryBucket.minute ? HistoryBucket.floorStart(until + 59, length: 60) : until)
        var all: [[HistoryBucket]] = []
        for member in members {
            all.append(try HistoryDatabase.buckets(service: member, from: HistoryBucket.floorStart(start, length: length),
                                                   to: end, length: length, db: db))
        }
        let buckets = Uptime.group(all, name: group)
        if length == HistoryBucket.minute, end > current, buckets.last?.start != current { end = max(start, current) }
        return Uptime.compute(buckets, from: start, to: end, length: length)
    }

    public func series(service: String, from: Date, to: Date, step: Int64) throws(SQLiteError) -> [HistoryPoint] {
        let length = step % HistoryBucket.hour == 0 && length(from: from) == HistoryBucket.hour ? HistoryBucket.hour
            : (step < HistoryBucket.hour ? HistoryBucket.minute : length(from: from))
        let start = HistoryBucket.floorStart(Int64(from.timeIntervalSince1970.rounded(.down)), length: step)
        let stop = Int64(to.timeIntervalSince1970.rounded(.up))
        let buckets = try HistoryDatabase.buckets(service: service, from: start, to: stop, length: length, db: db)
        return HistorySeries.points(buckets, service: service, from: start, to: stop, step: step)
    }

    public func outages(service: String?, from: Date, to: Date, limit: Int = 200) throws(SQLiteError) -> [Outage] {
        try HistoryDatabase.outages(service: service, from: from, to: to, limit: limit, db: db)
    }

    public func events(from: Date, to: Date, group: String?, service: String?, limit: Int) throws(SQLiteError) -> [AgentEvent] {
        try HistoryDatabase.events(from: from, to: to, group: group, service: service, limit: limit, db: db)
    }
}
