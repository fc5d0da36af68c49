import Foundation
import Testing
import VitalsCore
import VitalsHTTP
@testable import VitalsAgent
import VitalsTestKit

/// Guard rails on operator writes: typed bodies answered 400 with the field
/// at fault, and 409 for a command that would leave a group with no serving
/// member unless the body says `"force": true`.
extension OperatorAPITests {
    func message(_ answer: (Int, [String: Any]?)) -> String? {
        (answer.1?["error"] as? [String: Any])?["message"] as? String
    }

    @Test func unknownFieldsAreRefusedNamingTheFieldsExpected() {
        let (api, state, _) = makeAPI()
        _ = bothUpThenASecondLater(state, Transitions())
        let maintenance = post(api, "/v1/services/web-1/maintenance", body: #"{"reason":"x","bogus":1}"#)
        #expect(maintenance.0 == 400)
        #expect(message(maintenance) == #"unknown field "bogus" (expected: reason, for, until, force)"#)
        let switchover = post(api, "/v1/groups/web/switchover", body: #"{"to":"web-2","force":true}"#)
        #expect(switchover.0 == 400)
        #expect(message(switchover) == #"unknown field "force" (expected: to)"#)
        let release = post(api, "/v1/groups/web/release", body: #"{"reason":"done"}"#)
        #expect(release.0 == 400)
        #expect(message(release) == #"unknown field "reason" (this endpoint takes no fields)"#)
        #expect(message(post(api, "/v1/groups/web/hold?whatever=1")) == #"unknown field "whatever" (expected: reason, force)"#)
        #expect(get(api, "/v1/groups/web")?["held"] as? Bool == false, "nothing was done")
        #expect(get(api, "/v1/services/web-1")?["state"] as? String == "up")
    }

    @Test func wrongTypesAreRefusedNamingTheFieldAndTheTypeExpected() {
        let (api, state, _) = makeAPI()
        _ = bothUpThenASecondLater(state, Transitions())
        let to = post(api, "/v1/groups/web/switchover", body: #"{"to":1}"#)
        #expect(to.0 == 400)
        #expect(message(to) == "to: expected a string, got 1")
        #expect(message(post(api, "/v1/groups/web/hold", body: #"{"reason":["a"]}"#))
                == "reason: expected a string, got an array")
        #expect(message(post(api, "/v1/groups/web/hold", body: #"{"force":"yes"}"#))
                == #"force: expected true or false, got "yes""#)
        #expect(message(post(api, "/v1/groups/web/hold?force=maybe")) == #"force: expected true or false, got "maybe""#)
        #expect(message(post(api, "/v1/services/web-1/maintenance", body: #"{"for":30}"#))
                == "for: expected a duration like 30m or 2h, got 30")
        #expect(message(post(api, "/v1/services/web-1/maintenance", body: #"{"until":null}"#))
                == "until: expected an ISO 8601 time like 2026-11-28T06:00:00Z, got null")
        #expect(message(post(api, "/v1/services/web-1/maintenance", body: "{")) == #"the body must be a JSON object, e.g. {"reason": "..."}"#)
        #expect(get(api, "/v1/groups/web")?["held"] as? Bool == false, "nothing was done")
    }

    @Test func maintenanceTimesMustBeOneAndInTheFuture() {
        let (api, state, _) = makeAPI()
        _ = bothUpThenASecondLater(state, Transitions())
        let now = clock.now()
        let both = post(api, "/v1/services/web-1/maintenance?for=30m",
                        body: #"{"until":"\#(JSONTime.string(now.adding(.seconds(60))))"}"#)
        #expect(both.0 == 400)
        #expect(message(both) == "give for or until, not both")
        let past = JSONTime.string(now.adding(.seconds(-60)))
        let late = post(api, "/v1/services/web-1/maintenance", body: #"{"until":"\#(past)"}"#)
        #expect(late.0 == 400)
        #expect(message(late) == "until: \(past) is not after now (\(JSONTime.string(now)))")
        #expect(post(api, "/v1/services/web-1/maintenance?until=\(JSONTime.string(now))").0 == 400, "now is not after now")
        #expect(get(api, "/v1/services/web-1")?["state"] as? String == "up", "no maintenance, not even briefly")
        #expect(get(api, "/v1/groups/web")?["active_member"] as? String == "web-1")
    }

    /// A query item and a body field for the same thing: refused rather than
    /// one silently winning. Query items alone go on working.
    @Test func aFieldIsGivenOnce() {
        let (api, state, _) = makeAPI()
        _ = bothUpThenASecondLater(state, Transitions())
        let twice = post(api, "/v1/groups/web/hold?reason=a", body: #"{"reason":"b"}"#)
        #expect(twice.0 == 400)
        #expect(message(twice) == "reason: given more than once; give it once")
        #expect(message(post(api, "/v1/groups/web/switchover", body: #"{"to":"web-2","member":"web-2"}"#))
                == "to and member are the same field; give one")
        #expect(post(api, "/v1/groups/web/switchover?member=web-2").0 == 200, "member is still accepted for to")
        #expect(post(api, "/v1/groups/web/hold?reason=planned&force=true").0 == 200)
    }

    @Test func maintenanceOnTheLastServingMemberAnswers409UnlessForced() throws {
        let (api, state, _) = makeAPI()
        probe(state, "web-1", ok: true)
        probe(state, "web-2", ok: false)
        let refused = post(api, "/v1/services/web-1/maintenance", body: #"{"reason":"kernel"}"#)
        #expect(refused.0 == 409)
        #expect(message(refused) == #"maintenance on web-1 would leave group web with no serving member "#
                + #"(web-2 down); send "force": true to do it anyway"#)
        #expect(get(api, "/v1/services/web-1")?["state"] as? String == "up")

        let (forced, answer) = post(api, "/v1/services/web-1/maintenance", body: #"{"reason":"kernel","force":true}"#)
        #expect(forced == 200)
        let kinds = (answer?["events"] as? [[String: Any]])?.map { $0["kind"] as? String ?? "" }
        #expect(kinds == ["state_change", "group_down"])
    }

    @Test func aHoldOnAGroupWithNoServingMemberAnswers409UnlessForced() {
        let (api, state, _) = makeAPI()
        probe(state, "web-1", ok: false)
        probe(state, "web-2", ok: false)
        let refused = post(api, "/v1/groups/web/hold", body: #"{"reason":"investigating"}"#)
        #expect(refused.0 == 409)
        #expect(message(refused) == #"hold on group web would leave it with no serving member until released "#
                + #"(web-1 down, web-2 down); send "force": true to do it anyway"#)
        #expect(post(api, "/v1/groups/web/hold", body: #"{"reason":"investigating","force":true}"#).0 == 200)
        #expect(get(api, "/v1/groups/web")?["held"] as? Bool == true)
    }

    @Test func aSecondHoldAnswersWithItsEvent() {
        let (api, state, _) = makeAPI()
        _ = bothUpThenASecondLater(state, Transitions())
        #expect(post(api, "/v1/groups/web/hold", body: #"{"reason":"db migration"}"#).0 == 200)
        let (code, answer) = post(api, "/v1/groups/web/hold", body: #"{"reason":"db migration, day 2"}"#)
        #expect(code == 200)
        let events = answer?["events"] as? [[String: Any]]
        #expect(events?.map { $0["kind"] as? String } == ["held"])
        #expect((events?.first?["reason"] as? String)?.contains("was: db migration") == true)
    }
}
