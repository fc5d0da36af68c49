import Foundation
import VitalsCore
import VitalsSystem

/// What the scheduler's loop thread owns: the prober, the schedule and the
/// slots. Not `Sendable`: it is made by `ProbeScheduler.init`, handed whole
/// to the loop thread by `start`, and touched by that thread alone; it meets
/// other threads only through the scheduler's `shared` and `recorder`.
final class ProbeLoop {
    private let prober: any Prober
    private let sink: any ProbeResultSink
    private let next: @Sendable (String, ProbeResult) -> NextProbe
    private let maxInFlight: Int
    private var book: ScheduleBook
    private var initialServices: [ServiceConfig]
    private var slotByName: [String: Int] = [:]

    init(services: [ServiceConfig], prober: any Prober, sink: any ProbeResultSink,
         next: @escaping @Sendable (String, ProbeResult) -> NextProbe, book: ScheduleBook, maxInFlight: Int) {
        self.initialServices = services
        self.prober = prober
        self.sink = sink
        self.next = next
        self.book = book
        self.maxInFlight = maxInFlight
    }


    func run(_ scheduler: ProbeScheduler) {
        apply(initialServices, now: MonotonicInstant.now().nanoseconds, scheduler)
        initialServices = []
        var due: [(slot: Int, lateness: Int64)] = []
        var finished: [ProbeCompletion] = []
        var overrunNames: [String] = []

        while true {
            let (stop, services) = scheduler.shared.withLock { state in
                defer { state.pendingServices = nil }
                return (state.stopRequested, state.pendingServices)
            }
            if stop { break }
            var now = MonotonicInstant.now().nanoseconds
            if let services { apply(services, now: now, scheduler) }

            // Probes due within the next millisecond start now: one wakeup
            // serves several, which matters at thousands of probes a second.
            let room = maxInFlight - book.inFlightCount
            if room > 0 { book.takeDue(now: now, window: ProbeScheduler.coalescingWindow, limit: room, into: &due) }
            if !due.isEmpty {
                for (slot, _) in due {
                    prober.start(book.slot(slot)!.service, slot: slot)
                }
                let inFlight = book.inFlightCount
                scheduler.recorder.withLock { r in
                    r.started += UInt64(due.count)
                    r.inFlight = inFlight
                    for (_, lateness) in due { r.recordLateness(lateness) }
                }
                due.removeAll(keepingCapacity: true)
            }

            // At the bound, wait for a probe to finish (poll returns then).
            let wait: Duration = book.inFlightCount >= maxInFlight ? .seconds(1)
                : book.nextDue.map { .nanoseconds(max(0, $0 - now)) } ?? .seconds(1)
            prober.poll(timeout: min(wait, .seconds(1)), into: &finished)
            guard !finished.isEmpty else { continue }

            now = MonotonicInstant.now().nanoseconds
            var delivered: UInt64 = 0
            for completion in finished {
                // A result for a slot not in flight belongs to a cancelled probe.
                guard let slot = book.slot(completion.slot), slot.inFlight else { continue }
                let name = slot.service.name
                sink.deliver(completion.result, service: name)
                let kind = next(name, completion.result)
                if let decision = book.finish(completion.slot, now: now, next: kind), decision.overran {
                    overrunNames.append(name)
                }
                delivered += 1
            }
            if delivered > 0 { sink.roundEnded() }
            let inFlight = book.inFlightCount
            scheduler.recorder.withLock { r in
                r.completed += delivered
                r.inFlight = inFlight
                r.overruns += UInt64(overrunNames.count)
                for name in overrunNames { r.overrunsByService[name, default: 0] += 1 }
            }
            finished.removeAll(keepingCapacity: true)
            overrunNames.removeAll(keepingCapacity: true)
        }

        for slot in book.inFlightSlots {
            prober.cancel(slot: slot, forget: false)
            book.remove(slot)
        }
        scheduler.recorder.withLock { $0.inFlight = 0 }
    }

    private func apply(_ services: [ServiceConfig], now: Int64, _ scheduler: ProbeScheduler) {
        var wanted: [String: ServiceConfig] = [:]
        for service in services where ProbeScheduler.isProbed(service) { wanted[service.name] = service }

        for (name, slot) in slotByName {
            guard let current = book.slot(slot) else { continue }
            if let replacement = wanted[name] {
                if replacement.check != current.service.check || replacement.timing != current.service.timing {
                    prober.cancel(slot: slot, forget: true)
                    book.replace(slot, with: replacement, now: now)
                } else if replacement != current.service {
                    book.setService(slot, replacement) // e.g. depends_on changed: nothing to re-plan
                }
            } else {
                prober.cancel(slot: slot, forget: true)
                book.remove(slot)
                slotByName[name] = nil
            }
        }
        for service in services where ProbeScheduler.isProbed(service) && slotByName[service.name] == nil {
            slotByName[service.name] = book.add(service, now: now)
        }
        let inFlight = book.inFlightCount
        scheduler.recorder.withLock { $0.inFlight = inFlight }
    }
}
