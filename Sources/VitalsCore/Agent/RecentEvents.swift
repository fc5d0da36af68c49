/// The last N events in memory, for `/v1/events`, the status page and the
/// target check before actions. Ids increase, so lookups search from the newest.
public struct RecentEvents: Sendable {
    private var items: [AgentEvent] = []
    public let capacity: Int

    public init(capacity: Int) { self.capacity = capacity }

    mutating func append(contentsOf events: [AgentEvent]) {
        items.append(contentsOf: events)
        if items.count > capacity { items.removeFirst(items.count - capacity) }
    }

    mutating func update(_ id: UInt64, _ body: (inout AgentEvent) -> Void) {
        if let i = items.lastIndex(where: { $0.id == id }) { body(&items[i]) }
    }

    public func event(_ id: UInt64) -> AgentEvent? {
        items.last { $0.id == id }
    }

    /// Events with an id above `id`, oldest first, at most `limit`.
    public func after(_ id: UInt64, limit: Int) -> [AgentEvent] {
        let start = items.firstIndex { $0.id > id } ?? items.endIndex
        return Array(items[start...].prefix(limit))
    }

    public var all: [AgentEvent] { items }
}
