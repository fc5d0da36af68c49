#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The two durable writes the store makes, as a seam: `PosixStoreDisk`
/// performs them with system calls; tests pass a disk that fails the way a
/// full (`ENOSPC`) or read-only (`EROFS`) file system does, which works even
/// when the tests run as root and permission bits would not stop a write.
///
/// Reading, rotating and moving files aside are not part of the seam: they
/// happen at start-up or around a write that already goes through it.
public protocol StoreDisk: Sendable {
    /// Writes `bytes` into the file at `path` at `offset` — the size the
    /// caller knows to hold complete records — first cutting off whatever
    /// lies beyond `offset` (the remains of a write that failed part-way),
    /// and returns the new size once the bytes are on disk. Creates the file
    /// (mode 0600) when missing; a file shorter than `offset` (removed by
    /// hand meanwhile) is written at its end, never with a hole.
    func append(_ bytes: [UInt8], to path: String, at offset: Int) throws(StoreFailure) -> Int

    /// Replaces the file at `path` with `bytes` atomically: a reader, or a
    /// restart after a crash at any instant, sees the old content or the new
    /// one, never a mix.
    func replace(_ path: String, with bytes: [UInt8]) throws(StoreFailure)
}

/// The real disk: `pwrite` + `fdatasync` for appends; `PATH.tmp`, `fsync`,
/// `rename`, `fsync` of the directory for replacements.
public struct PosixStoreDisk: StoreDisk {
    public init() {}

    public func append(_ bytes: [UInt8], to path: String, at offset: Int) throws(StoreFailure) -> Int {
        var created = false
        let fd: Int32
        do throws(StoreFailure) {
            fd = try StorePosix.open(path, O_WRONLY)
        } catch where error.errno == ENOENT {
            fd = try StorePosix.open(path, O_WRONLY | O_CREAT)
            created = true
        }
        defer { StorePosix.close(fd) }
        let size = try StorePosix.size(fd, path: path)
        let start = min(size, offset)
        if size > start {
            try StorePosix.truncate(fd, to: start, path: path)
        }
        do throws(StoreFailure) {
            try StorePosix.writeAll(fd, bytes, at: start, path: path)
            try StorePosix.fdatasync(fd, path: path)
        } catch {
            // Leave no half line behind for the retry to run into; if this
            // fails too, the next append cuts it (it writes at `offset`).
            _ = ftruncate(fd, off_t(start))
            throw error
        }
        if created {
            // A new file is found after a power cut only if its directory entry is on disk too.
            try StorePosix.fsyncDirectory(StorePosix.directory(of: path))
        }
        return start + bytes.count
    }

    public func replace(_ path: String, with bytes: [UInt8]) throws(StoreFailure) {
        let temporary = path + ".tmp"
        do throws(StoreFailure) {
            let fd = try StorePosix.open(temporary, O_WRONLY | O_CREAT | O_TRUNC)
            defer { StorePosix.close(fd) }
            try StorePosix.writeAll(fd, bytes, at: 0, path: temporary)
            try StorePosix.fsync(fd, path: temporary)
        } catch {
            _ = unlink(temporary)
            throw error
        }
        do throws(StoreFailure) {
            try StorePosix.rename(temporary, path)
        } catch {
            _ = unlink(temporary)
            throw error
        }
        try StorePosix.fsyncDirectory(StorePosix.directory(of: path))
    }
}
