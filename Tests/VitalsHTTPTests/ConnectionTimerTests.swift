import Testing
@testable import VitalsHTTP

/// The connection deadlines as a pure machine: time is plain numbers here.
@Suite("ConnectionTimer")
struct ConnectionTimerTests {
    let t = ConnectionTimeouts(header: 10, idle: 60, body: 30, write: 20, linger: 2)

    @Test("a silent new connection is closed after the header timeout, from accept")
    func silentConnection() {
        let timer = ConnectionTimer(acceptedAt: 100)
        #expect(timer.deadline(t) == 110)
        #expect(timer.expiry(at: 109, t) == nil)
        #expect(timer.expiry(at: 110, t) == .idle)
    }

    @Test("the first head is timed from accept, later heads from their first byte")
    func headTimedFromFirstByte() {
        var timer = ConnectionTimer(acceptedAt: 0)
        timer.parserPhase(.head, completedRequest: false, now: 5)
        #expect(timer.phase == .head)
        #expect(timer.deadline(t) == 10)
        #expect(timer.expiry(at: 10, t) == .header)

        timer.parserPhase(.idle, completedRequest: true, now: 8)
        #expect(timer.phase == .idle)
        #expect(timer.deadline(t) == 68)
        timer.parserPhase(.head, completedRequest: false, now: 50)
        #expect(timer.deadline(t) == 60)
        // More bytes of the same head do not extend it (slowloris).
        timer.parserPhase(.head, completedRequest: false, now: 59)
        #expect(timer.deadline(t) == 60)
        #expect(timer.expiry(at: 60, t) == .header)
    }

    @Test("a body is timed from the end of its head")
    func bodyTimeout() {
        var timer = ConnectionTimer(acceptedAt: 0)
        timer.parserPhase(.body, completedRequest: false, now: 3)
        #expect(timer.deadline(t) == 33)
        timer.parserPhase(.body, completedRequest: false, now: 20)
        #expect(timer.expiry(at: 33, t) == .body)
    }

    @Test("a pipelined next head restarts the header clock when a request completed")
    func pipelinedHead() {
        var timer = ConnectionTimer(acceptedAt: 0)
        timer.parserPhase(.head, completedRequest: false, now: 1)
        timer.parserPhase(.head, completedRequest: true, now: 9)
        #expect(timer.deadline(t) == 19)
    }

    @Test("stalled output is bounded by the write timeout; progress restarts it; idle waits for the write")
    func writeStall() {
        var timer = ConnectionTimer(acceptedAt: 0)
        timer.parserPhase(.idle, completedRequest: true, now: 1)
        timer.output(pending: true, progressed: true, now: 1)
        #expect(timer.deadline(t) == 21)
        timer.output(pending: true, progressed: false, now: 15)
        #expect(timer.deadline(t) == 21)
        timer.output(pending: true, progressed: true, now: 15)
        #expect(timer.deadline(t) == 35)
        // Slow but moving for longer than the idle timeout: not idle.
        timer.output(pending: true, progressed: true, now: 70)
        #expect(timer.expiry(at: 80, t) == nil)
        #expect(timer.expiry(at: 90, t) == .write)
        timer.output(pending: false, progressed: true, now: 85)
        #expect(timer.deadline(t) == 145)
        #expect(timer.expiry(at: 145, t) == .idle)
    }

    @Test("lingering ends after the linger timeout")
    func linger() {
        var timer = ConnectionTimer(acceptedAt: 0)
        timer.startLingering(now: 7)
        timer.parserPhase(.head, completedRequest: false, now: 8)
        #expect(timer.phase == .lingering)
        #expect(timer.deadline(t) == 9)
        #expect(timer.expiry(at: 9, t) == .linger)
    }
}
