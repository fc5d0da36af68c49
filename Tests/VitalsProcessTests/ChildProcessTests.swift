#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
@testable import VitalsProcess
import VitalsTestKit

@Suite("ChildProcess: spawning, I/O, exit statuses")
struct ChildProcessTests {
    @Test("exit codes are reported", arguments: [Int32(0), 1, 3, 255])
    func exitCodes(code: Int32) async {
        let result = await ChildProcess.run(ChildProcessSpec(argv: ["/bin/sh", "-c", "exit \(code)"]))
        #expect(result.termination == .exited(code: code))
        #expect(result.succeeded == (code == 0))
        #expect(!result.timedOut)
        #expect(result.termination.description == "exit status \(code)")
    }

    @Test("a child killed by a signal reports it")
    func signaled() async {
        let result = await ChildProcess.run(ChildProcessSpec(argv: ["/bin/sh", "-c", "kill -USR1 $$"]))
        #expect(result.termination == .signaled(signal: SIGUSR1))
        #expect(result.termination.description == "killed by signal \(SIGUSR1) (SIGUSR1)")
    }

    @Test("stdin is delivered whole and then closed")
    func stdinDelivered() async {
        let input = Array((0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 7) })
        let result = await ChildProcess.run(ChildProcessSpec(argv: ["/bin/cat"], stdin: input, maxOutputBytes: 1 << 20))
        #expect(result.termination == .exited(code: 0))
        #expect(result.stdout.bytes == input)
        #expect(result.stdinBytesWritten == input.count)
    }

    @Test("the environment given is the whole environment")
    func environmentDelivered() async {
        let env = ["FOO": "bar baz", "EMPTY": "", "QUOTE": "it's \"x\"=1"]
        let result = await ChildProcess.run(ChildProcessSpec(argv: ["/usr/bin/env"], environment: env))
        let lines = Set(result.stdout.text.split(separator: "\n").map(String.init))
        #expect(lines == ["FOO=bar baz", "EMPTY=", "QUOTE=it's \"x\"=1"])
    }

    @Test("arguments are passed as given, with no shell")
    func argumentsVerbatim() async {
        let args = ["$HOME", "a b", "*", "; rm -rf /", ""]
        let result = await ChildProcess.run(ChildProcessSpec(argv: ["/usr/bin/printf", "[%s]\\n"] + args))
        #expect(result.stdout.text == args.map { "[\($0)]\n" }.joined())
    }

    @Test("the working directory is honoured, and relative programs resolve from it")
    func workingDirectory() async throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        try scratch.script("here.sh", "pwd")
        let result = await ChildProcess.run(ChildProcessSpec(argv: ["./here.sh"], workingDirectory: scratch.path))
        #expect(result.termination == .exited(code: 0))
        let real = URL(fileURLWithPath: scratch.path).resolvingSymlinksInPath().path
        #expect(result.stdout.text.trimmingCharacters(in: .newlines) == real)
    }

    @Test("bare names are searched in the child's PATH")
    func pathSearch() async throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        try scratch.script("vitals-test-tool", "echo found; exit 4")
        let result = await ChildProcess.run(ChildProcessSpec(argv: ["vitals-test-tool"],
                                                             environment: ["PATH": "/nonexistent:\(scratch.path):/bin"]))
        #expect(result.termination == .exited(code: 4))
        #expect(result.stdout.text == "found\n")
    }

    @Test("stdout and stderr are captured separately")
    func separateStreams() async {
        let result = await ChildProcess.run(ChildProcessSpec(argv: ["/bin/sh", "-c", "echo out; echo err >&2; exit 2"]))
        #expect(result.stdout.text == "out\n")
        #expect(result.stderr.text == "err\n")
        #expect(result.termination == .exited(code: 2))
    }

    @Test("megabytes of output are capped, counted, and never block the child")
    func outputCapped() async {
        let spec = ChildProcessSpec(argv: ["/bin/sh", "-c", "head -c 5000000 /dev/zero; head -c 3000000 /dev/zero >&2; exit 0"],
                                    maxOutputBytes: 1000, timeout: .seconds(30))
        let result = await ChildProcess.run(spec)
        #expect(result.termination == .exited(code: 0))
        #expect(!result.timedOut)
        #expect(result.stdout.bytes.count == 1000)
        #expect(result.stdout.totalBytes == 5_000_000)
        #expect(result.stdout.truncated)
        #expect(result.stdout.summary == "Captured 1000 of 5000000 bytes")
        #expect(result.stderr.bytes.count == 1000)
        #expect(result.stderr.totalBytes == 3_000_000)
    }

    @Test("output under the cap is not truncated")
    func outputUnderCap() async {
        let result = await ChildProcess.run(ChildProcessSpec(argv: ["/bin/echo", "hello"], maxOutputBytes: 6))
        #expect(result.stdout.text == "hello\n")
        #expect(!result.stdout.truncated)
        #expect(result.stdout.summary == "Captured 6 of 6 bytes")
    }
}

@Suite("ChildProcess: spawn failures name the program")
struct SpawnFailureTests {
    @Test("a missing binary")
    func missingBinary() async {
        let result = await ChildProcess.run(ChildProcessSpec(argv: ["/nonexistent/x.sh"]))
        guard case .spawnFailed(let failure) = result.termination else {
            Issue.record("expected a spawn failure, got \(result.termination)")
            return
        }
        #expect(failure.message == "cannot run /nonexistent/x.sh: No such file or directory")
        #expect(failure.errno == ENOENT)
        #expect(result.pid == nil)
        #expect(!result.succeeded)
    }

    @Test("a missing relative script")
    func missingRelative() async throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let result = await ChildProcess.run(ChildProcessSpec(argv: ["./x.sh"], workingDirectory: scratch.path))
        #expect(result.termination.description == "cannot run ./x.sh: No such file or directory")
    }

    @Test("a bare name not in PATH")
    func notInPath() async {
        let result = await ChildProcess.run(ChildProcessSpec(argv: ["vitals-no-such-program"], environment: ["PATH": "/bin:/usr/bin"]))
        #expect(result.termination.description
            == "cannot run vitals-no-such-program: No such file or directory (searched PATH=/bin:/usr/bin)")
    }

    @Test("a file that is not executable")
    func notExecutable() async throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let path = try scratch.script("x.sh", "exit 0", executable: false)
        let result = await ChildProcess.run(ChildProcessSpec(argv: [path]))
        #expect(result.termination.description == "cannot run \(path): Permission denied")
    }

    @Test("a missing working directory is named as the fault")
    func missingWorkingDirectory() async {
        let result = await ChildProcess.run(ChildProcessSpec(argv: ["/bin/true"], workingDirectory: "/nonexistent-dir"))
        #expect(result.termination.description
            == "cannot run /bin/true: working directory /nonexistent-dir: No such file or directory")
    }

    @Test("an empty argv")
    func emptyArgv() async {
        let result = await ChildProcess.run(ChildProcessSpec(argv: []))
        #expect(result.termination.description == "cannot run: empty argv")
    }
}
