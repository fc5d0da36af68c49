import Foundation
import VitalsCore
import VitalsSystem

/// Why an icmp probe could not start, in an operator's words.
struct ICMPFailure: Error, Equatable {
    let reason: String
    init(_ reason: String) { self.reason = reason }
}

/// Where an icmp check's echo requests go.
enum ICMPAddress: Equatable {
    case v4(in_addr)
    case v6(in6_addr, scope: UInt32)

    var family: ICMPEcho.Family {
        switch self {
        case .v4: .v4
        case .v6: .v6
        }
    }

    static func == (lhs: ICMPAddress, rhs: ICMPAddress) -> Bool {
        switch (lhs, rhs) {
        case (.v4(let a), .v4(let b)): a.s_addr == b.s_addr
        case (.v6(var a, _), .v6(var b, _)): memcmp(&a, &b, MemoryLayout<in6_addr>.size) == 0
        default: false
        }
    }

    /// An IPv4 or IPv6 literal (`fe80::1%eth0` with its zone); nil for a name.
    static func literal(_ host: String) -> ICMPAddress? {
        var v4 = in_addr()
        if inet_pton(AF_INET, host, &v4) == 1 { return .v4(v4) }
        let parts = host.split(separator: "%", maxSplits: 1)
        var v6 = in6_addr()
        guard let address = parts.first, inet_pton(AF_INET6, String(address), &v6) == 1 else { return nil }
        var scope: UInt32 = 0
        if parts.count == 2 {
            scope = UInt32(parts[1]) ?? if_nametoindex(String(parts[1]))
            if scope == 0 { return nil }
        }
        return .v6(v6, scope: scope)
    }

    /// Resolves a name with `getaddrinfo`, IPv4 first as ping does. Blocks:
    /// called off the probe loop.
    static func resolve(_ host: String) -> Result<ICMPAddress, ICMPFailure> {
        if let literal = literal(host) { return .success(literal) }
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_DGRAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let code = getaddrinfo(host, nil, &hints, &list)
        guard code == 0, let list else {
            return .failure(ICMPFailure("cannot resolve host: \(String(cString: gai_strerror(code)))"))
        }
        defer { freeaddrinfo(list) }
        var found: ICMPAddress?
        var node: UnsafeMutablePointer<addrinfo>? = list
        while let entry = node {
            if entry.pointee.ai_family == AF_INET, let address = entry.pointee.ai_addr {
                let v4 = address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_addr }
                return .success(.v4(v4))
            }
            if found == nil, entry.pointee.ai_family == AF_INET6, let address = entry.pointee.ai_addr {
                found = address.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) {
                    .v6($0.pointee.sin6_addr, scope: $0.pointee.sin6_scope_id)
                }
            }
            node = entry.pointee.ai_next
        }
        return found.map { .success($0) } ?? .failure(ICMPFailure("cannot resolve host: no address"))
    }

    /// Calls `body` with the address as a `sockaddr`.
    func withSocketAddress<T>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> T) -> T {
        switch self {
        case .v4(let address):
            var storage = sockaddr_in()
            storage.sin_family = sa_family_t(AF_INET)
            storage.sin_addr = address
            return withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
        case .v6(let address, let scope):
            var storage = sockaddr_in6()
            storage.sin6_family = sa_family_t(AF_INET6)
            storage.sin6_addr = address
            storage.sin6_scope_id = scope
            return withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in6>.size)) }
            }
        }
    }

    /// The address a packet came from, when it is of this family.
    static func from(_ storage: sockaddr_storage) -> ICMPAddress? {
        var storage = storage
        return withUnsafePointer(to: &storage) { pointer in
            switch Int32(pointer.pointee.ss_family) {
            case AF_INET:
                pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { .v4($0.pointee.sin_addr) }
            case AF_INET6:
                pointer.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) {
                    .v6($0.pointee.sin6_addr, scope: $0.pointee.sin6_scope_id)
                }
            default:
                nil
            }
        }
    }
}

/// Opens ICMP sockets: an unprivileged datagram socket (`SOCK_DGRAM`,
/// `IPPROTO_ICMP`/`IPPROTO_ICMPV6`) where `net.ipv4.ping_group_range`
/// includes the agent's group, else a raw socket, which needs `CAP_NET_RAW`.
/// Once the datagram kind is refused for a family it is not tried again.
/// Touched only by the prober's loop thread.
final class ICMPSockets {
    private var datagramRefused: Set<Int32> = []

    /// A non-blocking socket for `family`, and whether it is raw.
    func open(_ family: ICMPEcho.Family) -> Result<(fd: Int32, raw: Bool), ICMPFailure> {
        let domain = family == .v4 ? AF_INET : AF_INET6
        let proto = family == .v4 ? Int32(IPPROTO_ICMP) : Int32(IPPROTO_ICMPV6)
        let flags = Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
        var datagramErrno: Int32 = 0
        if !datagramRefused.contains(domain) {
            do {
                let fd = try Posix.check("socket(SOCK_DGRAM, ICMP)") {
                    Int(Glibc.socket(domain, Int32(SOCK_DGRAM.rawValue) | flags, proto))
                }
                return .success((Int32(fd), false))
            } catch {
                datagramErrno = error.errno
                if error.errno == EACCES || error.errno == EPERM || error.errno == EPROTONOSUPPORT {
                    datagramRefused.insert(domain)
                }
            }
        }
        do {
            let fd = try Posix.check("socket(SOCK_RAW, ICMP)") {
                Int(Glibc.socket(domain, Int32(SOCK_RAW.rawValue) | flags, proto))
            }
            return .success((Int32(fd), true))
        } catch {
            if error.errno == EPERM || error.errno == EACCES {
                return .failure(ICMPFailure("cannot open an ICMP socket: net.ipv4.ping_group_range excludes the agent's group "
                    + "and it lacks CAP_NET_RAW"))
            }
            let first = datagramErrno == 0 ? "" : "\(Posix.errorText(datagramErrno)); "
            return .failure(ICMPFailure("cannot open an ICMP socket: \(first)\(Posix.errorText(error.errno))"))
        }
    }
}

/// One probe of an icmp check: `count` echo requests, `ICMPEcho.spacing`
/// apart, and their replies, until all have come back or the probe's
/// timeout. Like `TCPConversation`, it stays on the probe loop without
/// blocking: its socket is non-blocking, and the prober's
/// `curl_multi_poll` waits on it (an extra `curl_waitfd`) and wakes for
/// its next send time. Touched only by the prober's loop thread.
final class ICMPPing {
    let slot: Int
    /// Matches a name's resolution, done off the loop, to this probe.
    let ticket: UInt64
    let check: ICMPCheck
    let startedAt: MonotonicInstant
    let deadline: MonotonicInstant
    let timeout: Duration
    private let gap: Duration
    private(set) var fd: Int32 = -1
    private var raw = false
    private var address: ICMPAddress?
    private let identifier: UInt16
    private let firstSequence: UInt16
    private var sentAt: [MonotonicInstant] = []
    private var roundTrips: [Duration?]
    private var sendError: String?
    private var nextSendAt: MonotonicInstant

    init(slot: Int, ticket: UInt64, check: ICMPCheck, timeout: Duration, identifier: UInt16,
         firstSequence: UInt16, startedAt: MonotonicInstant) {
        self.slot = slot
        self.ticket = ticket
        self.check = check
        self.timeout = timeout
        self.identifier = identifier
        self.firstSequence = firstSequence
        self.startedAt = startedAt
        deadline = startedAt + timeout
        gap = ICMPEcho.spacing(count: check.count, timeout: timeout)
        roundTrips = Array(repeating: nil, count: check.count)
        nextSendAt = startedAt
    }

    deinit { close() }

    /// Waiting for its address (a name being resolved).
    var isResolving: Bool { address == nil }

    /// When the loop must come back even if the socket stays quiet.
    var nextWake: MonotonicInstant {
        sentAt.count < check.count && fd >= 0 ? min(nextSendAt, deadline) : deadline
    }

    /// Starts sending to `address` on `socket`, which it now owns.
    func begin(address: ICMPAddress, socket: (fd: Int32, raw: Bool)) {
        self.address = address
        fd = socket.fd
        raw = socket.raw
    }

    /// Sends the requests now due and reads the replies that have come.
    /// Returns the verdict once every request is answered, else nil.
    func advance(now: MonotonicInstant, readable: Bool) -> (verdict: ProbeVerdict, latency: Duration?)? {
        guard fd >= 0, let address else { return nil }
        while sentAt.count < check.count, now >= nextSendAt {
            send(to: address, sequence: firstSequence &+ UInt16(sentAt.count))
            sentAt.append(now)
            nextSendAt = nextSendAt + gap
        }
        if readable { receive(from: address) }
        guard sentAt.count == check.count, !roundTrips.contains(nil) else { return nil }
        return verdict()
    }

    /// The verdict when the deadline passed first: what has not come back is lost.
    func expired() -> (verdict: ProbeVerdict, latency: Duration?) { verdict() }

    private func verdict() -> (verdict: ProbeVerdict, latency: Duration?) {
        ICMPEcho.verdict(check, sent: check.count, roundTrips: roundTrips.compactMap { $0 }, sendError: sendError)
    }

    private func send(to address: ICMPAddress, sequence: UInt16) {
        let packet = ICMPEcho.request(family: address.family, identifier: identifier, sequence: sequence)
        let result = packet.withUnsafeBytes { bytes in
            address.withSocketAddress { socketAddress, length in
                Result { () throws(SystemCallError) in
                    try Posix.checkNonBlocking("sendto") {
                        Glibc.sendto(fd, bytes.baseAddress, bytes.count, Int32(MSG_NOSIGNAL), socketAddress, length)
                    }
                }
            }
        }
        switch result {
        case .success(.processed): break
        case .success(.wouldBlock): sendError = sendError ?? "send: socket buffer full"
        case .failure(let error): sendError = sendError ?? "send failed: \(Posix.errorText(error.errno))"
        }
    }

    private func receive(from address: ICMPAddress) {
        var buffer = [UInt8](repeating: 0, count: 2048)
        while true {
            var source = sockaddr_storage()
            var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let result = buffer.withUnsafeMutableBytes { bytes in
                withUnsafeMutablePointer(to: &source) { pointer in
                    pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
                        Result { () throws(SystemCallError) in
                            try Posix.checkNonBlocking("recvfrom") {
                                Glibc.recvfrom(fd, bytes.baseAddress, bytes.count, Int32(MSG_DONTWAIT),
                                               socketAddress, &length)
                            }
                        }
                    }
                }
            }
            guard case .success(.processed(let count)) = result else { return }
            let now = MonotonicInstant.now()
            guard ICMPAddress.from(source) == address,
                  let reply = ICMPEcho.reply(buffer[..<count], family: address.family,
                                             includesIPHeader: raw && address.family == .v4) else { continue }
            // A datagram socket's identifier is the kernel's, and the kernel
            // already delivers only this socket's replies.
            if raw && reply.identifier != identifier { continue }
            let index = Int(reply.sequence &- firstSequence)
            guard index < sentAt.count, roundTrips[index] == nil else { continue }
            roundTrips[index] = now - sentAt[index]
        }
    }

    func close() {
        guard fd >= 0 else { return }
        Posix.close(fd)
        fd = -1
    }
}
