import Foundation

/// The whole configuration, as loaded from YAML and validated.
///
/// Services, groups and actions keep the order in which the file lists them,
/// so status output and `vitals check` tables read in the operator's order.
public struct VitalsConfig: Sendable, Equatable {
    public var agent: AgentSettings
    public var defaults: ProbeTiming
    public var services: [ServiceConfig]
    public var groups: [GroupConfig]
    public var actions: [ActionConfig]
    /// `cluster:` — several agents coordinated through etcd. Nil: this agent
    /// decides and acts alone.
    public var cluster: ClusterSettings?

    public init(agent: AgentSettings = .init(), defaults: ProbeTiming = .init(),
                services: [ServiceConfig] = [], groups: [GroupConfig] = [], actions: [ActionConfig] = [],
                cluster: ClusterSettings? = nil) {
        self.agent = agent
        self.defaults = defaults
        self.services = services
        self.groups = groups
        self.actions = actions
        self.cluster = cluster
    }

    public func service(named name: String) -> ServiceConfig? { services.first { $0.name == name } }
    public func group(named name: String) -> GroupConfig? { groups.first { $0.name == name } }
    public func action(named name: String) -> ActionConfig? { actions.first { $0.name == name } }
}
