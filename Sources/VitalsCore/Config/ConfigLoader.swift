import Foundation
import Yams

/// Turns the text of a `vitals.yaml` into a validated `VitalsConfig`.
///
/// Every problem is reported, not only the first, each with its key path and
/// the line and column it was found at (see `ConfigError`). The caller reads
/// the file; the loader does no I/O.
///
/// Rules beyond the shape of each key:
/// - names of services, groups and actions match `[A-Za-z0-9][A-Za-z0-9._-]*`;
/// - a service has exactly one check: `http`, `tcp`, `exec` or `heartbeat`;
/// - timing keys under `defaults:` apply to every service; the same keys on a
///   service override them (`flapping:` key by key, `fall_window:` as a whole);
/// - `depends_on` and group `members` name declared services, with no
///   dependency cycles and no member listed twice in one group;
/// - a group's `on:` maps its event kinds (`GroupEventKind`), `move` (every
///   change of the active member; active-passive only) and `any` to declared
///   actions; a service's `on:` maps the states it changes to, `missed`,
///   `late` and `failed` (heartbeat services only) and `any` (`ServiceTrigger`);
///   `VitalsConfig.actions(for:)` says which lists an event runs;
/// - groups default to `mode: active-passive` with `failback: manual` and
///   `failback_delay: 10s`; `active-active` groups default to `min_healthy: 1`;
/// - `balance:` defaults to `priority` (active-passive) or `round-robin`
///   (active-active); `weights:` names members only (1...1000, default 1) and
///   needs `balance: hash` or `weighted`; `latency_tolerance:` (default 10%)
///   needs `least-latency`; `degraded_weight:` (default 0.5, 1% to 100%) is
///   refused under `priority`;
/// - a service's `address:` is `host:port`; without one it is derived from an
///   http or tcp check (`Check.derivedAddress`);
/// - `cluster:` is optional (see `ClusterSettings` for each key, its default
///   and its limits): `etcd:` and `scope:` are required, `ttl:` is whole
///   seconds and at least 10s, `request_timeout:` is less than `ttl / 3`,
///   `cert_file`/`key_file` and `user`/`password_file` come in pairs.
public enum ConfigLoader {
    /// Parses and validates `yaml`.
    /// - Parameter baseDirectory: the directory of the file `yaml` was read
    ///   from. A relative program path in `exec:` (one with a `/`, like
    ///   `./scripts/promote.sh`) is resolved against it, so the config finds
    ///   its scripts wherever the agent was started. Nil leaves paths as written.
    /// - Throws: `ConfigErrors` listing every problem, sorted by line.
    public static func load(yaml: String, baseDirectory: String? = nil) throws(ConfigErrors) -> VitalsConfig {
        let document: ComposedYAML
        switch ComposedYAML.compose(yaml) {
        case .invalid(let error):
            let tabs = TabIndentation.errors(in: yaml)
            throw ConfigErrors(tabs.isEmpty ? [error] : tabs)
        case .composed(let composed):
            document = composed
        }
        let reader = ConfigReader(document: document)
        reader.baseDirectory = baseDirectory
        guard let root = document.root, !reader.isNull(root) else {
            throw ConfigErrors([ConfigError(path: "", message: "configuration is empty", line: 1, column: 1)])
        }
        let config = reader.readConfig(root)
        if let config, reader.errors.isEmpty { return config }
        throw ConfigErrors(reader.errors)
    }
}

// MARK: - Sections

extension ConfigReader {
    static let topLevelKeys = ["agent", "defaults", "services", "groups", "actions", "cluster"]
    static let agentKeys = ["listen", "state_dir", "token_file", "log_level", "allow_get_heartbeats", "isolation",
                            "ping_body_limit", "history"]
    static let isolationKeys = ["enabled", "share", "window", "witness", "settle"]
    static let timingKeys = ["interval", "timeout", "rise", "fall", "jitter", "fast_interval", "start_period",
                             "fall_window", "flapping"]

    static let invalidName = "invalid name; use letters, digits, \".\", \"_\" and \"-\", starting with a letter or digit"

    /// The whole file. Nil when anything was wrong (the reasons are in `errors`).
    func readConfig(_ root: Node) -> VitalsConfig? {
        guard let top = fields(root, .root, allowed: Self.topLevelKeys) else { return nil }
        var config = VitalsConfig()
        var witness: ConfigEntry?
        var share: ConfigEntry?
        if let entry = top["agent"], let (agent, isolation) = readAgent(entry) {
            config.agent = agent
            witness = isolation["witness"]
            share = isolation["share"]
        }
        if let entry = top["defaults"],
           let fields = fields(entry.value, entry.path, allowed: Self.timingKeys, nullIsEmpty: true) {
            config.defaults = readTiming(fields, base: ProbeTiming())
        }

        // Names first, so references can be checked whatever order the sections come in.
        let serviceEntries = namedEntries(top["services"])
        let actionEntries = namedEntries(top["actions"])
        let serviceNames = serviceEntries.map(\.key)
        let actionNames = actionEntries.map(\.key)

        var dependencies: [String: [NameReference]] = [:]
        for entry in serviceEntries {
            let (service, refs) = readService(entry, defaults: config.defaults, serviceNames: serviceNames,
                                              actionNames: actionNames)
            dependencies[entry.key] = refs
            if let service { config.services.append(service) }
        }
        reportCycles(in: dependencies, order: serviceNames)
        if let witness, let name = config.agent.isolation.witness {
            _ = checkReference(name, kind: "service", declared: serviceNames, at: witness.path, node: witness.value)
        }
        if let share {
            checkShareRule(config, at: share)
        }

        for entry in actionEntries {
            if let action = readAction(entry) { config.actions.append(action) }
        }
        for entry in namedEntries(top["groups"]) {
            if let group = readGroup(entry, serviceNames: serviceNames, actionNames: actionNames) {
                config.groups.append(group)
            }
        }
        if let entry = top["cluster"] {
            config.cluster = readCluster(entry)
        }
        return config
    }

    /// The entries of `services:`, `groups:` or `actions:`, names checked.
    private func namedEntries(_ section: ConfigEntry?) -> [ConfigEntry] {
        guard let section, let entries = entries(section.value, section.path, nullIsEmpty: true) else { return [] }
        for entry in entries where !Self.isValidName(entry.key) {
            fail(entry.path, at: entry.keyNode, Self.invalidName)
        }
        return entries
    }

    // MARK: agent

    /// The agent settings, and the `isolation` entries (`witness` and
    /// `share` are checked once services are known).
    private func readAgent(_ entry: ConfigEntry) -> (AgentSettings, [String: ConfigEntry])? {
        guard let fields = fields(entry.value, entry.path, allowed: Self.agentKeys, nullIsEmpty: true) else {
            return nil
        }
        let defaults = AgentSettings()
        var listen = defaults.listen
        if let item = fields["listen"] {
            listen = readListen(item) ?? listen
        }
        let stateDir = fields["state_dir"].flatMap { string($0) } ?? defaults.stateDir
        let tokenFile = fields["token_file"].flatMap { string($0) }
        let logLevel = fields["log_level"].flatMap { oneOf($0, LogLevel.self) } ?? defaults.logLevel
        let allowGet = fields["allow_get_heartbeats"].flatMap { bool($0) } ?? defaults.allowGetHeartbeats
        var settings = AgentSettings(listen: listen, stateDir: stateDir, tokenFile: tokenFile,
                                     logLevel: logLevel, allowGetHeartbeats: allowGet)
        if let e = fields["ping_body_limit"] {
            if e.value.scalarText == "0" {
                settings.pingBodyLimit = 0
            } else if let size = readSize(e) {
                if size > 1 << 20 {
                    fail(e.path, at: e.value, "must be at most 1MiB (the largest request the agent reads), got \(describe(e.value))")
                } else {
                    settings.pingBodyLimit = size
                }
            }
        }
        var found: [String: ConfigEntry] = [:]
        if let item = fields["isolation"],
           let isolation = self.fields(item.value, item.path, allowed: Self.isolationKeys, nullIsEmpty: true) {
            if let e = isolation["enabled"], let v = bool(e) { settings.isolation.enabled = v }
            if let e = isolation["share"], let v = readShare(e) {
                settings.isolation.share = v
                found["share"] = e
            }
            if let e = isolation["window"], let v = duration(e, positive: true) { settings.isolation.window = v }
            if let e = isolation["witness"], let v = string(e) {
                settings.isolation.witness = v
                found["witness"] = e
            }
            if let e = isolation["settle"], let v = duration(e) { settings.isolation.settle = v }
        }
        if let item = fields["history"],
           let history = self.fields(item.value, item.path, allowed: ["minutes", "hours"], nullIsEmpty: true) {
            if let e = history["minutes"], let v = duration(e, atLeast: .seconds(3600)) { settings.history.minutes = v }
            if let e = history["hours"], let v = duration(e, atLeast: .seconds(86_400)) { settings.history.hours = v }
            if settings.history.hours < settings.history.minutes, let e = history["hours"] {
                fail(e.path, at: e.value, "hours (\(DurationText.format(settings.history.hours))) must be at least "
                     + "minutes (\(DurationText.format(settings.history.minutes))): hours are rolled up from minutes")
            }
        }
        return (settings, found)
    }

    /// A `share:` written out must be usable: with fewer than
    /// `IsolationGuard.minimumProbedForShare` probed services the share rule
    /// cannot tell a cut-off agent from failed services and is not used, so
    /// the guard needs a witness. (Left at its default, the share rule is
    /// simply not used then; the README says so.)
    private func checkShareRule(_ config: VitalsConfig, at entry: ConfigEntry) {
        let isolation = config.agent.isolation
        let probed = config.services.count(where: \.isProbed)
        guard isolation.enabled, isolation.witness == nil, probed < IsolationGuard.minimumProbedForShare else { return }
        fail(entry.path, at: entry.value,
             "the share rule needs at least \(IsolationGuard.minimumProbedForShare) probed services to tell "
                + "a cut-off agent from failed services, and this file probes \(probed); "
                + "add a witness (agent.isolation.witness) or remove share")
    }

    /// A fraction in (0, 1], written `0.5` or `50%`.
    private func readShare(_ entry: ConfigEntry) -> Double? {
        if case .scalar(let scalar) = entry.value {
            let text = scalar.string
            let value = text.hasSuffix("%") ? Double(text.dropLast()).map { $0 / 100 } : Double(text)
            if let value, value > 0, value <= 1 { return value }
        }
        fail(entry.path, at: entry.value, "expected a share like 0.5 or 50% (more than 0, at most 1), got \(describe(entry.value))")
        return nil
    }

    private func readListen(_ entry: ConfigEntry) -> [ListenAddress]? {
        let expected = "expected host:port like 127.0.0.1:9310 or [::1]:9310"
        func address(_ node: Node, _ path: ConfigPath) -> ListenAddress? {
            if case .scalar(let scalar) = node, let address = ListenAddress.parse(scalar.string) { return address }
            fail(path, at: node, "\(expected), got \(describe(node))")
            return nil
        }
        if case .sequence(let sequence) = entry.value {
            guard !sequence.isEmpty else {
                fail(entry.path, at: entry.value, "expected at least one address")
                return nil
            }
            let addresses = sequence.enumerated().map { address($1, entry.path.index($0)) }
            return addresses.contains(nil) ? nil : addresses.compactMap { $0 }
        }
        return address(entry.value, entry.path).map { [$0] }
    }

    // MARK: timing

    /// Timing keys present in `fields`, applied over `base`.
    func readTiming(_ fields: ConfigFields, base: ProbeTiming) -> ProbeTiming {
        var timing = base
        if let e = fields["interval"], let v = duration(e, atLeast: ProbeTiming.minimumInterval) { timing.interval = v }
        if let e = fields["timeout"], let v = duration(e, positive: true) { timing.timeout = v }
        if let e = fields["rise"], let v = wholeNumber(e, min: 1, max: 100) { timing.rise = v }
        if let e = fields["fall"], let v = wholeNumber(e, min: 1, max: 100) { timing.fall = v }
        if let e = fields["jitter"], let v = duration(e) { timing.jitter = v }
        if let e = fields["fast_interval"], let v = duration(e, atLeast: ProbeTiming.minimumInterval) {
            timing.fastInterval = v
        }
        if let e = fields["start_period"], let v = duration(e) { timing.startPeriod = v }
        if let e = fields["fall_window"], let v = readFallWindow(e) { timing.fallWindow = v }
        if let e = fields["flapping"], let v = readFlapping(e, base: base.flapping) { timing.flapping = v }
        return timing
    }

    private func readFallWindow(_ entry: ConfigEntry) -> FallWindow? {
        guard let fields = fields(entry.value, entry.path, allowed: ["failures", "probes"]) else { return nil }
        let failuresEntry = require("failures", in: fields, entry.path, at: entry.keyNode.mark)
        let probesEntry = require("probes", in: fields, entry.path, at: entry.keyNode.mark)
        let failures = failuresEntry.flatMap { wholeNumber($0, min: 1) }
        let probes = probesEntry.flatMap { wholeNumber($0, min: 1, max: 64) }
        guard let failures, let probes, let failuresEntry else { return nil }
        guard failures <= probes else {
            fail(failuresEntry.path, at: failuresEntry.value,
                 "must not exceed probes (\(probes)), got \(describe(failuresEntry.value))")
            return nil
        }
        return FallWindow(failures: failures, probes: probes)
    }

    private func readFlapping(_ entry: ConfigEntry, base: FlapPolicy) -> FlapPolicy? {
        guard let fields = fields(entry.value, entry.path, allowed: ["changes", "window", "settle"]) else {
            return nil
        }
        var policy = base
        var ok = true
        if let e = fields["changes"] {
            if let v = wholeNumber(e, min: 0, max: 1000) { policy.changes = v } else { ok = false }
        }
        if let e = fields["window"] {
            if let v = duration(e, positive: true) { policy.window = v } else { ok = false }
        }
        if let e = fields["settle"] {
            if let v = duration(e) { policy.settle = v } else { ok = false }
        }
        return ok ? policy : nil
    }

    // MARK: references

    /// A name used as a reference, with where it was written.
    struct NameReference {
        let name: String
        let node: Node
        let path: ConfigPath
    }

    /// Reports a reference to an undeclared name, suggesting the nearest declared one.
    func checkReference(_ name: String, kind: String, declared: [String], at path: ConfigPath, node: Node) -> Bool {
        if declared.contains(name) { return true }
        if let near = Self.nearest(to: name, in: declared) {
            fail(path, at: node, "unknown \(kind) \"\(name)\", did you mean \"\(near)\"?")
        } else {
            fail(path, at: node, "unknown \(kind) \"\(name)\"")
        }
        return false
    }

    /// `depends_on:` of one service: the references to known services, each
    /// once, and whether every item was good.
    func readDependsOn(_ entry: ConfigEntry, serviceNames: [String]) -> (refs: [NameReference], ok: Bool) {
        guard let items = stringList(entry) else { return ([], false) }
        var refs: [NameReference] = []
        var ok = true
        for (name, node, path) in items {
            guard checkReference(name, kind: "service", declared: serviceNames, at: path, node: node) else {
                ok = false
                continue
            }
            if refs.contains(where: { $0.name == name }) {
                fail(path, at: node, "\"\(name)\" is listed twice")
                ok = false
                continue
            }
            refs.append(NameReference(name: name, node: node, path: path))
        }
        return (refs, ok)
    }

    /// Reports each dependency cycle once, at the reference that closes it,
    /// as the path from the first service (in file order) around to itself.
    private func reportCycles(in graph: [String: [NameReference]], order: [String]) {
        enum Mark { case visiting, done }
        var marks: [String: Mark] = [:]
        var stack: [String] = []

        func visit(_ name: String) {
            marks[name] = .visiting
            stack.append(name)
            for ref in graph[name] ?? [] {
                switch marks[ref.name] {
                case .visiting:
                    let start = stack.lastIndex(of: ref.name) ?? 0
                    let cycle = (stack[start...] + [ref.name]).joined(separator: " -> ")
                    fail(ref.path, at: ref.node, "dependency cycle: \(cycle)")
                case .done:
                    break
                case nil:
                    visit(ref.name)
                }
            }
            stack.removeLast()
            marks[name] = .done
        }

        for name in order where marks[name] == nil {
            visit(name)
        }
    }
}
