#if canImport(Glibc)
import Glibc
#endif

/// Immutable response bytes in one stable allocation. A body is shared, not
/// copied: keep a pre-rendered `HTTPBody` (or a whole `HTTPResponse`) and
/// return it for every request, and the server writes those same bytes with
/// `writev`-style gather I/O, however many connections are sending it.
public final class HTTPBody: @unchecked Sendable, Equatable, CustomStringConvertible {
    // Written once in init and never again, so sharing across threads is safe.
    private let storage: UnsafeMutableRawPointer?
    /// The number of bytes.
    public let count: Int

    /// The empty body.
    public static let empty = HTTPBody(bytes: [])

    public init(bytes: some Collection<UInt8>) {
        count = bytes.count
        if count == 0 {
            storage = nil
        } else {
            let p = UnsafeMutableRawPointer.allocate(byteCount: count, alignment: 16)
            let buffer = UnsafeMutableRawBufferPointer(start: p, count: count)
            buffer.copyBytes(from: bytes)
            storage = p
        }
    }

    public convenience init(string: String) {
        self.init(bytes: string.utf8)
    }

    deinit {
        storage?.deallocate()
    }

    public var isEmpty: Bool { count == 0 }

    /// The bytes, copied into an array.
    public var bytes: [UInt8] { withUnsafeBytes { Array($0) } }

    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeRawBufferPointer(start: storage, count: count))
    }

    /// The body's address; stable for the body's lifetime.
    var baseAddress: UnsafeRawPointer? { UnsafeRawPointer(storage) }

    public static func == (lhs: HTTPBody, rhs: HTTPBody) -> Bool {
        if lhs === rhs { return true }
        guard lhs.count == rhs.count else { return false }
        if lhs.count == 0 { return true }
        return memcmp(lhs.storage!, rhs.storage!, lhs.count) == 0
    }

    public var description: String {
        withUnsafeBytes { String(decoding: $0, as: UTF8.self) }
    }
}
