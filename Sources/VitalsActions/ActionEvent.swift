import Foundation

/// What an action is told about: one decision of the engine, flattened.
///
/// The engine maps its own event type to this one and renders the full event
/// document (`json`) itself; runners only pass those bytes on: on stdin for
/// `exec`, as the POST body for `webhook`, as the log line for `log`.
public struct ActionEvent: Sendable, Equatable {
    /// Unique across the journal; actions may use it to be idempotent.
    public var id: String
    /// When the decision was made (wall clock).
    public var time: Date
    /// What happened, as named in `on:`: "failover", "group_down", ...
    public var kind: String
    public var group: String?
    public var service: String?
    /// The member traffic leaves, when there is one.
    public var from: String?
    /// The member traffic goes to, when there is one.
    public var to: String?
    /// Why, in an operator's words.
    public var reason: String
    /// The full event document, UTF-8 JSON.
    public var json: [UInt8]

    public init(id: String, time: Date, kind: String, group: String? = nil, service: String? = nil,
                from: String? = nil, to: String? = nil, reason: String, json: [UInt8]) {
        self.id = id
        self.time = time
        self.kind = kind
        self.group = group
        self.service = service
        self.from = from
        self.to = to
        self.reason = reason
        self.json = json
    }

    /// `time` as ISO 8601 in UTC with milliseconds: `2027-01-15T08:00:00.250Z`.
    public var timeText: String {
        Date.ISO8601FormatStyle(includingFractionalSeconds: true, timeZone: TimeZone(secondsFromGMT: 0)!).format(time)
    }
}
