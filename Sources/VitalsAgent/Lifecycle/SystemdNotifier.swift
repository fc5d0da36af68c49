#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Foundation
import Logging
import Synchronization
import VitalsCore

/// Tells systemd how the agent is doing, for `Type=notify` units: the
/// `sd_notify(3)` protocol spoken directly, one AF_UNIX datagram per call to
/// the socket in `NOTIFY_SOCKET`, without libsystemd.
///
/// The contract:
/// - Created from the environment. Without `NOTIFY_SOCKET` (not started by
///   systemd, or a unit that is not `Type=notify`) every call does nothing.
///   A path (`/run/systemd/notify`) and an abstract name (`@name`) are
///   supported; anything else (`vsock:`…) is logged once and ignored.
/// - The watchdog is on when `WATCHDOG_USEC` is a positive number and
///   `WATCHDOG_PID`, if set, is this process; `watchdogInterval` is then half
///   of it (what `sd_watchdog_enabled(3)` recommends) and `watchdog()` sends
///   `WATCHDOG=1`. When it is off, `watchdog()` sends nothing.
/// - Sending never throws at the caller of the convenience calls and never
///   blocks: a failure is logged as a warning once, then at debug level until
///   a send succeeds again. `send(_:)` throws, for callers that care.
/// - One socket is opened at creation (close-on-exec, so actions never
///   inherit it) and closed when the notifier goes away. Calls are safe from
///   any thread.
public final class SystemdNotifier: Sendable {
    /// `NOTIFY_SOCKET` as found, or nil when the notifier is inert.
    public let socketName: String?
    /// The whole watchdog timeout (`WATCHDOG_USEC`), when the watchdog is on for this process.
    public let watchdogTimeout: Duration?
    /// How often to call `watchdog()`: half of `watchdogTimeout`. nil when the watchdog is off.
    public var watchdogInterval: Duration? { watchdogTimeout.map { $0 / 2 } }
    /// Whether calls reach systemd at all.
    public var isEnabled: Bool { fd >= 0 }

    private let fd: Int32
    /// The `sockaddr_un` bytes and their length as `sendto` takes them.
    private let address: [UInt8]
    private let logger: Logger
    private let monotonicMicroseconds: @Sendable () -> UInt64
    /// Failed sends since the last success; only the first is a warning.
    private let failuresInARow = Mutex<Int>(0)

    /// A notifier for this process's own environment.
    public convenience init(logger: Logger) {
        self.init(environment: ProcessInfo.processInfo.environment, logger: logger)
    }

    /// - Parameters:
    ///   - environment: where `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID` are read.
    ///   - pid: the process `WATCHDOG_PID` must name for the watchdog to be on. Default: this process.
    ///   - monotonicMicroseconds: `CLOCK_MONOTONIC` in µs, for `MONOTONIC_USEC=` in `reloading()`.
    public init(environment: [String: String], pid: pid_t = getpid(), logger: Logger,
                monotonicMicroseconds: @escaping @Sendable () -> UInt64 = SystemdNotifier.monotonicNow) {
        self.logger = logger
        self.monotonicMicroseconds = monotonicMicroseconds
        guard let name = environment["NOTIFY_SOCKET"], !name.isEmpty else {
            (socketName, watchdogTimeout, fd, address) = (nil, nil, -1, [])
            return
        }
        guard let address = Self.socketAddress(name) else {
            logger.warning("NOTIFY_SOCKET=\(name) is not a socket path or @abstract name (sun_path holds at most 107 bytes); not notifying systemd")
            (socketName, watchdogTimeout, fd, self.address) = (nil, nil, -1, [])
            return
        }
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else {
            logger.warning("cannot notify systemd at \(name): socket failed: \(String(cString: strerror(errno)))")
            (socketName, watchdogTimeout, self.fd, self.address) = (nil, nil, -1, [])
            return
        }
        self.fd = fd
        self.address = address
        self.socketName = name
        self.watchdogTimeout = Self.watchdogTimeout(environment: environment, pid: pid)
    }

    deinit {
        // EINTR from close is not retried: Linux releases the descriptor anyway.
        if fd >= 0 { _ = Glibc.close(fd) }
    }

    // MARK: What the agent says

    /// `READY=1`: start-up is finished (the first full round of probes is in),
    /// or a reload announced with `reloading()` is. With `status`, also `STATUS=`.
    public func ready(status: String? = nil) {
        notify(["READY=1"] + (status.map { [Self.statusAssignment($0)] } ?? []))
    }

    /// `STATUS=line`: what `systemctl status` shows. Line breaks become spaces.
    public func status(_ line: String) {
        notify([Self.statusAssignment(line)])
    }

    /// `WATCHDOG=1`, when the watchdog is on for this process; else nothing.
    /// Call it every `watchdogInterval` from a loop that only runs while the agent works.
    public func watchdog() {
        guard watchdogTimeout != nil else { return }
        notify(["WATCHDOG=1"])
    }

    /// `STOPPING=1`: the agent has begun to shut down.
    public func stopping() {
        notify(["STOPPING=1"])
    }

    /// `RELOADING=1` with `MONOTONIC_USEC=` (which systemd 253 and later
    /// require to accept the reload as the one `ExecReload=` asked for; older
    /// versions ignore it). Send `ready()` when the reload is done.
    public func reloading() {
        notify(["RELOADING=1", "MONOTONIC_USEC=\(monotonicMicroseconds())"])
    }

    // MARK: Sending

    /// Sends `assignments` (`KEY=value` each) as one datagram, one per line.
    /// Does nothing when the notifier is inert.
    public func send(_ assignments: [String]) throws(SystemdNotifyError) {
        guard fd >= 0, let socketName else { return }
        let message = Array(assignments.joined(separator: "\n").utf8)
        while true {
            let sent = message.withUnsafeBytes { payload in
                address.withUnsafeBytes { raw in
                    sendto(fd, payload.baseAddress, payload.count, Int32(MSG_NOSIGNAL) | Int32(MSG_DONTWAIT),
                           raw.baseAddress!.assumingMemoryBound(to: sockaddr.self), socklen_t(raw.count))
                }
            }
            if sent >= 0 { return }
            let err = errno
            if err == EINTR { continue }
            precondition(err != EBADF && err != EFAULT, "sendto(\(socketName)) failed with an errno that means a bug: \(err)")
            throw SystemdNotifyError(socket: socketName, errno: err)
        }
    }

    private func notify(_ assignments: [String]) {
        do throws(SystemdNotifyError) {
            try send(assignments)
            failuresInARow.withLock { $0 = 0 }
        } catch {
            let first = failuresInARow.withLock { count in
                count += 1
                return count == 1
            }
            let what = assignments.first ?? ""
            if first {
                logger.warning("cannot notify systemd (\(what)): \(error)")
            } else {
                logger.debug("cannot notify systemd (\(what)): \(error)")
            }
        }
    }

    // MARK: The environment

    /// `sockaddr_un` for a `NOTIFY_SOCKET` value: an absolute path (with its
    /// terminating NUL, as systemd's own client sends it), or `@name` for the
    /// abstract namespace (a leading NUL, no terminator). nil for anything else.
    static func socketAddress(_ name: String) -> [UInt8]? {
        var bytes = Array(name.utf8)
        switch bytes.first {
        case UInt8(ascii: "/"):
            bytes.append(0)
        case UInt8(ascii: "@"):
            bytes[0] = 0
            guard bytes.count > 1 else { return nil }
        default:
            return nil
        }
        var address = sockaddr_un()
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard bytes.count <= capacity else { return nil }
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { path in
            path.copyBytes(from: bytes)
        }
        let length = MemoryLayout<sockaddr_un>.offset(of: \.sun_path)! + bytes.count
        return withUnsafeBytes(of: &address) { Array($0.prefix(length)) }
    }

    /// `WATCHDOG_USEC` when it is positive and `WATCHDOG_PID` (if any) is `pid`.
    static func watchdogTimeout(environment: [String: String], pid: pid_t) -> Duration? {
        guard let text = environment["WATCHDOG_USEC"], let usec = UInt64(text), usec > 0,
              usec <= UInt64(Int64.max) else { return nil }
        if let owner = environment["WATCHDOG_PID"] {
            guard let ownerPID = pid_t(owner), ownerPID == pid else { return nil }
        }
        return .microseconds(Int64(usec))
    }

    /// systemd reads at most a few KiB per datagram; a status line is meant to be short.
    static let maxStatusBytes = 1024

    static func statusAssignment(_ line: String) -> String {
        var text = ""
        var bytes = 0
        for character in line {
            let piece = character.isNewline ? " " : String(character)
            bytes += piece.utf8.count
            if bytes > maxStatusBytes { break }
            text += piece
        }
        return "STATUS=" + text
    }

    /// `CLOCK_MONOTONIC` in microseconds, the clock systemd compares `MONOTONIC_USEC` with.
    public static let monotonicNow: @Sendable () -> UInt64 = {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1_000
    }
}

extension SystemdNotifier {
    /// The one-line `STATUS=` summary: `5 services: 3 up, 1 degraded, 1 down; 2 groups`.
    /// States with no service are left out; the order is that of `HealthState`.
    public static func statusLine(serviceStates: [HealthState], groupCount: Int) -> String {
        func count(_ n: Int, _ word: String) -> String { "\(n) \(word)\(n == 1 ? "" : "s")" }
        let counts = HealthState.allCases.compactMap { state -> String? in
            let n = serviceStates.count { $0 == state }
            return n == 0 ? nil : "\(n) \(state.rawValue)"
        }
        var line = count(serviceStates.count, "service")
        if !counts.isEmpty { line += ": " + counts.joined(separator: ", ") }
        if groupCount > 0 { line += "; " + count(groupCount, "group") }
        return line
    }
}

/// A notification could not be sent: `socket` is `NOTIFY_SOCKET`, `errno` the raw error.
public struct SystemdNotifyError: Error, Equatable, Sendable, CustomStringConvertible {
    public let socket: String
    public let errno: Int32

    public init(socket: String, errno: Int32) {
        self.socket = socket
        self.errno = errno
    }

    public var description: String { "sendto \(socket) failed: \(String(cString: strerror(errno)))" }
}
