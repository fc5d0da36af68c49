#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Synchronization
import VitalsTestKit

/// A tiny HTTP/1.1 receiver on 127.0.0.1 (port 0) for webhook tests. Answers
/// each request with the next status from `statuses` (the last one repeats),
/// `Connection: close`, and records every request. `.hang` answers nothing.
final class WebhookServer: Sendable {
    struct Request: Sendable {
        var method: String
        var path: String
        /// Names lowercased.
        var headers: [String: String]
        var body: [UInt8]
    }

    enum Answer: Sendable {
        case status(Int)
        /// Read the request, then say nothing until the server stops.
        case hang
    }

    let port: UInt16
    private let listener: Int32
    private let answers: [Answer]
    private let responseBody: [UInt8]
    private let recorded = Mutex<[Request]>([])
    private let stopped = Atomic<Bool>(false)
    private let done = DispatchSemaphore(value: 0)
    private let open = Mutex<[Int32]>([])

    var requests: [Request] { recorded.withLock { $0 } }
    var url: String { "http://127.0.0.1:\(port)/hooks/secret-token?key=s3cret" }

    convenience init(statuses: [Int], responseBody: String = "") throws {
        try self.init(answers: statuses.map { .status($0) }, responseBody: responseBody)
    }

    init(answers: [Answer], responseBody: String = "") throws {
        self.answers = answers
        self.responseBody = Array(responseBody.utf8)
        let (fd, boundPort) = try LoopbackPort.bound()
        guard listen(fd, 64) == 0 else {
            let error = POSIXError(.init(rawValue: errno) ?? .EIO)
            close(fd)
            throw error
        }
        listener = fd
        port = boundPort
        let thread = Thread { [self] in
            serve()
            done.signal()
        }
        thread.start()
    }

    func stop() {
        guard !stopped.exchange(true, ordering: .acquiringAndReleasing) else { return }
        shutdown(listener, Int32(SHUT_RDWR))
        for fd in open.withLock({ $0 }) { shutdown(fd, Int32(SHUT_RDWR)) }
        done.wait()
        close(listener)
    }

    private func serve() {
        while !stopped.load(ordering: .acquiring) {
            let connection = accept(listener, nil, nil)
            if connection < 0 {
                if errno == EINTR { continue }
                return
            }
            open.withLock { $0.append(connection) }
            handle(connection)
            open.withLock { $0.removeAll { $0 == connection } }
            close(connection)
        }
    }

    private func handle(_ fd: Int32) {
        guard let request = readRequest(fd) else { return }
        let index = recorded.withLock { all in
            all.append(request)
            return all.count - 1
        }
        switch answers[min(index, answers.count - 1)] {
        case .hang:
            var byte: UInt8 = 0
            _ = recv(fd, &byte, 1, 0) // until the client gives up or the server stops
        case .status(let status):
            let head = "HTTP/1.1 \(status) Status\r\nContent-Type: text/plain\r\nContent-Length: \(responseBody.count)\r\nConnection: close\r\n\r\n"
            let bytes = Array(head.utf8) + responseBody
            var sent = 0
            while sent < bytes.count {
                let n = bytes[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                if n <= 0 { return }
                sent += n
            }
        }
    }

    private func readRequest(_ fd: Int32) -> Request? {
        var data: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65_536)
        let separator = Array("\r\n\r\n".utf8)
        var headEnd: Int?
        var contentLength = 0
        while true {
            if headEnd == nil, let end = data.firstRange(of: separator)?.upperBound {
                headEnd = end
                let head = String(decoding: data[..<end], as: UTF8.self)
                for line in head.split(separator: "\r\n").dropFirst() {
                    let parts = line.split(separator: ":", maxSplits: 1)
                    if parts.count == 2, parts[0].lowercased() == "content-length" {
                        contentLength = Int(parts[1].trimmingCharacters(in: .whitespaces)) ?? 0
                    }
                }
            }
            if let headEnd, data.count >= headEnd + contentLength { break }
            let n = recv(fd, &buffer, buffer.count, 0)
            if n <= 0 { return nil }
            data += buffer[0..<n]
        }
        let end = headEnd!
        let lines = String(decoding: data[..<end], as: UTF8.self).split(separator: "\r\n")
        let requestLine = lines.first?.split(separator: " ") ?? []
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            let parts = line.split(separator: ":", maxSplits: 1)
            if parts.count == 2 { headers[parts[0].lowercased()] = parts[1].trimmingCharacters(in: .whitespaces) }
        }
        return Request(method: requestLine.first.map(String.init) ?? "",
                       path: requestLine.count > 1 ? String(requestLine[1]) : "",
                       headers: headers, body: Array(data[end..<(end + contentLength)]))
    }
}
