import Foundation
import Testing
@testable import VitalsCore

/// Leadership on scripted monotonic instants: no clock, no sleep.
@Suite struct ClusterLeadershipTests {
    static let wall = Date(timeIntervalSince1970: 1_800_000_000)
    static func t(_ ms: Int64) -> MonotonicTime { MonotonicTime(.milliseconds(ms)) }

    /// ttl 15s, request timeout 3750ms, lease 7 acquired; grant sent at t=1s.
    static func leader() -> Leadership {
        var l = Leadership(agent: "a", requestTimeout: .milliseconds(3750))
        l.apply(.leaseGranted(id: 7, ttl: .seconds(15), sentAt: t(1000)), wall: wall)
        l.apply(.acquired(lease: 7), wall: wall)
        return l
    }

    @Test func aLeaderActsUntilItsOwnDeadline() {
        let l = Self.leader()
        #expect(l.fencingDeadline == Self.t(1000 + 15_000 - 3750))
        #expect(l.mayAct(at: Self.t(1000)))
        #expect(l.mayAct(at: Self.t(12_249)))
        #expect(!l.mayAct(at: Self.t(12_250)))
        #expect(l.role(at: Self.t(5000)) == .leader)
        #expect(l.nextRenewal == Self.t(6000))
    }

    /// Lease lost mid-decision: renewals stop being answered after the one
    /// sent at 6s. The leader stops acting at exactly 6s + ttl - timeout,
    /// before etcd could expire the lease (6s + ttl) and a successor act.
    @Test func renewalsFailMidDecisionAndTheLeaderStopsBeforeTheLeaseCanExpire() {
        var l = Self.leader()
        l.apply(.renewed(remaining: .seconds(15), sentAt: Self.t(6000)), wall: Self.wall)
        // The decision's actions are about to start; the next renewals fail.
        l.apply(.requestFailed(reason: "timeout after 3750ms"), wall: Self.wall.addingTimeInterval(14.75))
        l.apply(.requestFailed(reason: "connection refused"), wall: Self.wall.addingTimeInterval(15))
        let deadline = Self.t(6000 + 15_000 - 3750)
        #expect(l.fencingDeadline == deadline)
        #expect(l.mayAct(at: deadline - .nanoseconds(1)))
        #expect(!l.mayAct(at: deadline))
        #expect(deadline < Self.t(6000) + .seconds(15), "stops before the lease can have expired")
        // The caller is woken at the deadline to say so.
        #expect(l.nextWakeup(after: Self.t(16_000)) == Self.t(11_000))
        #expect(l.nextWakeup(after: Self.t(11_500)) == Self.t(11_000))
        if case .noLeader(let reason) = l.role(at: deadline) {
            #expect(reason.hasPrefix("etcd unreachable since "))
            #expect(reason.hasSuffix(": connection refused"))
        } else {
            Issue.record("expected no leader, got \(l.role(at: deadline))")
        }
    }

    /// The deadline counts from when the renewal was sent, not answered.
    @Test func theDeadlineCountsFromTheSendingOfTheRenewal() {
        var l = Self.leader()
        // Sent at 6s, answered 3s later.
        l.apply(.renewed(remaining: .seconds(15), sentAt: Self.t(6000)), wall: Self.wall)
        #expect(l.fencingDeadline == Self.t(17_250))
        // A late answer to an older keepalive never moves the deadline back.
        l.apply(.renewed(remaining: .seconds(15), sentAt: Self.t(5000)), wall: Self.wall)
        #expect(l.fencingDeadline == Self.t(17_250))
        // etcd's remaining ttl is what counts.
        l.apply(.renewed(remaining: .seconds(14), sentAt: Self.t(11_000)), wall: Self.wall)
        #expect(l.fencingDeadline == Self.t(11_000 + 14_000 - 3750))
    }

    @Test func aLostLeaseStopsActingAtOnce() {
        var l = Self.leader()
        l.apply(.leaseLost(reason: "keepalive answered without TTL"), wall: Self.wall)
        #expect(!l.mayAct(at: Self.t(2000)))
        #expect(l.role(at: Self.t(2000)) == .noLeader(reason: "this agent's lease was lost (keepalive answered without TTL)"))
        #expect(l.nextRenewal == nil)
    }

    @Test func aDeletedLeaderKeyStopsActingAtOnce() {
        var l = Self.leader()
        l.apply(.leaderObserved(holder: nil, lease: nil), wall: Self.wall)
        #expect(!l.mayAct(at: Self.t(2000)))
        #expect(l.role(at: Self.t(2000)) == .noLeader(reason: "no agent holds the leader key"))
    }

    @Test func anotherHolderMakesAFollower() {
        var l = Leadership(agent: "b", requestTimeout: .seconds(3))
        l.apply(.leaseGranted(id: 9, ttl: .seconds(15), sentAt: Self.t(0)), wall: Self.wall)
        l.apply(.leaderObserved(holder: "a", lease: 7), wall: Self.wall)
        #expect(!l.mayAct(at: Self.t(1)))
        #expect(l.role(at: Self.t(1)) == .follower(leader: "a"))
        // The key is deleted (a's lease revoked at SIGTERM); b takes it.
        l.apply(.leaderObserved(holder: nil, lease: nil), wall: Self.wall)
        l.apply(.acquired(lease: 9), wall: Self.wall)
        #expect(l.mayAct(at: Self.t(100)))
    }

    /// The key under this agent's name but another lease (its previous run,
    /// before a restart) is not this agent's to act on.
    @Test func theKeyOfAnEarlierLeaseIsNotHeld() {
        var l = Leadership(agent: "a", requestTimeout: .seconds(3))
        l.apply(.leaseGranted(id: 9, ttl: .seconds(15), sentAt: Self.t(0)), wall: Self.wall)
        l.apply(.leaderObserved(holder: "a", lease: 7), wall: Self.wall)
        #expect(!l.mayAct(at: Self.t(1)))
        // A stale answer for a lease that is no longer current is ignored too.
        l.apply(.acquired(lease: 7), wall: Self.wall)
        #expect(!l.mayAct(at: Self.t(1)))
    }

    @Test func aNewLeaseDropsTheKeyOfTheOldOne() {
        var l = Self.leader()
        l.apply(.leaseGranted(id: 8, ttl: .seconds(15), sentAt: Self.t(20_000)), wall: Self.wall)
        #expect(!l.mayAct(at: Self.t(20_001)))
    }

    @Test func withoutEtcdNobodyActsAndTheStatusSaysSince() {
        var l = Leadership(agent: "a", requestTimeout: .seconds(3))
        l.apply(.requestFailed(reason: "connection refused"), wall: Self.wall)
        l.apply(.requestFailed(reason: "timeout"), wall: Self.wall.addingTimeInterval(5))
        #expect(!l.mayAct(at: Self.t(0)))
        #expect(l.role(at: Self.t(0)) == .noLeader(reason: "etcd unreachable since 2027-01-15T08:00:00.000Z: timeout"))
        // etcd answers again: the reason goes.
        l.apply(.leaderObserved(holder: nil, lease: nil), wall: Self.wall)
        #expect(l.role(at: Self.t(0)) == .noLeader(reason: "no agent holds the leader key"))
    }
}
