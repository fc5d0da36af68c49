#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CSystem
import VitalsSystem

/// One stream being read: the first `limit` bytes are kept, all are counted.
struct Capture {
    var fd: Int32
    let limit: Int
    var output = CapturedOutput()

    var isOpen: Bool { fd >= 0 }

    /// Reads what the pipe holds now (at most `maxReads` chunks, so one
    /// chatty stream cannot starve the others or the deadlines).
    mutating func drain(_ buffer: UnsafeMutableRawBufferPointer, maxReads: Int = 16) {
        for _ in 0..<maxReads {
            guard fd >= 0 else { return }
            let count: Int?
            do { count = try Posix.read(fd, into: buffer) } catch { count = 0 } // an error ends the stream like EOF
            guard let count else { return } // would block
            if count == 0 {
                Posix.close(fd)
                fd = -1
                return
            }
            output.totalBytes += count
            let room = limit - output.bytes.count
            if room > 0 {
                output.bytes.append(contentsOf: UnsafeRawBufferPointer(rebasing: buffer[0..<min(room, count)]))
            }
        }
    }

    mutating func close() {
        if fd >= 0 { Posix.close(fd) }
        fd = -1
    }
}

/// The state of one supervised child, driven by whoever polls for it (one
/// `runBlocking` caller, or a `ProcessSupervisor` thread with many children):
/// `advance` acts on deadlines, `register` adds its descriptors to a `poll`
/// set, `handle` acts on what the poll saw, and `finish` reaps.
struct Supervision {
    /// Where one child's descriptors sit in a poll set (-1: not in it).
    struct Slots {
        var stdin = -1, stdout = -1, stderr = -1, pid = -1
    }

    let pid: pid_t
    let pidfd: Int32
    let input: [UInt8]
    let killGrace: Duration
    let deadline: ContinuousClock.Instant?
    var stdinFD: Int32
    var stdinOffset = 0
    var stdout: Capture
    var stderr: Capture
    var exited = false
    var timedOut = false
    var cancelled = false
    /// When SIGTERM went to the group; SIGKILL follows `killGrace` later.
    var killAt: ContinuousClock.Instant?
    var killSent = false
    var stopReadingAt: ContinuousClock.Instant?

    init(child: SpawnedChild, spec: ChildProcessSpec, started: ContinuousClock.Instant, usePidfd: Bool) {
        pid = child.pid
        // -1 before Linux 5.3: fall back to polling waitid.
        pidfd = usePidfd ? vitals_pidfd_open(child.pid) : -1
        input = spec.stdin
        killGrace = spec.killGrace
        deadline = spec.timeout.map { started + $0 }
        stdinFD = child.stdin
        stdout = Capture(fd: child.stdout, limit: max(0, spec.maxOutputBytes))
        stderr = Capture(fd: child.stderr, limit: max(0, spec.maxOutputBytes))
    }

    /// Acts on the deadlines that passed. Returns false once the run is over:
    /// the child exited and its pipes closed (or stopped being read).
    mutating func advance(now: ContinuousClock.Instant) -> Bool {
        if !exited, !timedOut, !cancelled, let deadline, now >= deadline {
            timedOut = true
            terminate(now: now)
        }
        if let killAt, !killSent, now >= killAt {
            Posix.signalGroup(pid, SIGKILL)
            killSent = true
            stopReadingAt = now + ChildProcess.drainAfterKill
        }
        if exited {
            if !stdout.isOpen && !stderr.isOpen { return false }
            if let stopReadingAt, now >= stopReadingAt { return false }
        }
        return true
    }

    /// When this child next needs attention without an event, as a `poll`
    /// timeout in milliseconds (-1: only an event).
    func pollTimeout(now: ContinuousClock.Instant) -> Int32 {
        var wakeAt: ContinuousClock.Instant?
        func earliest(_ instant: ContinuousClock.Instant?) {
            guard let instant else { return }
            wakeAt = wakeAt.map { min($0, instant) } ?? instant
        }
        if !exited && !timedOut && !cancelled { earliest(deadline) }
        if !killSent { earliest(killAt) }
        earliest(stopReadingAt)
        var timeout: Int32 = wakeAt.map { ($0 - now).millisecondsRoundedUp } ?? -1
        if !exited && pidfd < 0 { timeout = timeout < 0 ? 10 : min(timeout, 10) }
        return timeout
    }

    /// Adds this child's descriptors to `fds`.
    func register(_ fds: inout [pollfd]) -> Slots {
        func add(_ fd: Int32, _ events: Int32) -> Int {
            fds.append(pollfd(fd: fd, events: Int16(events), revents: 0))
            return fds.count - 1
        }
        var slots = Slots()
        if stdinFD >= 0 { slots.stdin = add(stdinFD, POLLOUT) }
        if stdout.isOpen { slots.stdout = add(stdout.fd, POLLIN) }
        if stderr.isOpen { slots.stderr = add(stderr.fd, POLLIN) }
        if !exited && pidfd >= 0 { slots.pid = add(pidfd, POLLIN) }
        return slots
    }

    /// Reads, writes and notices an exit, after a `poll` of `register`'s set.
    mutating func handle(_ fds: [pollfd], _ slots: Slots, buffer: UnsafeMutableRawBufferPointer,
                         now: ContinuousClock.Instant) {
        if slots.stdout >= 0 && fds[slots.stdout].revents != 0 { stdout.drain(buffer) }
        if slots.stderr >= 0 && fds[slots.stderr].revents != 0 { stderr.drain(buffer) }
        if slots.stdin >= 0 && fds[slots.stdin].revents != 0 { feedStdin() }
        if !exited {
            let gone = slots.pid >= 0 ? fds[slots.pid].revents != 0 : (pidfd < 0 && Posix.hasExited(pid))
            if gone {
                exited = true
                closeStdin() // nobody is left to read it
                // Leftovers in the group get the same treatment as a timed-out child.
                if killAt == nil { terminate(now: now) }
            }
        }
    }

    /// Terminates the group like a timeout does, unless the run is already ending.
    mutating func cancel(now: ContinuousClock.Instant) {
        guard !cancelled else { return }
        cancelled = true
        if !exited && !timedOut { terminate(now: now) }
    }

    /// Kills whatever is left of the group, reaps the child, closes every
    /// descriptor and reports. The leader is still an unreaped zombie until
    /// here, so the group id cannot have been reused.
    mutating func finish(duration: Duration) -> ChildProcessResult {
        Posix.signalGroup(pid, SIGKILL)
        let status = Posix.reap(pid)
        closeStdin()
        stdout.close()
        stderr.close()
        if pidfd >= 0 { Posix.close(pidfd) }
        // ECHILD: something else in the process reaped it (a waitpid(-1)).
        return ChildProcessResult(pid: pid, termination: .init(waitStatus: status ?? 0),
                                  timedOut: timedOut, cancelled: cancelled,
                                  stdout: stdout.output, stderr: stderr.output,
                                  stdinBytesWritten: stdinOffset, duration: duration, statusLost: status == nil)
    }

    /// SIGTERM to the group; SIGKILL follows after the grace.
    private mutating func terminate(now: ContinuousClock.Instant) {
        Posix.signalGroup(pid, SIGTERM)
        if killAt == nil { killAt = now + killGrace }
    }

    private mutating func feedStdin() {
        while stdinFD >= 0 && stdinOffset < input.count {
            let written: Int?
            do {
                written = try input.withUnsafeBytes { all in
                    try Posix.write(stdinFD, from: UnsafeRawBufferPointer(rebasing: all[stdinOffset...]))
                }
            } catch {
                closeStdin() // EPIPE: the child closed its stdin or exited
                return
            }
            guard let written else { return } // the pipe is full
            stdinOffset += written
        }
        closeStdin() // all written: the child sees end of file
    }

    private mutating func closeStdin() {
        if stdinFD >= 0 { Posix.close(stdinFD) }
        stdinFD = -1
    }
}
