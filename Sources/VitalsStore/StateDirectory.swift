#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Synchronization

/// The agent's state directory (`agent.state_dir`): snapshots, the event
/// journal, the token, the lock.
public enum StateDirectory {
    /// Creates `path` and any missing parents with mode 0700 (the state
    /// holds the API token and operator decisions: no one else reads it).
    /// An existing directory is left as it is. Throws `.cannotCreateDirectory`
    /// naming the path and the reason, or `.notADirectory`.
    public static func create(_ path: String) throws(StoreError) {
        var info = stat()
        if stat(path, &info) == 0 {
            guard info.st_mode & S_IFMT == S_IFDIR else { throw .notADirectory(path) }
            return
        }
        var prefix = path.hasPrefix("/") ? "/" : ""
        for component in path.split(separator: "/", omittingEmptySubsequences: true) {
            prefix += (prefix.isEmpty || prefix.hasSuffix("/") ? "" : "/") + component
            if mkdir(prefix, 0o700) == 0 { continue }
            let err = errno
            if err == EEXIST {
                if stat(prefix, &info) == 0, info.st_mode & S_IFMT == S_IFDIR { continue }
                throw prefix == path ? .notADirectory(path)
                    : .cannotCreateDirectory(path, StoreFailure(call: "mkdir", path: prefix, errno: ENOTDIR))
            }
            throw .cannotCreateDirectory(path, StoreFailure(call: "mkdir", path: prefix, errno: err))
        }
    }
}

/// The lock that keeps two agents out of one state directory: an exclusive
/// `flock` on `DIR/lock`, which holds the holder's pid for the error message.
///
/// The lock lives as long as its descriptor: keep the returned object for
/// the life of the process (dropping it does not unlock; `release()` does,
/// for tests). The kernel releases it when the process exits however it
/// exits, `kill -9` included, so a crash never leaves a stale lock.
///
/// `flock` locks belong to an open file description, not to a process: a
/// second `acquire` in the same process opens the file anew and is refused
/// like any other process. The descriptor is close-on-exec, so actions the
/// agent spawns do not inherit (and keep) the lock.
public final class StateDirectoryLock: Sendable {
    /// The directory as given, e.g. `./.vitals`.
    public let directory: String
    /// `DIR/lock`.
    public let path: String
    private let fd: Mutex<Int32?>

    private init(directory: String, path: String, fd: Int32) {
        self.directory = directory
        self.path = path
        self.fd = Mutex(fd)
    }

    /// Creates the directory when missing (see `StateDirectory.create`),
    /// then takes the lock without waiting and writes our pid into it.
    /// Throws `.directoryInUse` with the holder's pid when another process
    /// (or another acquire in this one) holds it.
    public static func acquire(directory: String) throws(StoreError) -> StateDirectoryLock {
        try StateDirectory.create(directory)
        let path = directory.hasSuffix("/") ? directory + "lock" : directory + "/lock"
        let fd: Int32
        do throws(StoreFailure) {
            // O_RDWR without O_TRUNC: the holder's pid must stay readable until we own the lock.
            fd = try StorePosix.open(path, O_RDWR | O_CREAT)
        } catch {
            throw .cannotLock(directory, error)
        }
        do throws(StoreFailure) {
            _ = try StorePosix.check("flock", path) { Int(flock(fd, LOCK_EX | LOCK_NB)) }
        } catch {
            let holder = error.errno == EWOULDBLOCK ? readPID(fd) : nil
            StorePosix.close(fd)
            throw error.errno == EWOULDBLOCK ? .directoryInUse(directory, pid: holder) : .cannotLock(directory, error)
        }
        do throws(StoreFailure) {
            let pid = Array("\(getpid())\n".utf8)
            try StorePosix.truncate(fd, to: 0, path: path)
            try StorePosix.writeAll(fd, pid, at: 0, path: path)
        } catch {
            // The lock is ours even if the pid could not be written (full
            // disk): another agent is still kept out, it just cannot name us.
        }
        return StateDirectoryLock(directory: directory, path: path, fd: fd)
    }

    /// Unlocks and closes. The lock file stays, so the next holder reuses it.
    public func release() {
        fd.withLock { fd in
            guard let descriptor = fd else { return }
            StorePosix.close(descriptor) // closing the last descriptor releases the flock
            fd = nil
        }
    }

    private static func readPID(_ fd: Int32) -> Int32? {
        var buffer = [UInt8](repeating: 0, count: 32)
        let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
        guard n > 0 else { return nil }
        let text = String(decoding: buffer[0..<n], as: UTF8.self).trimmingWhitespace
        return Int32(text)
    }
}

extension String {
    fileprivate var trimmingWhitespace: Substring {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\n" || $0 == "\t" || $0 == "\r" }
        guard let first = firstIndex(where: { !isSpace($0) }), let last = lastIndex(where: { !isSpace($0) }) else { return "" }
        return self[first...last]
    }
}
