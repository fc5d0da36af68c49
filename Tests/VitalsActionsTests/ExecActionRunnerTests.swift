#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Synchronization
import Testing
@testable import VitalsActions
import VitalsCore
import VitalsTestKit

@Suite("exec actions")
struct ExecActionRunnerTests {
    @Test("a succeeding script gets every VITALS_* variable and the event JSON on stdin")
    func environmentAndStdin() async throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let script = try scratch.script("failover.sh", """
            env > "$OUT_DIR/env"
            cat > "$OUT_DIR/stdin"
            echo switched
            """)
        let runner = ExecActionRunner(environment: ["PATH": "/usr/bin:/bin", "AGENT_VAR": "from-agent"],
                                      clock: ManualClock(Date(timeIntervalSince1970: 1_900_000_000)))
        let action = ActionConfig(name: "promote", kind: .exec(argv: [script], env: ["OUT_DIR": scratch.path,
                                                                                     "VITALS_GROUP": "spoofed"]))
        let event = sampleEvent(service: nil)
        let outcome = await runner.run(event, action: action)

        #expect(outcome.result == .ok)
        #expect(outcome.attempts == 1)
        #expect(outcome.action == "promote")
        #expect(outcome.kind == "exec")
        #expect(outcome.eventID == 42)
        #expect(outcome.group == "web")
        #expect(outcome.started == Date(timeIntervalSince1970: 1_900_000_000))
        #expect(outcome.output.stdout?.text == "switched\n")
        #expect(outcome.output.stderr?.text == "")

        let env = try #require(scratch.read("env"))
        var variables: [String: String] = [:]
        for line in env.split(separator: "\n") {
            let parts = line.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            variables[String(parts[0])] = parts.count > 1 ? String(parts[1]) : ""
        }
        let vitals = variables.filter { $0.key.hasPrefix("VITALS_") }
        #expect(vitals == [
            "VITALS_EVENT": "failover",
            "VITALS_GROUP": "web",
            "VITALS_SERVICE": "",
            "VITALS_FROM": "web-1",
            "VITALS_TO": "web-2",
            "VITALS_REASON": "web-1 down (status 503); chose web-2",
            "VITALS_EVENT_ID": "42",
            "VITALS_TIME": "2027-01-15T08:00:00.250Z",
            "VITALS_ACTION": "promote",
            "VITALS_ATTEMPT": "1",
        ])
        #expect(variables["AGENT_VAR"] == "from-agent")
        #expect(variables["OUT_DIR"] == scratch.path)
        #expect(scratch.bytes("stdin") == event.json)
    }

    @Test("a failing script: exit 3 recorded, retried with backoff")
    func failureRetried() async throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let script = try scratch.script("fail.sh", "echo \"$VITALS_ATTEMPT\" >> \"$1\"\necho nope >&2\nexit 3")
        let backoff = BackoffRecorder()
        let runner = ExecActionRunner(retry: backoff.policy(base: .milliseconds(10)))
        let action = ActionConfig(name: "fence", kind: .exec(argv: [script, scratch.file("attempts")], env: [:]), retries: 2)
        let outcome = await runner.run(sampleEvent(), action: action)

        #expect(outcome.result == .failed(.exitStatus(3)))
        #expect(outcome.result.description == "exit status 3")
        #expect(outcome.attempts == 3)
        #expect(outcome.output.stderr?.text == "nope\n")
        #expect(scratch.read("attempts") == "1\n2\n3\n")
        #expect(backoff.recorded == [.milliseconds(10), .milliseconds(20)])
        #expect(outcome.description == "fence: exit status 3 (3 attempts)")
    }

    @Test("a script that succeeds on a retry stops retrying")
    func succeedsOnRetry() async throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let script = try scratch.script("flaky.sh", "[ \"$VITALS_ATTEMPT\" -ge 2 ]")
        let backoff = BackoffRecorder()
        let runner = ExecActionRunner(retry: backoff.policy())
        let outcome = await runner.run(sampleEvent(), action: ActionConfig(name: "flaky", kind: .exec(argv: [script], env: [:]),
                                                                           retries: 5))
        #expect(outcome.result == .ok)
        #expect(outcome.attempts == 2)
        #expect(backoff.recorded == [.milliseconds(10)])
    }

    @Test("a hanging script is killed at the timeout, with its children")
    func hangKilled() async throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let pidFile = scratch.file("grandchild.pid")
        let script = try scratch.script("hang.sh", "sleep 60 &\necho $! > \"$1\"\nsleep 60")
        let runner = ExecActionRunner(killGrace: .milliseconds(500))
        let action = ActionConfig(name: "hang", kind: .exec(argv: [script, pidFile], env: [:]), timeout: .milliseconds(500))
        let outcome = await runner.run(sampleEvent(), action: action)

        #expect(outcome.result == .timedOut(after: .milliseconds(500)))
        #expect(outcome.result.description == "timeout after 500ms")
        #expect(outcome.attempts == 1)
        #expect(outcome.duration < .seconds(20))
        let grandchild = try #require(await readPid(pidFile))
        #expect(await waitUntilGone(grandchild))
    }

    @Test("megabytes of output are capped at 64 KiB and counted")
    func outputCapped() async {
        let runner = ExecActionRunner()
        let action = ActionConfig(name: "chatty", kind: .exec(argv: ["/bin/sh", "-c", "yes | head -c 5000000; yes | head -c 100 >&2"],
                                                              env: [:]))
        let outcome = await runner.run(sampleEvent(), action: action)
        #expect(outcome.result == .ok)
        let stdout = outcome.output.stdout
        #expect(stdout?.capturedBytes == 65_536)
        #expect(stdout?.totalBytes == 5_000_000)
        #expect(stdout?.truncated == true)
        #expect(stdout?.summary == "captured 65536 of 5000000 bytes")
        #expect(outcome.output.stderr?.totalBytes == 100)
        #expect(outcome.output.stderr?.truncated == false)
    }

    @Test("a program that cannot start is reported and not retried")
    func spawnFailure() async {
        let backoff = BackoffRecorder()
        let runner = ExecActionRunner(retry: backoff.policy())
        let action = ActionConfig(name: "missing", kind: .exec(argv: ["/nonexistent/failover.sh"], env: [:]), retries: 3)
        let outcome = await runner.run(sampleEvent(), action: action)
        #expect(outcome.result == .spawnFailed("cannot run /nonexistent/failover.sh: No such file or directory"))
        #expect(outcome.attempts == 1)
        #expect(backoff.recorded.isEmpty)
        #expect(outcome.output.stdout == nil)
    }

    @Test("arguments are passed verbatim: nothing is interpolated")
    func noInterpolation() async throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let runner = ExecActionRunner()
        let args = ["$VITALS_EVENT", "`id`", "; touch \(scratch.file("pwned"))"]
        let action = ActionConfig(name: "echo", kind: .exec(argv: ["/usr/bin/printf", "%s|"] + args, env: [:]))
        let outcome = await runner.run(sampleEvent(), action: action)
        #expect(outcome.output.stdout?.text == args.map { $0 + "|" }.joined())
        #expect(!FileManager.default.fileExists(atPath: scratch.file("pwned")))
    }

    @Test("cancelling the run kills the program and reports it")
    func cancelled() async throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let pidFile = scratch.file("pid")
        let runner = ExecActionRunner(killGrace: .milliseconds(200), retry: BackoffRecorder().policy())
        let action = ActionConfig(name: "slow", kind: .exec(argv: ["/bin/sh", "-c", "echo $$ > \"$0\"; exec sleep 60", pidFile],
                                                            env: [:]), timeout: .seconds(60), retries: 3)
        let task = Task { await runner.run(sampleEvent(), action: action) }
        let pid = try #require(await readPid(pidFile))
        task.cancel()
        let outcome = await task.value
        #expect(outcome.result == .cancelled)
        #expect(outcome.attempts == 1)
        #expect(await waitUntilGone(pid))
    }
}

@Suite("log actions")
struct LogActionRunnerTests {
    @Test("the event JSON goes to the sink as one line")
    func writesLine() async {
        let lines = LineSink()
        let runner = LogActionRunner(write: lines.write)
        let event = sampleEvent()
        let outcome = await runner.run(event, action: ActionConfig(name: "note", kind: .log))
        #expect(outcome.result == .ok)
        #expect(outcome.kind == "log")
        #expect(lines.lines == ["action note event 42: " + String(decoding: event.json, as: UTF8.self)])
    }
}

final class LineSink: Sendable {
    private let stored = Mutex<[String]>([])
    var lines: [String] { stored.withLock { $0 } }
    var write: @Sendable (String) -> Void { { [self] line in stored.withLock { $0.append(line) } } }
}


/// Every variable a script receives is documented where operators look.
@Suite struct ExecEnvironmentDocumentationTests {
    static let readme = URL(fileURLWithPath: #filePath).resolvingSymlinksInPath()
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("README.md")

    @Test func theReadmeNamesEveryVitalsVariable() throws {
        let readme = try String(contentsOf: Self.readme, encoding: .utf8)
        let environment = ExecActionRunner.environment(base: [:], action: "promote", env: [:], event: sampleEvent(),
                                                       attempt: 1)
        let names = environment.keys.filter { $0.hasPrefix("VITALS_") }.sorted()
        #expect(names.count >= 10)
        for name in names {
            #expect(readme.contains("`\(name)`"), "README.md does not mention \(name)")
        }
    }
}
