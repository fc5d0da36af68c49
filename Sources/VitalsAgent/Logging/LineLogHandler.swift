import Foundation
import Synchronization
import Logging
import VitalsCore

/// How log lines look.
public enum LogFormat: String, Sendable, CaseIterable {
    /// `2026-11-27T21:03:04.123Z info  web-1: up → down: status 503 service=web-1`
    case text
    /// One JSON object a line, for log shippers.
    case json
}

/// Writes one line per record to a file descriptor (stderr by default), with
/// its level and metadata; line breaks inside a message are escaped. Lines are written with a single `write(2)` so that
/// concurrent loggers never interleave within a line.
public struct LineLogHandler: LogHandler {
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    private let label: String
    private let format: LogFormat
    private let sink: LineSink

    public init(label: String, level: Logger.Level, format: LogFormat, sink: LineSink = .standardError) {
        self.label = label
        self.logLevel = level
        self.format = format
        self.sink = sink
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let extra = event.metadata { merged.merge(extra) { _, new in new } }
        let time = Self.timestamp(Date())
        let line: String
        switch format {
        case .text:
            var text = "\(time) \(event.level.rawValue.padding(toLength: 9, withPad: " ", startingAt: 0))"
                + Self.oneLine("\(event.message)")
            for key in merged.keys.sorted() {
                text += " \(key)=\(Self.quoteIfNeeded(Self.oneLine("\(merged[key]!)")))"
            }
            line = text
        case .json:
            var object: [String: String] = ["time": time, "level": event.level.rawValue, "message": "\(event.message)"]
            for (key, value) in merged where object[key] == nil { object[key] = "\(value)" }
            let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
            line = String(decoding: data, as: UTF8.self)
        }
        sink.write(line + "\n")
    }

    /// A record is one line whatever its text holds: line breaks are written
    /// as `\n` (JSON lines escape them anyway), so a reader that splits on
    /// newlines never sees half a record or a line without time and level.
    static func oneLine(_ s: String) -> String {
        guard s.contains(where: \.isNewline) else { return s }
        var out = ""
        for character in s {
            out += character.isNewline ? "\\n" : String(character)
        }
        return out
    }

    static func quoteIfNeeded(_ s: String) -> String {
        s.contains(where: { $0 == " " || $0 == "\"" || $0 == "=" }) || s.isEmpty
            ? "\"" + s.replacingOccurrences(of: "\"", with: "\\\"") + "\"" : s
    }

    static func timestamp(_ date: Date) -> String {
        ISOTime.format(date)
    }
}

/// Where log lines go. `standardError` for the agent, `memory` for tests.
public final class LineSink: Sendable {
    private let fd: Int32?
    /// Held while a line is written, so lines never interleave; holds what a memory sink captured.
    private let captured = Mutex<[String]>([])

    private init(fd: Int32?) { self.fd = fd }

    public static let standardError = LineSink(fd: 2)
    public static func memory() -> LineSink { LineSink(fd: nil) }

    public func write(_ line: String) {
        captured.withLock { captured in
            guard let fd else {
                captured.append(line)
                return
            }
            var bytes = Array(line.utf8)
            bytes.withUnsafeMutableBytes { buffer in
                var offset = 0
                while offset < buffer.count {
                    let n = Foundation.write(fd, buffer.baseAddress! + offset, buffer.count - offset)
                    if n <= 0 { if n < 0 && errno == EINTR { continue }; return }
                    offset += n
                }
            }
        }
    }

    /// Lines written so far (memory sinks only).
    public var lines: [String] {
        captured.withLock { $0 }
    }
}
