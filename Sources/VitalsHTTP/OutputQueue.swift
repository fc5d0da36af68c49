#if canImport(Glibc)
import Glibc
#endif
import VitalsSystem

/// Response bytes waiting for a connection's socket: heads (and small
/// bodies) copied into one reusable byte array, large bodies referenced,
/// never copied. `write` gathers them into one `sendmsg` call.
struct OutputQueue {
    private enum Segment {
        /// The next `count` bytes of `inline`.
        case inline(Int)
        case body(HTTPBody)

        var count: Int {
            switch self {
            case .inline(let n): return n
            case .body(let b): return b.count
            }
        }
    }

    private var inline: [UInt8] = []
    /// Index in `inline` of the first byte not yet sent.
    private var inlineCursor = 0
    private var segments: [Segment] = []
    private var segmentIndex = 0
    /// Bytes of `segments[segmentIndex]` already sent.
    private var segmentOffset = 0
    /// Bytes queued and not yet sent.
    private(set) var pendingBytes = 0

    var isEmpty: Bool { pendingBytes == 0 }

    init() {
        inline.reserveCapacity(1024)
    }

    /// Appends bytes written by `body` to the inline buffer.
    mutating func appendInline(_ body: (inout [UInt8]) -> Void) {
        let before = inline.count
        body(&inline)
        let added = inline.count - before
        guard added > 0 else { return }
        pendingBytes += added
        if segmentIndex < segments.count, case .inline(let n) = segments[segments.count - 1] {
            segments[segments.count - 1] = .inline(n + added)
        } else {
            segments.append(.inline(added))
        }
    }

    /// Queues `body` by reference.
    mutating func appendBody(_ body: HTTPBody) {
        guard body.count > 0 else { return }
        pendingBytes += body.count
        segments.append(.body(body))
    }

    /// Writes as much as the socket takes. Returns whether any byte moved.
    mutating func write(to fd: Int32, iovecs: UnsafeMutablePointer<iovec>, capacity: Int) throws(SystemCallError) -> Bool {
        var progressed = false
        while pendingBytes > 0 {
            let result = try inline.withUnsafeBufferPointer { (bytes) throws(SystemCallError) -> IOResult in
                let count = fillIOVecs(iovecs, capacity: capacity, inline: bytes)
                return try Posix.sendmsg(fd, iovecs, count: count)
            }
            switch result {
            case .wouldBlock:
                return progressed
            case .processed(let n):
                progressed = progressed || n > 0
                consume(n)
            }
        }
        return progressed
    }

    private func fillIOVecs(_ iov: UnsafeMutablePointer<iovec>, capacity: Int, inline bytes: UnsafeBufferPointer<UInt8>) -> Int {
        var count = 0
        var cursor = inlineCursor
        var k = segmentIndex
        while k < segments.count && count < capacity {
            let skip = k == segmentIndex ? segmentOffset : 0
            switch segments[k] {
            case .inline(let n):
                iov[count] = iovec(iov_base: UnsafeMutableRawPointer(mutating: bytes.baseAddress! + cursor), iov_len: n - skip)
                cursor += n - skip
            case .body(let body):
                iov[count] = iovec(iov_base: UnsafeMutableRawPointer(mutating: body.baseAddress! + skip), iov_len: body.count - skip)
            }
            count += 1
            k += 1
        }
        return count
    }

    private mutating func consume(_ written: Int) {
        var remaining = written
        pendingBytes -= written
        while remaining > 0 {
            let segment = segments[segmentIndex]
            let left = segment.count - segmentOffset
            let step = min(left, remaining)
            if case .inline = segment { inlineCursor += step }
            remaining -= step
            if step == left {
                segmentIndex += 1
                segmentOffset = 0
            } else {
                segmentOffset += step
            }
        }
        if segmentIndex == segments.count {
            // Everything sent: reuse the storage from the start.
            inline.removeAll(keepingCapacity: inline.capacity <= 256 * 1024)
            segments.removeAll(keepingCapacity: segments.capacity <= 64)
            inlineCursor = 0
            segmentIndex = 0
            segmentOffset = 0
        } else if inlineCursor >= 64 * 1024 {
            // A long backlog that never fully drains: drop what was sent.
            inline.removeSubrange(0..<inlineCursor)
            inlineCursor = 0
            segments.removeSubrange(0..<segmentIndex)
            segmentIndex = 0
        }
    }
}
