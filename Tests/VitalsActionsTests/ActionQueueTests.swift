import Foundation
import Synchronization
import Testing
@testable import VitalsActions
import VitalsCore
import VitalsTestKit

/// Records "start NAME" / "end NAME" for every action it runs; each takes `delay`.
final class TimelineRunner: ActionRunner {
    private let entries = Mutex<[String]>([])
    let delay: Duration
    init(delay: Duration = .milliseconds(20)) { self.delay = delay }

    var timeline: [String] { entries.withLock { $0 } }

    func run(_ event: AgentEvent, action: ActionConfig) async -> ActionOutcome {
        entries.withLock { $0.append("start \(action.name)") }
        try? await Task.sleep(for: delay)
        entries.withLock { $0.append("end \(action.name)") }
        return .notRun(action, event: event, result: .ok, at: Date())
    }
}

/// Actions named `block-*` wait for the gate (or for cancellation); others return at once.
struct GatedRunner: ActionRunner {
    let gate: Gate
    func run(_ event: AgentEvent, action: ActionConfig) async -> ActionOutcome {
        if action.name.hasPrefix("block") { await gate.wait() }
        return .notRun(action, event: event, result: .ok, at: Date())
    }
}

/// Hangs until cancelled, like an action stuck on a dead NFS mount.
struct HangingRunner: ActionRunner {
    func run(_ event: AgentEvent, action: ActionConfig) async -> ActionOutcome {
        if action.name.hasPrefix("hang") {
            try? await Task.sleep(for: .seconds(3600))
            return .notRun(action, event: event, result: .cancelled, at: Date())
        }
        return .notRun(action, event: event, result: .ok, at: Date())
    }
}

func logAction(_ name: String) -> ActionConfig { ActionConfig(name: name, kind: .log) }

@Suite("ActionQueue")
struct ActionQueueTests {
    @Test("one group's actions run strictly in order, one at a time")
    func orderedWithinGroup() async {
        let runner = TimelineRunner()
        let recorder = OutcomeRecorder()
        let queue = ActionQueue(registry: ActionRunnerRegistry(["log": runner]), deliver: recorder.deliver)
        queue.enqueue(sampleEvent(id: 1), actions: [logAction("a1"), logAction("a2")])
        queue.enqueue(sampleEvent(id: 2), actions: [logAction("b1")])
        queue.enqueue(sampleEvent(id: 3), actions: [logAction("c1"), logAction("c2")])
        let outcomes = await recorder.wait(for: 5)

        #expect(outcomes.map(\.action) == ["a1", "a2", "b1", "c1", "c2"])
        #expect(outcomes.map(\.eventID) == [1, 1, 2, 3, 3])
        #expect(runner.timeline == ["start a1", "end a1", "start a2", "end a2", "start b1", "end b1",
                                    "start c1", "end c1", "start c2", "end c2"])
        #expect(await queue.shutdown(grace: .seconds(1)))
    }

    @Test("real scripts of one group never overlap")
    func scriptsInOrder() async throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let log = scratch.file("log")
        let script = try scratch.script("step.sh", """
            echo "start $VITALS_ACTION" >> "\(log)"
            sleep 0.05
            echo "end $VITALS_ACTION" >> "\(log)"
            """)
        let recorder = OutcomeRecorder()
        let queue = ActionQueue(registry: .standard(log: { _ in }), deliver: recorder.deliver)
        for i in 1...3 {
            queue.enqueue(sampleEvent(id: UInt64(i)), actions: [
                ActionConfig(name: "stop-\(i)", kind: .exec(argv: [script], env: [:])),
                ActionConfig(name: "start-\(i)", kind: .exec(argv: [script], env: [:])),
            ])
        }
        let outcomes = await recorder.wait(for: 6)
        #expect(outcomes.allSatisfy { $0.result == .ok })
        let expected = (1...3).flatMap { ["start stop-\($0)", "end stop-\($0)", "start start-\($0)", "end start-\($0)"] }
        #expect(scratch.read("log")?.split(separator: "\n").map(String.init) == expected)
        #expect(await queue.shutdown(grace: .seconds(1)))
    }

    @Test("a blocked group does not delay another group")
    func groupsInParallel() async {
        let gate = Gate()
        let recorder = OutcomeRecorder()
        let queue = ActionQueue(registry: ActionRunnerRegistry(["log": GatedRunner(gate: gate)]), deliver: recorder.deliver)
        queue.enqueue(sampleEvent(id: 101, group: "A"), actions: [logAction("block-a")])
        queue.enqueue(sampleEvent(id: 201, group: "B"), actions: [logAction("quick-b")])
        let first = await recorder.wait(for: 1)
        #expect(first.map(\.action) == ["quick-b"])
        #expect(queue.backlog == ["A": 1])
        gate.open()
        let all = await recorder.wait(for: 2)
        #expect(all.map(\.action) == ["quick-b", "block-a"])
        #expect(await queue.shutdown(grace: .seconds(1)))
    }

    @Test("enqueue returns at once even when an action hangs; shutdown cancels it after the grace")
    func hangingAction() async {
        let recorder = OutcomeRecorder()
        let queue = ActionQueue(registry: ActionRunnerRegistry(["log": HangingRunner()]), deliver: recorder.deliver)
        let clock = ContinuousClock()
        let elapsed = clock.measure {
            queue.enqueue(sampleEvent(id: 101, group: "A"), actions: [logAction("hang-a"), logAction("after-hang")])
            queue.enqueue(sampleEvent(id: 102, group: "A"), actions: [logAction("next-a")])
            queue.enqueue(sampleEvent(id: 201, group: "B"), actions: [logAction("quick-b")])
        }
        #expect(elapsed < .milliseconds(500))
        let first = await recorder.wait(for: 1)
        #expect(first.map(\.action) == ["quick-b"])

        let finishedInTime = await queue.shutdown(grace: .milliseconds(200))
        #expect(!finishedInTime)
        let outcomes = recorder.outcomes
        #expect(outcomes.count == 4)
        let byName = Dictionary(uniqueKeysWithValues: outcomes.map { ($0.action, $0.result) })
        #expect(byName["quick-b"] == .ok)
        #expect(byName["hang-a"] == .cancelled)
        #expect(byName["after-hang"] == .skipped("agent shutting down"))
        #expect(byName["next-a"] == .skipped("agent shutting down"))
    }

    @Test("shutdown lets queued actions finish within the grace")
    func shutdownWaits() async {
        let runner = TimelineRunner(delay: .milliseconds(200))
        let recorder = OutcomeRecorder()
        let queue = ActionQueue(registry: ActionRunnerRegistry(["log": runner]), deliver: recorder.deliver)
        queue.enqueue(sampleEvent(id: 1), actions: [logAction("slow-1")])
        queue.enqueue(sampleEvent(id: 2), actions: [logAction("slow-2")])
        #expect(await queue.shutdown(grace: .seconds(5)))
        #expect(recorder.outcomes.map(\.action) == ["slow-1", "slow-2"])
        #expect(recorder.outcomes.map(\.result) == [.ok, .ok])
        queue.enqueue(sampleEvent(id: 99), actions: [logAction("late")])
        #expect(recorder.outcomes.last?.result == .skipped("agent shutting down"))
    }

    @Test("dry run records skipped outcomes and runs nothing")
    func dryRun() async {
        let runner = TimelineRunner()
        let (queue, stream) = ActionQueue.withOutcomeStream(registry: ActionRunnerRegistry(["log": runner]), dryRun: true)
        queue.enqueue(sampleEvent(id: 1), actions: [logAction("a"), logAction("b")])
        queue.enqueue(sampleEvent(id: 2, group: "other"), actions: [logAction("c")])
        #expect(await queue.waitUntilIdle(timeout: .seconds(5)))
        #expect(await queue.shutdown(grace: .seconds(1)))
        var outcomes: [ActionOutcome] = []
        for await outcome in stream { outcomes.append(outcome) }
        #expect(outcomes.count == 3)
        #expect(outcomes.allSatisfy { $0.result == .skipped("dry run") && $0.attempts == 0 })
        #expect(outcomes.first?.result.description == "skipped (dry run)")
        #expect(runner.timeline.isEmpty)
    }

    @Test("a kind without a runner is an error outcome; later actions still run")
    func missingRunner() async {
        let recorder = OutcomeRecorder()
        let queue = ActionQueue(registry: ActionRunnerRegistry(["log": TimelineRunner(delay: .zero)]), deliver: recorder.deliver)
        queue.enqueue(sampleEvent(), actions: [
            ActionConfig(name: "hook", kind: .webhook(.to("http://127.0.0.1:9/", method: "POST", body: nil, headers: []))),
            logAction("note"),
        ])
        let outcomes = await recorder.wait(for: 2)
        #expect(outcomes.map(\.result) == [.error("no runner for action kind 'webhook'"), .ok])
        #expect(await queue.shutdown(grace: .seconds(1)))
    }

    @Test("a new kind plugs in through the registry")
    func registryPlugsIn() {
        var registry = ActionRunnerRegistry.standard(log: { _ in })
        #expect(registry.kinds == ["email", "exec", "log", "webhook"])
        registry.register(TimelineRunner(), for: "log")
        #expect(registry.runner(for: .log) is TimelineRunner)
    }

    @Test("beforeRun can skip an event that went stale while it waited")
    func beforeRunSkips() async {
        let runner = TimelineRunner(delay: .zero)
        let recorder = OutcomeRecorder()
        let queue = ActionQueue(registry: ActionRunnerRegistry(["log": runner]), deliver: recorder.deliver)
        queue.beforeRun = { event in event.id == 7 ? .skip("superseded by a later decision") : .run }
        queue.enqueue(sampleEvent(id: 7), actions: [logAction("a"), logAction("b")])
        queue.enqueue(sampleEvent(id: 8), actions: [logAction("c")])
        let outcomes = await recorder.wait(for: 3)
        #expect(outcomes.map(\.result) == [.skipped("superseded by a later decision"),
                                           .skipped("superseded by a later decision"), .ok])
        #expect(runner.timeline == ["start c", "end c"])
        #expect(await queue.shutdown(grace: .seconds(1)))
    }

    @Test("shutdownBlocking works from a plain thread")
    func shutdownBlocking() async {
        let recorder = OutcomeRecorder()
        let queue = ActionQueue(registry: ActionRunnerRegistry(["log": TimelineRunner(delay: .milliseconds(50))]),
                                deliver: recorder.deliver)
        queue.enqueue(sampleEvent(), actions: [logAction("slow")])
        let inTime = await onOwnThread { queue.shutdownBlocking(grace: .seconds(5)) }
        #expect(inTime)
        #expect(recorder.outcomes.map(\.result) == [.ok])
    }
}
