import CCurl
import Foundation
import Synchronization
import VitalsCore

/// The production `Prober`: HTTP, HTTPS and TCP checks are easy handles on
/// one curl multi handle, driven by whichever thread calls `poll` (the
/// scheduler's); exec checks run on an `ExecSupervisor` thread and come back
/// through an inbox and `curl_multi_wakeup`.
///
/// Many transfers are in flight at once and a slow endpoint delays nobody.
/// Each service keeps its easy handle between probes, and the multi handle's
/// connection cache keeps one connection per service alive, so a probe of a
/// keep-alive endpoint is one request on an open connection.
public final class CurlMultiProber: Prober, @unchecked Sendable {
    // @unchecked: everything but `inbox` and `multi` (whose wakeup is
    // thread-safe) is touched only by the thread running the loop, as the
    // `Prober` contract requires.

    public struct Configuration: Sendable {
        /// Connections the multi handle keeps open for reuse. Nil: one per
        /// HTTP service seen (at least 16), so every endpoint keeps its
        /// keep-alive connection. Default nil.
        public var maxCachedConnections: Int?
        /// Output kept from an exec plugin (stdout and stderr). Default 8 KiB.
        public var maxExecOutputBytes: Int
        /// Between SIGTERM and SIGKILL for a plugin past its timeout. Default 500ms.
        public var execKillGrace: Duration
        /// Sent with HTTP checks. Default `vitals`.
        public var userAgent: String

        public init(maxCachedConnections: Int? = nil, maxExecOutputBytes: Int = 8192,
                    execKillGrace: Duration = .milliseconds(500), userAgent: String = "vitals") {
            self.maxCachedConnections = maxCachedConnections
            self.maxExecOutputBytes = maxExecOutputBytes
            self.execKillGrace = execKillGrace
            self.userAgent = userAgent
        }
    }

    /// Exec results on their way from the supervisor thread to the loop.
    private final class Inbox: Sendable {
        let completions = Mutex<[(ticket: UInt64, completion: ProbeCompletion)]>([])
        nonisolated(unsafe) let multi: UnsafeMutableRawPointer
        init(multi: UnsafeMutableRawPointer) { self.multi = multi }
    }

    private static let globalInit: Void = {
        curl_global_init(Int(CURL_GLOBAL_ALL))
    }()

    private let configuration: Configuration
    private let clock: any VitalsClock
    private let multi: UnsafeMutableRawPointer
    private let inbox: Inbox
    private var transfers: [CurlTransfer?] = []
    private var httpTransferCount = 0
    private var pending: [ProbeCompletion] = []
    private var supervisor: ExecSupervisor?
    private var execTickets: [Int: UInt64] = [:]
    private var nextTicket: UInt64 = 0

    /// - Parameter clock: stamps each result's `time`.
    public init(configuration: Configuration = .init(), clock: any VitalsClock = SystemClock()) {
        _ = Self.globalInit
        self.configuration = configuration
        self.clock = clock
        guard let multi = curl_multi_init() else { fatalError("curl_multi_init failed") }
        self.multi = multi
        inbox = Inbox(multi: multi)
        let connections = configuration.maxCachedConnections ?? 16
        vitals_multi_setopt_long(multi, CURLMOPT_MAXCONNECTS, connections)
    }

    deinit {
        supervisor?.shutdown()
        for case let transfer? in transfers where transfer.inFlight {
            curl_multi_remove_handle(multi, transfer.easy)
        }
        transfers.removeAll() // cleans up the easy handles before the multi handle
        curl_multi_cleanup(multi)
    }

    // MARK: Prober

    public func start(_ service: ServiceConfig, slot: Int) {
        switch service.check {
        case .http, .tcp:
            guard let transfer = transfer(for: service, slot: slot) else {
                pending.append(failure(slot, "cannot set up probe: curl_easy_init failed"))
                return
            }
            if let setupFailure = transfer.setupFailure {
                pending.append(failure(slot, setupFailure))
                return
            }
            transfer.reset()
            let code = curl_multi_add_handle(multi, transfer.easy)
            guard code == CURLM_OK else {
                pending.append(failure(slot, "cannot start probe: \(String(cString: curl_multi_strerror(code)))"))
                return
            }
            transfer.inFlight = true
        case .exec(let exec):
            nextTicket += 1
            execTickets[slot] = nextTicket
            execSupervisor().start(.init(slot: slot, ticket: nextTicket, argv: exec.argv, env: exec.env,
                                         timeout: service.timing.timeout))
        case .heartbeat:
            pending.append(failure(slot, "heartbeat services are not probed"))
        }
    }

    public func poll(timeout: Duration, into finished: inout [ProbeCompletion]) {
        let before = finished.count
        var running: Int32 = 0
        curl_multi_perform(multi, &running)
        collect(into: &finished)
        guard finished.count == before else { return }
        curl_multi_poll(multi, nil, 0, Int32(timeout.millisecondsRoundedUp), nil)
        curl_multi_perform(multi, &running)
        collect(into: &finished)
    }

    public func wake() {
        curl_multi_wakeup(multi)
    }

    public func cancel(slot: Int, forget: Bool) {
        pending.removeAll { $0.slot == slot }
        if execTickets.removeValue(forKey: slot) != nil {
            supervisor?.cancel(slot: slot)
        }
        guard slot < transfers.count, let transfer = transfers[slot] else { return }
        if transfer.inFlight {
            curl_multi_remove_handle(multi, transfer.easy)
            transfer.inFlight = false
        }
        if forget { drop(slot) }
    }

    // MARK: Loop-thread internals

    private func transfer(for service: ServiceConfig, slot: Int) -> CurlTransfer? {
        if slot < transfers.count, let existing = transfers[slot] {
            if existing.check == service.check && existing.timeout == service.timing.timeout {
                return existing
            }
            if existing.inFlight { curl_multi_remove_handle(multi, existing.easy) }
            drop(slot)
        }
        guard let transfer = CurlTransfer(slot: slot, service: service, userAgent: configuration.userAgent) else {
            return nil
        }
        if slot >= transfers.count {
            transfers.append(contentsOf: repeatElement(nil, count: slot + 1 - transfers.count))
        }
        transfers[slot] = transfer
        if case .http = transfer.kind {
            httpTransferCount += 1
            resizeConnectionCache()
        }
        return transfer
    }

    private func drop(_ slot: Int) {
        guard let transfer = transfers[slot] else { return }
        transfers[slot] = nil
        if case .http = transfer.kind {
            httpTransferCount -= 1
            resizeConnectionCache()
        }
    }

    private func resizeConnectionCache() {
        guard configuration.maxCachedConnections == nil else { return }
        vitals_multi_setopt_long(multi, CURLMOPT_MAXCONNECTS, max(16, httpTransferCount))
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
            curl_multi_remove_handle(multi, easy)
            guard let context else { continue }
            let transfer = Unmanaged<CurlTransfer>.fromOpaque(context).takeUnretainedValue()
            transfer.inFlight = false
            finished.append(ProbeCompletion(slot: transfer.slot, result: result(of: transfer, code: code)))
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

    private func result(of transfer: CurlTransfer, code: CURLcode) -> ProbeResult {
        let now = clock.now()
        guard code == CURLE_OK else {
            var osErrno = 0
            vitals_easy_getinfo_long(transfer.easy, CURLINFO_OS_ERRNO, &osErrno)
            let reason = CurlFailure.reason(code: code, osErrno: Int32(truncatingIfNeeded: osErrno),
                                            detail: transfer.errorDetail, timeout: transfer.timeout)
            return ProbeResult(time: now, latency: nil, outcome: .failed, reason: reason)
        }
        switch transfer.kind {
        case .tcp:
            var connectMicros: curl_off_t = 0
            vitals_easy_getinfo_off_t(transfer.easy, CURLINFO_CONNECT_TIME_T, &connectMicros)
            return ProbeResult(time: now, latency: .microseconds(connectMicros), outcome: .ok)
        case .http(let conditions):
            var status = 0
            vitals_easy_getinfo_long(transfer.easy, CURLINFO_RESPONSE_CODE, &status)
            var totalMicros: curl_off_t = 0
            vitals_easy_getinfo_off_t(transfer.easy, CURLINFO_TOTAL_TIME_T, &totalMicros)
            let latency = Duration.microseconds(totalMicros)
            if conditions.check.certMinDays != nil, let expiry = Self.certificateExpiry(of: transfer.easy) {
                transfer.certificateExpiry = expiry
            }
            let verdict = conditions.evaluate(status: status, body: transfer.bodyBytes, latency: latency,
                                              certificateExpiry: transfer.certificateExpiry, now: now)
            return ProbeResult(time: now, latency: latency, outcome: verdict.outcome, reason: verdict.reason)
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
            curl_multi_wakeup(inbox.multi)
        }
        supervisor = created
        return created
    }

    private func failure(_ slot: Int, _ reason: String) -> ProbeCompletion {
        ProbeCompletion(slot: slot, result: ProbeResult(time: clock.now(), latency: nil, outcome: .failed, reason: reason))
    }
}
