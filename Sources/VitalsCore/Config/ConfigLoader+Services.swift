import Foundation
import Yams

// MARK: - services

extension ConfigReader {
    static let checkKinds = ["http", "tcp", "tls", "dns", "exec", "heartbeat", "grpc", "icmp"]
    static let serviceKeys = checkKinds + ["depends_on", "address", "on"] + timingKeys
    static let httpKeys = ["url", "method", "headers", "status", "body_contains", "body_regex", "json",
                           "max_latency", "slow_latency", "tls_verify", "cert_min_days", "follow_redirects",
                           "max_body"]
    static let tcpKeys = ["host", "port", "send", "expect", "expect_regex"]
    static let tlsKeys = ["host", "port", "server_name", "cert_min_days", "ca_file"]

    /// One service, and its `depends_on` references to known services (kept
    /// even when the service itself is broken, for cycle detection).
    func readService(_ entry: ConfigEntry, defaults: ProbeTiming, serviceNames: [String],
                     actionNames: [String]) -> (ServiceConfig?, [NameReference]) {
        guard let fields = fields(entry.value, entry.path, allowed: Self.serviceKeys) else { return (nil, []) }
        let errorsBefore = errors.count

        let kinds = fields.entries.filter { Self.checkKinds.contains($0.key) }
        let checks = kinds.compactMap(readCheck)
        switch kinds.count {
        case 0:
            fail(entry.path, at: entry.keyNode, "no check; add one of \(Self.checkKinds.joined(separator: ", "))")
        case 1:
            break
        default:
            let names = kinds.map(\.key).joined(separator: ", ")
            fail(entry.path, at: entry.keyNode,
                 "more than one check (\(names)); use exactly one of \(Self.checkKinds.joined(separator: ", "))")
        }

        let timing = readTiming(fields, base: defaults)
        var refs: [NameReference] = []
        if let dependsOn = fields["depends_on"] {
            refs = readDependsOn(dependsOn, serviceNames: serviceNames).refs
        }
        let address = fields["address"].flatMap { readServiceAddress($0) }
        var scheduled = false
        if case .mapping(let heartbeat)? = fields["heartbeat"]?.value {
            scheduled = heartbeat.contains { $0.key.string == "schedule" }
        }
        let on = fields["on"].map {
            readServiceOn($0, heartbeat: fields["heartbeat"] != nil, scheduled: scheduled, actionNames: actionNames)
        }
        guard errors.count == errorsBefore, kinds.count == 1, let check = checks.first else { return (nil, refs) }
        return (ServiceConfig(name: entry.key, check: check, timing: timing, dependsOn: refs.map(\.name),
                              address: address, on: on ?? [:]), refs)
    }

    /// `on: { down: [notify], missed: [page], any: [log-it] }` (see `ServiceTrigger`).
    private func readServiceOn(_ entry: ConfigEntry, heartbeat: Bool, scheduled: Bool,
                               actionNames: [String]) -> [ServiceTrigger: [String]] {
        let keys = ServiceTrigger.allCases.map(\.rawValue)
        var on: [ServiceTrigger: [String]] = [:]
        for (item, actions) in readActionLists(entry, keys: keys, actionNames: actionNames) ?? [] {
            guard let trigger = ServiceTrigger(rawValue: item.key) else { continue }
            if trigger.heartbeatOnly && !heartbeat {
                fail(item.path, at: item.keyNode, "only applies to heartbeat services")
                continue
            }
            if trigger == .late && scheduled {
                fail(item.path, at: item.keyNode,
                     "only applies to heartbeats with every; with a schedule, a run not pinged within grace is missed")
                continue
            }
            on[trigger] = actions
        }
        return on
    }

    /// `address:` — `host:port` clients use, IPv6 hosts in brackets: `10.0.0.5:8080`, `[fd00::5]:8080`.
    private func readServiceAddress(_ entry: ConfigEntry) -> ListenAddress? {
        if case .scalar(let scalar) = entry.value, let address = ListenAddress.parse(scalar.string), address.port > 0 {
            return address
        }
        fail(entry.path, at: entry.value,
             "expected host:port like 10.0.0.5:8080 or [fd00::5]:8080 (port 1-65535), got \(describe(entry.value))")
        return nil
    }

    private func readCheck(_ entry: ConfigEntry) -> Check? {
        switch entry.key {
        case "http": readHTTP(entry).map(Check.http)
        case "tcp": readTCP(entry).map(Check.tcp)
        case "tls": readTLS(entry).map(Check.tcp)
        case "dns": readDNS(entry).map(Check.dns)
        case "exec": readExec(entry).map { Check.exec(ExecCheck(argv: $0.argv, env: $0.env)) }
        case "heartbeat": readHeartbeat(entry).map(Check.heartbeat)
        case "grpc": readGRPC(entry).map(Check.grpc)
        case "icmp": readICMP(entry).map(Check.icmp)
        default: nil
        }
    }

    // MARK: http

    private func readHTTP(_ entry: ConfigEntry) -> HTTPCheck? {
        guard let fields = fields(entry.value, entry.path, allowed: Self.httpKeys) else { return nil }
        let errorsBefore = errors.count
        let url = require("url", in: fields, entry.path, at: entry.keyNode.mark).flatMap { readURL($0) }
        var check = HTTPCheck(url: url ?? "")
        if let e = fields["method"], let v = readMethod(e) { check.method = v }
        if let e = fields["headers"], let v = readHeaders(e) { check.headers = v }
        if let e = fields["status"], let v = readStatus(e) { check.status = v }
        if let e = fields["body_contains"] { check.bodyContains = string(e) }
        if let e = fields["body_regex"] { check.bodyRegex = readRegex(e) }
        if let e = fields["json"], let v = readJSONExpectations(e) { check.json = v }
        let maxLatency = fields["max_latency"].flatMap { duration($0, positive: true) }
        let slowLatency = fields["slow_latency"].flatMap { duration($0, positive: true) }
        if let maxLatency, let slowLatency, let e = fields["slow_latency"], slowLatency >= maxLatency {
            fail(e.path, at: e.value,
                 "must be less than max_latency (\(DurationText.format(maxLatency))), got \(describe(e.value))")
        }
        check.maxLatency = maxLatency
        check.slowLatency = slowLatency
        if let e = fields["tls_verify"], let v = bool(e) { check.tlsVerify = v }
        if let e = fields["cert_min_days"], let v = wholeNumber(e, min: 1, max: 3650) { check.certMinDays = v }
        if let e = fields["follow_redirects"], let v = bool(e) { check.followRedirects = v }
        if let e = fields["max_body"], let v = readSize(e) { check.maxBodyBytes = v }
        return errors.count == errorsBefore ? check : nil
    }

    /// An `http://` or `https://` URL with a host.
    func readURL(_ entry: ConfigEntry) -> String? {
        if case .scalar(let scalar) = entry.value,
           let components = URLComponents(string: scalar.string),
           let scheme = components.scheme?.lowercased(), scheme == "http" || scheme == "https",
           let host = components.host, !host.isEmpty {
            return scalar.string
        }
        fail(entry.path, at: entry.value, "expected an http:// or https:// URL with a host, got \(describe(entry.value))")
        return nil
    }

    /// An HTTP method: letters only, stored in upper case.
    func readMethod(_ entry: ConfigEntry) -> String? {
        if case .scalar(let scalar) = entry.value, !scalar.string.isEmpty,
           scalar.string.unicodeScalars.allSatisfy({ ("A"..."Z").contains($0) || ("a"..."z").contains($0) }) {
            return scalar.string.uppercased()
        }
        fail(entry.path, at: entry.value, "expected an HTTP method like GET or POST, got \(describe(entry.value))")
        return nil
    }

    /// Header fields in file order; names are RFC 9110 tokens.
    func readHeaders(_ entry: ConfigEntry) -> [HTTPHeaderField]? {
        guard let items = entries(entry.value, entry.path, nullIsEmpty: true) else { return nil }
        var headers: [HTTPHeaderField] = []
        var ok = true
        for item in items {
            if !Self.isToken(item.key) {
                fail(item.path, at: item.keyNode, "invalid header name")
                ok = false
            }
            if let value = string(item, allowEmpty: true) {
                headers.append(HTTPHeaderField(name: item.key, value: value))
            } else {
                ok = false
            }
        }
        return ok ? headers : nil
    }

    private static func isToken(_ text: String) -> Bool {
        let punctuation = Set("!#$%&'*+-.^_`|~".unicodeScalars)
        return !text.isEmpty && text.unicodeScalars.allSatisfy {
            ("A"..."Z").contains($0) || ("a"..."z").contains($0) || ("0"..."9").contains($0) || punctuation.contains($0)
        }
    }

    /// `200`, `"200-299"`, or a list of either.
    private func readStatus(_ entry: ConfigEntry) -> [StatusRange]? {
        func range(_ node: Node, _ path: ConfigPath) -> StatusRange? {
            if case .scalar(let scalar) = node, let range = StatusRange.parse(scalar.string) { return range }
            fail(path, at: node, "expected a status code 100-599 or a range like 200-299, got \(describe(node))")
            return nil
        }
        guard case .sequence(let sequence) = entry.value else {
            return range(entry.value, entry.path).map { [$0] }
        }
        guard !sequence.isEmpty else {
            fail(entry.path, at: entry.value, "expected at least one status code")
            return nil
        }
        let ranges = sequence.enumerated().map { range($1, entry.path.index($0)) }
        return ranges.contains(nil) ? nil : ranges.compactMap { $0 }
    }

    /// A pattern `NSRegularExpression` accepts.
    func readRegex(_ entry: ConfigEntry) -> String? {
        guard let pattern = string(entry) else { return nil }
        do {
            _ = try NSRegularExpression(pattern: pattern)
            return pattern
        } catch {
            // Foundation on Linux gives no reason; Swift's own parser usually can.
            var message = "invalid regular expression \"\(pattern)\""
            do {
                _ = try Regex(pattern)
            } catch let reason {
                message += ": \(reason)"
            }
            fail(entry.path, at: entry.value, message)
            return nil
        }
    }

    private func readJSONExpectations(_ entry: ConfigEntry) -> [JSONExpectation]? {
        guard let items = entries(entry.value, entry.path) else { return nil }
        var expectations: [JSONExpectation] = []
        var ok = true
        for item in items {
            if item.key.split(separator: ".", omittingEmptySubsequences: false).contains(where: \.isEmpty) {
                fail(item.path, at: item.keyNode, "invalid JSON path; use dotted field names like checks.db.state")
                ok = false
            }
            if let value = jsonScalar(item) {
                expectations.append(JSONExpectation(path: item.key, expected: value))
            } else {
                ok = false
            }
        }
        return ok ? expectations : nil
    }

    /// YAML plain scalars read as JSON would: `null`, `true`, `3`, else a string.
    /// Quoted scalars are always strings: `"3"` expects the string "3".
    private func jsonScalar(_ entry: ConfigEntry) -> JSONScalar? {
        guard case .scalar(let scalar) = entry.value else {
            fail(entry.path, at: entry.value,
                 "expected a string, number, true, false or null, got \(describe(entry.value))")
            return nil
        }
        let text = scalar.string
        guard scalar.style == .plain else { return .string(text) }
        if isNull(entry.value) { return .null }
        switch text {
        case "true", "True", "TRUE": return .bool(true)
        case "false", "False", "FALSE": return .bool(false)
        default: break
        }
        let numeric = text.unicodeScalars.allSatisfy { ("0"..."9").contains($0) || "+-.eE".unicodeScalars.contains($0) }
        if numeric, text.contains(where: \.isNumber), let number = Double(text), number.isFinite {
            return .number(number)
        }
        return .string(text)
    }

    /// Bytes: `65536`, `64KiB`, `1MiB`; 1 byte to 64 MiB.
    func readSize(_ entry: ConfigEntry) -> Int? {
        let limit = 64 << 20
        if case .scalar(let scalar) = entry.value {
            let text = scalar.string
            var multiplier = 1
            var digits = Substring(text)
            if text.hasSuffix("KiB") {
                multiplier = 1 << 10
                digits = digits.dropLast(3)
            } else if text.hasSuffix("MiB") {
                multiplier = 1 << 20
                digits = digits.dropLast(3)
            }
            if digits.allSatisfy({ $0.isASCII && $0.isNumber }), let count = Int(digits), count >= 1 {
                guard count <= limit / multiplier else {
                    fail(entry.path, at: entry.value, "must be at most 64MiB, got \(describe(entry.value))")
                    return nil
                }
                return count * multiplier
            }
        }
        fail(entry.path, at: entry.value, "expected a size like 65536, 64KiB or 1MiB, got \(describe(entry.value))")
        return nil
    }

    // MARK: tcp, tls, exec, heartbeat

    /// `tcp: { host, port }`, with `send` and `expect` or `expect_regex`
    /// for a send/expect check (or `expect` alone for a banner).
    private func readTCP(_ entry: ConfigEntry) -> TCPCheck? {
        guard let fields = fields(entry.value, entry.path, allowed: Self.tcpKeys) else { return nil }
        let errorsBefore = errors.count
        let host = require("host", in: fields, entry.path, at: entry.keyNode.mark).flatMap { string($0) }
        let port = require("port", in: fields, entry.path, at: entry.keyNode.mark).flatMap { readPort($0) }
        let send = fields["send"].flatMap { readBytes($0) }
        var expect: ReplyExpectation?
        if let e = fields["expect"], let bytes = readBytes(e) { expect = .prefix(bytes) }
        if let e = fields["expect_regex"], let pattern = readRegex(e) {
            if fields["expect"] != nil {
                fail(e.path, at: e.keyNode, "use expect or expect_regex, not both")
            } else {
                expect = .regex(pattern)
            }
        }
        if let e = fields["send"], fields["expect"] == nil, fields["expect_regex"] == nil {
            fail(e.path, at: e.keyNode, "send needs expect or expect_regex: what the reply must be")
        }
        guard errors.count == errorsBefore, let host, let port else { return nil }
        return TCPCheck(host: host, port: port, send: send, expect: expect)
    }

    /// `send:` and `expect:` text as bytes (`ByteEscapes`). A double-quoted
    /// YAML string has had its escapes decoded by YAML already, and is taken
    /// as it stands, so every backslash is read once; in single quotes or
    /// plain, Vitals decodes them (write `'\x00'` for a zero byte).
    private func readBytes(_ entry: ConfigEntry) -> [UInt8]? {
        guard let text = string(entry) else { return nil }
        if case .scalar(let scalar) = entry.value, scalar.style == .doubleQuoted {
            return Array(text.utf8)
        }
        do {
            return try ByteEscapes.decode(text)
        } catch {
            fail(entry.path, at: entry.value, "\(error), got \(describe(entry.value))")
            return nil
        }
    }

    /// `tls: { host, port, server_name, cert_min_days, ca_file }`.
    private func readTLS(_ entry: ConfigEntry) -> TCPCheck? {
        guard let fields = fields(entry.value, entry.path, allowed: Self.tlsKeys) else { return nil }
        let errorsBefore = errors.count
        let host = require("host", in: fields, entry.path, at: entry.keyNode.mark).flatMap { string($0) }
        let port = require("port", in: fields, entry.path, at: entry.keyNode.mark).flatMap { readPort($0) }
        var options = TLSOptions()
        if let e = fields["server_name"] { options.serverName = readServerName(e) }
        if let e = fields["cert_min_days"] { options.certMinDays = wholeNumber(e, min: 1, max: 3650) }
        if let e = fields["ca_file"] { options.caFile = string(e) }
        guard errors.count == errorsBefore, let host, let port else { return nil }
        return TCPCheck(host: host, port: port, tls: options)
    }

    /// A DNS name (`ldap.example.com`) or an IP address, as certificates name them.
    func readServerName(_ entry: ConfigEntry) -> String? {
        if case .scalar(let scalar) = entry.value, !scalar.string.isEmpty,
           scalar.string.unicodeScalars.allSatisfy({
               ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0)
                   || $0 == "." || $0 == "-" || $0 == ":" || $0 == "_"
           }) {
            return scalar.string
        }
        fail(entry.path, at: entry.value, "expected a host name like ldap.example.com, got \(describe(entry.value))")
        return nil
    }

    func readPort(_ entry: ConfigEntry) -> UInt16? {
        if case .scalar(let scalar) = entry.value, let port = Int(scalar.string), (1...65535).contains(port) {
            return UInt16(port)
        }
        fail(entry.path, at: entry.value, "expected a port 1-65535, got \(describe(entry.value))")
        return nil
    }

    /// `[program, args...]`, or `{ argv: [...], env: { K: V } }`. Shared by checks and actions.
    func readExec(_ entry: ConfigEntry) -> (argv: [String], env: [String: String])? {
        if case .mapping = entry.value {
            guard let fields = fields(entry.value, entry.path, allowed: ["argv", "env"]) else { return nil }
            let argv = require("argv", in: fields, entry.path, at: entry.keyNode.mark).flatMap { readArgv($0) }
            var env: [String: String] = [:]
            var envOK = true
            if let e = fields["env"] {
                if let pairs = stringPairs(e) {
                    env = Dictionary(pairs, uniquingKeysWith: { first, _ in first })
                } else {
                    envOK = false
                }
            }
            guard let argv, envOK else { return nil }
            return (argv, env)
        }
        return readArgv(entry).map { ($0, [:]) }
    }

    private func readArgv(_ entry: ConfigEntry) -> [String]? {
        guard case .sequence(let sequence) = entry.value, !sequence.isEmpty else {
            fail(entry.path, at: entry.value,
                 "expected a list like [program, argument, ...], got \(describe(entry.value))")
            return nil
        }
        let argv = sequence.enumerated().map { string($1, entry.path.index($0)) }
        return argv.contains(nil) ? nil : resolved(argv.compactMap { $0 })
    }

    /// `argv` with a relative program path (`./scripts/x.sh`, `scripts/x.sh`)
    /// taken from `baseDirectory`. A bare name (`curl`) is left to `PATH`.
    private func resolved(_ argv: [String]) -> [String] {
        guard let base = baseDirectory, let program = argv.first, program.contains("/"), !program.hasPrefix("/") else {
            return argv
        }
        let relative = program.hasPrefix("./") ? String(program.dropFirst(2)) : program
        return [base.hasSuffix("/") ? base + relative : base + "/" + relative] + argv.dropFirst()
    }

    static let heartbeatKeys = ["every", "schedule", "tz", "grace", "max_runtime", "key_file"]

    /// `{ every: 24h, grace: 30m }` or `{ schedule: "0 3 * * *", tz: Europe/Berlin, grace: 30m }`,
    /// either with `max_runtime` and `key_file`.
    private func readHeartbeat(_ entry: ConfigEntry) -> HeartbeatCheck? {
        guard let fields = fields(entry.value, entry.path, allowed: Self.heartbeatKeys) else { return nil }
        let errorsBefore = errors.count
        var runs: HeartbeatCheck.ExpectedRuns?
        switch (fields["every"], fields["schedule"]) {
        case (nil, nil):
            fail(entry.path, at: entry.keyNode, "missing required key \"every\" or \"schedule\"")
        case (let every?, nil):
            if let tz = fields["tz"] {
                fail(tz.path, at: tz.keyNode, "only applies with schedule; every counts from the last run")
            }
            runs = duration(every, positive: true).map { .every($0) }
        case (nil, let schedule?):
            runs = readSchedule(schedule, zone: fields["tz"])
        case (_, let schedule?):
            fail(schedule.path, at: schedule.keyNode, "use either every or schedule, not both")
        }
        var grace: Duration? = .zero
        if let e = fields["grace"] { grace = duration(e) }
        let maxRuntime = fields["max_runtime"].flatMap { duration($0, positive: true) }
        let keyFile = fields["key_file"].flatMap { string($0) }
        guard errors.count == errorsBefore, let runs, let grace else { return nil }
        return HeartbeatCheck(runs: runs, grace: grace, maxRuntime: maxRuntime, keyFile: keyFile)
    }

    /// A cron schedule and its time zone (default: the agent's local zone, as cron's).
    private func readSchedule(_ entry: ConfigEntry, zone zoneEntry: ConfigEntry?) -> HeartbeatCheck.ExpectedRuns? {
        var zone: TimeZone? = .current
        if let zoneEntry, let name = string(zoneEntry) {
            zone = TimeZone(identifier: name)
            if zone == nil {
                fail(zoneEntry.path, at: zoneEntry.value,
                     "unknown time zone \(describe(zoneEntry.value)); use a name from /usr/share/zoneinfo like Europe/Berlin or UTC")
            }
        }
        guard let text = string(entry) else { return nil }
        do {
            let schedule = try CronSchedule.parse(text)
            return zone.map { .schedule(schedule, timeZone: $0) }
        } catch {
            fail(entry.path, at: entry.value, error.message)
            return nil
        }
    }
}
