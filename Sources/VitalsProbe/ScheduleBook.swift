import VitalsCore
import VitalsSystem

/// Where in its interval a service's probes fall: a stable hash of the name
/// (FNV-1a, 64-bit; not Swift's per-process randomized `Hasher`), so a
/// thousand services on the same interval spread evenly across it, and each
/// keeps its place across restarts.
public enum ProbePhase {
    /// FNV-1a over the UTF-8 bytes of `text`.
    public static func fnv1a(_ text: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01b3
        }
        return hash
    }

    /// The offset of `name`'s first probe within `interval`: in `0..<interval`.
    public static func offset(for name: String, interval: Duration) -> Duration {
        let span = interval.nanosecondCount
        guard span > 0 else { return .zero }
        return .nanoseconds(Int64(fnv1a(name) % UInt64(span)))
    }
}

/// SplitMix64: a tiny, fast generator for jitter. Not for secrets.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}

/// The scheduler's decisions, as a value driven with explicit monotonic times
/// (nanoseconds), so tests need no threads and no clock.
///
/// Each service sits on a grid: its first probe is planned at `start +
/// phase(name)` (the phase spread over the interval, or over the first second
/// for longer intervals), each next one `interval` (or `fastInterval` after a `.fast`
/// answer) after the previous grid point, plus fresh jitter in `0...jitter`.
/// A probe still in flight when its next one falls due is never doubled: the
/// overrun is counted and the next probe starts as soon as this one ends,
/// with the grid re-anchored there.
struct ScheduleBook {
    struct Slot {
        var service: ServiceConfig
        var interval: Int64
        var fastInterval: Int64
        var jitter: Int64
        /// The current grid point (planned start before jitter).
        var base: Int64
        /// When the next probe is planned (base + jitter), or the running one was.
        var planned: Int64
        var generation: UInt32
        var inFlight: Bool
    }

    /// What `finish` decided.
    struct Finish: Equatable {
        var overran: Bool
        /// When the next probe is planned.
        var nextPlanned: Int64
    }

    private struct Due {
        var time: Int64
        var slot: Int32
        var generation: UInt32
    }

    private(set) var slots: [Slot?] = []
    private var freeSlots: [Int] = []
    private var heap: [Due] = []
    private var random: SplitMix64
    private(set) var inFlightCount = 0

    /// The widest spread of first probes after a service is added.
    static let maxInitialSpread: Duration = .seconds(1)

    init(seed: UInt64) {
        random = SplitMix64(seed: seed)
    }

    func slot(_ index: Int) -> Slot? { index < slots.count ? slots[index] : nil }

    /// Adds a service; its first probe is planned at `now + phase + jitter`.
    mutating func add(_ service: ServiceConfig, now: Int64) -> Int {
        let index: Int
        if let free = freeSlots.popLast() {
            index = free
        } else {
            index = slots.count
            slots.append(nil)
        }
        place(service, in: index, generation: 0, now: now)
        return index
    }

    /// Puts a new configuration in an existing slot, planned afresh. The slot
    /// must not be in flight (cancel the probe first).
    mutating func replace(_ index: Int, with service: ServiceConfig, now: Int64) {
        let generation = (slots[index]?.generation ?? 0) &+ 1
        if slots[index]?.inFlight == true { inFlightCount -= 1 }
        place(service, in: index, generation: generation, now: now)
    }

    /// Swaps in a configuration whose check and timing are unchanged.
    mutating func setService(_ index: Int, _ service: ServiceConfig) {
        slots[index]?.service = service
    }

    /// Removes a service; any heap entry for it goes stale.
    mutating func remove(_ index: Int) {
        guard let slot = slots[index] else { return }
        if slot.inFlight { inFlightCount -= 1 }
        slots[index] = nil
        freeSlots.append(index)
    }

    private mutating func place(_ service: ServiceConfig, in index: Int, generation: UInt32, now: Int64) {
        let timing = service.timing
        let interval = max(1, timing.interval.nanosecondCount)
        // The phase spreads services across their interval, but across at
        // most the first second: a service probed every minute is still
        // probed right after start, so the first round completes promptly.
        let spread = min(timing.interval, Self.maxInitialSpread)
        let base = now + ProbePhase.offset(for: service.name, interval: spread).nanosecondCount
        var slot = Slot(service: service, interval: interval,
                        fastInterval: max(1, timing.effectiveFastInterval.nanosecondCount),
                        jitter: max(0, timing.jitter.nanosecondCount),
                        base: base, planned: base, generation: generation, inFlight: false)
        slot.planned = base + jitter(slot.jitter)
        slots[index] = slot
        push(Due(time: slot.planned, slot: Int32(index), generation: generation))
    }

    /// The earliest planned start, if any (possibly of a stale entry, which
    /// only makes the caller look a little early).
    var nextDue: Int64? { heap.first?.time }

    /// Takes every probe due by `now + window`, marks it in flight, and
    /// appends its slot and lateness (now − planned, in nanoseconds; negative
    /// when started early within the window).
    /// At most `limit` probes are taken; the rest stay due for the next call.
    mutating func takeDue(now: Int64, window: Int64 = 0, limit: Int = .max,
                          into due: inout [(slot: Int, lateness: Int64)]) {
        var taken = 0
        while taken < limit, let top = heap.first, top.time <= now + window {
            popTop()
            let index = Int(top.slot)
            guard var slot = slots[index], slot.generation == top.generation, !slot.inFlight else { continue }
            slot.inFlight = true
            slots[index] = slot
            inFlightCount += 1
            taken += 1
            due.append((index, now - slot.planned))
        }
    }

    /// Records the end of the probe in `index` at `now` and plans the next.
    mutating func finish(_ index: Int, now: Int64, next: NextProbe) -> Finish? {
        guard var slot = slots[index], slot.inFlight else { return nil }
        slot.inFlight = false
        inFlightCount -= 1
        let step = next == .fast ? slot.fastInterval : slot.interval
        let nextBase = slot.base + step
        let nextPlanned = nextBase + jitter(slot.jitter)
        let overran = nextPlanned <= now
        if overran {
            slot.base = now
            slot.planned = now
        } else {
            slot.base = nextBase
            slot.planned = nextPlanned
        }
        slots[index] = slot
        push(Due(time: slot.planned, slot: Int32(index), generation: slot.generation))
        return Finish(overran: overran, nextPlanned: slot.planned)
    }

    /// Slots with a probe in flight.
    var inFlightSlots: [Int] {
        slots.indices.filter { slots[$0]?.inFlight == true }
    }

    private mutating func jitter(_ bound: Int64) -> Int64 {
        bound > 0 ? Int64.random(in: 0...bound, using: &random) : 0
    }

    // MARK: Binary min-heap on `time`

    private mutating func push(_ item: Due) {
        heap.append(item)
        var child = heap.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard heap[child].time < heap[parent].time else { break }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    private mutating func popTop() {
        let last = heap.removeLast()
        guard !heap.isEmpty else { return }
        heap[0] = last
        var parent = 0
        while true {
            let left = 2 * parent + 1
            let right = left + 1
            var smallest = parent
            if left < heap.count && heap[left].time < heap[smallest].time { smallest = left }
            if right < heap.count && heap[right].time < heap[smallest].time { smallest = right }
            if smallest == parent { return }
            heap.swapAt(parent, smallest)
            parent = smallest
        }
    }
}
