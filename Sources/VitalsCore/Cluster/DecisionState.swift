import Foundation

/// What the leader writes to etcd for one group (`<prefix>state/<group>`),
/// in the same transaction that checks it still holds the leader key, before
/// a decision's actions start, and again when they have finished: the
/// group's engine state (`GroupEngine.Persisted`: active member, hold,
/// the last move for the cooldown, the moves in the failover window, a
/// switchover's pin), the maintenance of its members, the last event id,
/// and the decision whose actions are under way.
///
/// Stored as JSON in the format of the agent's own snapshot (the same
/// `GroupEngine.Persisted` and `AgentSnapshot.Maintenance` values, sorted
/// keys, ISO 8601 times with milliseconds).
///
/// **A new leader continues from it** (`DecisionState.takeover`): the stored
/// engine state replaces what its shadow engine chose, so a failover the old
/// leader made is kept, not made again, and its cooldown and failover budget
/// still count; holds and maintenance stay; a decision whose actions had not
/// all reported is handed back as interrupted: its missing actions are
/// recorded as not run, never run a second time.
public struct DecisionState: Codable, Sendable, Equatable {
    public var group: String
    /// The agent that wrote it.
    public var leader: String
    public var writtenAt: Date
    public var engine: GroupEngine.Persisted
    /// Members of the group an operator put in maintenance.
    public var maintenance: [String: AgentSnapshot.Maintenance]
    /// The id of the last event this state includes.
    public var lastEventID: UInt64
    /// The decision whose actions started, with the outcomes reported so
    /// far; nil when none is under way.
    public var decision: AgentEvent?

    public init(group: String, leader: String, writtenAt: Date, engine: GroupEngine.Persisted,
                maintenance: [String: AgentSnapshot.Maintenance] = [:], lastEventID: UInt64,
                decision: AgentEvent? = nil) {
        self.group = group
        self.leader = leader
        self.writtenAt = writtenAt
        self.engine = engine
        self.maintenance = maintenance
        self.lastEventID = lastEventID
        self.decision = decision
    }

    // MARK: JSON

    public var json: [UInt8] {
        (try? Self.encoder().encode(self)).map(Array.init) ?? Array("{}".utf8)
    }

    public init(json: [UInt8]) throws {
        self = try Self.decoder().decode(DecisionState.self, from: Data(json))
    }

    // Stored as the journal and the snapshot are: camelCase keys, because
    // `nextEventID` does not survive a snake_case round trip.
    static func encoder() -> JSONEncoder { StoredJSON.encoder() }

    static func decoder() -> JSONDecoder { StoredJSON.decoder() }

    // MARK: Takeover

    /// What a new leader starts from.
    public struct Takeover: Sendable, Equatable {
        /// Restore the core from this (`AgentCore(config:startedAt:restoring:)`).
        public var snapshot: AgentSnapshot
        /// Decisions whose actions had not all reported: journal them as
        /// they are and apply `.restarted(journal:)`, which records each
        /// missing action as interrupted and runs none of them.
        public var interrupted: [AgentEvent]
    }

    /// Folds the stored states over `base` (the new leader's own snapshot of
    /// the moment): each stored group's engine state wins; its members'
    /// maintenance is as stored (added or ended); the last event id is the
    /// highest either knows. Groups with no stored state keep `base`'s.
    public static func takeover(_ states: [DecisionState], base: AgentSnapshot, config: VitalsConfig) -> Takeover {
        var snapshot = base
        var interrupted: [AgentEvent] = []
        for state in states.sorted(by: { $0.group < $1.group }) {
            snapshot.groups[state.group] = state.engine
            for member in config.group(named: state.group)?.members ?? [] {
                snapshot.maintenance[member] = state.maintenance[member]
            }
            snapshot.lastEventID = max(snapshot.lastEventID ?? 0, state.lastEventID)
            if let decision = state.decision, !state.finished(decision, config: config) {
                interrupted.append(decision)
            }
        }
        return Takeover(snapshot: snapshot, interrupted: interrupted)
    }

    /// Whether every action `decision` runs has reported.
    func finished(_ decision: AgentEvent, config: VitalsConfig) -> Bool {
        let done = Set(decision.actions.map(\.action))
        return config.actions(for: decision).allSatisfy { done.contains($0.name) }
    }
}
