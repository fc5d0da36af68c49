#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Foundation
import VitalsCore

/// What one flush writes, in one transaction.
public struct HistoryBatch: Sendable {
    public var buckets: [HistoryBucket] = []
    public var outages: [OutageTracker.Change] = []
    public var events: [AgentEvent] = []
    public var outcomes: [ActionOutcome] = []
    /// Minute buckets before this time are complete on disk after the flush.
    public var dataUntil: Date?

    public init(buckets: [HistoryBucket] = [], outages: [OutageTracker.Change] = [], events: [AgentEvent] = [],
                outcomes: [ActionOutcome] = [], dataUntil: Date? = nil) {
        self.buckets = buckets
        self.outages = outages
        self.events = events
        self.outcomes = outcomes
        self.dataUntil = dataUntil
    }

    public var isEmpty: Bool { buckets.isEmpty && outages.isEmpty && events.isEmpty && outcomes.isEmpty }
}

/// The schema and every statement of `history.sqlite`. Times are seconds
/// (buckets) or milliseconds (outages, events) since the Unix epoch, UTC.
enum HistorySchema {
    static let version = "1"

    static let bucketColumns = "probes, failures, degraded, minutes, up_minutes, lat_count, lat_min, lat_max, lat_sum, "
        + (0..<LatencyHistogram.bucketCount).map { "h\($0)" }.joined(separator: ", ")

    static func bucketTable(_ name: String) -> String {
        """
        CREATE TABLE IF NOT EXISTS \(name) (
            service TEXT NOT NULL, start INTEGER NOT NULL,
            probes INTEGER NOT NULL, failures INTEGER NOT NULL, degraded INTEGER NOT NULL,
            minutes INTEGER NOT NULL, up_minutes REAL NOT NULL,
            lat_count INTEGER NOT NULL, lat_min INTEGER NOT NULL, lat_max INTEGER NOT NULL, lat_sum INTEGER NOT NULL,
            \((0..<LatencyHistogram.bucketCount).map { "h\($0) INTEGER NOT NULL" }.joined(separator: ", ")),
            PRIMARY KEY (service, start)
        ) WITHOUT ROWID;
        CREATE INDEX IF NOT EXISTS \(name)_start ON \(name) (start);
        """
    }

    static let create = """
        CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        \(bucketTable("minutes"))
        \(bucketTable("hours"))
        CREATE TABLE IF NOT EXISTS outages (
            id INTEGER PRIMARY KEY, service TEXT NOT NULL, start_ms INTEGER NOT NULL, end_ms INTEGER,
            reason TEXT NOT NULL);
        CREATE INDEX IF NOT EXISTS outages_service ON outages (service, start_ms);
        CREATE INDEX IF NOT EXISTS outages_start ON outages (start_ms);
        CREATE TABLE IF NOT EXISTS events (
            id INTEGER PRIMARY KEY, time_ms INTEGER NOT NULL, kind TEXT NOT NULL, grp TEXT, service TEXT,
            json TEXT NOT NULL);
        CREATE INDEX IF NOT EXISTS events_time ON events (time_ms);
        CREATE INDEX IF NOT EXISTS events_group ON events (grp, time_ms);
        CREATE INDEX IF NOT EXISTS events_service ON events (service, time_ms);
        CREATE TABLE IF NOT EXISTS event_actions (
            seq INTEGER PRIMARY KEY, event_id INTEGER NOT NULL, json TEXT NOT NULL);
        CREATE INDEX IF NOT EXISTS event_actions_event ON event_actions (event_id);
        """

    static func values(_ b: HistoryBucket) -> [SQLValue] {
        [.text(b.service), .int(b.start), .int(b.probes), .int(b.failures), .int(b.degraded), .int(b.minutes),
         .double(b.upMinutes), .int(b.latencyCount), .int(b.latencyMinUs), .int(b.latencyMaxUs),
         .int(b.latencySumUs)] + b.histogram.counts.map { .int($0) }
    }

    /// Reads a bucket from columns `service, start, <bucketColumns>`.
    static func bucket(_ s: Statement, length: Int64) -> HistoryBucket {
        HistoryBucket(service: s.text(0) ?? "", start: s.int(1), length: length, probes: s.int(2), failures: s.int(3),
                      degraded: s.int(4), minutes: s.int(5), upMinutes: s.double(6), latencyCount: s.int(7),
                      latencyMinUs: s.int(8), latencyMaxUs: s.int(9), latencySumUs: s.int(10),
                      histogram: LatencyHistogram(counts: (0..<Int32(LatencyHistogram.bucketCount)).map { s.int(11 + $0) }))
    }

    static let placeholders = Array(repeating: "?", count: 11 + LatencyHistogram.bucketCount).joined(separator: ", ")
    static let insertMinute = "INSERT INTO minutes (service, start, \(bucketColumns)) VALUES (\(placeholders)) ON CONFLICT DO NOTHING"
    static let replaceMinute = "INSERT OR REPLACE INTO minutes (service, start, \(bucketColumns)) VALUES (\(placeholders))"
    static let selectMinute = "SELECT service, start, \(bucketColumns) FROM minutes WHERE service = ? AND start = ?"
    /// Adds a delta to an hour row. In an upsert's SET, unqualified names
    /// are the stored row's values, all read before any is assigned.
    static let addHour = """
        INSERT INTO hours (service, start, \(bucketColumns)) VALUES (\(placeholders))
        ON CONFLICT (service, start) DO UPDATE SET
            probes = probes + excluded.probes, failures = failures + excluded.failures,
            degraded = degraded + excluded.degraded, minutes = minutes + excluded.minutes,
            up_minutes = up_minutes + excluded.up_minutes,
            lat_min = CASE WHEN excluded.lat_count = 0 THEN lat_min WHEN lat_count = 0 THEN excluded.lat_min
                           ELSE min(lat_min, excluded.lat_min) END,
            lat_max = CASE WHEN excluded.lat_count = 0 THEN lat_max WHEN lat_count = 0 THEN excluded.lat_max
                           ELSE max(lat_max, excluded.lat_max) END,
            lat_count = lat_count + excluded.lat_count, lat_sum = lat_sum + excluded.lat_sum,
            \((0..<LatencyHistogram.bucketCount).map { "h\($0) = h\($0) + excluded.h\($0)" }.joined(separator: ", "))
        """
}

/// `history.sqlite`: opening (with recovery from a damaged file), the
/// flush, retention, and the queries the API and the metrics ask.
public enum HistoryDatabase {
    public static func path(stateDir: String) -> String {
        (stateDir as NSString).appendingPathComponent("history.sqlite")
    }

    /// Opens the file for writing, creating the schema. A file that is not
    /// a database, or fails SQLite's quick check, is moved aside to
    /// `history.sqlite.corrupt-<unix time>` (with its -wal and -shm) and a
    /// fresh one started; `warn` says so. Throws only when even a fresh
    /// file cannot be made (an unwritable directory).
    static func openForWriting(path: String, now: Date, warn: (String) -> Void) throws(SQLiteError) -> SQLiteConnection {
        do {
            return try openChecked(path: path)
        } catch where error.isCorruption {
            let aside = "\(path).corrupt-\(Int64(now.timeIntervalSince1970))"
            for suffix in ["", "-wal", "-shm"] {
                if access(path + suffix, F_OK) == 0 { _ = rename(path + suffix, aside + suffix) }
            }
            warn("history: \(path) is damaged (\(error.message)); moved it to \(aside) and started a new history; "
                 + "probing and failover are not affected")
            return try openChecked(path: path)
        }
    }

    private static func openChecked(path: String) throws(SQLiteError) -> SQLiteConnection {
        let db = try SQLiteConnection(path: path)
        // WAL: readers (the API) never block the writer, nor it them.
        // synchronous=NORMAL: a power cut may lose the last flush, never the file.
        _ = try db.text("PRAGMA journal_mode=WAL")
        try db.execute("PRAGMA synchronous=NORMAL")
        let check = try db.text("PRAGMA quick_check") ?? "ok"
        guard check == "ok" else {
            db.close()
            throw SQLiteError(call: "quick_check", code: 11 /* SQLITE_CORRUPT */, message: check)
        }
        try db.execute(HistorySchema.create)
        try db.prepare("INSERT OR IGNORE INTO meta (key, value) VALUES ('schema', ?)").run([.text(HistorySchema.version)])
        return db
    }

    static func openForReading(path: String) throws(SQLiteError) -> SQLiteConnection {
        let db = try SQLiteConnection(path: path, readOnly: true)
        return db
    }

    // MARK: Writing

    /// Writes one batch in one transaction.
    static func write(_ batch: HistoryBatch, to db: SQLiteConnection) throws(SQLiteError) {
        try db.transaction { () throws(SQLiteError) in
            let insert = try db.prepare(HistorySchema.insertMinute)
            for bucket in batch.buckets {
                try insert.run(HistorySchema.values(bucket))
                var hourDelta: HistoryBucket
                if db.changes == 1 {
                    hourDelta = HistoryBucket.write(bucket, over: nil).hourDelta
                } else {
                    // The minute is on disk already (a restart within it, a clock stepped back).
                    let select = try db.prepare(HistorySchema.selectMinute)
                    try select.bind([.text(bucket.service), .int(bucket.start)])
                    let stored = try select.step() ? HistorySchema.bucket(select, length: HistoryBucket.minute) : nil
                    select.reset()
                    let (minute, delta) = HistoryBucket.write(bucket, over: stored)
                    try db.prepare(HistorySchema.replaceMinute).run(HistorySchema.values(minute))
                    hourDelta = delta
                }
                try db.prepare(HistorySchema.addHour).run(HistorySchema.values(hourDelta))
            }
            for change in batch.outages {
                switch change {
                case .opened(let o):
                    try db.prepare("INSERT INTO outages (service, start_ms, end_ms, reason) VALUES (?, ?, NULL, ?)")
                        .run([.text(o.service), .int(ms(o.start)), .text(o.reason)])
                case .closed(let o):
                    try db.prepare("UPDATE outages SET end_ms = ? WHERE service = ? AND start_ms = ? AND end_ms IS NULL")
                        .run([.int(ms(o.end ?? o.start)), .text(o.service), .int(ms(o.start))])
                }
            }
            let encoder = StoredJSON.encoder()
            for event in batch.events {
                var stored = event
                stored.actions = [] // kept in event_actions, as they arrive
                let json = (try? encoder.encode(stored)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
                try db.prepare("INSERT OR REPLACE INTO events (id, time_ms, kind, grp, service, json) VALUES (?, ?, ?, ?, ?, ?)")
                    .run([.int(Int64(bitPattern: event.id)), .int(ms(event.time)), .text(event.kind.description),
                          event.group.map { .text($0) } ?? .null, event.service.map { .text($0) } ?? .null, .text(json)])
                for outcome in event.actions {
                    try addOutcome(outcome, db: db, encoder: encoder)
                }
            }
            for outcome in batch.outcomes {
                try addOutcome(outcome, db: db, encoder: encoder)
            }
            if let until = batch.dataUntil {
                try db.prepare("INSERT OR REPLACE INTO meta (key, value) VALUES ('data_until', ?)")
                    .run([.text(String(ms(until)))])
            }
        }
    }

    private static func addOutcome(_ outcome: ActionOutcome, db: SQLiteConnection, encoder: JSONEncoder) throws(SQLiteError) {
        let json = (try? encoder.encode(outcome)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        try db.prepare("INSERT INTO event_actions (event_id, json) VALUES (?, ?)")
            .run([.int(Int64(bitPattern: outcome.eventID)), .text(json)])
    }

    /// Deletes minutes older than `settings.minutes` and hours, outages and
    /// events older than `settings.hours`.
    static func applyRetention(_ settings: HistorySettings, now: Date, db: SQLiteConnection) throws(SQLiteError) {
        let nowSeconds = Int64(now.timeIntervalSince1970)
        let minuteCut = nowSeconds - Int64(settings.minutes.seconds)
        let hourCut = nowSeconds - Int64(settings.hours.seconds)
        try db.transaction { () throws(SQLiteError) in
            try db.prepare("DELETE FROM minutes WHERE start < ?").run([.int(minuteCut)])
            try db.prepare("DELETE FROM hours WHERE start < ?").run([.int(HistoryBucket.floorStart(hourCut, length: 3600))])
            try db.prepare("DELETE FROM outages WHERE end_ms IS NOT NULL AND end_ms < ?").run([.int(hourCut * 1000)])
            try db.prepare("DELETE FROM event_actions WHERE event_id IN (SELECT id FROM events WHERE time_ms < ?)")
                .run([.int(hourCut * 1000)])
            try db.prepare("DELETE FROM events WHERE time_ms < ?").run([.int(hourCut * 1000)])
        }
    }

    /// When the last run stopped writing, if it wrote at all.
    static func dataUntil(_ db: SQLiteConnection) throws(SQLiteError) -> Date? {
        let s = try db.prepare("SELECT value FROM meta WHERE key = 'data_until'")
        defer { s.reset() }
        guard try s.step(), let text = s.text(0), let value = Int64(text) else { return nil }
        return Date(timeIntervalSince1970: Double(value) / 1000)
    }

    /// Outages the last run left open end where its data ends: what
    /// happened while the agent was stopped is not known.
    static func closeOpenOutages(at end: Date, db: SQLiteConnection) throws(SQLiteError) {
        try db.prepare("UPDATE outages SET end_ms = max(start_ms, ?) WHERE end_ms IS NULL").run([.int(ms(end))])
    }

    // MARK: Reading

    static func buckets(service: String, from: Int64, to: Int64, length: Int64, db: SQLiteConnection) throws(SQLiteError) -> [HistoryBucket] {
        let table = length == HistoryBucket.minute ? "minutes" : "hours"
        let s = try db.prepare("SELECT service, start, \(HistorySchema.bucketColumns) FROM \(table) WHERE service = ? AND start >= ? AND start < ? ORDER BY start")
        try s.bind([.text(service), .int(from), .int(to)])
        var out: [HistoryBucket] = []
        while try s.step() { out.append(HistorySchema.bucket(s, length: length)) }
        return out
    }

    /// Minutes with data and up-minutes per service over `[from, to)`.
    static func uptimeSums(from: Int64, to: Int64, length: Int64, db: SQLiteConnection) throws(SQLiteError) -> [String: (minutes: Int64, up: Double)] {
        let table = length == HistoryBucket.minute ? "minutes" : "hours"
        let s = try db.prepare("SELECT service, sum(minutes), sum(up_minutes) FROM \(table) WHERE start >= ? AND start < ? GROUP BY service")
        try s.bind([.int(from), .int(to)])
        var out: [String: (Int64, Double)] = [:]
        while try s.step() { out[s.text(0) ?? ""] = (s.int(1), s.double(2)) }
        return out
    }

    /// Outages overlapping `[from, to)`, newest first, of one service or all.
    static func outages(service: String?, from: Date, to: Date, limit: Int, db: SQLiteConnection) throws(SQLiteError) -> [Outage] {
        let s = try db.prepare("""
            SELECT service, start_ms, end_ms, reason FROM outages
            WHERE (?1 IS NULL OR service = ?1) AND start_ms < ?3 AND (end_ms IS NULL OR end_ms >= ?2)
            ORDER BY start_ms DESC LIMIT ?4
            """)
        try s.bind([service.map { .text($0) } ?? .null, .int(ms(from)), .int(ms(to)), .int(Int64(limit))])
        var out: [Outage] = []
        while try s.step() {
            out.append(Outage(service: s.text(0) ?? "", start: date(ms: s.int(1)),
                              end: s.isNull(2) ? nil : date(ms: s.int(2)), reason: s.text(3) ?? ""))
        }
        return out
    }

    /// Events in `[from, to)` oldest first, of one group and/or service,
    /// with what their actions did.
    static func events(from: Date, to: Date, group: String?, service: String?, limit: Int, db: SQLiteConnection) throws(SQLiteError) -> [AgentEvent] {
        let s = try db.prepare("""
            SELECT json FROM events WHERE time_ms >= ?1 AND time_ms < ?2
            AND (?3 IS NULL OR grp = ?3) AND (?4 IS NULL OR service = ?4)
            ORDER BY time_ms, id LIMIT ?5
            """)
        try s.bind([.int(ms(from)), .int(ms(to)), group.map { .text($0) } ?? .null, service.map { .text($0) } ?? .null,
                    .int(Int64(limit))])
        let decoder = StoredJSON.decoder()
        var events: [AgentEvent] = []
        while try s.step() {
            if let text = s.text(0), let event = try? decoder.decode(AgentEvent.self, from: Data(text.utf8)) { events.append(event) }
        }
        let actions = try db.prepare("SELECT json FROM event_actions WHERE event_id = ? ORDER BY seq")
        for i in events.indices {
            try actions.bind([.int(Int64(bitPattern: events[i].id))])
            while try actions.step() {
                if let text = actions.text(0), let outcome = try? decoder.decode(ActionOutcome.self, from: Data(text.utf8)) {
                    events[i].actions.append(outcome)
                }
            }
            actions.reset()
        }
        return events
    }

    static func ms(_ date: Date) -> Int64 { Int64((date.timeIntervalSince1970 * 1000).rounded()) }
    static func date(ms: Int64) -> Date { Date(timeIntervalSince1970: Double(ms) / 1000) }
}
