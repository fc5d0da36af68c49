import Foundation

/// A fresh directory for one test's scripts and marker files; the test removes it.
public struct Scratch: Sendable {
    public let path: String

    public init() throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("vitals-test-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    public func file(_ name: String) -> String { path + "/" + name }

    /// Writes a `/bin/sh` script and makes it executable (unless told not to).
    @discardableResult
    public func script(_ name: String, _ body: String, executable: Bool = true) throws -> String {
        let target = file(name)
        try ("#!/bin/sh\n" + body + "\n").write(toFile: target, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: executable ? 0o755 : 0o644], ofItemAtPath: target)
        return target
    }

    public func read(_ name: String) -> String? { try? String(contentsOfFile: file(name), encoding: .utf8) }
    public func bytes(_ name: String) -> [UInt8]? { FileManager.default.contents(atPath: file(name)).map { Array($0) } }

    public func remove() { try? FileManager.default.removeItem(atPath: path) }
}
