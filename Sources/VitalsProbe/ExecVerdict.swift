import Foundation
import VitalsCore

/// The Nagios plugin convention, as a pure function of the wait status and
/// the captured output: exit 0 ok, 1 warning (degraded), 2 critical
/// (failed), 3 unknown (the plugin could not tell: counted toward neither
/// rise nor fall); any other exit or a signal fails. The first line of
/// output, without performance data (after `|`), is the reason, in the
/// plugin's own words: plugins write their status word themselves
/// (`UNKNOWN: cannot read /proc/mounts`).
public enum ExecVerdict {
    public static func verdict(waitStatus: Int32, output: [UInt8]) -> ProbeVerdict {
        let line = firstLine(output)
        let signal = waitStatus & 0x7f
        if signal != 0 {
            return .failed(line.isEmpty ? "killed by signal \(signal)" : line)
        }
        let code = (waitStatus >> 8) & 0xff
        return verdict(exitCode: code, line: line)
    }

    /// The verdict for a plugin that exited with `exitCode` and printed `line` first.
    public static func verdict(exitCode: Int32, line: String) -> ProbeVerdict {
        let text = line.isEmpty ? "exit status \(exitCode)" : line
        switch exitCode {
        case 0: return .ok
        case 1: return .degraded(text)
        case 2: return .failed(text)
        case 3: return .unknown(text)
        default: return .failed(text)
        }
    }

    /// The first non-empty line, perfdata removed, trimmed.
    public static func firstLine(_ output: [UInt8]) -> String {
        let text = String(decoding: output, as: UTF8.self)
        for raw in text.split(whereSeparator: { $0 == "\n" || $0 == "\r\n" || $0 == "\r" }) {
            var line = Substring(raw)
            if let bar = line.firstIndex(of: "|") { line = line[..<bar] }
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if !trimmed.isEmpty { return trimmed }
        }
        return ""
    }
}

extension ProbeVerdict {
    /// The check could not tell either way.
    public static func unknown(_ reason: String) -> ProbeVerdict { ProbeVerdict(.unknown, reason) }
}
