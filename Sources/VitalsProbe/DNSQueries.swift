import CAres
import CCurl
import Foundation
import VitalsCore
import VitalsSystem

/// The `dns:` checks of a `CurlMultiProber`, on its loop thread.
///
/// How they stay on the probe loop without blocking: each dns service has
/// a c-ares channel of its own (its server, its timeout). A probe is one
/// `ares_send` on that channel; c-ares opens the sockets (UDP, and TCP when
/// an answer comes back truncated: c-ares re-asks over TCP by itself), and
/// the prober waits on them in the same `curl_multi_poll` as curl's own
/// (`ares_getsock` names them and whether each waits to read or to write,
/// as extra `curl_waitfd`s). Whatever the poll reports ready is handed to
/// `ares_process_fd`, which also runs c-ares' retransmissions and timeouts;
/// the answer arrives in a callback on this same thread.
///
/// Why one channel per service: a channel has one server list and one
/// timeout, and `ares_cancel` (the only way to drop a query in c-ares 1.18)
/// cancels everything on its channel. An idle channel holds no socket
/// (c-ares closes them when its last query ends), only some memory.
///
/// The channel asks with `ARES_FLAG_NOCHECKRESP`: a REFUSED or SERVFAIL is
/// the server's answer, to be judged, not a reason to ask the next server.
/// Queries carry no EDNS, so an answer over 512 bytes comes back truncated
/// and is fetched again over TCP.
///
/// Touched only by the prober's loop thread.
final class DNSQueries {
    /// One dns service: its channel and its probe in flight.
    final class Target {
        let slot: Int
        /// What the target was built from; a change rebuilds it.
        let check: DNSCheck
        let timeout: Duration
        let judge: DNSJudge
        let channel: ares_channel
        var query: Query?
        /// Where this target's sockets sit in the poll's descriptors.
        var polled: Range<Int> = 0..<0

        init(slot: Int, check: DNSCheck, timeout: Duration, channel: ares_channel) {
            self.slot = slot
            self.check = check
            self.timeout = timeout
            judge = DNSJudge(check)
            self.channel = channel
        }

        deinit {
            // Calls the callback of a query still pending (ARES_EDESTRUCTION), which releases it.
            ares_destroy(channel)
        }
    }

    /// One probe: filled in by the c-ares callback.
    final class Query {
        let startedAt: MonotonicInstant
        let deadline: MonotonicInstant
        private(set) var status: Int32?
        private(set) var message: [UInt8] = []

        init(startedAt: MonotonicInstant, timeout: Duration) {
            self.startedAt = startedAt
            deadline = startedAt + timeout
        }

        func answered(status: Int32, message: UnsafeBufferPointer<UInt8>) {
            self.status = status
            self.message = Array(message)
        }
    }

    private static let libraryInitialized: Int32 = ares_library_init(ARES_LIB_INIT_ALL)

    private let clock: any VitalsClock
    private var targets: [Int: Target] = [:]
    /// Targets with a query in flight, in no particular order.
    private var inFlight: [Target] = []

    init(clock: any VitalsClock) {
        self.clock = clock
        _ = Self.libraryInitialized
    }

    deinit {
        inFlight.removeAll()
        targets.removeAll()
    }

    var isIdle: Bool { inFlight.isEmpty }

    /// Starts one probe of `service`; a failure to start is appended to `failed`.
    func start(_ service: ServiceConfig, check: DNSCheck, slot: Int, failed: inout [ProbeCompletion]) {
        let target: Target
        switch self.target(for: service, check: check, slot: slot) {
        case .success(let existing): target = existing
        case .failure(let reason):
            failed.append(failure(slot, reason))
            return
        }
        abandon(target) // at most one probe per slot

        var buffer: UnsafeMutablePointer<UInt8>?
        var length: Int32 = 0
        let built = ares_create_query(check.name, 1 /* class IN */, Int32(check.type.code), 0, 1 /* recursion desired */,
                                      &buffer, &length, 0 /* no EDNS */)
        guard built == ARES_SUCCESS, let buffer else {
            failed.append(failure(slot, "cannot build the DNS query for \(check.name): \(String(cString: ares_strerror(built)))"))
            return
        }
        defer { ares_free_string(buffer) }
        let query = Query(startedAt: .now(), timeout: service.timing.timeout)
        target.query = query
        inFlight.append(target)
        // The callback takes this reference back, whichever way the query ends
        // (answer, timeout, cancel, destroy): c-ares calls it exactly once.
        ares_send(target.channel, buffer, length, dnsQueryAnswered, Unmanaged.passRetained(query).toOpaque())
    }

    /// Drops the probe in flight in `slot`, if any (no completion follows);
    /// with `forget`, the channel too.
    func cancel(slot: Int, forget: Bool) {
        guard let target = targets[slot] else { return }
        abandon(target)
        if forget { targets[slot] = nil }
    }

    /// Appends the sockets of every query in flight to `fds`, and shortens
    /// `wait` to the earliest c-ares retransmission or probe deadline.
    func addWaitFDs(_ fds: inout [curl_waitfd], wait: inout Duration) {
        let now = MonotonicInstant.now()
        var sockets = [ares_socket_t](repeating: ARES_SOCKET_BAD, count: Int(ARES_GETSOCK_MAXNUM))
        for target in inFlight {
            let start = fds.count
            let bits = ares_getsock(target.channel, &sockets, Int32(ARES_GETSOCK_MAXNUM))
            for index in 0..<Int(ARES_GETSOCK_MAXNUM) {
                let readable = vitals_ares_sock_readable(bits, Int32(index)) != 0
                let writable = vitals_ares_sock_writable(bits, Int32(index)) != 0
                guard readable || writable else { continue }
                let events = (readable ? CURL_WAIT_POLLIN : 0) | (writable ? CURL_WAIT_POLLOUT : 0)
                fds.append(curl_waitfd(fd: sockets[index], events: Int16(events), revents: 0))
            }
            target.polled = start..<fds.count
            var longest = timeval(tv_sec: 3600, tv_usec: 0)
            var next = timeval()
            if let due = ares_timeout(target.channel, &longest, &next) {
                let retransmit = Duration.seconds(Int64(due.pointee.tv_sec)) + .microseconds(Int64(due.pointee.tv_usec))
                wait = min(wait, retransmit)
            }
            if let query = target.query { wait = min(wait, max(.zero, query.deadline - now)) }
        }
    }

    /// Hands c-ares the sockets `curl_multi_poll` reported ready (`polled`:
    /// the poll's descriptors, as `addWaitFDs` left them; nil before a
    /// poll), lets it run its timeouts, and appends the probes that ended.
    func advance(polled: [curl_waitfd]?, into finished: inout [ProbeCompletion]) {
        var index = 0
        while index < inFlight.count {
            let target = inFlight[index]
            if let polled {
                for position in target.polled where position < polled.count {
                    let fd = polled[position]
                    guard fd.revents != 0 else { continue }
                    // An error or hang-up is read as readable, so c-ares sees it on its next read.
                    let readable = Int32(fd.revents) & ~Int32(CURL_WAIT_POLLOUT) != 0
                    let writable = Int32(fd.revents) & Int32(CURL_WAIT_POLLOUT) != 0
                    ares_process_fd(target.channel, readable ? fd.fd : ARES_SOCKET_BAD, writable ? fd.fd : ARES_SOCKET_BAD)
                }
                target.polled = 0..<0
            }
            // Retransmissions, the switch to the next server, c-ares' own timeout.
            ares_process_fd(target.channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD)
            guard let query = target.query else {
                inFlight.remove(at: index)
                continue
            }
            if query.status == nil, MonotonicInstant.now() >= query.deadline {
                ares_cancel(target.channel) // answers the query with ARES_ECANCELLED, at once
            }
            guard let status = query.status else {
                index += 1
                continue
            }
            inFlight.remove(at: index)
            target.query = nil
            finished.append(completion(of: query, status: status, target: target))
        }
    }

    // MARK: Internals

    private func completion(of query: Query, status: Int32, target: Target) -> ProbeCompletion {
        let latency = MonotonicInstant.now() - query.startedAt
        let verdict: ProbeVerdict
        switch status {
        case ARES_SUCCESS:
            let read = query.message.withUnsafeBufferPointer { DNSAnswerReader.read($0, type: target.check.type) }
            switch read {
            case .success(let answer): verdict = target.judge.evaluate(answer)
            case .failure(.malformed(let detail)):
                verdict = .failed("malformed DNS answer from \(target.judge.serverText): \(detail)")
            }
        case ARES_ETIMEOUT, ARES_ECANCELLED:
            verdict = .failed(target.judge.timeoutReason(target.timeout))
        case ARES_ECONNREFUSED:
            // c-ares' word for "every attempt failed on the socket" (refused, unreachable).
            verdict = .failed("cannot connect to DNS server \(target.judge.serverText): refused or unreachable")
        default:
            verdict = .failed("DNS query failed: \(String(cString: ares_strerror(status)))")
        }
        let answered = status == ARES_SUCCESS
        return ProbeCompletion(slot: target.slot, result: ProbeResult(time: clock.now(), latency: answered ? latency : nil,
                                                                      outcome: verdict.outcome, reason: verdict.reason))
    }

    /// Ends the target's query, if any, without a completion.
    private func abandon(_ target: Target) {
        guard target.query != nil else { return }
        target.query = nil
        ares_cancel(target.channel)
        if let index = inFlight.firstIndex(where: { $0 === target }) { inFlight.remove(at: index) }
    }

    private func target(for service: ServiceConfig, check: DNSCheck, slot: Int) -> Result<Target, Reason> {
        if let existing = targets[slot] {
            if existing.check == check && existing.timeout == service.timing.timeout { return .success(existing) }
            abandon(existing)
            targets[slot] = nil
        }
        switch Self.channel(for: check, timeout: service.timing.timeout) {
        case .success(let channel):
            let target = Target(slot: slot, check: check, timeout: service.timing.timeout, channel: channel)
            targets[slot] = target
            return .success(target)
        case .failure(let reason):
            return .failure(reason)
        }
    }

    struct Reason: Error { let text: String }

    /// A channel asking `check.server` (else the servers in /etc/resolv.conf):
    /// two tries, the first given a third of the timeout and the second
    /// (c-ares doubles it) the rest, so a lost UDP packet is sent again
    /// within the probe's bound.
    private static func channel(for check: DNSCheck, timeout: Duration) -> Result<ares_channel, Reason> {
        var options = ares_options()
        options.flags = ARES_FLAG_NOCHECKRESP
        options.timeout = Int32(max(1, timeout.millisecondsRoundedUp / 3))
        options.tries = 2
        var channel: ares_channel?
        let status = ares_init_options(&channel, &options, ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES)
        guard status == ARES_SUCCESS, let channel else {
            return .failure(Reason(text: "cannot set up DNS: \(String(cString: ares_strerror(status)))"))
        }
        if let server = check.server {
            let set = ares_set_servers_ports_csv(channel, server.description)
            guard set == ARES_SUCCESS else {
                ares_destroy(channel)
                return .failure(Reason(text: "cannot use DNS server \(server): \(String(cString: ares_strerror(set)))"))
            }
        }
        return .success(channel)
    }

    private func failure(_ slot: Int, _ reason: Reason) -> ProbeCompletion { failure(slot, reason.text) }

    private func failure(_ slot: Int, _ reason: String) -> ProbeCompletion {
        ProbeCompletion(slot: slot, result: ProbeResult(time: clock.now(), latency: nil, outcome: .failed, reason: reason))
    }
}

/// c-ares' answer callback: a top-level function, so it captures nothing.
/// `arg` holds the reference `start` passed on.
private func dnsQueryAnswered(_ arg: UnsafeMutableRawPointer?, _ status: Int32, _ timeouts: Int32,
                              _ message: UnsafeMutablePointer<UInt8>?, _ length: Int32) {
    guard let arg else { return }
    let query = Unmanaged<DNSQueries.Query>.fromOpaque(arg).takeRetainedValue()
    query.answered(status: status, message: UnsafeBufferPointer(start: message, count: message == nil ? 0 : Int(length)))
}
