import Foundation
import VitalsCore
import VitalsHistory
import VitalsHTTP

/// The history routes: `GET /v1/services/{name}/history`, `/uptime`,
/// `GET /v1/outages` and `GET /v1/events?from=…`. They read
/// `history.sqlite` through the recorder's read connection, on a queue of
/// their own (see `handle(_:deferral:)`): never the decision path, never the
/// server's loop.
extension StatusAPI {
    /// Whether `request` asks the history store; then `historyResponse` answers it.
    func isHistoryRoute(_ request: HTTPRequest) -> Bool {
        let path = request.pathSegments
        guard path.first == "v1", history != nil else { return false }
        switch (path.count, path.dropFirst().first) {
        case (4, "services"): return path[3] == "history" || path[3] == "uptime"
        case (4, "groups"): return path[3] == "uptime"
        case (2, "outages"): return true
        case (2, "events"):
            return ["from", "to", "group", "service"].contains { request.queryValue($0) != nil }
        default: return false
        }
    }

    func historyResponse(_ request: HTTPRequest) -> HTTPResponse {
        guard request.method == .get || request.method == .head else { return notAllowed([.get, .head]) }
        guard let history else { return .error(status: .notFound, message: "no such path: \(request.path)") }
        let path = Array(request.pathSegments.dropFirst())
        let now = clock.now()
        func time(_ key: String, _ fallback: Date) -> Result<Date, HistoryRequestError> {
            guard let text = request.queryValue(key) else { return .success(fallback) }
            guard let date = HistoryTime.parse(text, now: now) else {
                return .failure(.init("\(key): expected a time (2027-01-15T10:00:00Z, seconds since 1970) or a duration ago (7d, 90m), got \"\(text)\""))
            }
            return .success(date)
        }
        do {
            switch path.first {
            case "groups":
                let name = path[1]
                guard let group = owner.view.config.group(named: name) else {
                    return .error(status: .notFound, message: "no such group: \(name)")
                }
                let from = try request.queryValue("from").map { _ in try time("from", now).get() }
                let to = try time("to", now).get()
                let answer = try history.read { q throws(SQLiteError) in
                    var windows: [String: UptimeDoc] = [:]
                    for window in HistoryRecorder.windows {
                        let start = now.addingTimeInterval(-Double(window.seconds))
                        windows[window.name] = UptimeDoc(try q.groupUptime(group: name, members: group.members, from: start, to: now))
                    }
                    var range: UptimeDoc?
                    if let from { range = UptimeDoc(try q.groupUptime(group: name, members: group.members, from: from, to: to)) }
                    return GroupUptimeAnswer(group: name, members: group.members, windows: windows, range: range)
                }
                return .json(body: view.encode(answer))
            case "services":
                let name = path[1]
                guard owner.view.config.service(named: name) != nil else {
                    return .error(status: .notFound, message: "no such service: \(name)")
                }
                if path[2] == "uptime" {
                    let from = try request.queryValue("from").map { _ in try time("from", now).get() }
                    let to = try time("to", now).get()
                    return try answerUptime(name, history: history, from: from, to: to, now: now)
                }
                let to = try time("to", now).get()
                var step: Int64 = 60
                if let text = request.queryValue("step") {
                    guard let value = HistoryTime.step(text) else {
                        throw HistoryRequestError("step: expected whole minutes (1m, 5m, 1h), got \"\(text)\"")
                    }
                    step = value
                }
                let from = try time("from", to.addingTimeInterval(-Double(step * 90))).get()
                guard from < to else { throw HistoryRequestError("from must be before to") }
                guard (to.timeIntervalSince(from) / Double(step)) <= 2000 else {
                    throw HistoryRequestError("at most 2000 points a request: widen step or narrow from..to")
                }
                return try answerSeries(name, history: history, from: from, to: to, step: step)
            case "outages":
                let service = request.queryValue("service")
                if let service, owner.view.config.service(named: service) == nil {
                    return .error(status: .notFound, message: "no such service: \(service)")
                }
                let from = try time("from", now.addingTimeInterval(-30 * 86_400)).get()
                let to = try time("to", now).get()
                let outages = try history.read { q throws(SQLiteError) in try q.outages(service: service, from: from, to: to) }
                return .json(body: view.encode(OutageList(outages: outages.map { OutageDoc($0, now: now) })))
            default: // events
                let from = try time("from", now.addingTimeInterval(-86_400)).get()
                let to = try time("to", now).get()
                var limit = 1000
                if let text = request.queryValue("limit") {
                    guard let value = Int(text), (1...10_000).contains(value) else {
                        throw HistoryRequestError("limit: expected a whole number from 1 to 10000, got \"\(text)\"")
                    }
                    limit = value
                }
                let group = request.queryValue("group"), service = request.queryValue("service")
                let events = try history.read { q throws(SQLiteError) in
                    try q.events(from: from, to: to, group: group, service: service, limit: limit)
                }
                return .json(body: view.encode(EventList(events: events, lastId: events.last?.id ?? 0)))
            }
        } catch let error as HistoryRequestError {
            return .error(status: .badRequest, message: error.message)
        } catch {
            return .error(status: .serviceUnavailable, message: "history is not available: \(error)")
        }
    }

    private func answerUptime(_ name: String, history: HistoryRecorder, from: Date?, to: Date, now: Date) throws -> HTTPResponse {
        let figures = try history.read { q throws(SQLiteError) in
            var windows: [String: UptimeDoc] = [:]
            for window in HistoryRecorder.windows {
                let start = now.addingTimeInterval(-Double(window.seconds))
                windows[window.name] = UptimeDoc(try q.uptime(service: name, from: start, to: now))
            }
            var range: UptimeDoc?
            if let from { range = UptimeDoc(try q.uptime(service: name, from: from, to: to)) }
            return UptimeAnswer(service: name, windows: windows, range: range,
                                dataUntil: q.dataUntil)
        }
        return .json(body: view.encode(figures))
    }

    private func answerSeries(_ name: String, history: HistoryRecorder, from: Date, to: Date, step: Int64) throws -> HTTPResponse {
        let answer = try history.read { q throws(SQLiteError) in
            let points = try q.series(service: name, from: from, to: to, step: step)
            return SeriesAnswer(service: name, from: from, to: to, stepSeconds: step,
                                points: points.map(PointDoc.init), dataUntil: q.dataUntil)
        }
        return .json(body: view.encode(answer))
    }
}

struct HistoryRequestError: Error {
    var message: String
    init(_ message: String) { self.message = message }
}

struct UptimeDoc: Encodable, Sendable {
    struct Gap: Encodable, Sendable {
        var from: Date
        var to: Date
    }
    var from: Date
    var to: Date
    /// Null when no minute of the span has data.
    var ratio: Double?
    var observedSeconds: Int64
    var downSeconds: Double
    var noDataSeconds: Int64
    var resolutionSeconds: Int64
    /// At minute resolution, the runs of minutes without data (at most 100, the latest).
    var gaps: [Gap]?
    var gapsOmitted: Int?

    init(_ f: UptimeFigure) {
        from = Date(timeIntervalSince1970: Double(f.from))
        to = Date(timeIntervalSince1970: Double(f.to))
        ratio = f.ratio
        observedSeconds = f.observedSeconds
        downSeconds = (f.downSeconds * 1000).rounded() / 1000
        noDataSeconds = f.noDataSeconds
        resolutionSeconds = f.gaps == nil ? 3600 : 60
        if let all = f.gaps {
            gaps = all.suffix(100).map { Gap(from: Date(timeIntervalSince1970: Double($0.from)), to: Date(timeIntervalSince1970: Double($0.to))) }
            gapsOmitted = all.count > 100 ? all.count - 100 : nil
        }
    }
}

struct UptimeAnswer: Encodable, Sendable {
    var service: String
    /// `24h`, `7d`, `30d`, each ending now.
    var windows: [String: UptimeDoc]
    /// The span asked for with `from` (and `to`), if any.
    var range: UptimeDoc?
    /// Minutes before this are on disk; the minute in progress is not yet.
    var dataUntil: Date?
}

struct GroupUptimeAnswer: Encodable, Sendable {
    var group: String
    var members: [String]
    /// Minutes when at least one member served, over the minutes with data.
    var windows: [String: UptimeDoc]
    var range: UptimeDoc?
}

struct PointDoc: Encodable, Sendable {
    /// Milliseconds, to the microsecond.
    struct Latency: Encodable, Sendable {
        var min: Double
        var max: Double
        var avg: Double
        var p50: Double
        var p95: Double
        var p99: Double
    }
    var time: Date
    var state: BucketState
    var probes: Int64
    var failures: Int64
    var degraded: Int64
    /// Serving share of the minutes with data; null without data.
    var uptime: Double?
    var noDataSeconds: Int64
    var latencyMs: Latency?

    init(_ p: HistoryPoint) {
        time = Date(timeIntervalSince1970: Double(p.time))
        state = p.state
        probes = p.bucket.probes
        failures = p.bucket.failures
        degraded = p.bucket.degraded
        uptime = p.uptime.map { ($0 * 1e6).rounded() / 1e6 }
        noDataSeconds = max(0, p.step - p.bucket.minutes * 60)
        if let avg = p.latencyAverageUs, let p50 = p.latencyUs(0.5), let p95 = p.latencyUs(0.95), let p99 = p.latencyUs(0.99) {
            func ms(_ us: Double) -> Double { us.rounded() / 1000 }
            latencyMs = Latency(min: ms(Double(p.bucket.latencyMinUs)), max: ms(Double(p.bucket.latencyMaxUs)), avg: ms(avg),
                                p50: ms(p50), p95: ms(p95), p99: ms(p99))
        }
    }
}

struct SeriesAnswer: Encodable, Sendable {
    var service: String
    var from: Date
    var to: Date
    var stepSeconds: Int64
    var points: [PointDoc]
    var dataUntil: Date?
}

struct OutageDoc: Encodable, Sendable {
    var service: String
    var start: Date
    /// Null while it lasts.
    var end: Date?
    var durationSeconds: Double
    var ongoing: Bool
    var reason: String

    init(_ o: Outage, now: Date) {
        service = o.service
        start = o.start
        end = o.end
        durationSeconds = ((o.end ?? now).timeIntervalSince(o.start) * 1000).rounded() / 1000
        ongoing = o.end == nil
        reason = o.reason
    }
}

struct OutageList: Encodable, Sendable {
    var outages: [OutageDoc]
}
