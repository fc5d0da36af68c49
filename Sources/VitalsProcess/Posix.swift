#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CSystem

/// A system call failed: `call` names it, `errno` is the raw error number.
struct SystemCallError: Error, Equatable, Sendable, CustomStringConvertible {
    let call: String
    let errno: Int32

    var description: String { "\(call) failed: \(Posix.errorText(errno))" }
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

    /// A pipe whose both ends close on exec. `nonBlocking` picks the end we
    /// keep; the child's end stays blocking, as programs expect.
    static func pipe(nonBlocking end: PipeEnd) throws(SystemCallError) -> (read: Int32, write: Int32) {
        var fds: [Int32] = [-1, -1]
        _ = try check("pipe2") { Int(pipe2(&fds, O_CLOEXEC)) }
        let ours = end == .read ? fds[0] : fds[1]
        do {
            let flags = try check("fcntl(F_GETFL)") { Int(vitals_fcntl_getfl(ours)) }
            _ = try check("fcntl(F_SETFL)") { Int(vitals_fcntl_setfl(ours, Int32(flags) | O_NONBLOCK)) }
        } catch {
            close(fds[0])
            close(fds[1])
            throw error
        }
        return (fds[0], fds[1])
    }

    enum PipeEnd { case read, write }

    /// Closes `fd`. An error from `close` is ignored: on Linux the descriptor
    /// is released even when `close` reports `EINTR` or `EIO`, and retrying
    /// could close a descriptor another thread has just been given.
    static func close(_ fd: Int32) {
        _ = Glibc.close(fd)
    }

    /// Reads what is available. Returns nil when the read would block, 0 at end of file.
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

    /// Writes what fits. Returns nil when the write would block. `EPIPE` (the
    /// reader is gone) is thrown like any other error.
    static func write(_ fd: Int32, from buffer: UnsafeRawBufferPointer) throws(SystemCallError) -> Int? {
        while true {
            let n = Glibc.write(fd, buffer.baseAddress, buffer.count)
            if n >= 0 { return n }
            let err = Glibc.errno
            if err == EINTR { continue }
            if err == EAGAIN || err == EWOULDBLOCK { return nil }
            precondition(err != EBADF && err != EFAULT, "write failed with an errno that means a bug: \(err)")
            throw SystemCallError(call: "write", errno: err)
        }
    }

    /// `poll`, retried on `EINTR` with the same timeout (the caller's loop
    /// recomputes its deadlines on every pass, so a slightly late wake is harmless).
    static func poll(_ fds: inout [pollfd], timeoutMilliseconds: Int32) -> Int {
        while true {
            let n = Glibc.poll(&fds, nfds_t(fds.count), timeoutMilliseconds)
            if n >= 0 { return Int(n) }
            let err = Glibc.errno
            if err == EINTR { continue }
            preconditionFailure("poll failed: \(errorText(err))")
        }
    }

    /// Whether `pid` (our child) has exited, without reaping it.
    static func hasExited(_ pid: pid_t) -> Bool {
        var info = siginfo_t()
        while true {
            if waitid(P_PID, id_t(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 {
                return info.si_signo == SIGCHLD
            }
            if Glibc.errno == EINTR { continue }
            return true // ECHILD: nothing left to wait for
        }
    }

    /// Blocking `waitpid(pid)`: the raw wait status.
    static func reap(_ pid: pid_t) -> Int32 {
        var status: Int32 = 0
        while true {
            let r = waitpid(pid, &status, 0)
            if r == pid { return status }
            if r < 0 && Glibc.errno == EINTR { continue }
            // ECHILD: someone else reaped it (a waitpid(-1) elsewhere in the process).
            return 0
        }
    }

    /// `kill(-pgid, signal)`. ESRCH (the group is already empty) is not an error.
    static func signalGroup(_ pgid: pid_t, _ signal: Int32) {
        _ = Glibc.kill(-pgid, signal)
    }
}

extension Duration {
    /// Whole milliseconds, rounded up, clamped to what `poll` takes.
    var pollMilliseconds: Int32 {
        let (s, atto) = components
        if s < 0 || (s == 0 && atto <= 0) { return 0 }
        if s >= Int64(Int32.max / 1000) { return Int32.max }
        let ms = s * 1000 + (atto + 999_999_999_999_999) / 1_000_000_000_000_000
        return Int32(min(ms, Int64(Int32.max)))
    }
}
