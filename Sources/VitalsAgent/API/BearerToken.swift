import Foundation

/// The secret that write endpoints require as `Authorization: Bearer <token>`.
public struct BearerToken: Sendable {
    private let secret: [UInt8]

    public init(_ secret: String) {
        self.secret = Array(secret.utf8)
    }

    /// Compares in time that depends only on the lengths, never on where the
    /// first difference is, so the token cannot be guessed byte by byte.
    public func matches(_ candidate: String) -> Bool {
        let given = Array(candidate.utf8)
        var difference = UInt8(given.count == secret.count ? 0 : 1)
        for i in 0..<given.count {
            difference |= given[i] ^ secret[i % max(secret.count, 1)]
        }
        return difference == 0 && !secret.isEmpty
    }

    /// Reads the token file, or creates it (mode 0600, 32 random bytes as hex)
    /// when it does not exist. The directory is created as needed (mode 0700).
    public static func loadOrCreate(at path: String) throws -> BearerToken {
        let fm = FileManager.default
        if fm.fileExists(atPath: path) {
            let text = try String(contentsOfFile: path, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            guard !text.isEmpty else { throw TokenError.empty(path) }
            return BearerToken(text)
        }
        let dir = (path as NSString).deletingLastPathComponent
        if !dir.isEmpty {
            try fm.createDirectory(atPath: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        }
        var rng = SystemRandomNumberGenerator()
        let hex = (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &rng)) }.joined()
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw TokenError.cannotCreate(path, String(cString: strerror(errno))) }
        defer { close(fd) }
        let line = Array((hex + "\n").utf8)
        guard write(fd, line, line.count) == line.count else {
            throw TokenError.cannotCreate(path, String(cString: strerror(errno)))
        }
        return BearerToken(hex)
    }

    /// Reads the token file without creating it (for the CLI).
    public static func read(at path: String) -> BearerToken? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        return trimmed.isEmpty ? nil : BearerToken(trimmed)
    }

    /// The token as it is sent in a header.
    public var text: String { String(decoding: secret, as: UTF8.self) }
}

public enum TokenError: Error, CustomStringConvertible {
    case empty(String)
    case cannotCreate(String, String)

    public var description: String {
        switch self {
        case .empty(let path): "token file \(path) is empty"
        case .cannotCreate(let path, let why): "cannot create token file \(path): \(why)"
        }
    }
}
