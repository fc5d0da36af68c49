import Foundation
import VitalsCore
import VitalsSystem

/// The send/expect part of a tcp check, after curl has opened the connection.
///
/// How it stays on the probe loop without blocking: curl connects
/// (`CURLOPT_CONNECT_ONLY`: resolving, connect timeout, IPv4/IPv6 as for
/// every probe). When the multi handle reports the connect done, the prober
/// takes a duplicate of the socket (`CURLINFO_ACTIVESOCKET`, `dup`) and
/// removes the easy handle, which closes curl's descriptor; the connection
/// lives on in this one. The conversation then sends and reads with
/// non-blocking `send`/`recv`, and the prober's `curl_multi_poll` waits on
/// its socket too (as an extra `curl_waitfd`), so one thread still drives
/// every probe.
///
/// Why not `curl_easy_send`/`curl_easy_recv` on the easy handle: they find
/// the connection through the multi handle's connection cache, so the handle
/// would have to stay added (and out of the pool) until the verdict, and the
/// exchange would rest on how each libcurl version keeps an idle connect-only
/// connection there. The duplicate is ours alone, and the easy handle goes
/// back to the pool at once.
///
/// Touched only by the prober's loop thread.
final class TCPConversation {
    let slot: Int
    let fd: Int32
    let judge: ReplyJudge
    /// When the probe started (curl's connect included): latency counts from here.
    let startedAt: MonotonicInstant
    /// The probe's whole bound: the reply must be in by then.
    let deadline: MonotonicInstant
    let timeout: Duration
    private let message: [UInt8]
    private var sent = 0
    private(set) var received: [UInt8] = []
    private let maxReplyBytes: Int
    private var open = true

    /// Takes ownership of `fd` (non-blocking, connected).
    init(slot: Int, fd: Int32, send message: [UInt8], judge: ReplyJudge, startedAt: MonotonicInstant,
         timeout: Duration, maxReplyBytes: Int) {
        self.slot = slot
        self.fd = fd
        self.message = message
        self.judge = judge
        self.startedAt = startedAt
        self.timeout = timeout
        deadline = startedAt + timeout
        self.maxReplyBytes = max(1, maxReplyBytes)
    }

    deinit { close() }

    /// Still sending: wait for the socket to be writable, not readable.
    var wantsWrite: Bool { sent < message.count }

    /// Sends what the socket takes and reads what has arrived. Returns the
    /// verdict once it is decided, nil while it waits for the socket.
    func advance() -> ProbeVerdict? {
        while sent < message.count {
            let sending = message.withUnsafeBytes { bytes in
                Result { () throws(SystemCallError) in
                    try Posix.send(fd, UnsafeRawBufferPointer(rebasing: bytes[sent...]))
                }
            }
            switch sending {
            case .success(.processed(let count)): sent += count
            case .success(.wouldBlock): return nil
            case .failure(let error):
                return .failed(judge.reason(received: received,
                                            ending: .error("send failed: \(Posix.errorText(error.errno))")))
            }
        }
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let room = min(chunk.count, maxReplyBytes - received.count)
            let reading = chunk.withUnsafeMutableBytes { bytes in
                Result { () throws(SystemCallError) in
                    try Posix.recv(fd, UnsafeMutableRawBufferPointer(rebasing: bytes[..<room]))
                }
            }
            let result: IOResult
            switch reading {
            case .success(let outcome): result = outcome
            case .failure(let error):
                return .failed(judge.reason(received: received,
                                            ending: .error("receive failed: \(Posix.errorText(error.errno))")))
            }
            switch result {
            case .wouldBlock:
                return nil
            case .processed(0):
                return .failed(judge.reason(received: received, ending: .closed))
            case .processed(let count):
                received.append(contentsOf: chunk[..<count])
                switch judge.judge(received) {
                case .matched: return .ok
                case .mismatched: return .failed(judge.reason(received: received, ending: .mismatch))
                case .undecided:
                    if received.count >= maxReplyBytes {
                        return .failed(judge.reason(received: received, ending: .full))
                    }
                }
            }
        }
    }

    /// The verdict when the deadline passed first.
    func expired() -> ProbeVerdict {
        .failed(judge.reason(received: received, ending: .timeout(timeout)))
    }

    func close() {
        guard open else { return }
        open = false
        Posix.close(fd)
    }
}
