import Foundation
import VitalsCore
import VitalsSystem

/// Reads a configuration file from disk and validates it.
public enum ConfigFile {
    /// Why a configuration file could not be used. Its description lists every
    /// error, one a line, each prefixed with the file path.
    public struct Failure: Error, CustomStringConvertible {
        public var path: String
        public var errors: [String]
        /// Each error prefixed with the file path.
        public var lines: [String] { errors.map { "\(path): \($0)" } }
        public var description: String { lines.joined(separator: "\n") }
    }

    public static func load(path: String) -> Result<VitalsConfig, Failure> {
        let text: String
        do {
            // Read with open/read rather than Foundation's file reading,
            // which refuses FIFOs: a reload then waits for the writer.
            text = String(decoding: try Posix.readFile(path), as: UTF8.self)
        } catch where error.errno == ENOENT {
            return .failure(Failure(path: path, errors: ["no such file"]))
        } catch {
            return .failure(Failure(path: path, errors: ["cannot read: \(Posix.errorText(error.errno))"]))
        }
        do {
            // Relative exec paths are the config file's neighbours, wherever the agent was started.
            let directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
            return .success(try ConfigLoader.load(yaml: text, baseDirectory: directory))
        } catch {
            return .failure(Failure(path: path, errors: error.errors.map(\.description)))
        }
    }
}
