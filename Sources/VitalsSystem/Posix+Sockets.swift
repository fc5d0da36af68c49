#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CSystem

/// Sockets and epoll, for the status server's loop.
extension Posix {
    public static func socket(domain: Int32, type: Int32) throws(SystemCallError) -> Int32 {
        Int32(try check("socket") { Int(Glibc.socket(domain, type | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)) })
    }

    public static func setOption(_ fd: Int32, level: Int32, name: Int32, value: Int32, _ label: StaticString) throws(SystemCallError) {
        var value = value
        _ = try check("setsockopt(\(label))") {
            Int(setsockopt(fd, level, name, &value, socklen_t(MemoryLayout<Int32>.size)))
        }
    }

    public static func listen(_ fd: Int32, backlog: Int32) throws(SystemCallError) {
        _ = try check("listen") { Int(Glibc.listen(fd, backlog)) }
    }

    /// `accept4` with `SOCK_NONBLOCK | SOCK_CLOEXEC`; nil when nobody is waiting.
    public static func accept(_ fd: Int32, _ address: UnsafeMutablePointer<sockaddr_storage>) throws(SystemCallError) -> Int32? {
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

    @inlinable
    public static func recv(_ fd: Int32, _ buffer: UnsafeMutableRawBufferPointer) throws(SystemCallError) -> IOResult {
        try checkNonBlocking("recv") { Glibc.recv(fd, buffer.baseAddress, buffer.count, 0) }
    }

    /// `sendmsg` rather than `writev` for `MSG_NOSIGNAL`: a peer that has
    /// gone must give `EPIPE`, not kill the process with `SIGPIPE`.
    @inlinable
    public static func sendmsg(_ fd: Int32, _ iov: UnsafeMutablePointer<iovec>, count: Int) throws(SystemCallError) -> IOResult {
        var message = msghdr()
        message.msg_iov = iov
        message.msg_iovlen = count
        return try checkNonBlocking("sendmsg") { Glibc.sendmsg(fd, &message, Int32(MSG_NOSIGNAL)) }
    }

    @inlinable
    public static func send(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) throws(SystemCallError) -> IOResult {
        try checkNonBlocking("send") { Glibc.send(fd, bytes.baseAddress, bytes.count, Int32(MSG_NOSIGNAL)) }
    }

    /// A second descriptor for the same open socket (or file), close-on-exec.
    /// The socket stays open until both are closed.
    public static func duplicate(_ fd: Int32) throws(SystemCallError) -> Int32 {
        Int32(try check("fcntl(F_DUPFD_CLOEXEC)") { Int(vitals_fcntl_dupfd_cloexec(fd)) })
    }

    public static func shutdownWrite(_ fd: Int32) {
        // ENOTCONN when the peer already reset: nothing left to shut down.
        _ = Glibc.shutdown(fd, Int32(SHUT_WR))
    }

    public static func epollCreate() throws(SystemCallError) -> Int32 {
        Int32(try check("epoll_create1") { Int(epoll_create1(Int32(EPOLL_CLOEXEC))) })
    }

    public static func epollControl(_ epfd: Int32, _ op: Int32, _ fd: Int32, events: UInt32, tag: UInt64) throws(SystemCallError) {
        var event = epoll_event()
        event.events = events
        event.data.u64 = tag
        _ = try check("epoll_ctl") { Int(epoll_ctl(epfd, op, fd, &event)) }
    }

    public static func epollWait(_ epfd: Int32, _ events: UnsafeMutablePointer<epoll_event>, capacity: Int32,
                                 timeoutMilliseconds: Int32) throws(SystemCallError) -> Int {
        let result = epoll_wait(epfd, events, capacity, timeoutMilliseconds)
        if result >= 0 { return Int(result) }
        let err = Glibc.errno
        // An interrupted wait is not retried with the old timeout: the loop
        // recomputes its deadlines and waits again.
        if err == EINTR { return 0 }
        preconditionAcceptable(err, "epoll_wait")
        throw SystemCallError(call: "epoll_wait", errno: err)
    }
}
