/// A fixed-capacity FIFO that drops its oldest element when full.
/// Appending is O(1); reading `elements` copies, oldest first.
struct RingBuffer<Element: Sendable>: Sendable {
    /// The most elements kept. Zero keeps nothing.
    let capacity: Int
    private var storage: [Element] = []
    /// Index of the oldest element once the buffer is full; 0 until then.
    private var head = 0

    init(capacity: Int) {
        self.capacity = max(0, capacity)
        storage.reserveCapacity(self.capacity)
    }

    var count: Int { storage.count }
    var isEmpty: Bool { storage.isEmpty }

    mutating func append(_ element: Element) {
        guard capacity > 0 else { return }
        if storage.count < capacity {
            storage.append(element)
        } else {
            storage[head] = element
            head = (head + 1) % capacity
        }
    }

    /// Oldest first.
    var elements: [Element] {
        Array(storage[head...]) + Array(storage[..<head])
    }

    /// The newest element.
    var last: Element? {
        storage.isEmpty ? nil : storage[(head + storage.count - 1) % storage.count]
    }

    mutating func removeAll() {
        storage.removeAll(keepingCapacity: true)
        head = 0
    }
}
