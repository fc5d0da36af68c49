import Synchronization
import VitalsSystem

/// A handler that may answer some requests later, from another thread (to
/// read a file, or wait for another part of the program), without holding
/// up the event loop.
///
/// For each request, return a response now, or call `deferral.responder()`,
/// return nil, and later call the responder once from any thread. Later
/// requests pipelined on the same connection wait, and are answered after
/// it, in order. If the client goes away first, the answer is dropped; if no
/// answer comes within `deferredResponseTimeout`, the client gets 503.
public protocol HTTPDeferringHandler: Sendable {
    func handle(_ request: HTTPRequest, deferral: HTTPDeferral) -> HTTPResponse?
}

/// Lets one request be answered later; see `HTTPDeferringHandler`. Valid
/// only during the `handle` call it was passed to.
public struct HTTPDeferral {
    let mailbox: LoopMailbox
    let connectionTag: UInt64
    let requestID: UInt64

    init(mailbox: LoopMailbox, connectionTag: UInt64, requestID: UInt64) {
        self.mailbox = mailbox
        self.connectionTag = connectionTag
        self.requestID = requestID
    }

    /// The responder for this request. Return nil from `handle` after taking it.
    public func responder() -> HTTPResponder {
        HTTPResponder(mailbox: mailbox, connectionTag: connectionTag, requestID: requestID)
    }
}

/// Answers one deferred request, once, from any thread. Calls after the
/// first are ignored; an answer for a connection that has closed (or whose
/// request timed out) is dropped.
public final class HTTPResponder: Sendable {
    private let mailbox: LoopMailbox
    private let connectionTag: UInt64
    private let requestID: UInt64
    private let answered = Atomic<Bool>(false)

    init(mailbox: LoopMailbox, connectionTag: UInt64, requestID: UInt64) {
        self.mailbox = mailbox
        self.connectionTag = connectionTag
        self.requestID = requestID
    }

    public func respond(_ response: HTTPResponse) {
        guard !answered.exchange(true, ordering: .acquiringAndReleasing) else { return }
        mailbox.post(DeferredAnswer(connectionTag: connectionTag, requestID: requestID, response: response))
    }
}

struct DeferredAnswer: Sendable {
    var connectionTag: UInt64
    var requestID: UInt64
    var response: HTTPResponse
}

/// How other threads reach the event loop: deferred answers and the request
/// to stop, each followed by a write to the loop's eventfd. It owns that
/// descriptor, so a responder that outlives the loop never writes to a
/// closed (or reused) one.
final class LoopMailbox: Sendable {
    private struct Contents {
        var answers: [DeferredAnswer] = []
        var stopRequested = false
    }

    let wakeFD: Int32
    private let contents = Mutex(Contents())

    init() throws(SystemCallError) {
        wakeFD = try Posix.eventFD()
    }

    deinit { Posix.close(wakeFD) }

    func post(_ answer: DeferredAnswer) {
        contents.withLock { $0.answers.append(answer) }
        Posix.signalEventFD(wakeFD)
    }

    func requestStop() {
        contents.withLock { $0.stopRequested = true }
        Posix.signalEventFD(wakeFD)
    }

    /// On the loop thread, after the eventfd fired.
    func take() -> (answers: [DeferredAnswer], stop: Bool) {
        Posix.drainEventFD(wakeFD)
        return contents.withLock { contents in
            defer { contents.answers.removeAll() }
            return (contents.answers, contents.stopRequested)
        }
    }
}
