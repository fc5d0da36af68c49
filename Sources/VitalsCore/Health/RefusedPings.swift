import Foundation

/// Counts pings refused for a wrong key and decides when to say so: the
/// first one at once, then at most one summary per `interval`, with the
/// count, the rate and where they came from. A guesser hammering
/// `/v1/ping/…` costs one log line a minute, not one per attempt. Pure.
public struct RefusedPings: Sendable {
    public let interval: Duration
    /// Every refusal since the agent started.
    public private(set) var total: UInt64 = 0
    /// Refusals not yet logged, since `windowStart`.
    private var pending = 0
    private var windowStart: Date?
    private var lastLogged: Date?
    /// Addresses seen in the window, in the order they came (at most `shownAddresses` kept).
    private var addresses: [String] = []
    /// Distinct addresses in the window, up to `countedAddresses`, so a flood from many cannot grow it without bound.
    private var seen: Set<String> = []
    private static let shownAddresses = 3
    private static let countedAddresses = 1024

    public init(interval: Duration = .seconds(60)) {
        self.interval = interval
    }

    /// Records one refusal from `address`; returns a line to log, if one is due.
    public mutating func refused(from address: String?, at now: Date) -> String? {
        total += 1
        pending += 1
        if windowStart == nil { windowStart = now }
        let address = address ?? "an unknown address"
        if seen.count < Self.countedAddresses, seen.insert(address).inserted, addresses.count < Self.shownAddresses {
            addresses.append(address)
        }
        guard let lastLogged else {
            // The first one ever: said at once.
            self.lastLogged = now
            defer { reset() }
            return "refused a ping with a wrong key from \(address); more are counted and logged at most once every "
                + DurationText.format(interval)
        }
        return now >= lastLogged.adding(interval) ? summary(at: now) : nil
    }

    /// The summary of refusals not yet logged, once `interval` has passed since the last line.
    public mutating func due(at now: Date) -> String? {
        guard pending > 0, let lastLogged, now >= lastLogged.adding(interval) else { return nil }
        return summary(at: now)
    }

    private mutating func summary(at now: Date) -> String {
        let since = lastLogged ?? windowStart ?? now
        let span = max(now.duration(since: since), .seconds(1))
        let rate = Double(pending) / span.seconds
        let more = seen.count - addresses.count
        let from = more == 0 ? addresses.joined(separator: ", ")
            : addresses.joined(separator: ", ") + " and \(seen.count == Self.countedAddresses ? "at least " : "")\(more) more"
        let line = "refused \(pending) ping\(pending == 1 ? "" : "s") with a wrong key in the last "
            + "\(DurationText.format(span)) (\(String(format: "%.2f", rate))/s) from \(from); \(total) since start"
        lastLogged = now
        reset()
        return line
    }

    private mutating func reset() {
        pending = 0
        windowStart = nil
        addresses = []
        seen = []
    }
}
