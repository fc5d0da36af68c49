#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CSystem

/// A system call failed: `call` names it, `errno` is the raw error number.
public struct SystemCallError: Error, Equatable, Sendable, CustomStringConvertible {
    public let call: String
    public let errno: Int32

    public init(call: String, errno: Int32) {
        self.call = call
        self.errno = errno
    }

    public var description: String { "\(call) failed: \(Posix.errorText(errno)) (errno \(errno))" }
}

/// The system calls of this module, wrapped once: `EINTR` is retried, errnos
/// that can only mean a bug here (`EBADF`, `EFAULT`) trap, the rest throw.
enum Posix {
    @inline(__always)
    static func check(_ call: StaticString, _ body: () -> Int) throws(SystemCallError) -> Int {
        while true {
            let result = body()
            if result >= 0 { return result }
            let err = Glibc.errno
            if err == EINTR { continue }
            precondition(err != EBADF && err != EFAULT, "\(call) failed with an errno that means a bug: \(err)")
            throw SystemCallError(call: "\(call)", errno: err)
        }
    }

    static func errorText(_ err: Int32) -> String { String(cString: strerror(err)) }

    /// A pipe whose both ends close on exec; the read end is non-blocking.
    static func pipe() throws(SystemCallError) -> (read: Int32, write: Int32) {
        var fds: [Int32] = [-1, -1]
        _ = try check("pipe2") { Int(pipe2(&fds, O_CLOEXEC)) }
        _ = try check("fcntl(O_NONBLOCK)") { Int(vitals_fcntl_setfl(fds[0], O_NONBLOCK)) }
        return (fds[0], fds[1])
    }

    /// Closes `fd`. An error from `close` is ignored: on Linux the descriptor
    /// is released even when `close` reports `EINTR` or `EIO`, and retrying
    /// could close a descriptor another thread has just been given.
    static func close(_ fd: Int32) {
        _ = Glibc.close(fd)
    }

    /// Reads what is available. Returns nil when the read would block.
    static func read(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer) throws(SystemCallError) -> Int? {
        while true {
            let n = Glibc.read(fd, buffer.baseAddress, buffer.count)
            if n >= 0 { return n }
            let err = Glibc.errno
            if err == EINTR { continue }
            if err == EAGAIN || err == EWOULDBLOCK { return nil }
            precondition(err != EBADF && err != EFAULT, "read failed with an errno that means a bug: \(err)")
            throw SystemCallError(call: "read", errno: err)
        }
    }

    enum Reaped {
        case running
        /// The raw wait status.
        case exited(Int32)
        /// ECHILD: something else in the process reaped it (a `waitpid(-1)`).
        case lost
    }

    /// `waitpid(pid, WNOHANG)`.
    static func reap(_ pid: pid_t) -> Reaped {
        var status: Int32 = 0
        while true {
            let r = waitpid(pid, &status, WNOHANG)
            if r == pid { return .exited(status) }
            if r == 0 { return .running }
            if Glibc.errno == EINTR { continue }
            return .lost
        }
    }
}

/// Readings of `CLOCK_MONOTONIC` in nanoseconds: cheap to read and to compare,
/// never jumps with the wall clock. The scheduler keeps its deadlines in it.
public struct MonotonicInstant: Sendable, Comparable, Hashable {
    public var nanoseconds: Int64

    public init(nanoseconds: Int64) { self.nanoseconds = nanoseconds }

    public static func now() -> MonotonicInstant {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return MonotonicInstant(nanoseconds: Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec))
    }

    public static func < (a: MonotonicInstant, b: MonotonicInstant) -> Bool { a.nanoseconds < b.nanoseconds }

    public static func + (a: MonotonicInstant, d: Duration) -> MonotonicInstant {
        MonotonicInstant(nanoseconds: a.nanoseconds &+ d.nanosecondCount)
    }

    public static func - (a: MonotonicInstant, b: MonotonicInstant) -> Duration {
        .nanoseconds(a.nanoseconds &- b.nanoseconds)
    }
}

extension Duration {
    /// The duration in whole nanoseconds (saturating).
    var nanosecondCount: Int64 {
        let (s, atto) = components
        let (ns, overflow) = s.multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return s < 0 ? .min : .max }
        return ns &+ atto / 1_000_000_000
    }

    /// Whole milliseconds, rounded up, clamped to what a C `long`/`int` timeout takes.
    var millisecondsRoundedUp: Int {
        let ns = nanosecondCount
        if ns <= 0 { return 0 }
        return Int(min((ns + 999_999) / 1_000_000, Int64(Int32.max)))
    }
}
