import Foundation
import VitalsAgent
import VitalsCore

// One approach per process, so memory figures do not mix:
//   MetricsLibrariesBench --mode hand|metrics|prometheus
//                         [--services N] [--results R] [--renders K] [--dump] [--header]
// Prints one tab-separated line of figures (--header: the column names), or
// with --dump the exposition text. Times are thread CPU time unless the
// column says wall.

let modes = ["hand", "metrics", "prometheus"]
let columns = ["services", "approach", "setup_ms", "ns_per_record", "ns_per_record_wall", "ns_per_record_naive",
               "ns_per_state_change", "ns_per_state_change_naive", "render_ms", "render_ms_wall", "render_bytes",
               "rss_base_mb", "rss_added_mb", "heap_added_mb", "rss_after_render_mb"]

var mode = "hand", services = 10_000, results = 1_000_000, renders = 20, dump = false
var args = CommandLine.arguments.dropFirst()
while let arg = args.popFirst() {
    switch arg {
    case "--mode": mode = args.popFirst() ?? ""
    case "--services": services = Int(args.popFirst() ?? "") ?? 0
    case "--results": results = Int(args.popFirst() ?? "") ?? 0
    case "--renders": renders = Int(args.popFirst() ?? "") ?? 0
    case "--dump": dump = true
    case "--header": print(columns.joined(separator: "\t")); exit(0)
    default: FileHandle.standardError.write(Data("unknown argument: \(arg)\n".utf8)); exit(2)
    }
}
guard modes.contains(mode), services > 0, results > 0, renders > 0 else {
    FileHandle.standardError.write(Data("usage: --mode \(modes.joined(separator: "|")) [--services N] [--results R] [--renders K] [--dump]\n".utf8))
    exit(2)
}

func nsPer(_ ns: UInt64, _ count: Int) -> String { String(format: "%.0f", Double(ns) / Double(count)) }
func ms(_ ns: UInt64) -> String { String(format: "%.2f", Double(ns) / 1e6) }

// Common to every approach, before the baseline: the agent's state and the results to record.
let fleet = Fleet(services: services)
let stream = ResultStream(count: results)
let snapshot = fleet.state.snapshot()
let now = fleet.clock.now()
let base = MemoryUse.now()

// Setup: the libraries register every series up front and set the state
// gauges from the snapshot; the hand-written metrics start empty.
var approach: (any Approach)!
let setup = Stopwatch.time {
    switch mode {
    case "hand": approach = HandWritten()
    case "metrics": approach = SwiftMetrics(snapshot: snapshot)
    default: approach = PrometheusDirect(snapshot: snapshot)
    }
}

/// Records results `range` of the stream, service after service in turn, as the scheduler delivers them.
@MainActor func recordResults(_ range: Range<Int>) -> (cpu: UInt64, wall: UInt64) {
    let probed = fleet.probed
    return Stopwatch.time {
        for k in range { approach.record(service: probed[k % probed.count], result: stream.result(k)) }
    }
}

/// What the library approaches must do on every state change event.
@MainActor func changeStates(_ count: Int) -> UInt64 {
    let names = fleet.names, states = HealthState.allCases
    let t = Stopwatch.time {
        for k in 0..<count { approach.stateChanged(service: names[k % names.count], to: states[(k / 7) % states.count]) }
    }
    // Back to the snapshot's states, so the exposition matches the hand-written one.
    for s in snapshot.services { approach.stateChanged(service: s.config.name, to: s.health.state) }
    return t.cpu
}

let recording = recordResults(0..<results)
let populated = MemoryUse.now()
let changes = min(results, 200_000)
let changing = changeStates(changes)

if dump {
    FileHandle.standardOutput.write(Data(approach.render(snapshot: snapshot, now: now)))
    exit(0)
}

// Render: two warm-up runs, then the median of `renders`.
var bytes = 0
for _ in 0..<2 { bytes = approach.render(snapshot: snapshot, now: now).count }
var cpu: [UInt64] = [], wall: [UInt64] = []
for _ in 0..<renders {
    let t = Stopwatch.time { bytes = approach.render(snapshot: snapshot, now: now).count }
    cpu.append(t.cpu)
    wall.append(t.wall)
}
let rendered = MemoryUse.now()

// Naive swift-metrics use, after every memory figure is taken: handles made per record.
var naiveRecord = "-", naiveChange = "-"
if let library = approach as? SwiftMetrics {
    library.handlePerRecord = true
    let count = min(results, 200_000)
    naiveRecord = nsPer(recordResults(0..<count).cpu, count)
    naiveChange = nsPer(changeStates(count / 4), count / 4)
}

let row: [String] = [
    String(services), mode, ms(setup.cpu),
    nsPer(recording.cpu, results), nsPer(recording.wall, results), naiveRecord,
    mode == "hand" ? "-" : nsPer(changing, changes), naiveChange,
    ms(median(cpu)), ms(median(wall)), String(bytes),
    megabytes(base.rss), megabytes(populated.rss - base.rss), megabytes(populated.heap - base.heap),
    megabytes(rendered.rss - base.rss),
]
print(row.joined(separator: "\t"))
withExtendedLifetime(approach) {}
