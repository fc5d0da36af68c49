import Foundation
import Synchronization
import VitalsCore
import VitalsSystem

/// The ping keys of heartbeat services. A key opens `/v1/ping/{key}` of its
/// own service and nothing else, with no Authorization header: the key is
/// the secret. Each is read from the service's `key_file`, else from
/// `<state_dir>/heartbeat-keys/<name>`, and created there (mode 0600, in a
/// folder of mode 0700) when the file does not exist.
///
/// Wrong keys are counted (`RefusedPings`): the first is logged at once,
/// the rest at most once a minute, by `flush` or the next refusal.
public final class HeartbeatKeys: Sendable {
    /// A key created on this start, to be shown once.
    public struct Created: Sendable, Equatable {
        public var service: String
        public var path: String
        public var key: String

        /// The one log line that shows the key: where it is kept and the URL it opens.
        public func announcement(base: String?) -> String {
            "heartbeat \(service): ping key created in \(path) (mode 0600); ping \(base ?? "")/v1/ping/\(key) "
                + "(no token needed); `vitals heartbeat-key \(service)` shows it again"
        }
    }

    private struct Entry {
        var service: String
        var key: [UInt8]
    }

    private let entries = Mutex<[Entry]>([])
    private let refusals = Mutex(RefusedPings())
    private let log: @Sendable (String) -> Void

    /// - Parameter log: receives the lines about refused keys (a warning).
    public init(log: @escaping @Sendable (String) -> Void) {
        self.log = log
    }

    /// Reads or creates the key of every heartbeat service of `config`, and
    /// from then on answers for those alone. Nothing changes when one fails.
    /// - Returns: the keys created now.
    @discardableResult
    public func load(_ config: VitalsConfig) throws(HeartbeatKeyError) -> [Created] {
        var loaded: [Entry] = []
        var created: [Created] = []
        var owners: [String: String] = [:]
        for service in config.services {
            guard case .heartbeat(let check) = service.check else { continue }
            let path = check.keyPath(service: service.name, stateDir: config.agent.stateDir)
            let key: String
            switch Self.read(at: path) {
            case .success(let text):
                key = text
            case .failure(.missing):
                key = try Self.create(at: path)
                created.append(Created(service: service.name, path: path, key: key))
            case .failure(let error):
                throw error
            }
            if let other = owners.updateValue(service.name, forKey: key) {
                throw .shared(other, service.name)
            }
            loaded.append(Entry(service: service.name, key: Array(key.utf8)))
        }
        entries.withLock { $0 = loaded }
        return created
    }

    /// The service `candidate` opens, or nil. Every key is compared, each in
    /// time that depends only on the lengths, so a guess learns nothing from
    /// how long the answer took.
    public func service(forKey candidate: String) -> String? {
        let given = Array(candidate.utf8)
        return entries.withLock { entries in
            var found: String?
            for entry in entries where Self.same(given, entry.key) {
                found = entry.service
            }
            return found
        }
    }

    private static func same(_ given: [UInt8], _ secret: [UInt8]) -> Bool {
        var difference = UInt8(given.count == secret.count ? 0 : 1)
        for i in 0..<given.count {
            difference |= given[i] ^ secret[i % max(secret.count, 1)]
        }
        return difference == 0 && !secret.isEmpty
    }

    /// Counts a ping refused for a wrong key, logging when a line is due.
    public func refused(from address: String?, at now: Date) {
        if let line = refusals.withLock({ $0.refused(from: address, at: now) }) { log(line) }
    }

    /// Logs the summary of refused pings once it is due (called by the ticker).
    public func flush(at now: Date) {
        if let line = refusals.withLock({ $0.due(at: now) }) { log(line) }
    }

    /// Refused pings since the agent started.
    public var refusedTotal: UInt64 { refusals.withLock { $0.total } }

    // MARK: Files

    /// At least 16 letters, digits and `-_.~`: a key is a URL path segment as it is.
    public static func isValid(_ key: String) -> Bool {
        key.utf8.count >= 16 && key.unicodeScalars.allSatisfy {
            ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) || "-_.~".unicodeScalars.contains($0)
        }
    }

    /// The key in the file at `path` (for the agent, `vitals exec` and `vitals heartbeat-key`).
    public static func read(at path: String) -> Result<String, HeartbeatKeyError> {
        let bytes: [UInt8]
        do {
            bytes = try Posix.readFile(path)
        } catch where error.errno == ENOENT {
            return .failure(.missing(path))
        } catch {
            return .failure(.cannotRead(path, Posix.errorText(error.errno)))
        }
        let key = String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return isValid(key) ? .success(key) : .failure(.invalid(path))
    }

    /// Writes a new key (16 random bytes as hex) to `path`, never over an existing file.
    static func create(at path: String) throws(HeartbeatKeyError) -> String {
        let dir = (path as NSString).deletingLastPathComponent
        if !dir.isEmpty {
            do {
                try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true,
                                                        attributes: [.posixPermissions: 0o700])
            } catch {
                throw .cannotCreate(path, "cannot create its folder: \(error.localizedDescription)")
            }
        }
        var rng = SystemRandomNumberGenerator()
        let key = (0..<16).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &rng)) }.joined()
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw .cannotCreate(path, String(cString: strerror(errno))) }
        defer { close(fd) }
        let line = Array((key + "\n").utf8)
        guard write(fd, line, line.count) == line.count, fsync(fd) == 0 else {
            throw .cannotCreate(path, String(cString: strerror(errno)))
        }
        return key
    }
}

public enum HeartbeatKeyError: Error, Equatable, CustomStringConvertible {
    case missing(String)
    case cannotRead(String, String)
    case invalid(String)
    case cannotCreate(String, String)
    /// Two heartbeat services with the same key.
    case shared(String, String)

    public var description: String {
        switch self {
        case .missing(let path): "no ping key file \(path)"
        case .cannotRead(let path, let why): "cannot read ping key file \(path): \(why)"
        case .invalid(let path):
            "ping key file \(path): a key is at least 16 characters, each a letter, a digit, -, _, . or ~"
        case .cannotCreate(let path, let why): "cannot create ping key file \(path): \(why)"
        case .shared(let first, let second):
            "heartbeats \(first) and \(second) have the same ping key; a key opens one heartbeat, so give each its own key_file"
        }
    }
}
