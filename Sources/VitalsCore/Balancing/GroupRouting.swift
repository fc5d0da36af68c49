import Foundation

/// A member and the address clients reach it at, as `/active` and `/pick` show it.
public struct MemberAddress: Sendable, Equatable {
    public var member: String
    /// The service's `address:` (explicit or derived from its check); nil for
    /// exec and heartbeat services that name none.
    public var address: ListenAddress?

    public init(member: String, address: ListenAddress?) {
        self.member = member
        self.address = address
    }

    /// `member` with its address from `config`; nil address when the service is unknown.
    public init(member: String, in config: VitalsConfig) {
        self.init(member: member, address: config.service(named: member)?.address)
    }
}

extension GroupEngine {
    /// What `/v1/groups/{g}/pick` hands to `Balancer.pick`: the group's
    /// members in member order, except those blocked by a failing `depends_on`
    /// ancestor in the states last given to `update` (they cannot work, even
    /// while their own probe answers). For active-passive the active member
    /// comes first, so `priority` agrees with the failover engine (after a
    /// manual-failback failover the backup stays the pick). Each carries its
    /// configured weight, its state from `states` (missing: `unknown`) and
    /// its latency from `latencies`. Non-serving members stay in the list: the
    /// balancer skips them, and `priority` names them in its reason.
    public func balanceCandidates(states: [String: ServiceView],
                                  latencies: [String: Duration]) -> [BalanceCandidate] {
        var order = group.members.filter { rootCause(of: $0) == nil }
        if let active = activeMember, let index = order.firstIndex(of: active) {
            order.remove(at: index)
            order.insert(active, at: 0)
        }
        return order.map { member in
            BalanceCandidate(name: member, weight: group.weight(of: member),
                             state: states[member]?.state ?? .unknown, latency: latencies[member])
        }
    }

    /// What `/v1/groups/{g}/active` shows: the active member (active-passive)
    /// or the active set (active-active), in member order, with addresses.
    /// Empty while the group is down or still starting.
    public func activeAddresses(in config: VitalsConfig) -> [MemberAddress] {
        active.map { MemberAddress(member: $0, in: config) }
    }
}
