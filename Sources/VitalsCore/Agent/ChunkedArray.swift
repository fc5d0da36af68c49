/// An array stored in fixed-size chunks, each copied on write by itself.
///
/// The agent publishes a copy of its state after every round of decisions
/// while the probe loop goes on changing it. With a plain array the first
/// change after each publication copies every element (10,000 services:
/// thousands of copies a second at start-up); here it copies one chunk and
/// the list of chunks.
public struct ChunkedArray<Element>: RandomAccessCollection, MutableCollection {
    /// 256: a few kilobytes copied per change, a few dozen chunks at 10,000 elements.
    public static var chunkSize: Int { 256 }
    private var chunks: [[Element]] = []
    public private(set) var count = 0

    public init() {}

    public init(_ elements: some Sequence<Element>) {
        for element in elements { append(element) }
    }

    public var startIndex: Int { 0 }
    public var endIndex: Int { count }

    public subscript(position: Int) -> Element {
        get {
            precondition(position >= 0 && position < count, "index \(position) out of range 0..<\(count)")
            return chunks[position / Self.chunkSize][position % Self.chunkSize]
        }
        set {
            precondition(position >= 0 && position < count, "index \(position) out of range 0..<\(count)")
            chunks[position / Self.chunkSize][position % Self.chunkSize] = newValue
        }
    }

    public mutating func append(_ element: Element) {
        if count % Self.chunkSize == 0 {
            var chunk: [Element] = []
            chunk.reserveCapacity(Self.chunkSize)
            chunks.append(chunk)
        }
        chunks[chunks.count - 1].append(element)
        count += 1
    }
}

extension ChunkedArray: Sendable where Element: Sendable {}
