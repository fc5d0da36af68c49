#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Logging
import Testing
import VitalsAgent
import VitalsCore
import VitalsTestKit

/// The sd_notify protocol as systemd receives it: real AF_UNIX datagram
/// sockets, bound by the test where systemd would bind them.
@Suite struct SystemdNotifierTests {
    @Test func sendsEachNotificationAsOneDatagramToAPathSocket() throws {
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let socket = try DatagramSocket(name: dir.appendingPathComponent("notify").path)
        let notifier = SystemdNotifier(environment: ["NOTIFY_SOCKET": socket.name], logger: Logger.discarding,
                                       monotonicMicroseconds: { 123_456_789 })
        #expect(notifier.isEnabled)
        #expect(notifier.socketName == socket.name)

        notifier.ready()
        notifier.status("5 services: 4 up, 1 down; 1 group")
        notifier.reloading()
        notifier.ready(status: "5 services: 5 up")
        notifier.stopping()

        #expect(try socket.receive() == "READY=1")
        #expect(try socket.receive() == "STATUS=5 services: 4 up, 1 down; 1 group")
        #expect(try socket.receive() == "RELOADING=1\nMONOTONIC_USEC=123456789")
        #expect(try socket.receive() == "READY=1\nSTATUS=5 services: 5 up")
        #expect(try socket.receive() == "STOPPING=1")
    }

    @Test func reachesAnAbstractSocket() throws {
        let name = "@vitals-test-\(UUID().uuidString)"
        let socket = try DatagramSocket(name: name)
        let notifier = SystemdNotifier(environment: ["NOTIFY_SOCKET": name], logger: Logger.discarding)
        #expect(notifier.isEnabled)
        notifier.ready()
        #expect(try socket.receive() == "READY=1")
    }

    @Test func aStatusStaysOnOneLine() throws {
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let socket = try DatagramSocket(name: dir.appendingPathComponent("notify").path)
        let notifier = SystemdNotifier(environment: ["NOTIFY_SOCKET": socket.name], logger: Logger.discarding)
        notifier.status("web-1 down\nREADY=1\r\nok")
        #expect(try socket.receive() == "STATUS=web-1 down READY=1 ok")
        notifier.status(String(repeating: "é", count: 2000))
        let long = try socket.receive()
        #expect(long.utf8.count == "STATUS=".utf8.count + 1024)
    }

    @Test func theWatchdogPingsAtHalfItsTimeout() throws {
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let socket = try DatagramSocket(name: dir.appendingPathComponent("notify").path)
        let notifier = SystemdNotifier(environment: ["NOTIFY_SOCKET": socket.name, "WATCHDOG_USEC": "30000000",
                                                     "WATCHDOG_PID": String(getpid())],
                                       logger: Logger.discarding)
        #expect(notifier.watchdogTimeout == .seconds(30))
        #expect(notifier.watchdogInterval == .seconds(15))
        notifier.watchdog()
        #expect(try socket.receive() == "WATCHDOG=1")
    }

    @Test(arguments: [
        (["WATCHDOG_USEC": "5000000"], Duration?.some(.milliseconds(2500))),
        (["WATCHDOG_USEC": "5000000", "WATCHDOG_PID": "1"], nil),        // another process's watchdog
        (["WATCHDOG_USEC": "5000000", "WATCHDOG_PID": "nonsense"], nil),
        (["WATCHDOG_USEC": "0"], nil),
        (["WATCHDOG_USEC": "-5"], nil),
        (["WATCHDOG_USEC": "soon"], nil),
        ([:], nil),
    ] as [([String: String], Duration?)])
    func theWatchdogIsOnOnlyForThisProcess(environment: [String: String], interval: Duration?) throws {
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let socket = try DatagramSocket(name: dir.appendingPathComponent("notify").path)
        var env = environment
        env["NOTIFY_SOCKET"] = socket.name
        let notifier = SystemdNotifier(environment: env, logger: Logger.discarding)
        #expect(notifier.watchdogInterval == interval)
        // With the watchdog off, a ping sends nothing: the next datagram is the READY.
        notifier.watchdog()
        notifier.ready()
        #expect(try socket.receive() == (interval == nil ? "READY=1" : "WATCHDOG=1"))
    }

    @Test func withoutNotifySocketEverythingIsInert() throws {
        let logs = CapturedLogs()
        let notifier = SystemdNotifier(environment: ["WATCHDOG_USEC": "30000000"], logger: logs.logger)
        #expect(!notifier.isEnabled)
        #expect(notifier.socketName == nil)
        #expect(notifier.watchdogInterval == nil)
        notifier.ready()
        notifier.status("x")
        notifier.watchdog()
        notifier.reloading()
        notifier.stopping()
        try notifier.send(["READY=1"])
        #expect(logs.entries.isEmpty)
    }

    @Test(arguments: ["vsock:2:1234", "relative/notify", "@", "/" + String(repeating: "x", count: 108)])
    func anUnsupportedSocketIsReportedOnceAndIgnored(name: String) throws {
        let logs = CapturedLogs()
        let notifier = SystemdNotifier(environment: ["NOTIFY_SOCKET": name], logger: logs.logger)
        #expect(!notifier.isEnabled)
        notifier.ready()
        #expect(logs.entries.count == 1)
        #expect(logs.entries.first?.level == .warning)
        #expect(logs.entries.first?.message.contains("NOTIFY_SOCKET=\(name)") == true)
    }

    @Test func aFailedSendWarnsOnceThenUntilItSucceedsAgain() throws {
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("notify").path
        let logs = CapturedLogs()
        let notifier = SystemdNotifier(environment: ["NOTIFY_SOCKET": path], logger: logs.logger)
        #expect(throws: SystemdNotifyError(socket: path, errno: ENOENT)) { try notifier.send(["READY=1"]) }

        notifier.ready()
        notifier.watchdog() // off: not even tried
        notifier.status("still nobody there")
        #expect(logs.entries.map(\.level) == [.warning, .debug])
        #expect(logs.entries.first?.message == "cannot notify systemd (READY=1): sendto \(path) failed: No such file or directory")

        let socket = try DatagramSocket(name: path)
        notifier.status("back")
        #expect(try socket.receive() == "STATUS=back")
        try FileManager.default.removeItem(atPath: path)
        notifier.status("gone again")
        #expect(logs.entries.map(\.level) == [.warning, .debug, .warning])
    }

    @Test(arguments: [
        ([HealthState](), 0, "0 services"),
        ([.up], 0, "1 service: 1 up"),
        ([.up, .down, .up, .degraded, .unknown], 2, "5 services: 1 unknown, 2 up, 1 degraded, 1 down; 2 groups"),
        ([.maintenance, .flapping], 1, "2 services: 1 maintenance, 1 flapping; 1 group"),
    ] as [([HealthState], Int, String)])
    func theStatusLineCountsServicesByState(states: [HealthState], groups: Int, line: String) {
        #expect(SystemdNotifier.statusLine(serviceStates: states, groupCount: groups) == line)
    }
}

/// A bound AF_UNIX datagram socket, as systemd's notify socket is: `name` is a
/// path or `@abstract`. Closed (and a path unlinked) when it goes away.
final class DatagramSocket {
    let name: String
    private let fd: Int32

    init(name: String) throws {
        self.name = name
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw TestFailure("socket: \(String(cString: strerror(errno)))") }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var bytes = Array(name.utf8)
        if bytes.first == UInt8(ascii: "@") { bytes[0] = 0 }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
        let length = socklen_t(MemoryLayout<sockaddr_un>.offset(of: \.sun_path)! + bytes.count)
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        guard rc == 0 else {
            close(fd)
            throw TestFailure("bind \(name): \(String(cString: strerror(errno)))")
        }
        // A test that expects a datagram fails after 5s instead of hanging.
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    /// The next datagram, as text.
    func receive() throws -> String {
        var buffer = [UInt8](repeating: 0, count: 8192)
        while true {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n >= 0 { return String(decoding: buffer[..<n], as: UTF8.self) }
            if errno == EINTR { continue }
            throw TestFailure("no datagram on \(name): \(String(cString: strerror(errno)))")
        }
    }

    deinit {
        close(fd)
        if name.hasPrefix("/") { unlink(name) }
    }
}

/// Log entries kept in memory, for tests that assert what was logged.
final class CapturedLogs: Sendable {
    struct Entry: Sendable {
        var level: Logger.Level
        var message: String
    }

    private let store = Locked<[Entry]>([])
    var entries: [Entry] { store.withLock { $0 } }

    var logger: Logger {
        let store = self.store
        var logger = Logger(label: "test") { _ in Handler(store: store) }
        logger.logLevel = .trace
        return logger
    }

    private struct Handler: LogHandler {
        let store: Locked<[Entry]>
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) {
            store.withLock { $0.append(Entry(level: event.level, message: event.message.description)) }
        }
    }
}

extension Logger {
    /// A logger that drops everything.
    static var discarding: Logger {
        Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }
    }
}
