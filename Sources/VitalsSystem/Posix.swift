#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CSystem

/// The outcome of a non-blocking I/O call.
public enum IOResult: Equatable, Sendable {
    case processed(Int)
    case wouldBlock
}

/// Every system call of Vitals goes through here: `EINTR` is retried,
/// `EAGAIN` is reported (`.wouldBlock`, or nil) where the caller asked for
/// non-blocking behaviour, errnos that can only mean a bug (`EBADF`,
/// `EFAULT`) trap, and everything else is thrown as a `SystemCallError`
/// naming the call.
public enum Posix {
    @inlinable @inline(__always)
    public static func check(_ call: @autoclosure () -> String, _ body: () -> Int) throws(SystemCallError) -> Int {
        while true {
            let result = body()
            if result >= 0 { return result }
            let err = Glibc.errno
            if err == EINTR { continue }
            preconditionAcceptable(err, call())
            throw SystemCallError(call: call(), errno: err)
        }
    }

    @inlinable @inline(__always)
    public static func checkNonBlocking(_ call: StaticString, _ body: () -> Int) throws(SystemCallError) -> IOResult {
        while true {
            let result = body()
            if result >= 0 { return .processed(result) }
            let err = Glibc.errno
            if err == EINTR { continue }
            if err == EAGAIN || err == EWOULDBLOCK { return .wouldBlock }
            preconditionAcceptable(err, "\(call)")
            throw SystemCallError(call: "\(call)", errno: err)
        }
    }

    /// `EBADF` and `EFAULT` mean the caller passed a closed descriptor or a
    /// bad pointer: continuing would act on someone else's file.
    @inlinable @inline(__always)
    public static func preconditionAcceptable(_ err: Int32, _ call: @autoclosure () -> String) {
        precondition(err != EBADF && err != EFAULT, "\(call()) failed with an errno that means a bug: \(err)")
    }

    /// `strerror(err)`: "No such file or directory".
    public static func errorText(_ err: Int32) -> String { String(cString: strerror(err)) }

    /// Closes `fd`. `EINTR` from close is not retried: on Linux the
    /// descriptor is released anyway, and a retry could close a descriptor
    /// another thread just opened (https://lwn.net/Articles/576478/).
    public static func close(_ fd: Int32) {
        let result = Glibc.close(fd)
        if result < 0 {
            let err = Glibc.errno
            precondition(err != EBADF, "close(\(fd)) failed with EBADF: double close")
        }
    }

    /// Reads what is available. Returns nil when the read would block, 0 at end of file.
    public static func read(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer) throws(SystemCallError) -> Int? {
        switch try checkNonBlocking("read", { Glibc.read(fd, buffer.baseAddress, buffer.count) }) {
        case .processed(let n): n
        case .wouldBlock: nil
        }
    }

    /// The whole of a file, read until end of file: a regular file, or a
    /// FIFO or device that yields its bytes when a writer comes. Throws the
    /// failed call (`open` with `ENOENT` when there is no such file).
    public static func readFile(_ path: String) throws(SystemCallError) -> [UInt8] {
        let fd = Int32(try check("open(\(path))") { Int(Glibc.open(path, O_RDONLY | O_CLOEXEC)) })
        defer { close(fd) }
        var bytes: [UInt8] = []
        var info = stat()
        if fstat(fd, &info) == 0, info.st_size > 0 { bytes.reserveCapacity(Int(info.st_size)) }
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let n = try check("read(\(path))") {
                chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            }
            if n == 0 { return bytes }
            bytes.append(contentsOf: chunk[0..<n])
        }
    }

    /// Writes what fits. Returns nil when the write would block. `EPIPE` (the
    /// reader is gone) is thrown like any other error.
    public static func write(_ fd: Int32, from buffer: UnsafeRawBufferPointer) throws(SystemCallError) -> Int? {
        switch try checkNonBlocking("write", { Glibc.write(fd, buffer.baseAddress, buffer.count) }) {
        case .processed(let n): n
        case .wouldBlock: nil
        }
    }

    public enum PipeEnd: Sendable { case read, write }

    /// A pipe whose both ends close on exec. `nonBlocking` picks the end the
    /// caller keeps; the other end stays blocking, as programs expect.
    public static func pipe(nonBlocking end: PipeEnd) throws(SystemCallError) -> (read: Int32, write: Int32) {
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

    /// `poll`, retried on `EINTR` with the same timeout (callers recompute
    /// their deadlines on every pass, so a slightly late wake is harmless).
    public static func poll(_ fds: inout [pollfd], timeoutMilliseconds: Int32) -> Int {
        while true {
            let n = Glibc.poll(&fds, nfds_t(fds.count), timeoutMilliseconds)
            if n >= 0 { return Int(n) }
            let err = Glibc.errno
            if err == EINTR { continue }
            preconditionFailure("poll failed: \(errorText(err))")
        }
    }

    // MARK: eventfd, the wake-up of every loop

    /// A non-blocking, close-on-exec eventfd.
    public static func eventFD() throws(SystemCallError) -> Int32 {
        Int32(try check("eventfd") { Int(eventfd(0, Int32(EFD_CLOEXEC) | Int32(EFD_NONBLOCK))) })
    }

    public static func signalEventFD(_ fd: Int32) {
        var one: UInt64 = 1
        // EAGAIN means the counter is already non-zero: the loop is woken anyway.
        _ = try? checkNonBlocking("write(eventfd)") { Glibc.write(fd, &one, 8) }
    }

    public static func drainEventFD(_ fd: Int32) {
        var value: UInt64 = 0
        _ = try? checkNonBlocking("read(eventfd)") { Glibc.read(fd, &value, 8) }
    }
}
