import CCurl
import VitalsCurl
import Foundation
import Synchronization
import VitalsCore
import VitalsSystem

/// The production `Prober`: HTTP, HTTPS, TCP, TLS and gRPC checks are easy
/// handles on one curl multi handle, driven by whichever thread calls `poll`
/// (the scheduler's); the send/expect part of a TCP check runs on the
/// connection's socket in the same poll (`TCPConversation`), and so do ICMP
/// checks' sockets (`ICMPPing`) and dns checks' c-ares sockets
/// (`DNSQueries`); exec checks run on an `ExecSupervisor` thread and come
/// back, like ICMP checks' resolved host names, through an inbox and
/// `curl_multi_wakeup`.
///
/// Many transfers are in flight at once and a slow endpoint delays nobody.
/// Easy handles are pooled, not kept per service: a probe takes a handle,
/// configures it from its service's `CurlTarget` and gives it back when it
/// ends, so there are about as many handles as probes in flight (plus a
/// bounded idle list). Connections live in the multi handle's shared cache,
/// so a probe of a keep-alive endpoint is still one request on an open
/// connection whichever handle runs it.
public final class CurlMultiProber: Prober {

    public struct Configuration: Sendable {
        /// Connections the multi handle keeps open for reuse. Nil: four per
        /// distinct HTTP origin (scheme, host, port) in use, at least 16 and at
        /// most 1,000, so keep-alive endpoints keep their connections while a
        /// burst's extra connections are closed rather than cached. Default nil.
        public var maxCachedConnections: Int?
        /// Idle easy handles kept for reuse; more are freed when their probe
        /// ends. Default 256.
        public var maxIdleHandles: Int
        /// Output kept from an exec plugin (stdout and stderr). Default 8 KiB.
        public var maxExecOutputBytes: Int
        /// Between SIGTERM and SIGKILL for a plugin past its timeout. Default 500ms.
        public var execKillGrace: Duration
        /// Sent with HTTP checks. Default `vitals`.
        public var userAgent: String
        /// How much of a send/expect check's reply is read while looking for
        /// the expected one. Default 16 KiB.
        public var maxReplyBytes: Int

        public init(maxCachedConnections: Int? = nil, maxIdleHandles: Int = 256, maxExecOutputBytes: Int = 8192,
                    execKillGrace: Duration = .milliseconds(500), userAgent: String = "vitals",
                    maxReplyBytes: Int = 16_384) {
            self.maxCachedConnections = maxCachedConnections
            self.maxIdleHandles = maxIdleHandles
            self.maxExecOutputBytes = maxExecOutputBytes
            self.execKillGrace = execKillGrace
            self.userAgent = userAgent
            self.maxReplyBytes = maxReplyBytes
        }
    }

    /// The multi handle's thread-safe side: exec results on their way from
    /// the supervisor thread to the loop, and `curl_multi_wakeup`. It owns
    /// the handle's lifetime, so a waker kept after the prober is gone stays valid.
    private final class Inbox: ProberWaker {
        let completions = Mutex<[(ticket: UInt64, completion: ProbeCompletion)]>([])
        /// icmp checks' host names, resolved off the loop, by ping ticket.
        let resolved = Mutex<[(ticket: UInt64, address: Result<ICMPAddress, ICMPFailure>)]>([])
        // Only curl_multi_wakeup, which libcurl documents as callable from any thread, is used from other threads.
        nonisolated(unsafe) let multi: UnsafeMutableRawPointer
        init(multi: UnsafeMutableRawPointer) { self.multi = multi }
        deinit { curl_multi_cleanup(multi) }
        func wake() { curl_multi_wakeup(multi) }
    }

    /// Connections cached per distinct origin, and the bounds, when
    /// `maxCachedConnections` is nil.
    static let connectionsPerOrigin = 4
    static let minCachedConnections = 16
    static let maxDefaultCachedConnections = 1_000

    private let configuration: Configuration
    private let clock: any VitalsClock
    private let multi: UnsafeMutableRawPointer
    private let inbox: Inbox
    private let userAgent: UnsafeMutablePointer<CChar>
    private var targets: [CurlTarget?] = []
    /// Idle pooled handles, most recently used last.
    private var idle: [CurlTransfer] = []
    /// Handles in existence (idle and in flight), for tests and diagnostics.
    private(set) var handleCount = 0
    /// HTTP targets per origin.
    private var origins: [String: Int] = [:]
    private var cachedConnections = 0
    private var pending: [ProbeCompletion] = []
    /// Send/expect exchanges past their connect, in no particular order.
    private var conversations: [TCPConversation] = []
    /// `curl_multi_poll`'s extra descriptors: one per conversation, same order,
    /// then the sockets of the dns queries in flight.
    private var waitFDs: [curl_waitfd] = []
    /// The dns checks: c-ares channels, polled with curl's sockets.
    private let dns: DNSQueries
    /// icmp probes in flight (resolving or pinging), in no particular order.
    private var pings: [ICMPPing] = []
    private let icmpSockets = ICMPSockets()
    private var nextPingIdentifier = UInt16(truncatingIfNeeded: getpid())
    private var supervisor: ExecSupervisor?
    private var execTickets: [Int: UInt64] = [:]
    private var nextTicket: UInt64 = 0

    /// - Parameter clock: stamps each result's `time`.
    public init(configuration: Configuration = .init(), clock: any VitalsClock = SystemClock()) {
        Curl.initialize()
        self.configuration = configuration
        self.clock = clock
        guard let multi = curl_multi_init() else { fatalError("curl_multi_init failed") }
        self.multi = multi
        inbox = Inbox(multi: multi)
        dns = DNSQueries(clock: clock)
        userAgent = strdup(configuration.userAgent)
        resizeConnectionCache()
    }

    deinit {
        supervisor?.shutdown()
        for case let target? in targets {
            if let transfer = target.transfer { curl_multi_remove_handle(multi, transfer.easy) }
            target.transfer = nil
            target.conversation = nil
        }
        for conversation in conversations { conversation.close() }
        for ping in pings { ping.close() }
        targets.removeAll()
        idle.removeAll() // cleans up the easy handles before the inbox cleans up the multi handle
        free(userAgent)
    }

    // MARK: Prober

    public func start(_ service: ServiceConfig, slot: Int) {
        switch service.check {
        case .http, .tcp, .grpc:
            let target = target(for: service, slot: slot)
            abandon(target) // at most one probe per slot
            guard let transfer = acquire() else {
                pending.append(failure(slot, "cannot set up probe: curl_easy_init failed"))
                return
            }
            if let setupFailure = transfer.prepare(for: target, userAgent: userAgent) {
                release(transfer)
                pending.append(failure(slot, setupFailure))
                return
            }
            let code = curl_multi_add_handle(multi, transfer.easy)
            guard code == CURLM_OK else {
                release(transfer)
                pending.append(failure(slot, "cannot start probe: \(Curl.text(code))"))
                return
            }
            target.transfer = transfer
        case .exec(let exec):
            nextTicket += 1
            execTickets[slot] = nextTicket
            execSupervisor().start(.init(slot: slot, ticket: nextTicket, argv: exec.argv, env: exec.env,
                                         timeout: service.timing.timeout))
        case .dns(let check):
            dns.start(service, check: check, slot: slot, failed: &pending)
        case .icmp(let icmp):
            startPing(icmp, service: service, slot: slot)
        case .heartbeat:
            pending.append(failure(slot, "heartbeat services are not probed"))
        }
    }

    public func poll(timeout: Duration, into finished: inout [ProbeCompletion]) {
        let before = finished.count
        var running: Int32 = 0
        curl_multi_perform(multi, &running)
        collect(into: &finished)
        if !conversations.isEmpty { advanceConversations(polled: false, into: &finished) }
        if !dns.isIdle { dns.advance(polled: nil, into: &finished) }
        if !pings.isEmpty { advancePings(readable: [], into: &finished) }
        guard finished.count == before else { return }

        var wait = timeout
        waitFDs.removeAll(keepingCapacity: true)
        if !conversations.isEmpty || !pings.isEmpty {
            let now = MonotonicInstant.now()
            for conversation in conversations {
                let events = conversation.wantsWrite ? CURL_WAIT_POLLOUT : CURL_WAIT_POLLIN
                waitFDs.append(curl_waitfd(fd: conversation.fd, events: Int16(events), revents: 0))
                wait = min(wait, max(.zero, conversation.deadline - now))
            }
            // Pings after the conversations, whose indices advanceConversations relies on.
            for ping in pings {
                if ping.fd >= 0 { waitFDs.append(curl_waitfd(fd: ping.fd, events: Int16(CURL_WAIT_POLLIN), revents: 0)) }
                wait = min(wait, max(.zero, ping.nextWake - now))
            }
        }
        // The dns sockets go after the conversations' (whose order advanceConversations relies on).
        let dnsPolled = !dns.isIdle
        if dnsPolled { dns.addWaitFDs(&waitFDs, wait: &wait) }
        curl_multi_poll(multi, &waitFDs, UInt32(waitFDs.count), wait.millisecondsRoundedUp, nil)
        var readablePings: Set<Int32> = []
        if !pings.isEmpty {
            for polled in waitFDs.dropFirst(conversations.count) where polled.revents != 0 { readablePings.insert(polled.fd) }
        }
        // Before the conversations, which remove their finished entries from waitFDs.
        if dnsPolled { dns.advance(polled: waitFDs, into: &finished) }
        if !conversations.isEmpty { advanceConversations(polled: true, into: &finished) }
        if !pings.isEmpty { advancePings(readable: readablePings, into: &finished) }
        waitFDs.removeAll(keepingCapacity: true)
        curl_multi_perform(multi, &running)
        collect(into: &finished)
    }

    public var waker: any ProberWaker { inbox }

    public func cancel(slot: Int, forget: Bool) {
        pending.removeAll { $0.slot == slot }
        abandonPing(slot: slot)
        if execTickets.removeValue(forKey: slot) != nil {
            supervisor?.cancel(slot: slot)
        }
        dns.cancel(slot: slot, forget: forget)
        guard slot < targets.count, let target = targets[slot] else { return }
        abandon(target)
        if forget { drop(slot) }
    }

    // MARK: Loop-thread internals

    private func target(for service: ServiceConfig, slot: Int) -> CurlTarget {
        if slot < targets.count, let existing = targets[slot] {
            if existing.check == service.check && existing.timeout == service.timing.timeout
                && existing.interval == service.timing.interval {
                return existing
            }
            abandon(existing)
            drop(slot)
        }
        let target = CurlTarget(slot: slot, service: service)
        if slot >= targets.count {
            targets.append(contentsOf: repeatElement(nil, count: slot + 1 - targets.count))
        }
        targets[slot] = target
        if let origin = target.origin {
            origins[origin, default: 0] += 1
            resizeConnectionCache()
        }
        return target
    }

    private func drop(_ slot: Int) {
        guard let target = targets[slot] else { return }
        targets[slot] = nil
        if let origin = target.origin {
            if let count = origins[origin], count > 1 { origins[origin] = count - 1 } else { origins[origin] = nil }
            resizeConnectionCache()
        }
    }

    /// Removes the target's transfer or conversation in flight, if any; no
    /// completion follows.
    private func abandon(_ target: CurlTarget) {
        if let conversation = target.conversation {
            target.conversation = nil
            end(conversation)
        }
        guard let transfer = target.transfer else { return }
        curl_multi_remove_handle(multi, transfer.easy)
        target.transfer = nil
        release(transfer)
    }

    // MARK: Send/expect

    /// Ends the conversations past their deadline and, when `polled`, first
    /// moves on those whose socket `curl_multi_poll` just reported ready
    /// (`waitFDs`, in the same order). Unready sockets are not touched: no
    /// system call per waiting conversation per pass.
    private func advanceConversations(polled: Bool, into finished: inout [ProbeCompletion]) {
        let now = MonotonicInstant.now()
        var index = 0
        while index < conversations.count {
            let conversation = conversations[index]
            let ready = polled && (index >= waitFDs.count || waitFDs[index].revents != 0
                || waitFDs[index].fd != conversation.fd)
            var verdict = ready ? conversation.advance() : nil
            if verdict == nil, now >= conversation.deadline { verdict = conversation.expired() }
            guard let verdict else {
                index += 1
                continue
            }
            // Keep waitFDs lined up with conversations while removing.
            if index < waitFDs.count { waitFDs.remove(at: index) }
            conversations.remove(at: index)
            finish(conversation, verdict, into: &finished)
        }
    }

    /// Starts the exchange on the socket curl just connected: a duplicate of
    /// it, taken before the easy handle is removed (which closes curl's).
    private func startConversation(_ transfer: CurlTransfer, target: CurlTarget, send: [UInt8],
                                   judge: ReplyJudge, into finished: inout [ProbeCompletion]) -> Bool {
        var socket: curl_socket_t = -1
        let code = vitals_easy_getinfo_socket(transfer.easy, CURLINFO_ACTIVESOCKET, &socket)
        guard code == CURLE_OK, socket >= 0, let fd = try? Posix.duplicate(socket) else { return false }
        let conversation = TCPConversation(slot: target.slot, fd: fd, send: send, judge: judge,
                                           startedAt: transfer.startedAt, timeout: target.timeout,
                                           maxReplyBytes: configuration.maxReplyBytes)
        target.conversation = conversation
        if let verdict = conversation.advance() {
            finish(conversation, verdict, into: &finished)
        } else {
            conversations.append(conversation)
        }
        return true
    }

    private func finish(_ conversation: TCPConversation, _ verdict: ProbeVerdict,
                        into finished: inout [ProbeCompletion]) {
        conversation.close()
        let latency = MonotonicInstant.now() - conversation.startedAt
        if conversation.slot < targets.count, let target = targets[conversation.slot],
           target.conversation === conversation {
            target.conversation = nil
        }
        finished.append(ProbeCompletion(slot: conversation.slot,
                                        result: ProbeResult(time: clock.now(), latency: latency,
                                                            outcome: verdict.outcome, reason: verdict.reason)))
    }

    /// Ends a conversation with no completion (cancelled).
    private func end(_ conversation: TCPConversation) {
        conversation.close()
        if let index = conversations.firstIndex(where: { $0 === conversation }) {
            conversations.remove(at: index)
        }
    }

    // MARK: ICMP

    private func startPing(_ check: ICMPCheck, service: ServiceConfig, slot: Int) {
        abandonPing(slot: slot) // at most one probe per slot
        nextTicket += 1
        nextPingIdentifier &+= 1
        let ping = ICMPPing(slot: slot, ticket: nextTicket, check: check, timeout: service.timing.timeout,
                            identifier: nextPingIdentifier, firstSequence: UInt16.random(in: 0...UInt16.max),
                            startedAt: .now())
        pings.append(ping)
        if let address = ICMPAddress.literal(check.host) {
            begin(ping, at: address)
            return
        }
        // getaddrinfo blocks: resolve a name off the loop, then wake it.
        let inbox = self.inbox
        let ticket = ping.ticket
        let host = check.host
        DispatchQueue.global().async {
            let address = ICMPAddress.resolve(host)
            inbox.resolved.withLock { $0.append((ticket, address)) }
            inbox.wake()
        }
    }

    private func begin(_ ping: ICMPPing, at address: ICMPAddress) {
        switch icmpSockets.open(address.family) {
        case .success(let socket):
            ping.begin(address: address, socket: socket)
        case .failure(let failure):
            pings.removeAll { $0 === ping }
            pending.append(self.failure(ping.slot, failure.reason))
        }
    }

    private func abandonPing(slot: Int) {
        guard pings.contains(where: { $0.slot == slot }) else { return }
        for ping in pings where ping.slot == slot { ping.close() }
        pings.removeAll { $0.slot == slot }
    }

    /// Sends what is due, reads what the poll found readable, and ends the
    /// pings that are answered or past their deadline.
    private func advancePings(readable: Set<Int32>, into finished: inout [ProbeCompletion]) {
        let resolutions = inbox.resolved.withLock { resolved in
            defer { resolved.removeAll(keepingCapacity: true) }
            return resolved
        }
        for (ticket, address) in resolutions {
            guard let ping = pings.first(where: { $0.ticket == ticket }) else { continue }
            switch address {
            case .success(let address): begin(ping, at: address)
            case .failure(let failure):
                pings.removeAll { $0 === ping }
                finished.append(self.failure(ping.slot, failure.reason))
            }
        }
        let now = MonotonicInstant.now()
        var index = 0
        while index < pings.count {
            let ping = pings[index]
            var outcome = ping.advance(now: now, readable: ping.fd >= 0 && readable.contains(ping.fd))
            if case .none = outcome, now >= ping.deadline {
                outcome = ping.isResolving
                    ? (.failed("timeout after \(DurationText.format(ping.timeout)): host name not resolved"), nil)
                    : ping.expired()
            }
            guard let outcome else {
                index += 1
                continue
            }
            pings.remove(at: index)
            ping.close()
            finished.append(ProbeCompletion(slot: ping.slot,
                                            result: ProbeResult(time: clock.now(), latency: outcome.latency,
                                                                outcome: outcome.verdict.outcome,
                                                                reason: outcome.verdict.reason)))
        }
    }

    private func acquire() -> CurlTransfer? {
        if let transfer = idle.popLast() { return transfer }
        guard let transfer = CurlTransfer() else { return nil }
        handleCount += 1
        return transfer
    }

    /// Back to the idle list, or freed if the list is full. The handle must
    /// be out of the multi handle.
    private func release(_ transfer: CurlTransfer) {
        transfer.finish()
        if idle.count < configuration.maxIdleHandles {
            idle.append(transfer)
        } else {
            handleCount -= 1 // freed as the last reference goes
        }
    }

    private func resizeConnectionCache() {
        let wanted = configuration.maxCachedConnections
            ?? min(Self.maxDefaultCachedConnections,
                   max(Self.minCachedConnections, Self.connectionsPerOrigin * origins.count))
        guard wanted != cachedConnections else { return }
        cachedConnections = wanted
        vitals_multi_setopt_long(multi, CURLMOPT_MAXCONNECTS, wanted)
    }

    private func collect(into finished: inout [ProbeCompletion]) {
        if !pending.isEmpty {
            finished.append(contentsOf: pending)
            pending.removeAll(keepingCapacity: true)
        }
        var queued: Int32 = 0
        while let message = curl_multi_info_read(multi, &queued) {
            guard message.pointee.msg == CURLMSG_DONE, let easy = message.pointee.easy_handle else { continue }
            // The message does not survive curl_multi_remove_handle: read it first.
            let code = vitals_msg_result(message)
            var context: UnsafeMutableRawPointer?
            vitals_easy_getinfo_pointer(easy, CURLINFO_PRIVATE, &context)
            guard let context else {
                curl_multi_remove_handle(multi, easy)
                continue
            }
            let transfer = Unmanaged<CurlTransfer>.fromOpaque(context).takeUnretainedValue()
            guard let target = transfer.target, target.transfer === transfer else {
                curl_multi_remove_handle(multi, easy)
                continue
            }
            if code == CURLE_OK, case .exchange(let send, let judge) = target.kind {
                // Connected: the socket must be taken before the removal closes it.
                let started = startConversation(transfer, target: target, send: send, judge: judge, into: &finished)
                curl_multi_remove_handle(multi, easy)
                target.transfer = nil
                release(transfer)
                if !started { finished.append(failure(target.slot, "cannot take over the connection from curl")) }
                continue
            }
            curl_multi_remove_handle(multi, easy)
            let completion = ProbeCompletion(slot: target.slot, result: result(of: transfer, target: target, code: code))
            target.transfer = nil
            release(transfer)
            finished.append(completion)
        }
        if !execTickets.isEmpty {
            let arrived = inbox.completions.withLock { completions in
                defer { completions.removeAll(keepingCapacity: true) }
                return completions
            }
            for (ticket, completion) in arrived where execTickets[completion.slot] == ticket {
                execTickets[completion.slot] = nil
                finished.append(completion)
            }
        }
    }

    private func result(of transfer: CurlTransfer, target: CurlTarget, code: CURLcode) -> ProbeResult {
        let now = clock.now()
        guard code == CURLE_OK else {
            var osErrno = 0
            vitals_easy_getinfo_long(transfer.easy, CURLINFO_OS_ERRNO, &osErrno)
            let reason = CurlFailure.reason(code: code, osErrno: Int32(truncatingIfNeeded: osErrno),
                                            detail: transfer.errorDetail, timeout: target.timeout)
            return ProbeResult(time: now, latency: nil, outcome: .failed, reason: reason)
        }
        switch target.kind {
        case .tcp, .exchange: // an exchange's connect is judged by its TCPConversation
            var connectMicros: curl_off_t = 0
            vitals_easy_getinfo_off_t(transfer.easy, CURLINFO_CONNECT_TIME_T, &connectMicros)
            return ProbeResult(time: now, latency: .microseconds(connectMicros), outcome: .ok)
        case .tls(let conditions):
            var handshakeMicros: curl_off_t = 0
            vitals_easy_getinfo_off_t(transfer.easy, CURLINFO_APPCONNECT_TIME_T, &handshakeMicros)
            let expiry = target.certificateInfo ? Self.certificateExpiry(of: transfer.easy) : nil
            let verdict = conditions.evaluate(certificateExpiry: expiry, now: now)
            return ProbeResult(time: now, latency: .microseconds(handshakeMicros), outcome: verdict.outcome,
                               reason: verdict.reason)
        case .http(let conditions):
            var status = 0
            vitals_easy_getinfo_long(transfer.easy, CURLINFO_RESPONSE_CODE, &status)
            var totalMicros: curl_off_t = 0
            vitals_easy_getinfo_off_t(transfer.easy, CURLINFO_TOTAL_TIME_T, &totalMicros)
            let latency = Duration.microseconds(totalMicros)
            if conditions.check.certMinDays != nil, let expiry = Self.certificateExpiry(of: transfer.easy) {
                target.certificateExpiry = expiry
            }
            let verdict = conditions.evaluate(status: status, body: transfer.bodyBytes, latency: latency,
                                              certificateExpiry: target.certificateExpiry, now: now)
            return ProbeResult(time: now, latency: latency, outcome: verdict.outcome, reason: verdict.reason)
        case .grpc(let service):
            var status = 0
            vitals_easy_getinfo_long(transfer.easy, CURLINFO_RESPONSE_CODE, &status)
            var totalMicros: curl_off_t = 0
            vitals_easy_getinfo_off_t(transfer.easy, CURLINFO_TOTAL_TIME_T, &totalMicros)
            let verdict = GRPCHealth.verdict(httpStatus: status, trailers: transfer.grpcTrailers,
                                             body: transfer.bodyBytes, service: service)
            return ProbeResult(time: now, latency: .microseconds(totalMicros), outcome: verdict.outcome,
                               reason: verdict.reason)
        }
    }

    /// The earliest `Expire date` in the chain of the handshake just done;
    /// nil on a reused connection (no handshake, no certinfo).
    private static func certificateExpiry(of easy: UnsafeMutableRawPointer) -> Date? {
        var info: UnsafeMutablePointer<curl_certinfo>?
        guard vitals_easy_getinfo_certinfo(easy, &info) == CURLE_OK, let info,
              info.pointee.num_of_certs > 0, let chain = info.pointee.certinfo else { return nil }
        var lines: [String] = []
        for index in 0..<Int(info.pointee.num_of_certs) {
            var node = chain[index]
            while let entry = node {
                if let data = entry.pointee.data, strncmp(data, "Expire date:", 12) == 0 {
                    lines.append(String(cString: data))
                }
                node = entry.pointee.next
            }
        }
        return CertificateDates.earliestExpiry(in: lines)
    }

    private func execSupervisor() -> ExecSupervisor {
        if let supervisor { return supervisor }
        let inbox = self.inbox
        let created = ExecSupervisor(maxOutputBytes: configuration.maxExecOutputBytes,
                                     killGrace: configuration.execKillGrace, clock: clock) { slot, ticket, result in
            inbox.completions.withLock { $0.append((ticket, ProbeCompletion(slot: slot, result: result))) }
            inbox.wake()
        }
        supervisor = created
        return created
    }

    private func failure(_ slot: Int, _ reason: String) -> ProbeCompletion {
        ProbeCompletion(slot: slot, result: ProbeResult(time: clock.now(), latency: nil, outcome: .failed, reason: reason))
    }
}
