#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Children: waiting for them and signalling their groups.
extension Posix {
    /// Whether `pid` (a child of ours) has exited, without reaping it.
    public static func hasExited(_ pid: pid_t) -> Bool {
        var info = siginfo_t()
        while true {
            if waitid(P_PID, id_t(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 {
                return info.si_signo == SIGCHLD
            }
            if Glibc.errno == EINTR { continue }
            return true // ECHILD: nothing left to wait for
        }
    }

    /// Blocking `waitpid(pid)` (never `-1`, so other supervisors in the
    /// process keep their children's statuses): the raw wait status, or nil
    /// when someone else reaped it (`ECHILD`).
    public static func reap(_ pid: pid_t) -> Int32? {
        var status: Int32 = 0
        while true {
            let r = waitpid(pid, &status, 0)
            if r == pid { return status }
            if r < 0 && Glibc.errno == EINTR { continue }
            return nil
        }
    }

    /// `kill(-pgid, signal)`. ESRCH (the group is already empty) is not an error.
    public static func signalGroup(_ pgid: pid_t, _ signal: Int32) {
        _ = Glibc.kill(-pgid, signal)
    }
}
