#if canImport(Glibc)
import Glibc
#endif
import CSystem
import VitalsSystem

/// Reading, parsing, answering and writing one connection.
extension EventLoop {

    func handleConnectionEvent(tag: UInt64, mask: UInt32) {
        let index = Int(tag & 0xFFFF_FFFF)
        guard index < connections.count, let c = connections[index], c.tag == tag else { return }
        if mask & epollErrOrHup != 0 {
            // Reset, or both directions shut: nothing can be delivered.
            close(c)
            return
        }
        if mask & epollIn != 0 {
            readable(c)
            if c.isClosed { return }
        }
        if mask & epollOut != 0 {
            writable(c)
        }
    }

    func readable(_ c: Connection) {
        if c.lingering {
            drainLingering(c)
            return
        }
        if c.closing { return }
        guard let result = receive(c) else { return }
        switch result {
        case .wouldBlock:
            return
        case .processed(0):
            // The client is done sending; a partial request can never
            // complete. Finish writing what is owed, then close.
            c.peerClosedInput = true
            c.closing = true
            c.parser.discardBufferedBytes()
            flush(c)
        case .processed(let n):
            c.parser.feed(UnsafeRawBufferPointer(rebasing: readBuffer[0..<n]))
            processRequests(c)
        }
    }

    func writable(_ c: Connection) {
        flush(c)
        if !c.isClosed && !c.closing && c.output.pendingBytes < configuration.maxBufferedOutputBytes
            && c.parser.bufferedByteCount > 0 {
            processRequests(c)
        }
    }

    /// Parses and answers buffered requests until more bytes are needed,
    /// the connection is closing, or its output is backed up.
    func processRequests(_ c: Connection) {
        let cap = configuration.maxBufferedOutputBytes
        while true {
            var completed = false
            var backedUp = false
            while !c.closing && c.awaiting == nil {
                if c.output.pendingBytes >= cap {
                    backedUp = true
                    break
                }
                let event: HTTPParserEvent?
                do {
                    event = try c.parser.next()
                } catch {
                    enqueue(error.response, to: c, head: false, connection: .close)
                    c.closing = true
                    break
                }
                guard let event else { break }
                switch event {
                case .continueExpected:
                    c.output.appendInline { $0.append(contentsOf: "HTTP/1.1 100 Continue\r\n\r\n".utf8) }
                case .request(var request):
                    completed = true
                    request.remoteAddress = c.remote
                    let response: HTTPResponse
                    switch handler {
                    case .immediate(let handler):
                        response = handler.handle(request)
                    case .deferring(let handler):
                        nextRequestID &+= 1
                        let deferral = HTTPDeferral(mailbox: mailbox, connectionTag: c.tag, requestID: nextRequestID)
                        guard let now = handler.handle(request, deferral: deferral) else {
                            c.awaiting = AwaitedRequest(id: nextRequestID, deadline: self.now &+ deferredTimeout,
                                                        head: request.method == .head, keepAlive: request.keepAlive,
                                                        version: request.version)
                            continue
                        }
                        response = now
                    }
                    answer(c, response, head: request.method == .head, keepAlive: request.keepAlive, version: request.version)
                }
            }
            c.timer.parserPhase(c.parser.phase, completedRequest: completed, now: now)
            flush(c)
            // Continue only if the flush drained a backlog that stopped us.
            if c.isClosed || c.closing || !backedUp || c.output.pendingBytes >= cap { return }
        }
    }

    /// Queues the answer to one request, and marks the connection closing
    /// when either side asked for that.
    func answer(_ c: Connection, _ response: HTTPResponse, head: Bool, keepAlive requested: Bool, version: HTTPVersion) {
        let keepAlive = requested && !response.closesConnection
        let field: ResponseHead.ConnectionField = !keepAlive ? .close : (version == .http1_0 ? .keepAlive : .none)
        enqueue(response, to: c, head: head, connection: field)
        if !keepAlive { c.closing = true }
    }

    func enqueue(_ response: HTTPResponse, to c: Connection, head: Bool, connection: ResponseHead.ConnectionField) {
        let status = response.status
        let body = response.body
        let sendBody = !head && !status.forbidsBody && body.count > 0
        let inlineBody = sendBody && body.count <= EventLoop.inlineBodyLimit
        let date = self.date.bytes
        c.output.appendInline { out in
            if let head = response.preparedHead {
                head.write(into: &out, date: date, connection: connection)
            } else {
                ResponseHead.write(
                    into: &out, status: status, headers: response.headers,
                    contentLength: status.forbidsContentLength ? nil : body.count,
                    connection: connection, date: date)
            }
            if inlineBody {
                body.withUnsafeBytes { out.append(contentsOf: $0) }
            }
        }
        if sendBody && !inlineBody {
            c.output.appendBody(body)
        }
    }

    func flush(_ c: Connection) {
        var progressed = false
        if !c.output.isEmpty {
            do {
                progressed = try c.output.write(to: c.fd, iovecs: iovecs, capacity: iovecCapacity)
            } catch {
                close(c)
                return
            }
        }
        c.timer.output(pending: !c.output.isEmpty, progressed: progressed, now: now)
        if c.output.isEmpty && c.closing && c.awaiting == nil {
            if c.peerClosedInput {
                close(c)
                return
            }
            startLingering(c)
        } else {
            var wanted: UInt32 = 0
            if !c.output.isEmpty { wanted |= epollOut }
            if !c.closing && c.output.pendingBytes < configuration.maxBufferedOutputBytes
                && (c.awaiting == nil || c.parser.bufferedByteCount < configuration.maxBufferedOutputBytes) {
                wanted |= epollIn
            }
            setInterest(c, wanted)
        }
        if !c.isClosed { noteDeadline(c) }
    }

    /// Shuts down the sending side after the last response and discards
    /// input until the client closes (or the linger timeout), so that
    /// unread input does not turn close into a reset that destroys the
    /// response before the client reads it.
    func startLingering(_ c: Connection) {
        c.lingering = true
        c.parser.discardBufferedBytes()
        c.timer.startLingering(now: now)
        Posix.shutdownWrite(c.fd)
        setInterest(c, epollIn)
        if !c.isClosed { drainLingering(c) }
    }

    /// `recv` into the read buffer; nil when it failed and `c` was closed.
    func receive(_ c: Connection) -> IOResult? {
        do {
            return try Posix.recv(c.fd, readBuffer)
        } catch {
            close(c)
            return nil
        }
    }

    func drainLingering(_ c: Connection) {
        while true {
            guard let result = receive(c) else { return }
            switch result {
            case .wouldBlock:
                return
            case .processed(0):
                close(c)
                return
            case .processed(let n):
                c.lingerDiscardedBytes += n
                if c.lingerDiscardedBytes > EventLoop.maxLingerDiscardBytes {
                    close(c)
                    return
                }
            }
        }
    }

    func setInterest(_ c: Connection, _ wanted: UInt32) {
        guard wanted != c.registeredEvents else { return }
        do {
            try Posix.epollControl(epfd, EPOLL_CTL_MOD, c.fd, events: wanted, tag: c.tag)
            c.registeredEvents = wanted
        } catch {
            close(c)
        }
    }

    func close(_ c: Connection) {
        guard !c.isClosed else { return }
        c.isClosed = true
        // Explicit, though close() would do it: a descriptor copied into a
        // forked child keeps the registration alive otherwise.
        try? Posix.epollControl(epfd, EPOLL_CTL_DEL, c.fd, events: 0, tag: 0)
        Posix.close(c.fd)
        connections[Int(c.fd)] = nil
        connectionCount -= 1
    }
}
