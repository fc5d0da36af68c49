#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

import VitalsSystem

/// The store's system calls, through `Posix` (which retries `EINTR` and
/// traps on errnos that can only mean a bug); a failure is thrown as a
/// `StoreFailure`, which adds the path the store needs for its health report.
enum StorePosix {
    @inline(__always)
    static func check(_ call: StaticString, _ path: String, _ body: () -> Int) throws(StoreFailure) -> Int {
        do {
            return try Posix.check("\(call)(\(path))", body)
        } catch {
            throw StoreFailure(call: "\(call)", path: path, errno: error.errno)
        }
    }

    /// Opens with `O_CLOEXEC` always: children the agent spawns (actions)
    /// must not inherit the journal or, worse, the state directory's lock.
    static func open(_ path: String, _ flags: Int32, mode: mode_t = 0o600) throws(StoreFailure) -> Int32 {
        Int32(try check("open", path) { Int(Glibc.open(path, flags | O_CLOEXEC, mode)) })
    }

    static func close(_ fd: Int32) {
        Posix.close(fd)
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
        do {
            return try Posix.readFile(path)
        } catch where error.errno == ENOENT {
            return nil
        } catch {
            throw StoreFailure(call: String(error.call.prefix { $0 != "(" }), path: path, errno: error.errno)
        }
    }

    /// The directory part of `path` ("." when there is none).
    static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        if slash == path.startIndex { return "/" }
        return String(path[..<slash])
    }
}
