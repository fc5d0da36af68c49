import Foundation
import Testing

/// `vitals validate` on intervals under 100ms: accepted, with a warning that says what they cost.
@Suite struct ValidateFastIntervalTests {
    @Test func aFastIntervalIsValidWithAWarning() throws {
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("fast.yaml").path
        try """
        services:
          gw: { icmp: { host: 127.0.0.1 }, interval: 10ms, jitter: 0ms, fall: 2 }
          rpc: { grpc: { target: "127.0.0.1:50051" }, interval: 1s }
        """.write(toFile: path, atomically: true, encoding: .utf8)
        let result = try VitalsBinary.run(["validate", "-c", path])
        #expect(result.status == 0)
        #expect(result.out == "\(path): OK (2 services, 0 groups, 0 actions)\n")
        #expect(result.err == "warning: services.gw: interval 10ms: 100 probes/s for this service "
            + "(each probe is a connection or request to the target, and CPU in the agent)\n")
    }
}
