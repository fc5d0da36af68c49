/// A fixed-size tail of a byte stream: keeps the last `limit` bytes appended
/// and counts them all (`vitals exec` keeps its job's output in one).
public struct ByteTail: Sendable, Equatable {
    public let limit: Int
    public private(set) var totalBytes = 0
    private var ring: [UInt8] = []
    private var start = 0

    public init(limit: Int) {
        self.limit = max(0, limit)
    }

    public mutating func append(_ bytes: some Collection<UInt8>) {
        totalBytes += bytes.count
        guard limit > 0 else { return }
        for byte in bytes.suffix(limit) {
            if ring.count < limit {
                ring.append(byte)
            } else {
                ring[start] = byte
                start = (start + 1) % limit
            }
        }
    }

    /// The kept bytes, oldest first.
    public var bytes: [UInt8] { Array(ring[start...] + ring[..<start]) }
}
