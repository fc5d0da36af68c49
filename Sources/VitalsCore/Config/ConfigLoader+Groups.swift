import Foundation
import Yams

// MARK: - groups and actions

extension ConfigReader {
    static let groupKeys = ["mode", "members", "failback", "failback_delay", "min_healthy", "cooldown",
                            "max_failovers", "window", "on", "balance", "weights", "latency_tolerance",
                            "degraded_weight"]
    static let actionKinds = ["exec", "webhook", "email", "log"]
    static let actionKeys = actionKinds + ["timeout", "retries"]
    static let webhookKeys = ["url", "url_file", "method", "body", "headers", "preset",
                              "routing_key", "routing_key_file", "api_key", "api_key_file"]
    static let emailKeys = ["url", "from", "to", "starttls", "username", "password", "password_file", "ca_file",
                            "subject", "body"]

    /// Default wait before an active-passive group fails back to a recovered
    /// higher-priority member.
    static let defaultFailbackDelay = Duration.seconds(10)

    func readGroup(_ entry: ConfigEntry, serviceNames: [String], actionNames: [String]) -> GroupConfig? {
        guard let fields = fields(entry.value, entry.path, allowed: Self.groupKeys) else { return nil }
        let errorsBefore = errors.count

        var activeActive = false
        if let e = fields["mode"] {
            switch (e.value, e.value.scalar?.string) {
            case (.scalar, "active-passive"?): activeActive = false
            case (.scalar, "active-active"?): activeActive = true
            default:
                fail(e.path, at: e.value, "expected one of active-passive, active-active, got \(describe(e.value))")
            }
        }

        let members = require("members", in: fields, entry.path, at: entry.keyNode.mark)
            .flatMap { readMembers($0, serviceNames: serviceNames) } ?? []

        var failback = Failback.manual
        var failbackDelay = Self.defaultFailbackDelay
        var minHealthy = 1
        for key in activeActive ? ["failback", "failback_delay"] : ["min_healthy"] {
            if let e = fields[key] {
                let mode = activeActive ? "active-passive" : "active-active"
                fail(e.path, at: e.keyNode, "only applies to \(mode) groups")
            }
        }
        if !activeActive, let e = fields["failback"] {
            switch (e.value, e.value.scalar.flatMap { Failback(rawValue: $0.string) }) {
            case (.scalar, let value?): failback = value
            default: fail(e.path, at: e.value, "expected one of auto, manual, got \(describe(e.value))")
            }
        }
        if !activeActive, let e = fields["failback_delay"], let v = duration(e) { failbackDelay = v }
        if activeActive, let e = fields["min_healthy"], let v = wholeNumber(e, min: 1) {
            if !members.isEmpty, v > members.count {
                fail(e.path, at: e.value,
                     "must be at most the number of members (\(members.count)), got \(describe(e.value))")
            }
            minHealthy = v
        }

        var group = GroupConfig(
            name: entry.key,
            mode: activeActive ? .activeActive(minHealthy: minHealthy)
                : .activePassive(failback: failback, failbackDelay: failbackDelay),
            members: members)
        if let e = fields["cooldown"], let v = duration(e) { group.cooldown = v }
        if let e = fields["max_failovers"], let v = wholeNumber(e, min: 1, max: 1000) { group.maxFailovers = v }
        if let e = fields["window"], let v = duration(e, positive: true) { group.failoverWindow = v }
        if let e = fields["on"] { readOn(e, into: &group, actionNames: actionNames) }
        readBalancing(fields, into: &group, serviceNames: serviceNames)
        return errors.count == errorsBefore ? group : nil
    }

    // MARK: balancing

    /// `balance`, `weights`, `latency_tolerance` and `degraded_weight` of one
    /// group. A key that the group's policy would ignore is an error, so a
    /// forgotten `balance: weighted` does not leave weights silently unused.
    private func readBalancing(_ fields: ConfigFields, into group: inout GroupConfig, serviceNames: [String]) {
        if let e = fields["balance"], let v = oneOf(e, BalancePolicy.self) { group.balance = v }
        let policy = group.balance
        let policyText = fields["balance"] == nil ? "\(policy.rawValue), the default for \(group.mode.name) groups"
            : policy.rawValue

        if let e = fields["weights"] {
            if !policy.usesWeights {
                fail(e.path, at: e.keyNode, "only applies with balance: hash or weighted (balance here: \(policyText))")
            } else if let v = readWeights(e, members: group.members, serviceNames: serviceNames) {
                group.weights = v
            }
        }
        if let e = fields["latency_tolerance"] {
            switch policy {
            case .leastLatency:
                if let v = fraction(e, range: 0...1, expected: "a share of the lowest latency like 10% or 0.1 (0% to 100%)") {
                    group.latencyTolerance = v
                }
            case .hash, .roundRobin, .weighted, .priority:
                fail(e.path, at: e.keyNode, "only applies with balance: least-latency (balance here: \(policyText))")
            }
        }
        if let e = fields["degraded_weight"] {
            if !policy.usesDegradedWeight {
                fail(e.path, at: e.keyNode,
                     "only applies with balance: hash, round-robin, weighted or least-latency (balance here: \(policyText))")
            } else if let v = fraction(e, range: Balancer.minimumDegradedShare...1,
                                       expected: "a share of the member's weight like 0.5 or 50% (1% to 100%)") {
                group.degradedWeight = v
            }
        }
    }

    /// `weights: { web-1: 5, web-2: 1 }`: members of this group to 1...1000.
    private func readWeights(_ entry: ConfigEntry, members: [String], serviceNames: [String]) -> [String: Int]? {
        guard let items = entries(entry.value, entry.path) else { return nil }
        var weights: [String: Int] = [:]
        var ok = true
        for item in items {
            // With no members read (already reported), every name would look foreign.
            if !members.isEmpty, !members.contains(item.key) {
                ok = false
                if serviceNames.contains(item.key) {
                    fail(item.path, at: item.keyNode,
                         "\"\(item.key)\" is not a member of this group; members: \(members.joined(separator: ", "))")
                } else {
                    _ = checkReference(item.key, kind: "member", declared: members, at: item.path, node: item.keyNode)
                }
            }
            if let weight = wholeNumber(item, min: 1, max: 1000) {
                weights[item.key] = weight
            } else {
                ok = false
            }
        }
        return ok ? weights : nil
    }

    /// A fraction within `range`, written `0.5` or `50%`.
    private func fraction(_ entry: ConfigEntry, range: ClosedRange<Double>, expected: String) -> Double? {
        if case .scalar(let scalar) = entry.value {
            let text = scalar.string.trimmingCharacters(in: .whitespaces)
            let value = text.hasSuffix("%") ? Double(text.dropLast()).map { $0 / 100 } : Double(text)
            if let value, value.isFinite, range.contains(value) { return value }
        }
        fail(entry.path, at: entry.value, "expected \(expected), got \(describe(entry.value))")
        return nil
    }

    /// Members in priority order: declared services, each once, at least one.
    private func readMembers(_ entry: ConfigEntry, serviceNames: [String]) -> [String]? {
        guard case .sequence = entry.value else {
            fail(entry.path, at: entry.value, "expected a list of service names, got \(describe(entry.value))")
            return nil
        }
        guard let items = stringList(entry, allowSingle: false) else { return nil }
        guard !items.isEmpty else {
            fail(entry.path, at: entry.value, "a group needs at least one member")
            return nil
        }
        var members: [String] = []
        for (name, node, path) in items {
            // Unknown names stay in the list so min_healthy is checked against what was written.
            _ = checkReference(name, kind: "service", declared: serviceNames, at: path, node: node)
            if let first = members.firstIndex(of: name) {
                fail(path, at: node, "duplicate member \"\(name)\", first at members[\(first)]")
                continue
            }
            members.append(name)
        }
        return members
    }

    /// `on: { failover: [promote, notify], move: [promote], any: [notify] }`:
    /// event kinds, `move` (active-passive only) and `any` to declared actions, in order.
    private func readOn(_ entry: ConfigEntry, into group: inout GroupConfig, actionNames: [String]) {
        let keys = GroupEventKind.allCases.map(\.rawValue) + [GroupTrigger.move, GroupTrigger.any]
        guard let lists = readActionLists(entry, keys: keys, actionNames: actionNames) else { return }
        for (item, actions) in lists {
            switch item.key {
            case GroupTrigger.move:
                guard case .activePassive = group.mode else {
                    fail(item.path, at: item.keyNode,
                         "only applies to active-passive groups; use member_added and member_removed")
                    continue
                }
                group.onMove = actions
            case GroupTrigger.any:
                group.onAny = actions
            default:
                if let kind = GroupEventKind(rawValue: item.key) { group.on[kind] = actions }
            }
        }
    }

    /// The lists of an `on:` mapping whose keys are among `keys`, each a list
    /// of declared actions. Unknown keys get the nearest valid one suggested
    /// (or every valid one listed), unknown actions the nearest declared one.
    func readActionLists(_ entry: ConfigEntry, keys: [String],
                         actionNames: [String]) -> [(item: ConfigEntry, actions: [String])]? {
        guard let items = entries(entry.value, entry.path, nullIsEmpty: true) else { return nil }
        var lists: [(item: ConfigEntry, actions: [String])] = []
        for item in items {
            let known = keys.contains(item.key)
            if !known {
                if let near = Self.nearest(to: item.key, in: keys) {
                    fail(item.path, at: item.keyNode, "unknown event, did you mean \"\(near)\"?")
                } else {
                    fail(item.path, at: item.keyNode, "unknown event; valid events: \(keys.joined(separator: ", "))")
                }
            }
            guard let names = stringList(item) else { continue }
            var actions: [String] = []
            for (name, node, path) in names
            where checkReference(name, kind: "action", declared: actionNames, at: path, node: node) {
                actions.append(name)
            }
            if known { lists.append((item, actions)) }
        }
        return lists
    }

    // MARK: actions

    func readAction(_ entry: ConfigEntry) -> ActionConfig? {
        guard let fields = fields(entry.value, entry.path, allowed: Self.actionKeys) else { return nil }
        let errorsBefore = errors.count
        let kinds = fields.entries.filter { Self.actionKinds.contains($0.key) }
        let parsed = kinds.compactMap(readActionKind)
        switch kinds.count {
        case 0:
            fail(entry.path, at: entry.keyNode,
                 "no action kind; add one of \(Self.actionKinds.joined(separator: ", "))")
        case 1:
            break
        default:
            let names = kinds.map(\.key).joined(separator: ", ")
            fail(entry.path, at: entry.keyNode,
                 "more than one action kind (\(names)); use exactly one of \(Self.actionKinds.joined(separator: ", "))")
        }
        var timeout = Duration.seconds(30)
        var retries = 0
        if let e = fields["timeout"], let v = duration(e, positive: true) { timeout = v }
        if let e = fields["retries"], let v = wholeNumber(e, min: 0, max: 10) { retries = v }
        guard errors.count == errorsBefore, kinds.count == 1, let kind = parsed.first else { return nil }
        return ActionConfig(name: entry.key, kind: kind, timeout: timeout, retries: retries)
    }

    private func readActionKind(_ entry: ConfigEntry) -> ActionKind? {
        switch entry.key {
        case "exec":
            return readExec(entry).map { ActionKind.exec(argv: $0.argv, env: $0.env) }
        case "webhook":
            return readWebhook(entry)
        case "email":
            return readEmail(entry)
        case "log":
            // `log: {}`, `log: true` and a bare `log:` all mean "log it".
            if case .mapping(let mapping) = entry.value, mapping.isEmpty { return .log }
            if isNull(entry.value) { return .log }
            if case .scalar(let scalar) = entry.value, scalar.string.lowercased() == "true" { return .log }
            fail(entry.path, at: entry.value, "expected true or {}, got \(describe(entry.value))")
            return nil
        default:
            return nil
        }
    }

    private func readWebhook(_ entry: ConfigEntry) -> ActionKind? {
        guard let fields = fields(entry.value, entry.path, allowed: Self.webhookKeys) else { return nil }
        let errorsBefore = errors.count
        let preset = fields["preset"].flatMap { oneOf($0, WebhookPreset.self) }
        let url = readSecret(fields, text: "url", file: "url_file", in: entry, required: preset?.defaultURL == nil,
                             check: { self.readURL($0) != nil })
        let method = fields["method"].flatMap { readMethod($0) } ?? "POST"
        var body: String?
        if let e = fields["body"], let text = string(e, allowEmpty: true) {
            if let problem = EventTemplate.validate(text) {
                fail(e.path, at: e.value, problem)
            } else if preset != nil {
                fail(e.path, at: e.keyNode, "a preset makes its own body; remove body or preset")
            } else {
                body = text
            }
        }
        let headers = fields["headers"].flatMap { readHeaders($0) } ?? []
        for header in fields["headers"].flatMap({ entries($0.value, $0.path, nullIsEmpty: true) }) ?? [] {
            if let text = header.value.scalarText, EnvironmentReferences.names(in: text) == nil {
                fail(header.path, at: header.value, Self.badReference)
            }
        }
        var key: SecretText?
        for (name, keyPreset) in [("routing_key", WebhookPreset.pagerduty), ("api_key", .opsgenie)] {
            let given = fields[name] ?? fields[name + "_file"]
            if let given, preset != keyPreset {
                fail(given.path, at: given.keyNode, "only for preset: \(keyPreset.rawValue)")
            } else if preset == keyPreset {
                key = readSecret(fields, text: name, file: name + "_file", in: entry, required: true)
            }
        }
        guard errors.count == errorsBefore else { return nil }
        return .webhook(WebhookAction(url: url, method: method, body: body, headers: headers, preset: preset, key: key))
    }

    private func readEmail(_ entry: ConfigEntry) -> ActionKind? {
        guard let fields = fields(entry.value, entry.path, allowed: Self.emailKeys) else { return nil }
        let errorsBefore = errors.count
        var url: String?
        if let e = require("url", in: fields, entry.path, at: entry.keyNode.mark) {
            if let text = e.value.scalarText, let parts = URLComponents(string: text),
               let scheme = parts.scheme?.lowercased(), scheme == "smtp" || scheme == "smtps",
               let host = parts.host, !host.isEmpty, parts.user == nil, parts.password == nil {
                url = text
            } else {
                fail(e.path, at: e.value,
                     "expected an smtp:// or smtps:// URL with a host (and no password: use password_file), got \(describe(e.value))")
            }
        }
        let from = require("from", in: fields, entry.path, at: entry.keyNode.mark).flatMap { readAddress($0) }
        var to: [String] = []
        if let e = require("to", in: fields, entry.path, at: entry.keyNode.mark), let items = stringList(e) {
            for (text, node, path) in items {
                if Self.isMailAddress(text) { to.append(text) } else { fail(path, at: node, Self.badAddress(text)) }
            }
            if items.isEmpty { fail(e.path, at: e.value, "expected at least one address") }
        }
        let username = fields["username"].flatMap { string($0) }
        let password = readSecret(fields, text: "password", file: "password_file", in: entry, required: false)
        if password != nil, username == nil, let e = fields["password"] ?? fields["password_file"] {
            fail(e.path, at: e.keyNode, "a password needs a username")
        }
        let starttls = fields["starttls"].flatMap { oneOf($0, EmailAction.StartTLS.self) }
            ?? (username != nil ? .required : .opportunistic)
        let caFile = fields["ca_file"].flatMap { string($0) }
        var templates: [String: String] = [:]
        for name in ["subject", "body"] {
            guard let e = fields[name], let text = string(e, allowEmpty: name == "body") else { continue }
            if let problem = EventTemplate.validate(text) { fail(e.path, at: e.value, problem) } else { templates[name] = text }
        }
        guard errors.count == errorsBefore, let url, let from else { return nil }
        return .email(EmailAction(url: url, from: from, to: to, starttls: starttls, username: username, password: password,
                                  caFile: caFile, subject: templates["subject"], body: templates["body"]))
    }

    private func readAddress(_ entry: ConfigEntry) -> String? {
        guard let text = string(entry) else { return nil }
        guard Self.isMailAddress(text) else {
            fail(entry.path, at: entry.value, Self.badAddress(text))
            return nil
        }
        return text
    }

    private static func badAddress(_ text: String) -> String {
        "expected a mail address like ops@example.com, got \"\(text)\""
    }

    /// `local@domain`: one `@`, no spaces, angle brackets or line breaks (a
    /// header or an SMTP command must not be able to grow from it).
    static func isMailAddress(_ text: String) -> Bool {
        let parts = text.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else { return false }
        return text.unicodeScalars.allSatisfy { $0.value > 0x20 && $0.value < 0x7f && !"<>(),;:\\\"[]".unicodeScalars.contains($0) }
    }

    static let badReference = "a ${ without its }, or a variable name that is not letters, digits and _"

    /// A secret written as `text` (with `${NAME}` references) or read from the
    /// file at `file`: one of the two. `check` validates a written value
    /// that names no variable.
    private func readSecret(_ fields: ConfigFields, text: String, file: String, in entry: ConfigEntry, required: Bool,
                            check: ((ConfigEntry) -> Bool)? = nil) -> SecretText? {
        switch (fields[text], fields[file]) {
        case (let e?, _?):
            fail(e.path, at: e.keyNode, "give \(text) or \(file), not both")
            return nil
        case (let e?, nil):
            guard let value = string(e) else { return nil }
            guard let names = EnvironmentReferences.names(in: value) else {
                fail(e.path, at: e.value, Self.badReference)
                return nil
            }
            if names.isEmpty, let check, !check(e) { return nil }
            return .text(value)
        case (nil, let e?):
            return string(e).map { .file($0) }
        case (nil, nil):
            if required { fail(entry.path, at: entry.keyNode.mark, "missing required key \"\(text)\" (or \(file))") }
            return nil
        }
    }
}

extension Node {
    /// The text of a scalar; nil for anything else.
    var scalarText: String? {
        if case .scalar(let scalar) = self { scalar.string } else { nil }
    }
}
