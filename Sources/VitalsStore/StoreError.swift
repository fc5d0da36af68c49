#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import VitalsSystem

/// A file operation of the store failed: `call` names the system call,
/// `path` the file it was applied to, `errno` the raw error number.
///
/// These are the failures the agent lives with (a full disk, a read-only
/// remount, a permission changed under it): the store reports them through
/// `WriteOutcome` and `StoreHealth` rather than throwing them at the agent.
public struct StoreFailure: Error, Equatable, Sendable, CustomStringConvertible {
    public let call: String
    public let path: String
    public let errno: Int32

    public init(call: String, path: String, errno: Int32) {
        self.call = call
        self.path = path
        self.errno = errno
    }

    /// The error text of `errno`, as `strerror` gives it ("No space left on device").
    public var reason: String { Posix.errorText(errno) }

    /// Worded as every failed system call is: "write(/var/lib/vitals/events.jsonl) failed: No space left on device (errno 28)".
    public var description: String { SystemCallError(call: "\(call)(\(path))", errno: errno).description }
}

/// An error the operator has to act on, or at least be told about: the state
/// directory cannot be created or is in use, a file cannot be read, a
/// snapshot is corrupt. Each `description` is a sentence naming the path.
///
/// Compare errors by `code`; the set of codes may grow.
public struct StoreError: Error, Equatable, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Value: String {
            case cannotCreateDirectory, notADirectory, directoryInUse, cannotLock, cannotRead, corruptSnapshot
        }
        private let value: Value
        private init(_ value: Value) { self.value = value }

        /// The state directory is missing and `mkdir` failed.
        public static let cannotCreateDirectory = Code(.cannotCreateDirectory)
        /// The state directory path names something that is not a directory.
        public static let notADirectory = Code(.notADirectory)
        /// Another process holds the state directory's lock.
        public static let directoryInUse = Code(.directoryInUse)
        /// The lock file could not be opened or locked for another reason.
        public static let cannotLock = Code(.cannotLock)
        /// A file exists but could not be read.
        public static let cannotRead = Code(.cannotRead)
        /// A snapshot did not decode; it was moved aside (see `movedTo`).
        public static let corruptSnapshot = Code(.corruptSnapshot)

        public var description: String { value.rawValue }
    }

    public let code: Code
    /// The file or directory at fault.
    public let path: String
    public let description: String
    /// For `.corruptSnapshot`: where the corrupt file now is, or nil when it
    /// could not be moved.
    public let movedTo: String?
    /// For `.directoryInUse`: the pid the holder wrote into the lock file, when readable.
    public let holderPID: Int32?
    /// For failures of a system call: the errno.
    public let errno: Int32?

    private init(_ code: Code, path: String, description: String,
                 movedTo: String? = nil, holderPID: Int32? = nil, errno: Int32? = nil) {
        self.code = code
        self.path = path
        self.description = description
        self.movedTo = movedTo
        self.holderPID = holderPID
        self.errno = errno
    }

    static func cannotCreateDirectory(_ path: String, _ failure: StoreFailure) -> StoreError {
        StoreError(.cannotCreateDirectory, path: path,
                   description: "cannot create state directory \(path): \(failure.reason) (\(failure.call) \(failure.path)); create it (mode 0700) or set agent.state_dir to a writable path",
                   errno: failure.errno)
    }

    static func notADirectory(_ path: String) -> StoreError {
        StoreError(.notADirectory, path: path,
                   description: "state directory \(path) exists but is not a directory; move it away or set agent.state_dir to another path")
    }

    static func directoryInUse(_ directory: String, pid: Int32?) -> StoreError {
        let holder = pid.map { "pid \($0)" } ?? "pid unknown"
        return StoreError(.directoryInUse, path: directory,
                          description: "state directory \(directory) is in use by another vitals (\(holder)); stop it or use another agent.state_dir",
                          holderPID: pid)
    }

    static func cannotLock(_ directory: String, _ failure: StoreFailure) -> StoreError {
        StoreError(.cannotLock, path: failure.path,
                   description: "cannot lock state directory \(directory): \(failure.call)(\(failure.path)) failed: \(failure.reason)",
                   errno: failure.errno)
    }

    static func cannotRead(_ failure: StoreFailure) -> StoreError {
        StoreError(.cannotRead, path: failure.path,
                   description: "cannot read \(failure.path): \(failure.reason) (\(failure.call))",
                   errno: failure.errno)
    }

    static func corruptSnapshot(_ path: String, detail: String, movedTo: String?, moveFailure: StoreFailure?) -> StoreError {
        let fate = if let movedTo {
            "moved it aside to \(movedTo)"
        } else {
            "could not move it aside (\(moveFailure?.description ?? "unknown error")); it will be overwritten by the next write"
        }
        return StoreError(.corruptSnapshot, path: path,
                          description: "state snapshot \(path) is corrupt (\(detail)); \(fate)",
                          movedTo: movedTo)
    }
}
