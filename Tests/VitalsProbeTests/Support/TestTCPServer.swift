import Foundation

/// A tiny TCP server on 127.0.0.1 that plays one script per connection: it
/// writes `banner`, reads `requestBytes` bytes (recording them), writes
/// `reply`, then closes or holds the connection open until the peer closes
/// it or `stop`. Records what each connection sent and when the peer closed.
final class TestTCPServer: @unchecked Sendable {
    enum Afterwards {
        /// Close the connection.
        case close
        /// Keep it open until the peer closes it (or `stop`).
        case hold
    }

    let port: UInt16
    private let listenFD: Int32
    private let banner: [UInt8]
    private let requestBytes: Int
    private let reply: [UInt8]
    private let afterwards: Afterwards
    private let lock = NSLock()
    private var open: Set<Int32> = []
    private var stopped = false
    private var requests: [[UInt8]] = []
    private var peerCloses = 0
    private let acceptLoopDone = DispatchSemaphore(value: 0)

    init(banner: [UInt8] = [], requestBytes: Int = 0, reply: [UInt8] = [], then afterwards: Afterwards = .hold) throws {
        signal(SIGPIPE, SIG_IGN)
        (listenFD, port) = try TestSockets.listen(backlog: 16)
        self.banner = banner
        self.requestBytes = requestBytes
        self.reply = reply
        self.afterwards = afterwards
        Thread { [self] in
            acceptLoop()
            acceptLoopDone.signal()
        }.start()
    }

    /// The bytes each connection sent before the reply, in order of arrival.
    var received: [[UInt8]] { lock.withLock { requests } }
    /// Held connections the peer has closed.
    var closedByPeer: Int { lock.withLock { peerCloses } }

    func stop() {
        let fds: Set<Int32> = lock.withLock {
            stopped = true
            return open
        }
        Glibc.shutdown(listenFD, Int32(SHUT_RDWR))
        acceptLoopDone.wait()
        Glibc.close(listenFD)
        for fd in fds { Glibc.shutdown(fd, Int32(SHUT_RDWR)) }
    }

    private func acceptLoop() {
        while true {
            let fd = accept(listenFD, nil, nil)
            if fd < 0 {
                if errno == EINTR { continue }
                return
            }
            let keep: Bool = lock.withLock {
                guard !stopped else { return false }
                open.insert(fd)
                return true
            }
            guard keep else { Glibc.close(fd); return }
            Thread { [self] in
                serve(fd)
                lock.withLock { _ = open.remove(fd) }
                Glibc.close(fd)
            }.start()
        }
    }

    private func serve(_ fd: Int32) {
        guard sendAll(fd, banner) else { return }
        var request: [UInt8] = []
        var byte: UInt8 = 0
        while request.count < requestBytes {
            guard recv(fd, &byte, 1, 0) == 1 else { return }
            request.append(byte)
        }
        lock.withLock { requests.append(request) }
        guard sendAll(fd, reply) else { return }
        guard afterwards == .hold else { return }
        while recv(fd, &byte, 1, 0) > 0 {}
        lock.withLock {
            if !stopped { peerCloses += 1 }
        }
    }

    private func sendAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return false }
            offset += n
        }
        return true
    }
}
