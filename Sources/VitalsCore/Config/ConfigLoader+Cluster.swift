import Foundation
import Yams

// MARK: - cluster

extension ConfigReader {
    static let clusterKeys = ["etcd", "scope", "name", "ttl", "prefix", "quorum", "ca_file", "cert_file", "key_file",
                              "user", "password_file", "request_timeout"]

    static let shortTTLReason = "etcd's own leader elections stall requests for 2–3 s, and a lease that short "
        + "would be lost on each of them"

    /// `cluster:`. Nil when anything was wrong (the reasons are in `errors`).
    func readCluster(_ entry: ConfigEntry) -> ClusterSettings? {
        guard let fields = fields(entry.value, entry.path, allowed: Self.clusterKeys) else { return nil }
        let errorsBefore = errors.count
        let endpoints = require("etcd", in: fields, entry.path, at: entry.keyNode.mark).flatMap(readEndpoints)
        let scope = require("scope", in: fields, entry.path, at: entry.keyNode.mark).flatMap(readClusterName)
        let name = fields["name"].flatMap(readClusterName)
        let ttl = fields["ttl"].flatMap(readTTL) ?? ClusterSettings.defaultTTL
        let prefix = fields["prefix"].flatMap(readPrefix)
        let quorum = fields["quorum"].flatMap { wholeNumber($0, min: 1) }
        let timeout = fields["request_timeout"].flatMap { readRequestTimeout($0, ttl: ttl) }
        let tls = readClusterTLS(fields, endpoints: endpoints ?? [])
        let auth = readClusterAuth(fields, at: entry)
        guard errors.count == errorsBefore, let endpoints, let scope else { return nil }
        return ClusterSettings(etcd: endpoints, scope: scope, name: name, ttl: ttl, prefix: prefix, quorum: quorum,
                               tls: tls, auth: auth, requestTimeout: timeout)
    }

    /// One URL or a list of them, at least one, each `http://` or `https://`.
    private func readEndpoints(_ entry: ConfigEntry) -> [String]? {
        if case .sequence(let sequence) = entry.value, sequence.isEmpty {
            fail(entry.path, at: entry.value, "expected at least one etcd endpoint")
            return nil
        }
        guard let items = stringList(entry) else { return nil }
        var urls: [String] = []
        for (_, node, path) in items {
            guard let url = readURL(ConfigEntry(key: entry.key, keyNode: entry.keyNode, value: node, path: path)) else {
                continue
            }
            if urls.contains(url) {
                fail(path, at: node, "\"\(url)\" is listed twice")
                continue
            }
            urls.append(url)
        }
        return urls.count == items.count ? urls : nil
    }

    /// A scope or agent name: it becomes part of etcd keys and URLs.
    private func readClusterName(_ entry: ConfigEntry) -> String? {
        guard let text = string(entry) else { return nil }
        guard Self.isValidName(text) else {
            fail(entry.path, at: entry.value, Self.invalidName)
            return nil
        }
        return text
    }

    private func readTTL(_ entry: ConfigEntry) -> Duration? {
        guard let ttl = duration(entry, positive: true) else { return nil }
        if ttl < ClusterSettings.minimumTTL {
            fail(entry.path, at: entry.value,
                 "must be at least \(DurationText.format(ClusterSettings.minimumTTL)), got \(describe(entry.value)): "
                    + Self.shortTTLReason)
            return nil
        }
        if ttl.components.attoseconds != 0 {
            fail(entry.path, at: entry.value,
                 "must be whole seconds (etcd counts leases in seconds), got \(describe(entry.value))")
            return nil
        }
        return ttl
    }

    private func readPrefix(_ entry: ConfigEntry) -> String? {
        guard let text = string(entry) else { return nil }
        guard text.hasPrefix("/"), text.hasSuffix("/"), text.count > 1 else {
            fail(entry.path, at: entry.value,
                 "expected a key prefix that starts and ends with \"/\" like /vitals/prod/, got \(describe(entry.value))")
            return nil
        }
        return text
    }

    private func readRequestTimeout(_ entry: ConfigEntry, ttl: Duration) -> Duration? {
        guard let timeout = duration(entry, positive: true) else { return nil }
        guard timeout < ttl / 3 else {
            fail(entry.path, at: entry.value,
                 "must be less than a third of ttl (\(DurationText.format(ttl))), got \(describe(entry.value)): "
                    + "renewals go every ttl/3 and the leader stops acting at ttl - request_timeout after "
                    + "the last one, so a longer timeout leaves no time to retry a failed renewal")
            return nil
        }
        return timeout
    }

    /// `ca_file`, `cert_file` and `key_file`; nil when none is given.
    private func readClusterTLS(_ fields: ConfigFields, endpoints: [String]) -> ClusterTLS? {
        let ca = fields["ca_file"].flatMap { string($0) }
        let cert = fields["cert_file"].flatMap { string($0) }
        let key = fields["key_file"].flatMap { string($0) }
        if let entry = fields["cert_file"], cert != nil, fields["key_file"] == nil {
            fail(entry.path, at: entry.keyNode, "cert_file needs key_file (the client certificate's private key)")
        }
        if let entry = fields["key_file"], key != nil, fields["cert_file"] == nil {
            fail(entry.path, at: entry.keyNode, "key_file needs cert_file (the client certificate)")
        }
        guard ca != nil || cert != nil || key != nil else { return nil }
        let anyHTTPS = endpoints.contains { $0.lowercased().hasPrefix("https://") }
        if !endpoints.isEmpty, !anyHTTPS,
           let first = ["ca_file", "cert_file", "key_file"].lazy.compactMap({ fields[$0] }).first {
            fail(first.path, at: first.keyNode, "TLS files are set but no etcd endpoint uses https://")
        }
        return ClusterTLS(caFile: ca, certFile: cert, keyFile: key)
    }

    /// `user` and `password_file`, together or not at all.
    private func readClusterAuth(_ fields: ConfigFields, at entry: ConfigEntry) -> ClusterAuth? {
        let user = fields["user"].flatMap { string($0) }
        let passwordFile = fields["password_file"].flatMap { string($0) }
        switch (fields["user"], fields["password_file"]) {
        case (let u?, nil):
            fail(u.path, at: u.keyNode, "user needs password_file (the file that holds the etcd password)")
        case (nil, let p?):
            fail(p.path, at: p.keyNode, "password_file needs user")
        case (_?, _?), (nil, nil):
            break
        }
        guard let user, let passwordFile else { return nil }
        return ClusterAuth(user: user, passwordFile: passwordFile)
    }
}
