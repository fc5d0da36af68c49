import Foundation
import Testing
@testable import VitalsActions
import VitalsCore

@Suite("ActionOutcome and RetryPolicy")
struct ActionOutcomeTests {
    static let results: [ActionResult] = [
        .ok, .failed(.exitStatus(3)), .failed(.signal(9)), .failed(.httpStatus(500)),
        .timedOut(after: .seconds(5)), .spawnFailed("cannot run ./x.sh: Permission denied"),
        .error("connect refused (http://127.0.0.1:9)"), .cancelled, .skipped("dry run"),
    ]

    @Test("every result survives a JSON round trip", arguments: results)
    func roundTrip(result: ActionResult) throws {
        let outcome = ActionOutcome(action: "a", kind: "exec", eventID: 1, eventKind: .group(.failover), group: "web",
                                    result: result, attempts: 2, started: Date(timeIntervalSince1970: 1_800_000_000),
                                    finished: Date(timeIntervalSince1970: 1_800_000_001), duration: .milliseconds(1250),
                                    output: ActionOutput(stdout: CapturedText(bytes: Array("hi".utf8), totalBytes: 10)))
        let data = try JSONEncoder().encode(outcome)
        #expect(try JSONDecoder().decode(ActionOutcome.self, from: data) == outcome)
    }

    @Test("results read well as JSON")
    func jsonShape() throws {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = .sortedKeys
        let text = { (result: ActionResult) in String(decoding: try encoder.encode(result), as: UTF8.self) }
        #expect(try text(.failed(.exitStatus(3))) == #"{"exit_status":3,"message":"exit status 3","status":"failed"}"#)
        #expect(try text(.timedOut(after: .seconds(5))) == #"{"message":"timeout after 5s","status":"timed_out","timeout_ms":5000}"#)
        #expect(try text(.skipped("dry run")) == #"{"message":"skipped (dry run)","status":"skipped"}"#)
    }

    @Test("descriptions", arguments: zip(results, [
        "ok", "exit status 3", "killed by signal 9 (SIGKILL)", "HTTP 500", "timeout after 5s",
        "cannot run ./x.sh: Permission denied", "connect refused (http://127.0.0.1:9)", "cancelled", "skipped (dry run)",
    ]))
    func descriptions(result: ActionResult, text: String) {
        #expect(result.description == text)
    }

    @Test("backoff doubles from the base up to the cap")
    func backoff() {
        let policy = RetryPolicy(base: .seconds(1), cap: .seconds(10))
        #expect((1...6).map { policy.delay(beforeRetry: $0) } == [.seconds(1), .seconds(2), .seconds(4), .seconds(8), .seconds(10), .seconds(10)])
    }

    @Test("retries stop at the first success, and never exceed 1 + retries attempts")
    func retryCounting() async {
        let backoff = BackoffRecorder()
        let policy = backoff.policy(base: .milliseconds(1))
        let always = await policy.perform(retries: 3) { _ in ActionAttempt(result: .failed(.exitStatus(1))) }
        #expect(always.attempts == 4)
        let second = await policy.perform(retries: 3) { n in ActionAttempt(result: n == 2 ? .ok : .error("x")) }
        #expect(second.attempts == 2)
        #expect(second.last.result == .ok)
        let none = await policy.perform(retries: 0) { _ in ActionAttempt(result: .error("x")) }
        #expect(none.attempts == 1)
    }

    @Test("VITALS_TIME is ISO 8601 UTC with milliseconds")
    func timeText() {
        #expect(sampleEvent().timeText == "2027-01-15T08:00:00.250Z")
    }
}
