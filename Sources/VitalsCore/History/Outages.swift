import Foundation

/// A span during which a service was down or flapping, as its state
/// changes said: from the change into down or flapping to the change out
/// of them. `end` is nil while it lasts.
public struct Outage: Sendable, Equatable {
    public var service: String
    public var start: Date
    public var end: Date?
    /// The reason of the change that began it ("status 503, expected 200-299").
    public var reason: String

    public init(service: String, start: Date, end: Date? = nil, reason: String) {
        self.service = service
        self.start = start
        self.end = end
        self.reason = reason
    }

    public var duration: Duration? { end.map { $0.duration(since: start) } }
}

/// Turns state-change events into outages. Pure: the history writer stores
/// what it returns.
public struct OutageTracker: Sendable {
    public enum Change: Sendable, Equatable {
        case opened(Outage)
        case closed(Outage)
    }

    public private(set) var open: [String: Outage] = [:]

    public init() {}

    static func isOutage(_ state: String?) -> Bool {
        state == HealthState.down.rawValue || state == HealthState.flapping.rawValue
    }

    public mutating func apply(_ event: AgentEvent) -> [Change] {
        guard event.kind == .stateChange, let service = event.service else { return [] }
        if Self.isOutage(event.to) {
            guard open[service] == nil else { return [] }
            let outage = Outage(service: service, start: event.time, reason: event.reason)
            open[service] = outage
            return [.opened(outage)]
        }
        guard var outage = open.removeValue(forKey: service) else { return [] }
        outage.end = max(event.time, outage.start)
        return [.closed(outage)]
    }

    /// At start: services already down (restored from the snapshot) are in
    /// an outage from `time`, since what happened while the agent was
    /// stopped is not known.
    public mutating func seed(down services: [String], at time: Date, reason: String) -> [Change] {
        var changes: [Change] = []
        for service in services where open[service] == nil {
            let outage = Outage(service: service, start: time, reason: reason)
            open[service] = outage
            changes.append(.opened(outage))
        }
        return changes
    }
}
