#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A system call failed. `call` names the call and, where useful, what it
/// was applied to (`"bind([::1]:8080)"`); `errno` is the raw error number.
public struct SystemCallError: Error, Equatable, Sendable, CustomStringConvertible {
    public let call: String
    public let errno: Int32

    public init(call: String, errno: Int32) {
        self.call = call
        self.errno = errno
    }

    /// "bind([::1]:8080) failed: Address already in use (errno 98)".
    public var description: String {
        "\(call) failed: \(Posix.errorText(errno)) (errno \(errno))"
    }
}
