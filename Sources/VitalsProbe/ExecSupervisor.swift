import Foundation
import VitalsCore
import VitalsProcess

/// Runs exec checks (Nagios plugins) on one `ProcessSupervisor` thread.
///
/// Each plugin is spawned directly from its argv (no shell) in its own
/// process group, with default signal dispositions, an empty signal mask,
/// stdin from `/dev/null`, and stdout and stderr sharing one pipe of which
/// at most `maxOutputBytes` are kept (the rest is read and dropped, so a
/// chatty plugin never blocks). At the timeout the whole group gets SIGTERM,
/// then SIGKILL after `killGrace`. Each child is reaped by its own pid, never
/// by `waitpid(-1)`.
final class ExecSupervisor: Sendable {
    struct Job: Sendable {
        var slot: Int
        /// Tells this run's result from an earlier run's in the same slot.
        var ticket: UInt64
        var argv: [String]
        var env: [String: String]
        var timeout: Duration
    }

    private let maxOutputBytes: Int
    private let killGrace: Duration
    private let clock: any VitalsClock
    private let deliver: @Sendable (_ slot: Int, _ ticket: UInt64, ProbeResult) -> Void
    private let processes = ProcessSupervisor(threadName: "vitals-exec")

    /// `deliver` is called on the supervisor thread with each result.
    init(maxOutputBytes: Int, killGrace: Duration, clock: any VitalsClock,
         deliver: @escaping @Sendable (_ slot: Int, _ ticket: UInt64, ProbeResult) -> Void) {
        self.maxOutputBytes = maxOutputBytes
        self.killGrace = killGrace
        self.clock = clock
        self.deliver = deliver
    }

    /// Starts a plugin. Any thread.
    func start(_ job: Job) {
        var environment = ProcessInfo.processInfo.environment
        for (key, value) in job.env { environment[key] = value }
        let spec = ChildProcessSpec(argv: job.argv, environment: environment, maxOutputBytes: maxOutputBytes,
                                    timeout: job.timeout, killGrace: killGrace, stderr: .mergedIntoStdout)
        // Commands run in order, so a cancel for the slot's previous run never reaches this one.
        processes.start(spec, id: UInt64(job.slot)) { [clock, deliver] run in
            guard !run.cancelled else { return }
            deliver(job.slot, job.ticket, Self.result(of: run, timeout: job.timeout, at: clock.now()))
        }
    }

    /// Kills the plugin running for `slot`, if any; its result is dropped. Any thread.
    func cancel(slot: Int) {
        processes.cancel(id: UInt64(slot))
    }

    /// Kills every running plugin, reaps it, and joins the thread.
    func shutdown() {
        processes.shutdown()
    }

    /// A finished run in the Nagios convention.
    static func result(of run: ChildProcessResult, timeout: Duration, at time: Date) -> ProbeResult {
        if run.timedOut {
            return ProbeResult(time: time, latency: nil, outcome: .failed,
                               reason: "timeout after \(DurationText.format(timeout))")
        }
        if run.statusLost {
            return ProbeResult(time: time, latency: nil, outcome: .failed,
                               reason: "exit status lost: the plugin was reaped elsewhere in the agent")
        }
        let verdict: ProbeVerdict
        switch run.termination {
        case .spawnFailed(let failure):
            return ProbeResult(time: time, latency: nil, outcome: .failed, reason: failure.message)
        case .exited(let code):
            verdict = ExecVerdict.verdict(exitCode: code, line: ExecVerdict.firstLine(run.stdout.bytes))
        case .signaled(let signal):
            verdict = ExecVerdict.verdict(waitStatus: signal, output: run.stdout.bytes)
        }
        return ProbeResult(time: time, latency: run.duration, outcome: verdict.outcome, reason: verdict.reason)
    }
}
