#if canImport(Glibc)
import Glibc
#endif
import CSystem
import VitalsSystem

/// Deadlines: each connection's timer, and deferred answers.
extension EventLoop {
    func noteDeadline(_ c: Connection) {
        let deadline = c.awaiting?.deadline ?? c.timer.deadline(timeouts)
        if deadline < nextSweep { nextSweep = deadline }
    }

    /// Acts on every passed deadline and finds the next one. Runs only
    /// when the earliest known deadline passed, so its cost (one pass over
    /// the connections) is paid about once per timeout, not per event.
    func sweep() {
        var next = UInt64.max
        for index in connections.indices {
            guard let c = connections[index] else { continue }
            if let awaited = c.awaiting {
                // Waiting for an answer is the handler's time, not the client's.
                if now >= awaited.deadline { answerTimedOut(c) }
            } else if let expiry = c.timer.expiry(at: now, timeouts) {
                expire(c, expiry)
            }
            if !c.isClosed {
                next = min(next, c.awaiting?.deadline ?? c.timer.deadline(timeouts))
            }
        }
        nextSweep = next
    }

    func expire(_ c: Connection, _ expiry: ConnectionExpiry) {
        switch expiry {
        case .idle, .write, .linger:
            close(c)
        case .header, .body:
            if c.closing {
                // Already answered; the client is not reading it either.
                close(c)
                return
            }
            c.closing = true
            c.parser.discardBufferedBytes()
            enqueue(
                .error(status: .requestTimeout, message: expiry == .header ? "request head not received in time" : "request body not received in time"),
                to: c, head: false, connection: .close)
            flush(c)
        }
    }

    // MARK: - Deferred answers

    /// A deferred answer came: send it, then serve what was pipelined behind
    /// it. An answer for a connection that closed, or whose request timed
    /// out, is dropped.
    func deliver(_ answer: DeferredAnswer) {
        let index = Int(answer.connectionTag & 0xFFFF_FFFF)
        guard index < connections.count, let c = connections[index], c.tag == answer.connectionTag,
              let awaited = c.awaiting, awaited.id == answer.requestID else { return }
        c.awaiting = nil
        self.answer(c, answer.response, head: awaited.head, keepAlive: awaited.keepAlive, version: awaited.version)
        processRequests(c)
    }

    private func answerTimedOut(_ c: Connection) {
        guard let awaited = c.awaiting else { return }
        c.awaiting = nil
        c.parser.discardBufferedBytes()
        answer(c, .error(status: .serviceUnavailable, message: "no answer in time"),
               head: awaited.head, keepAlive: false, version: awaited.version)
        flush(c)
    }
}
