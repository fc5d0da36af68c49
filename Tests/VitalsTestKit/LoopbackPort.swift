#if canImport(Glibc)
import Glibc
#endif

/// Ports on 127.0.0.1 for tests that need one nothing listens on.
public enum LoopbackPort {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// A TCP socket bound to 127.0.0.1 on a port the kernel picks, not yet
    /// listening. The caller owns `fd`.
    public static func bound() throws -> (fd: Int32, port: UInt16) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket: errno \(errno)") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer -> Int32 in
                guard bind(fd, pointer, length) == 0 else { return -1 }
                return getsockname(fd, pointer, &length)
            }
        }
        guard bound == 0 else {
            let failure = Failure(description: "bind 127.0.0.1:0: errno \(errno)")
            close(fd)
            throw failure
        }
        return (fd, UInt16(bigEndian: address.sin_port))
    }

    /// A port nothing listens on: bound, read back, and closed again.
    /// Connecting to it is refused (unless something takes it meanwhile;
    /// `RefusingPort` holds on to it).
    public static func unused() throws -> UInt16 {
        let (fd, port) = try bound()
        close(fd)
        return port
    }
}

/// A port on 127.0.0.1 that refuses connections: bound, never listening.
/// Holding it keeps anyone else from taking the port during the test.
public final class RefusingPort {
    public let port: UInt16
    private let fd: Int32

    public init() throws {
        (fd, port) = try LoopbackPort.bound()
    }

    deinit { close(fd) }
}
