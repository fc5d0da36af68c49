#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Every system call of the store goes through here: `EINTR` is retried,
/// errnos that can only mean a bug in this module (`EBADF`, `EFAULT`) trap,
/// and everything else is thrown as a `StoreFailure` naming call and path.
enum StorePosix {
    @inline(__always)
    static func check(_ call: StaticString, _ path: String, _ body: () -> Int) throws(StoreFailure) -> Int {
        while true {
            let result = body()
            if result >= 0 { return result }
            let err = Glibc.errno
            if err == EINTR { continue }
            // Acting on after EBADF would mean writing someone else's file.
            precondition(err != EBADF && err != EFAULT, "\(call)(\(path)) failed with an errno that means a bug: \(err)")
            throw StoreFailure(call: "\(call)", path: path, errno: err)
        }
    }

    /// Opens with `O_CLOEXEC` always: children the agent spawns (actions)
    /// must not inherit the journal or, worse, the state directory's lock.
    static func open(_ path: String, _ flags: Int32, mode: mode_t = 0o600) throws(StoreFailure) -> Int32 {
        Int32(try check("open", path) { Int(Glibc.open(path, flags | O_CLOEXEC, mode)) })
    }

    /// Closes `fd`. `EINTR` from close is not retried: on Linux the
    /// descriptor is released anyway, and a retry could close a descriptor
    /// another thread just opened (https://lwn.net/Articles/576478/).
    static func close(_ fd: Int32) {
        _ = Glibc.close(fd)
    }

    /// Writes all of `bytes` at `offset`, looping over short writes.
    static func writeAll(_ fd: Int32, _ bytes: [UInt8], at offset: Int, path: String) throws(StoreFailure) {
        var done = 0
        while done < bytes.count {
            let n = try check("write", path) {
                bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress! + done, $0.count - done, off_t(offset + done)) }
            }
            // pwrite returns 0 only for a zero-length request; guard anyway.
            if n == 0 { throw StoreFailure(call: "write", path: path, errno: EIO) }
            done += n
        }
    }

    static func fsync(_ fd: Int32, path: String) throws(StoreFailure) {
        _ = try check("fsync", path) { Int(Glibc.fsync(fd)) }
    }

    /// `fdatasync`: the data and the size, without the timestamps an append
    /// does not need to survive.
    static func fdatasync(_ fd: Int32, path: String) throws(StoreFailure) {
        _ = try check("fdatasync", path) { Int(Glibc.fdatasync(fd)) }
    }

    static func size(_ fd: Int32, path: String) throws(StoreFailure) -> Int {
        var info = stat()
        _ = try check("fstat", path) { Int(fstat(fd, &info)) }
        return Int(info.st_size)
    }

    static func truncate(_ fd: Int32, to length: Int, path: String) throws(StoreFailure) {
        _ = try check("ftruncate", path) { Int(ftruncate(fd, off_t(length))) }
    }

    /// Makes a rename or a newly created file in `directory` durable.
    /// File systems that cannot sync a directory (`EINVAL`) are let be.
    static func fsyncDirectory(_ directory: String) throws(StoreFailure) {
        let fd = try open(directory, O_RDONLY | O_DIRECTORY)
        defer { close(fd) }
        do throws(StoreFailure) {
            try fsync(fd, path: directory)
        } catch where error.errno == EINVAL {
            return
        }
    }

    static func rename(_ from: String, _ to: String) throws(StoreFailure) {
        _ = try check("rename", "\(from) → \(to)") { Int(Glibc.rename(from, to)) }
    }

    /// Removes `path`; true when it was there.
    @discardableResult
    static func unlinkIfPresent(_ path: String) throws(StoreFailure) -> Bool {
        do throws(StoreFailure) {
            _ = try check("unlink", path) { Int(Glibc.unlink(path)) }
            return true
        } catch where error.errno == ENOENT {
            return false
        }
    }

    static func exists(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0
    }

    /// The whole file, or nil when there is no such file.
    static func readFile(_ path: String) throws(StoreFailure) -> [UInt8]? {
        let fd: Int32
        do throws(StoreFailure) {
            fd = try open(path, O_RDONLY)
        } catch where error.errno == ENOENT {
            return nil
        }
        defer { close(fd) }
        var bytes = [UInt8]()
        bytes.reserveCapacity(try size(fd, path: path))
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let n = try check("read", path) {
                chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            }
            if n == 0 { return bytes }
            bytes.append(contentsOf: chunk[0..<n])
        }
    }

    /// The directory part of `path` ("." when there is none).
    static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        if slash == path.startIndex { return "/" }
        return String(path[..<slash])
    }
}
