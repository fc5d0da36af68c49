#if canImport(Glibc)
import Glibc
#endif
import CSystem
import VitalsSystem

/// A numeric socket address, converted from and to the public types.
struct SocketAddress {
    var storage = sockaddr_storage()
    var length: socklen_t

    var family: Int32 { Int32(storage.ss_family) }

    init?(_ address: HTTPListenAddress) {
        if address.isIPv6 {
            var sin6 = sockaddr_in6()
            sin6.sin6_family = sa_family_t(AF_INET6)
            sin6.sin6_port = address.port.bigEndian
            guard inet_pton(AF_INET6, address.host, &sin6.sin6_addr) == 1 else { return nil }
            length = socklen_t(MemoryLayout<sockaddr_in6>.size)
            withUnsafeMutableBytes(of: &storage) { raw in
                withUnsafeBytes(of: sin6) { raw.copyMemory(from: $0) }
            }
        } else {
            var sin = sockaddr_in()
            sin.sin_family = sa_family_t(AF_INET)
            sin.sin_port = address.port.bigEndian
            guard inet_pton(AF_INET, address.host, &sin.sin_addr) == 1 else { return nil }
            length = socklen_t(MemoryLayout<sockaddr_in>.size)
            withUnsafeMutableBytes(of: &storage) { raw in
                withUnsafeBytes(of: sin) { raw.copyMemory(from: $0) }
            }
        }
    }

    /// The address in `storage` as (family, numeric host, port); nil for
    /// families other than IPv4 and IPv6.
    static func describe(_ storage: UnsafePointer<sockaddr_storage>) -> HTTPRemoteAddress? {
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        switch Int32(storage.pointee.ss_family) {
        case AF_INET:
            return storage.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { sin in
                var addr = sin.pointee.sin_addr
                guard inet_ntop(AF_INET, &addr, &text, socklen_t(text.count)) != nil else { return nil }
                let host = text.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
                return HTTPRemoteAddress(family: .ipv4, host: host, port: UInt16(bigEndian: sin.pointee.sin_port))
            }
        case AF_INET6:
            return storage.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { sin6 in
                var addr = sin6.pointee.sin6_addr
                guard inet_ntop(AF_INET6, &addr, &text, socklen_t(text.count)) != nil else { return nil }
                let host = text.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
                return HTTPRemoteAddress(family: .ipv6, host: host, port: UInt16(bigEndian: sin6.pointee.sin6_port))
            }
        default:
            return nil
        }
    }
}

/// Creates, binds and listens on one address. Returns the descriptor and the
/// address actually bound (with the kernel's port when asked for 0).
func makeListeningSocket(_ address: HTTPListenAddress, backlog: Int32) throws(SystemCallError) -> (fd: Int32, bound: HTTPListenAddress) {
    guard var socketAddress = SocketAddress(address) else {
        throw SystemCallError(call: "inet_pton(\(address.host))", errno: EINVAL)
    }
    let fd = try Posix.socket(domain: socketAddress.family, type: Int32(SOCK_STREAM.rawValue))
    do throws(SystemCallError) {
        try Posix.setOption(fd, level: SOL_SOCKET, name: SO_REUSEADDR, value: 1, "SO_REUSEADDR")
        if socketAddress.family == AF_INET6 {
            // Let an IPv4 socket bind the same port on 0.0.0.0.
            try Posix.setOption(fd, level: Int32(IPPROTO_IPV6), name: IPV6_V6ONLY, value: 1, "IPV6_V6ONLY")
        }
        let length = socketAddress.length
        _ = try Posix.check("bind(\(address))") {
            withUnsafePointer(to: &socketAddress.storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Int(bind(fd, $0, length)) }
            }
        }
        try Posix.listen(fd, backlog: backlog)
        var bound = sockaddr_storage()
        var boundLength = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = try Posix.check("getsockname") {
            withUnsafeMutablePointer(to: &bound) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Int(getsockname(fd, $0, &boundLength)) }
            }
        }
        let port = withUnsafePointer(to: &bound) { SocketAddress.describe($0)?.port } ?? address.port
        return (fd, HTTPListenAddress(host: address.host, port: port))
    } catch {
        Posix.close(fd)
        throw error
    }
}
