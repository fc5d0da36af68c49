import Foundation
import Testing
import VitalsCore

@Suite struct RefusedPingsTests {
    private let t0 = Date(timeIntervalSince1970: 1_800_000_000)
    private func at(_ seconds: Double) -> Date { t0.addingTimeInterval(seconds) }

    @Test func theFirstIsSaidAtOnceThenOneSummaryAMinute() {
        var refusals = RefusedPings()
        #expect(refusals.refused(from: "10.0.0.5", at: at(0))
            == "refused a ping with a wrong key from 10.0.0.5; more are counted and logged at most once every 1m")
        for i in 1...119 {
            #expect(refusals.refused(from: "10.0.0.\(i % 5)", at: at(Double(i) / 2)) == nil)
        }
        #expect(refusals.due(at: at(59.9)) == nil)
        #expect(refusals.due(at: at(60))
            == "refused 119 pings with a wrong key in the last 1m (1.98/s) from 10.0.0.1, 10.0.0.2, 10.0.0.3 and 2 more; 120 since start")
        #expect(refusals.due(at: at(500)) == nil, "nothing new")
        // The next refusal after a quiet minute is summed up at once.
        #expect(refusals.refused(from: nil, at: at(600))
            == "refused 1 ping with a wrong key in the last 9m (0.00/s) from an unknown address; 121 since start")
        #expect(refusals.total == 121)
    }
}
