#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
@testable import VitalsHTTP
import VitalsSystem

private let get = "GET /v1/status HTTP/1.1\r\nHost: test\r\n\r\n"

/// Over real loopback sockets. Serialized: several tests measure time.
@Suite("HTTPServer", .serialized)
struct HTTPServerTests {
    @Test("GET serves the pre-rendered body with Content-Length, Date and Server")
    func simpleGet() throws {
        try withServer { server in
            #expect(server.ports.count == 1 && server.ports[0] != 0)
            let client = try TestClient(server.localAddresses[0])
            try client.send(get)
            let r = try client.readResponse()
            #expect(r.status == 200)
            #expect(r.reason == "OK")
            #expect(r.body == TestHandler.statusBody.bytes)
            #expect(r.header("Content-Length") == String(TestHandler.statusBody.count))
            #expect(r.header("Content-Type") == "application/json")
            #expect(r.header("Server") == "vitals")
            #expect(r.header("Date")?.hasSuffix(" GMT") == true)
            #expect(r.header("Connection") == nil)
        }
    }

    @Test("HEAD sends the GET headers and Content-Length, and no body")
    func head() throws {
        try withServer { server in
            let client = try TestClient(server.localAddresses[0])
            try client.send("HEAD /v1/status HTTP/1.1\r\nHost: test\r\n\r\n")
            let r = try client.readResponse(bodyExpected: false)
            #expect(r.status == 200)
            #expect(r.header("Content-Length") == String(TestHandler.statusBody.count))
            // Had a body been sent, the next response would not parse.
            try client.send("GET /echo HTTP/1.1\r\nHost: test\r\n\r\n")
            let next = try client.readResponse()
            #expect(next.status == 200)
            #expect(next.bodyText.hasPrefix("method=GET"))
        }
    }

    @Test("keep-alive: several requests on one connection")
    func keepAlive() throws {
        try withServer { server in
            let client = try TestClient(server.localAddresses[0])
            for i in 0..<5 {
                try client.send("GET /echo?n=\(i) HTTP/1.1\r\nHost: test\r\n\r\n")
                let r = try client.readResponse()
                #expect(r.status == 200)
                #expect(r.bodyText.contains("query=n:\(i)"))
                #expect(r.bodyText.contains("remote=127.0.0.1"))
            }
        }
    }

    @Test("pipelined requests sent in one write are answered in order")
    func pipelining() throws {
        try withServer { server in
            let client = try TestClient(server.localAddresses[0])
            try client.send(
                "GET /echo?n=1 HTTP/1.1\r\nHost: t\r\n\r\n"
                + "POST /echo?n=2 HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\nbody"
                + "HEAD /v1/status HTTP/1.1\r\nHost: t\r\n\r\n"
                + "GET /v1/status HTTP/1.1\r\nHost: t\r\n\r\n"
                + "GET /echo?n=5 HTTP/1.1\r\nHost: t\r\n\r\n")
            #expect(try client.readResponse().bodyText.contains("query=n:1"))
            let second = try client.readResponse()
            #expect(second.bodyText.contains("method=POST"))
            #expect(second.bodyText.contains("query=n:2 body=body"))
            #expect(try client.readResponse(bodyExpected: false).status == 200)
            #expect(try client.readResponse().body.count == TestHandler.statusBody.count)
            #expect(try client.readResponse().bodyText.contains("query=n:5"))
        }
    }

    @Test("responses to requests that arrive together leave in one write")
    func pipelinedResponsesCoalesced() throws {
        try withServer { server in
            let client = try TestClient(server.localAddresses[0])
            try client.send(String(repeating: "GET /echo HTTP/1.1\r\nHost: t\r\n\r\n", count: 3))
            // One sendmsg of three small responses is one loopback segment.
            let text = String(decoding: try client.receiveOnce(), as: UTF8.self)
            #expect(text.components(separatedBy: "HTTP/1.1 200 OK\r\n").count == 4, "\(text)")
        }
    }

    @Test("a request split byte by byte across writes")
    func byteByByte() throws {
        try withServer { server in
            let client = try TestClient(server.localAddresses[0])
            for byte in Array("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc".utf8) {
                try client.send([byte])
            }
            let r = try client.readResponse()
            #expect(r.status == 200)
            #expect(r.bodyText.contains("body=abc"))
        }
    }

    @Test("HTTP/1.0 closes after the response unless keep-alive is asked for")
    func http10() throws {
        try withServer { server in
            let client = try TestClient(server.localAddresses[0])
            try client.send("GET /v1/status HTTP/1.0\r\n\r\n")
            let r = try client.readResponse()
            #expect(r.status == 200)
            #expect(r.header("Connection") == "close")
            #expect(try client.readUntilClose().isEmpty)

            let keep = try TestClient(server.localAddresses[0])
            try keep.send("GET /echo HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            let first = try keep.readResponse()
            #expect(first.header("Connection") == "keep-alive")
            #expect(first.bodyText.contains("version=HTTP/1.0"))
            try keep.send("GET /echo HTTP/1.0\r\n\r\n")
            #expect(try keep.readResponse().header("Connection") == "close")
            #expect(try keep.readUntilClose().isEmpty)
        }
    }

    @Test("Connection: close from the client or the handler closes after the response")
    func connectionClose() throws {
        try withServer { server in
            let client = try TestClient(server.localAddresses[0])
            // The request after the closing one is never answered.
            try client.send("GET /echo HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\nGET /echo HTTP/1.1\r\nHost: t\r\n\r\n")
            let r = try client.readResponse()
            #expect(r.status == 200)
            #expect(r.header("Connection") == "close")
            #expect(try client.readUntilClose().isEmpty)

            let other = try TestClient(server.localAddresses[0])
            try other.send("GET /close HTTP/1.1\r\nHost: t\r\n\r\n")
            let bye = try other.readResponse()
            #expect(bye.bodyText == "bye")
            #expect(bye.header("Connection") == "close")
            #expect(try other.readUntilClose().isEmpty)
        }
    }

    @Test("a body with Content-Length reaches the handler; Expect: 100-continue gets a 100 first")
    func bodies() throws {
        try withServer { server in
            let client = try TestClient(server.localAddresses[0])
            let body = String(repeating: "x", count: 100_000)
            try client.send("PUT /echo HTTP/1.1\r\nHost: t\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)")
            let r = try client.readResponse()
            #expect(r.bodyText.contains("method=PUT"))
            #expect(r.bodyText.contains("body=\(body)"))

            try client.send("POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
            let interim = try client.readResponse()
            #expect(interim.status == 100)
            try client.send("hello")
            let final = try client.readResponse()
            #expect(final.status == 200)
            #expect(final.bodyText.contains("body=hello"))
        }
    }

    @Test("unknown routes are the handler's 404; percent-decoded segments reach it")
    func routing() throws {
        try withServer { server in
            let client = try TestClient(server.localAddresses[0])
            try client.send("GET /nope HTTP/1.1\r\nHost: t\r\n\r\n")
            let r = try client.readResponse()
            #expect(r.status == 404)
            #expect(r.bodyText == #"{"error":{"status":404,"message":"no route for /nope"}}"#)
            try client.send("GET /echo/web%20a/b%2Fc HTTP/1.1\r\nHost: t\r\n\r\n")
            #expect(try client.readResponse().bodyText == "segments=echo|web a|b/c")
        }
    }

    static let rejected: [ServerRejection] = [
        ServerRejection("chunked body", "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 501),
        ServerRejection("request line too long", "GET /" + String(repeating: "a", count: 9000) + " HTTP/1.1\r\nHost: t\r\n\r\n", 414),
        ServerRejection("header block too large", "GET / HTTP/1.1\r\nHost: t\r\nX-Big: " + String(repeating: "b", count: 17_000) + "\r\n\r\n", 431),
        ServerRejection("too many headers", "GET / HTTP/1.1\r\nHost: t\r\n" + String(repeating: "X-H: v\r\n", count: 101) + "\r\n", 431),
        ServerRejection("body too large", "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 2000000\r\n\r\n" + String(repeating: "z", count: 50_000), 413),
        ServerRejection("bad percent-encoding", "GET /v1/%zz HTTP/1.1\r\nHost: t\r\n\r\n", 400),
        ServerRejection("NUL byte", "GET /v1/\0status HTTP/1.1\r\nHost: t\r\n\r\n", 400),
        ServerRejection("missing Host on 1.1", "GET /v1/status HTTP/1.1\r\n\r\n", 400),
        ServerRejection("unsupported version", "GET /v1/status HTTP/2.0\r\nHost: t\r\n\r\n", 505),
        ServerRejection("unknown method", "BREW /pot HTTP/1.1\r\nHost: t\r\n\r\n", 400),
        ServerRejection("bare LF", "GET /v1/status HTTP/1.1\nHost: t\n\n", 400),
    ]

    @Test("rejections: JSON error with the status, Connection: close, then the server closes", arguments: rejected)
    func rejection(_ rejection: ServerRejection) throws {
        let (name, request, status) = (rejection.name, rejection.request, rejection.status)
        try withServer { server in
            let client = try TestClient(server.localAddresses[0])
            // A served request first: the rejection must still close.
            try client.send(get)
            #expect(try client.readResponse().status == 200)
            try client.send(request)
            let r = try client.readResponse()
            #expect(r.status == status, "\(name)")
            #expect(r.header("Connection") == "close", "\(name)")
            #expect(r.header("Content-Type") == "application/json", "\(name)")
            #expect(r.bodyText.hasPrefix(#"{"error":{"status":\#(status),"message":""#), "\(name): \(r.bodyText)")
            _ = try client.readUntilClose()
        }
    }

    @Test("a slowloris client is cut off at the header timeout while another client is served at once")
    func slowloris() throws {
        try withServer({ $0.headerReadTimeout = .milliseconds(500) }) { server in
            let slow = try TestClient(server.localAddresses[0])
            let fast = try TestClient(server.localAddresses[0])
            let drip = Array(("GET /v1/status HTTP/1.1\r\nHost: t\r\nX-Slow: " + String(repeating: "s", count: 500) + "\r\n\r\n").utf8)
            let start = UInt64(MonotonicInstant.now().nanoseconds)
            var served = 0
            var worstLatency = 0.0
            var closedAfter: Double?
            for byte in drip {
                do { try slow.send([byte]) } catch { closedAfter = secondsSince(start); break }
                let t0 = UInt64(MonotonicInstant.now().nanoseconds)
                try fast.send(get)
                #expect(try fast.readResponse().status == 200)
                worstLatency = max(worstLatency, secondsSince(t0))
                served += 1
                // Paces the drip at one byte per ~50 ms and notices the close.
                if try slow.waitForClose(timeout: 0.05) {
                    closedAfter = secondsSince(start)
                    break
                }
                if secondsSince(start) > 5 { break }
            }
            let after = try #require(closedAfter, "the slow client was never cut off")
            #expect(after >= 0.45 && after < 2.0, "cut off after \(after) s")
            #expect(served >= 5)
            #expect(worstLatency < 0.25, "the fast client waited \(worstLatency) s")
            // The slow client was told why.
            let r = try slow.readResponse()
            #expect(r.status == 408)
            #expect(r.header("Connection") == "close")
        }
    }

    @Test("a connection that never speaks is closed silently after the header timeout")
    func silentConnection() throws {
        try withServer({ $0.headerReadTimeout = .milliseconds(200) }) { server in
            let client = try TestClient(server.localAddresses[0])
            let start = UInt64(MonotonicInstant.now().nanoseconds)
            #expect(try client.waitForClose(timeout: 3))
            #expect(secondsSince(start) >= 0.15)
            #expect(client.bufferedBytes.isEmpty)
        }
    }

    @Test("an idle keep-alive connection is closed after the idle timeout")
    func idleTimeout() throws {
        try withServer({ $0.idleTimeout = .milliseconds(300) }) { server in
            let client = try TestClient(server.localAddresses[0])
            try client.send(get)
            #expect(try client.readResponse().status == 200)
            let start = UInt64(MonotonicInstant.now().nanoseconds)
            #expect(try client.waitForClose(timeout: 3))
            let elapsed = secondsSince(start)
            #expect(elapsed >= 0.25 && elapsed < 2, "closed after \(elapsed) s")
            #expect(client.bufferedBytes.isEmpty)
        }
    }

    @Test("a body that does not arrive in time gets 408")
    func bodyTimeout() throws {
        try withServer({ $0.bodyReadTimeout = .milliseconds(300) }) { server in
            let client = try TestClient(server.localAddresses[0])
            try client.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc")
            let r = try client.readResponse(timeout: 3)
            #expect(r.status == 408)
            _ = try client.readUntilClose()
        }
    }

    @Test("past the connection cap: 503 JSON and close; a freed slot is used again")
    func connectionCap() throws {
        try withServer({ $0.maxConnections = 3 }) { server in
            let address = server.localAddresses[0]
            var clients: [TestClient] = []
            for _ in 0..<3 {
                let c = try TestClient(address)
                try c.send(get)
                #expect(try c.readResponse().status == 200)
                clients.append(c)
            }
            let extra = try TestClient(address)
            let r = try extra.readResponse()
            #expect(r.status == 503)
            #expect(r.header("Connection") == "close")
            #expect(r.bodyText == #"{"error":{"status":503,"message":"too many connections"}}"#)
            #expect(try extra.readUntilClose().isEmpty)

            // The open ones still work.
            try clients[0].send(get)
            #expect(try clients[0].readResponse().status == 200)

            // Close one; the server notices and admits a new client.
            clients.removeLast()
            let deadline = Deadline(seconds: 5)
            var admitted = false
            while !deadline.hasPassed {
                let c = try TestClient(address)
                try c.send(get)
                if try c.readResponse().status == 200 {
                    admitted = true
                    break
                }
            }
            #expect(admitted)
        }
    }

    @Test("openConnections counts the clients the loop holds, not the ones turned away")
    func openConnectionsGauge() throws {
        try withServer({ $0.maxConnections = 2 }) { server in
            let address = server.localAddresses[0]
            #expect(server.openConnections == 0)
            var clients: [TestClient] = []
            for n in 1...2 {
                let c = try TestClient(address)
                try c.send(get)
                #expect(try c.readResponse().status == 200)
                clients.append(c)
                // Answered, so accepted and counted.
                #expect(server.openConnections == n)
            }
            let extra = try TestClient(address)
            #expect(try extra.readResponse().status == 503)
            #expect(try extra.readUntilClose().isEmpty)
            #expect(server.openConnections == 2)

            clients.removeAll()
            let deadline = Deadline(seconds: 5)
            while server.openConnections != 0 && !deadline.hasPassed {
                usleep(1_000)
            }
            #expect(server.openConnections == 0)
        }
    }

    @Test("a client that stops reading is dropped after the write timeout; output backpressure holds")
    func stalledReader() throws {
        try withServer({ $0.writeTimeout = .milliseconds(300) }) { server in
            let client = try TestClient(server.localAddresses[0], receiveBuffer: 16 * 1024)
            let flood = Array(String(repeating: get, count: 5000).utf8)
            try client.sendWhatFits(flood, timeout: 2)
            let start = UInt64(MonotonicInstant.now().nanoseconds)
            #expect(try client.waitForHangUp(timeout: 5), "the server kept a client that does not read")
            #expect(secondsSince(start) < 4)
        }
    }

    @Test("pipelined responses beyond the output cap are all delivered, in order, to a client that reads")
    func backpressure() throws {
        try withServer({ $0.maxBufferedOutputBytes = 32 * 1024 }) { server in
            let client = try TestClient(server.localAddresses[0])
            var flood = ""
            for i in 0..<300 {
                flood += i % 3 == 0 ? "GET /echo?n=\(i) HTTP/1.1\r\nHost: t\r\n\r\n" : get
            }
            try client.send(flood)
            for i in 0..<300 {
                let r = try client.readResponse()
                #expect(r.status == 200)
                if i % 3 == 0 {
                    #expect(r.bodyText.contains("query=n:\(i)"))
                } else {
                    #expect(r.body.count == TestHandler.statusBody.count)
                }
            }
        }
    }

    @Test("IPv4 and IPv6 loopback on the same port", .enabled(if: ipv6LoopbackAvailable, "[::1] cannot be bound on this machine: IPv6 test skipped"))
    func ipv6() throws {
        // Find a free port on both families by binding IPv6 to port 0 first.
        let probe = HTTPServer(configuration: .init(listenAddresses: [.loopbackIPv6()]), handler: TestHandler())
        try probe.start()
        let port = probe.ports[0]
        probe.stop()
        try withServer({ $0.listenAddresses = [.loopbackIPv6(port: port), .loopbackIPv4(port: port)] }) { server in
            #expect(server.localAddresses.map(\.description) == ["[::1]:\(port)", "127.0.0.1:\(port)"])
            let v6 = try TestClient(server.localAddresses[0])
            try v6.send("GET /echo HTTP/1.1\r\nHost: [::1]\r\n\r\n")
            #expect(try v6.readResponse().bodyText.contains("remote=::1"))
            let v4 = try TestClient(server.localAddresses[1])
            try v4.send("GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            #expect(try v4.readResponse().bodyText.contains("remote=127.0.0.1"))
        }
    }

    @Test("stop() returns promptly with open connections, closes them, and frees the port")
    func stop() throws {
        let server = HTTPServer(configuration: .init(), handler: TestHandler())
        try server.start()
        let address = server.localAddresses[0]
        let idle = try TestClient(address)
        try idle.send(get)
        #expect(try idle.readResponse().status == 200)
        let partial = try TestClient(address)
        try partial.send("GET /v1/sta")
        let busy = try TestClient(address)
        try busy.send(String(repeating: get, count: 50))

        let start = UInt64(MonotonicInstant.now().nanoseconds)
        server.stop()
        #expect(secondsSince(start) < 1)
        #expect(server.localAddresses.isEmpty)
        server.stop()  // idempotent

        #expect(try idle.waitForClose(timeout: 2))
        #expect(try partial.waitForClose(timeout: 2))
        // Its unread responses are in flight; the FIN follows them.
        #expect(try busy.waitForClose(timeout: 2))

        // The port is free for a new server at once.
        let again = HTTPServer(configuration: .init(listenAddresses: [address]), handler: TestHandler())
        try again.start()
        defer { again.stop() }
        #expect(again.localAddresses == [address])
        let client = try TestClient(address)
        try client.send(get)
        #expect(try client.readResponse().status == 200)
    }

    /// Runs only with VITALS_HTTP_EMFILE_TEST=1: it exhausts this process's
    /// descriptor table for a moment, which would break unrelated suites
    /// running in parallel in the same `swift test` process.
    @Test("out of descriptors (EMFILE), accept pauses instead of spinning, then recovers",
          .enabled(if: ProcessInfo.processInfo.environment["VITALS_HTTP_EMFILE_TEST"] == "1",
                   "set VITALS_HTTP_EMFILE_TEST=1 to run: it exhausts the process's descriptors"))
    func emfile() throws {
        try withServer { server in
            let address = server.localAddresses[0]
            let client = try TestClient(unconnectedFor: address)
            var saved = rlimit()
            getrlimit(RLIMIT_NOFILE_VALUE, &saved)
            var tight = saved
            tight.rlim_cur = 512
            // Fill every free descriptor below the limit.
            var fillers: [Int32] = []
            setrlimit(RLIMIT_NOFILE_VALUE, &tight)
            while true {
                let fd = dup(0)
                if fd < 0 { break }
                fillers.append(fd)
            }
            var before = rusage()
            getrusage(RUSAGE_SELF.rawValue, &before)
            try client.connect(address)  // accept4 now fails with EMFILE
            // Give the loop time to spin if it were going to.
            #expect(try client.waitForClose(timeout: 0.5) == false)
            var after = rusage()
            getrusage(RUSAGE_SELF.rawValue, &after)
            for fd in fillers { Glibc.close(fd) }
            setrlimit(RLIMIT_NOFILE_VALUE, &saved)
            func micros(_ t: timeval) -> Int { t.tv_sec * 1_000_000 + Int(t.tv_usec) }
            let cpu = micros(after.ru_utime) + micros(after.ru_stime) - micros(before.ru_utime) - micros(before.ru_stime)
            #expect(cpu < 200_000, "the process used \(cpu) µs of CPU in 0.5 s: the loop spins on EMFILE")
            #expect(fillers.count > 0)
            // Descriptors are back: the pending connection is accepted and served.
            try client.send(get)
            #expect(try client.readResponse(timeout: 3).status == 200)
        }
    }

    @Test("binding a port in use throws a SystemCallError naming bind")
    func bindFailure() throws {
        try withServer { server in
            let address = server.localAddresses[0]
            let second = HTTPServer(configuration: .init(listenAddresses: [address]), handler: TestHandler())
            #expect(throws: SystemCallError(call: "bind(\(address))", errno: EADDRINUSE)) { try second.start() }
        }
    }
}

struct ServerRejection: Sendable, CustomTestStringConvertible {
    let name: String
    let request: String
    let status: Int

    init(_ name: String, _ request: String, _ status: Int) {
        self.name = name
        self.request = request
        self.status = status
    }

    var testDescription: String { "\(name) → \(status)" }
}

/// `RLIMIT_NOFILE` as `getrlimit` wants it from Swift.
private let RLIMIT_NOFILE_VALUE = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
