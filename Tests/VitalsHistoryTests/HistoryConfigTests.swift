import Foundation
import Testing
import VitalsCore

/// `agent.history:` retention, as the config file writes it.
@Suite struct HistoryConfigTests {
    @Test func defaultsAreSevenDaysOfMinutesAndFourHundredOfHours() throws {
        let config = try ConfigLoader.load(yaml: "agent: { state_dir: /tmp/x }\n")
        #expect(config.agent.history == HistorySettings(minutes: .seconds(7 * 86_400), hours: .seconds(400 * 86_400)))
    }

    @Test func retentionIsRead() throws {
        let config = try ConfigLoader.load(yaml: "agent:\n  history: { minutes: 2d, hours: 90d }\n")
        #expect(config.agent.history.minutes == .seconds(2 * 86_400))
        #expect(config.agent.history.hours == .seconds(90 * 86_400))
    }

    @Test func badRetentionNamesTheKey() {
        #expect(throws: ConfigErrors.self) { try ConfigLoader.load(yaml: "agent:\n  history: { minutes: 10m }\n") }
        #expect(throws: ConfigErrors.self) { try ConfigLoader.load(yaml: "agent:\n  history: { days: 3d }\n") }
        do {
            _ = try ConfigLoader.load(yaml: "agent:\n  history: { minutes: 30d, hours: 7d }\n")
            Issue.record("hours shorter than minutes was accepted")
        } catch let errors as ConfigErrors {
            #expect(errors.errors.map(\.path) == ["agent.history.hours"])
            #expect(errors.description.contains("must be at least minutes"))
        } catch {
            Issue.record("\(error)")
        }
    }

    @Test func timesAreDurationsAgoOrDates() {
        let now = Date(timeIntervalSince1970: 1_800_007_200)
        #expect(HistoryTime.parse("7d", now: now) == now.addingTimeInterval(-7 * 86_400))
        #expect(HistoryTime.parse("2027-01-15T10:00:00Z", now: now) == now)
        #expect(HistoryTime.parse("1800007200", now: now) == now)
        #expect(HistoryTime.parse("yesterday", now: now) == nil)
        #expect(HistoryTime.step("5m") == 300)
        #expect(HistoryTime.step("90s") == nil)
        #expect(HistoryTime.step("30s") == nil)
    }
}
