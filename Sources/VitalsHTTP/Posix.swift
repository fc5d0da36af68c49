#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CSystem

/// A system call failed. `call` names the call and, where useful, what it
/// was applied to (`"bind([::1]:8080)"`); `errno` is the raw error number.
public struct SystemCallError: Error, Equatable, Sendable, CustomStringConvertible {
    public let call: String
    public let errno: Int32

    public init(call: String, errno: Int32) {
        self.call = call
        self.errno = errno
    }

    public var description: String {
        "\(call) failed: \(String(cString: strerror(errno))) (errno \(errno))"
    }
}

/// The outcome of a non-blocking I/O call.
enum IOResult: Equatable {
    case processed(Int)
    case wouldBlock
}

/// Every system call of this module goes through here: `EINTR` is retried,
/// `EAGAIN` is reported as `.wouldBlock` where the caller asked for
/// non-blocking behaviour, errnos that can only mean a bug in this module
/// trap, and everything else is thrown as `SystemCallError` naming the call.
enum Posix {
    @inline(__always)
    static func check(_ call: @autoclosure () -> String, _ body: () -> Int) throws(SystemCallError) -> Int {
        while true {
            let result = body()
            if result >= 0 { return result }
            let err = Glibc.errno
            if err == EINTR { continue }
            preconditionAcceptable(err, call())
            throw SystemCallError(call: call(), errno: err)
        }
    }

    @inline(__always)
    static func checkNonBlocking(_ call: StaticString, _ body: () -> Int) throws(SystemCallError) -> IOResult {
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

    /// `EBADF` and `EFAULT` mean this module passed a closed descriptor or a
    /// bad pointer: continuing would act on someone else's file.
    @inline(__always)
    static func preconditionAcceptable(_ err: Int32, _ call: @autoclosure () -> String) {
        precondition(err != EBADF && err != EFAULT, "\(call()) failed with an errno that means a bug: \(err)")
    }

    static func socket(domain: Int32, type: Int32) throws(SystemCallError) -> Int32 {
        Int32(try check("socket") { Int(Glibc.socket(domain, type | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)) })
    }

    static func setOption(_ fd: Int32, level: Int32, name: Int32, value: Int32, _ label: StaticString) throws(SystemCallError) {
        var value = value
        _ = try check("setsockopt(\(label))") {
            Int(setsockopt(fd, level, name, &value, socklen_t(MemoryLayout<Int32>.size)))
        }
    }

    static func listen(_ fd: Int32, backlog: Int32) throws(SystemCallError) {
        _ = try check("listen") { Int(Glibc.listen(fd, backlog)) }
    }

    static func accept(_ fd: Int32, _ address: UnsafeMutablePointer<sockaddr_storage>) throws(SystemCallError) -> Int32? {
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let result = try checkNonBlocking("accept4") {
            address.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Int(accept4(fd, $0, &length, Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue)))
            }
        }
        switch result {
        case .processed(let newFD): return Int32(newFD)
        case .wouldBlock: return nil
        }
    }

    static func recv(_ fd: Int32, _ buffer: UnsafeMutableRawBufferPointer) throws(SystemCallError) -> IOResult {
        try checkNonBlocking("recv") { Glibc.recv(fd, buffer.baseAddress, buffer.count, 0) }
    }

    /// `sendmsg` rather than `writev` for `MSG_NOSIGNAL`: a peer that has
    /// gone must give `EPIPE`, not kill the process with `SIGPIPE`.
    static func sendmsg(_ fd: Int32, _ iov: UnsafeMutablePointer<iovec>, count: Int) throws(SystemCallError) -> IOResult {
        var message = msghdr()
        message.msg_iov = iov
        message.msg_iovlen = count
        return try checkNonBlocking("sendmsg") { Glibc.sendmsg(fd, &message, Int32(MSG_NOSIGNAL)) }
    }

    static func send(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) throws(SystemCallError) -> IOResult {
        try checkNonBlocking("send") { Glibc.send(fd, bytes.baseAddress, bytes.count, Int32(MSG_NOSIGNAL)) }
    }

    static func shutdownWrite(_ fd: Int32) {
        // ENOTCONN when the peer already reset: nothing left to shut down.
        _ = Glibc.shutdown(fd, Int32(SHUT_WR))
    }

    /// Closes `fd`. `EINTR` from close is not retried: on Linux the
    /// descriptor is released anyway, and a retry could close a descriptor
    /// another thread just opened (https://lwn.net/Articles/576478/).
    static func close(_ fd: Int32) {
        let result = Glibc.close(fd)
        if result < 0 {
            let err = Glibc.errno
            precondition(err != EBADF, "close(\(fd)) failed with EBADF: double close")
        }
    }

    static func epollCreate() throws(SystemCallError) -> Int32 {
        Int32(try check("epoll_create1") { Int(epoll_create1(Int32(EPOLL_CLOEXEC))) })
    }

    static func epollControl(_ epfd: Int32, _ op: Int32, _ fd: Int32, events: UInt32, tag: UInt64) throws(SystemCallError) {
        var event = epoll_event()
        event.events = events
        event.data.u64 = tag
        _ = try check("epoll_ctl") { Int(epoll_ctl(epfd, op, fd, &event)) }
    }

    static func epollWait(_ epfd: Int32, _ events: UnsafeMutablePointer<epoll_event>, capacity: Int32, timeoutMilliseconds: Int32) throws(SystemCallError) -> Int {
        let result = epoll_wait(epfd, events, capacity, timeoutMilliseconds)
        if result >= 0 { return Int(result) }
        let err = Glibc.errno
        // An interrupted wait is not retried with the old timeout: the loop
        // recomputes its deadlines and waits again.
        if err == EINTR { return 0 }
        preconditionAcceptable(err, "epoll_wait")
        throw SystemCallError(call: "epoll_wait", errno: err)
    }

    static func eventFD() throws(SystemCallError) -> Int32 {
        Int32(try check("eventfd") { Int(eventfd(0, Int32(EFD_CLOEXEC) | Int32(EFD_NONBLOCK))) })
    }

    static func signalEventFD(_ fd: Int32) {
        var one: UInt64 = 1
        // EAGAIN means the counter is already non-zero: the loop is woken anyway.
        _ = try? checkNonBlocking("write(eventfd)") { Glibc.write(fd, &one, 8) }
    }

    static func drainEventFD(_ fd: Int32) {
        var value: UInt64 = 0
        _ = try? checkNonBlocking("read(eventfd)") { Glibc.read(fd, &value, 8) }
    }

    /// Nanoseconds of `CLOCK_MONOTONIC`.
    static func monotonicNanoseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
    }
}
