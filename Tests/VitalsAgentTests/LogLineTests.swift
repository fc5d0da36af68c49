import Foundation
import Logging
import Testing
@testable import VitalsAgent

/// A log record is one line, whatever its message holds: log readers and
/// shippers split on newlines.
@Suite struct LogLineTests {
    @Test(arguments: [LogFormat.text, .json])
    func aMessageWithNewlinesIsStillOneLine(_ format: LogFormat) {
        let sink = LineSink.memory()
        let logger = Logger(label: "test") { LineLogHandler(label: $0, level: .info, format: format, sink: sink) }
        logger.error("reload refused:\nvitals.yaml: bogus: unknown key\r\nvitals.yaml: groups.web: x",
                     metadata: ["note": "two\nlines"])
        #expect(sink.lines.count == 1)
        let line = sink.lines.first ?? ""
        #expect(line.hasSuffix("\n"))
        let newlines = line.dropLast().filter(\.isNewline).count
        #expect(newlines == 0, "\(line)")
        #expect(line.contains("bogus: unknown key"))
    }

    @Test func textLinesEscapeNewlinesVisibly() {
        let sink = LineSink.memory()
        let logger = Logger(label: "test") { LineLogHandler(label: $0, level: .info, format: .text, sink: sink) }
        logger.notice("a\nb")
        #expect(sink.lines.first?.contains(#"a\nb"#) == true)
    }
}
