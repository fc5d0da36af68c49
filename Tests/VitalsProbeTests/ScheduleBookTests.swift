import Testing
import VitalsCore
@testable import VitalsProbe
import VitalsSystem

@Suite("Scheduling decisions (pure)")
struct ScheduleBookTests {
    let ms: Int64 = 1_000_000

    func service(_ name: String, interval: Duration = .milliseconds(100), fast: Duration? = nil,
                 jitter: Duration = .zero) -> ServiceConfig {
        ServiceConfig(name: name, check: .tcp(TCPCheck(host: "127.0.0.1", port: 1)),
                      timing: ProbeTiming(interval: interval, jitter: jitter, fastInterval: fast))
    }

    @Test func fnv1aTestVectors() {
        #expect(ProbePhase.fnv1a("") == 0xcbf2_9ce4_8422_2325)
        #expect(ProbePhase.fnv1a("a") == 0xaf63_dc4c_8601_ec8c)
        #expect(ProbePhase.fnv1a("foobar") == 0x8594_4171_f739_67e8)
    }

    @Test func phasesSpreadAcrossTheInterval() {
        var buckets = [Int](repeating: 0, count: 10)
        for i in 0..<1000 {
            let offset = ProbePhase.offset(for: "service-\(i)", interval: .seconds(1))
            #expect(offset >= .zero && offset < .seconds(1))
            buckets[Int(offset.nanosecondCount / 100_000_000)] += 1
        }
        // 100 expected per 100ms bucket.
        #expect(buckets.allSatisfy { (60...140).contains($0) }, "\(buckets)")
        // Deterministic: the same name always lands in the same place.
        #expect(ProbePhase.offset(for: "api", interval: .seconds(1)) == ProbePhase.offset(for: "api", interval: .seconds(1)))
        #expect(ProbePhase.offset(for: "api", interval: .seconds(1)) == .nanoseconds(Int64(ProbePhase.fnv1a("api") % 1_000_000_000)))
    }

    @Test func firstProbeAtThePhase() {
        var book = ScheduleBook(seed: 1)
        let start: Int64 = 5_000 * ms
        let slot = book.add(service("api"), now: start)
        let phase = ProbePhase.offset(for: "api", interval: .milliseconds(100)).nanosecondCount
        #expect(book.nextDue == start + phase)
        var due: [(slot: Int, lateness: Int64)] = []
        book.takeDue(now: start + phase - 1, into: &due)
        #expect(due.isEmpty)
        book.takeDue(now: start + phase + 2 * ms, into: &due)
        #expect(due.map(\.slot) == [slot])
        #expect(due.map(\.lateness) == [2 * ms])
    }

    @Test func probesFollowTheGrid() {
        var book = ScheduleBook(seed: 1)
        let slot = book.add(service("api"), now: 0)
        var due: [(slot: Int, lateness: Int64)] = []
        var planned = book.nextDue!
        for _ in 0..<5 {
            book.takeDue(now: planned, into: &due)
            #expect(due.map(\.slot) == [slot])
            due.removeAll()
            let decision = book.finish(slot, now: planned + 30 * ms, next: .normal)
            #expect(decision == .init(overran: false, nextPlanned: planned + 100 * ms))
            planned += 100 * ms
        }
    }

    @Test func anOverrunIsNotDoubled() {
        var book = ScheduleBook(seed: 1)
        let slot = book.add(service("slow"), now: 0)
        let planned = book.nextDue!
        var due: [(slot: Int, lateness: Int64)] = []
        book.takeDue(now: planned, into: &due)
        #expect(due.count == 1)
        due.removeAll()
        // The next probe falls due while this one is still running: nothing starts.
        book.takeDue(now: planned + 150 * ms, into: &due)
        #expect(due.isEmpty)
        #expect(book.inFlightCount == 1)
        // It ends late: counted, and the next starts at once.
        let end = planned + 250 * ms
        #expect(book.finish(slot, now: end, next: .normal) == .init(overran: true, nextPlanned: end))
        book.takeDue(now: end, into: &due)
        #expect(due.map(\.slot) == [slot])
        #expect(due.map(\.lateness) == [0])
        // The grid is re-anchored at the late end.
        #expect(book.finish(slot, now: end + 10 * ms, next: .normal) == .init(overran: false, nextPlanned: end + 100 * ms))
    }

    @Test func fastIntervalAfterAFastAnswer() {
        var book = ScheduleBook(seed: 1)
        let slot = book.add(service("api", interval: .seconds(1), fast: .milliseconds(50)), now: 0)
        var base = book.nextDue!
        var due: [(slot: Int, lateness: Int64)] = []
        book.takeDue(now: base, into: &due)
        #expect(book.finish(slot, now: base + ms, next: .fast)?.nextPlanned == base + 50 * ms)
        base += 50 * ms
        book.takeDue(now: base, into: &due)
        #expect(book.finish(slot, now: base + ms, next: .normal)?.nextPlanned == base + 1000 * ms)
    }

    @Test func jitterStaysWithinItsBound() {
        var book = ScheduleBook(seed: 42)
        let slot = book.add(service("api", jitter: .milliseconds(30)), now: 0)
        let phase = ProbePhase.offset(for: "api", interval: .milliseconds(100)).nanosecondCount
        var due: [(slot: Int, lateness: Int64)] = []
        var offsets: Set<Int64> = []
        for cycle in 0..<200 {
            let planned = book.nextDue!
            let base = phase + Int64(cycle) * 100 * ms
            #expect(planned >= base && planned <= base + 30 * ms)
            offsets.insert(planned - base)
            book.takeDue(now: planned, into: &due)
            _ = book.finish(slot, now: planned + ms, next: .normal)
        }
        #expect(offsets.count > 100)
    }

    @Test func removedAndReplacedServices() {
        var book = ScheduleBook(seed: 1)
        let a = book.add(service("a"), now: 0)
        let b = book.add(service("b"), now: 0)
        book.remove(a)
        var due: [(slot: Int, lateness: Int64)] = []
        book.takeDue(now: 1_000 * ms, into: &due)
        #expect(due.map(\.slot) == [b])
        // Replacing an in-flight slot plans it afresh; the old run's end is ignored.
        book.replace(b, with: service("b", interval: .milliseconds(500)), now: 1_000 * ms)
        #expect(book.inFlightCount == 0)
        #expect(book.finish(b, now: 1_001 * ms, next: .normal) == nil)
        let c = book.add(service("c"), now: 1_000 * ms)
        #expect(c == a) // the freed slot is reused
    }
}
