import Foundation

/// A DNS server of the test's own on 127.0.0.1, UDP and TCP on the same
/// kernel-chosen port: Debian's python3-dnslib, answering from a zone file
/// the test writes and may rewrite while it runs (each query reads it again).
///
/// The zone is `[name: Entry]`; a name not in it is NXDOMAIN. Every query is
/// logged with its transport (`queries`), so a test can see a TCP retry.
/// UDP answers over 512 bytes are truncated (TC set, no records), as a
/// server without EDNS must.
public final class TestDNSServer: @unchecked Sendable {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// One name's answers.
    public struct Entry: Sendable {
        public var a: [String] = []
        public var aaaa: [String] = []
        public var cname: [String] = []
        /// (preference, host)
        public var mx: [(Int, String)] = []
        /// Each record's character-strings.
        public var txt: [[String]] = []
        /// (priority, weight, port, target)
        public var srv: [(Int, Int, Int, String)] = []
        public var ns: [String] = []
        /// mname, rname, serial, refresh, retry, expire, minimum
        public var soa: (String, String, Int, Int, Int, Int, Int)?
        /// Answer with this response code and no records: `REFUSED`, `SERVFAIL`, …
        public var rcode: String?
        /// Never answer.
        public var silent = false
        /// Over UDP, always answer truncated (TC set, no records).
        public var truncateOverUDP = false

        public init(a: [String] = [], aaaa: [String] = [], cname: [String] = [], mx: [(Int, String)] = [],
                    txt: [[String]] = [], srv: [(Int, Int, Int, String)] = [], ns: [String] = [],
                    soa: (String, String, Int, Int, Int, Int, Int)? = nil, rcode: String? = nil, silent: Bool = false,
                    truncateOverUDP: Bool = false) {
            self.a = a
            self.aaaa = aaaa
            self.cname = cname
            self.mx = mx
            self.txt = txt
            self.srv = srv
            self.ns = ns
            self.soa = soa
            self.rcode = rcode
            self.silent = silent
            self.truncateOverUDP = truncateOverUDP
        }

        var json: [String: Any] {
            var object: [String: Any] = ["A": a, "AAAA": aaaa, "CNAME": cname, "NS": ns,
                                         "MX": mx.map { [$0.0, $0.1] as [Any] }, "TXT": txt,
                                         "SRV": srv.map { [$0.0, $0.1, $0.2, $0.3] as [Any] },
                                         "silent": silent, "tc": truncateOverUDP]
            if let soa { object["SOA"] = [soa.0, soa.1, soa.2, soa.3, soa.4, soa.5, soa.6] as [Any] }
            if let rcode { object["rcode"] = rcode }
            return object
        }
    }

    static let python = "/usr/bin/python3"
    /// Debian's python3-dnslib is installed for Debian's python3, whatever `python3` is on PATH.
    public static var available: Bool {
        FileManager.default.isExecutableFile(atPath: python)
            && FileManager.default.fileExists(atPath: "/usr/lib/python3/dist-packages/dnslib/server.py")
    }

    public let port: UInt16
    private let process: Process
    private let scratch: Scratch
    private let log = Locked<[String]>([])

    public init(zone: [String: Entry]) throws {
        guard Self.available else { throw Failure(description: "python3-dnslib is not installed") }
        scratch = try Scratch()
        try Self.script.write(toFile: scratch.file("server.py"), atomically: true, encoding: .utf8)
        process = Process()
        process.executableURL = URL(fileURLWithPath: Self.python)
        process.arguments = ["-u", scratch.file("server.py"), scratch.file("zone.json")]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try Self.write(zone, to: scratch.file("zone.json"))
        try process.run()

        // The script prints `ready PORT` once both sockets are bound.
        var text = ""
        var found: UInt16?
        while found == nil {
            let data = output.fileHandleForReading.availableData
            if data.isEmpty { break }
            text += String(decoding: data, as: UTF8.self)
            if let line = text.split(separator: "\n").first(where: { $0.hasPrefix("ready ") }) {
                found = UInt16(line.dropFirst("ready ".count))
            }
        }
        guard let found else {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            scratch.remove()
            throw Failure(description: "the dnslib server did not start: \(text)")
        }
        port = found
        let handle = output.fileHandleForReading
        let log = self.log
        Thread {
            var pending = ""
            while true {
                let data = handle.availableData
                if data.isEmpty { break }
                pending += String(decoding: data, as: UTF8.self)
                while let newline = pending.firstIndex(of: "\n") {
                    let line = String(pending[..<newline])
                    pending = String(pending[pending.index(after: newline)...])
                    log.withLock { $0.append(line) }
                }
            }
        }.start()
    }

    /// Replaces the zone; the next query sees the new one.
    public func setZone(_ zone: [String: Entry]) throws {
        try Self.write(zone, to: scratch.file("zone.json"))
    }

    /// `udp TXT big.vitals.test`, one per query received, oldest first.
    public var queries: [String] {
        log.withLock { $0.filter { $0.hasPrefix("query ") }.map { String($0.dropFirst("query ".count)) } }
    }

    /// Waits (bounded) until the log holds `count` queries: the log is read on another thread.
    public func waitForQueries(_ count: Int) -> [String] {
        let deadline = Date().addingTimeInterval(2)
        while queries.count < count && Date() < deadline { usleep(2_000) }
        return queries
    }

    public func stop() {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        scratch.remove()
    }

    private static func write(_ zone: [String: Entry], to path: String) throws {
        let object = zone.mapValues(\.json)
        let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        // Written beside and renamed over, so a query never reads half a file.
        try data.write(to: URL(fileURLWithPath: path), options: .atomic)
    }

    private static let script = #"""
import json, socket, sys
from dnslib import RR, QTYPE, RCODE, A, AAAA, CNAME, MX, TXT, SRV, NS, SOA
from dnslib.server import DNSServer, BaseResolver, DNSLogger
from dnslib.dns import DNSError

zone_path = sys.argv[1]

class Resolver(BaseResolver):
    def resolve(self, request, handler):
        with open(zone_path) as f:
            zone = json.load(f)
        q = request.q
        name = str(q.qname).rstrip(".").lower()
        qtype = QTYPE[q.qtype]
        print("query %s %s %s" % (handler.protocol, qtype, name), flush=True)
        reply = request.reply()
        entry = zone.get(name)
        if entry is None:
            reply.header.rcode = RCODE.NXDOMAIN
            return reply
        if entry.get("silent"):
            raise DNSError("silent")  # the handler logs it and sends nothing
        if "rcode" in entry:
            reply.header.rcode = getattr(RCODE, entry["rcode"])
            return reply
        for value in entry.get(qtype, []):
            if qtype == "A": rdata = A(value)
            elif qtype == "AAAA": rdata = AAAA(value)
            elif qtype == "CNAME": rdata = CNAME(value)
            elif qtype == "NS": rdata = NS(value)
            elif qtype == "MX": rdata = MX(value[1], value[0])
            elif qtype == "TXT": rdata = TXT([s.encode() for s in value])
            elif qtype == "SRV": rdata = SRV(value[0], value[1], value[2], value[3])
            else: continue
            reply.add_answer(RR(q.qname, q.qtype, rdata=rdata, ttl=60))
        if qtype == "SOA" and "SOA" in entry:
            s = entry["SOA"]
            reply.add_answer(RR(q.qname, q.qtype, rdata=SOA(s[0], s[1], tuple(s[2:])), ttl=60))
        if handler.protocol == "udp" and (entry.get("tc") or len(reply.pack()) > 512):
            # As real servers do: TC set, the question kept, no records.
            # (dnslib's own truncate() drops the question, and resolvers that
            # check the question, as c-ares does, ignore such an answer.)
            truncated = request.reply()
            truncated.header.tc = 1
            return truncated
        return reply

class Quiet(DNSLogger):
    def __init__(self): pass
    def log_recv(self, *a): pass
    def log_send(self, *a): pass
    def log_request(self, *a): pass
    def log_reply(self, *a): pass
    def log_truncated(self, *a): pass
    def log_error(self, *a): pass
    def log_data(self, *a): pass

resolver = Resolver()
for attempt in range(20):
    udp = DNSServer(resolver, port=0, address="127.0.0.1", logger=Quiet())
    port = udp.server.server_address[1]
    try:
        tcp = DNSServer(resolver, port=port, address="127.0.0.1", tcp=True, logger=Quiet())
    except OSError:
        udp.server.server_close()
        continue
    break
else:
    print("no port", flush=True)
    sys.exit(1)
udp.start_thread()
tcp.start_thread()
print("ready %d" % port, flush=True)
import threading
threading.Event().wait()
"""#
}
