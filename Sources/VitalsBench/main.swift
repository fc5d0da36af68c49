// vitals-bench: the measuring half of `make bench` (scripts/bench.sh starts
// the peers and prints the tables). A benchmark, not a test: it prints
// numbers and asserts nothing.
//
//   vitals-bench probe --endpoints N --seconds T [--warmup W] [--base-port P] [--ports K]
//                      [--host H] [--timeout-ms MS] [--json] [--max-connections C] [--watch-pid PID ...]
//   vitals-bench idle  --url http://127.0.0.1:PORT [--connections C] [--samples S] [--spacing-ms MS]
//   vitals-bench nginx-geo FILE [PREFIX]  (prints FILE as nginx geo variables $PREFIX0...)
//   vitals-bench fast  --target URL|HOST:PORT [--interval-ms 10] [--timeout-ms 100] [--rise 2] [--fall 2] [--seconds 60]
//   vitals-bench history --services N [--minutes M] [--warmup W] [--dir D]
//
// Arguments are parsed by hand: swift-argument-parser is not a dependency of
// this target.

#if canImport(Glibc)
import Glibc
#endif

let usage = """
usage:
  vitals-bench probe --endpoints N --seconds T [--warmup W] [--base-port P] [--ports K]
                     [--host H] [--timeout-ms MS] [--json] [--max-connections C] [--watch-pid PID]...
  vitals-bench idle --url http://HOST:PORT [--connections C] [--samples S] [--spacing-ms MS]
  vitals-bench nginx-geo FILE [PREFIX]
  vitals-bench fast --target URL|HOST:PORT [--interval-ms MS] [--timeout-ms MS] [--rise N] [--fall N] [--seconds T]
  vitals-bench history --services N [--minutes M] [--warmup W] [--results-per-minute R] [--dir D]
"""

var arguments = Arguments(Array(CommandLine.arguments.dropFirst()))
do {
    switch arguments.next() {
    case "probe":
        var options = ProbeBench.Options()
        while let flag = arguments.next() {
            switch flag {
            case "--endpoints": options.endpoints = try arguments.int(flag)
            case "--seconds": options.seconds = try arguments.double(flag)
            case "--warmup": options.warmup = try arguments.double(flag)
            case "--base-port": options.basePort = try arguments.int(flag)
            case "--ports": options.ports = try arguments.int(flag)
            case "--host": options.host = try arguments.value(flag)
            case "--timeout-ms": options.timeoutMilliseconds = try arguments.int(flag)
            case "--json": options.jsonCondition = true
            case "--max-connections": options.maxCachedConnections = try arguments.int(flag)
            case "--watch-pid": options.watchPids.append(Int32(try arguments.int(flag)))
            default: throw UsageError("unknown option \(flag) for probe")
            }
        }
        guard options.endpoints > 0, options.seconds > 0, options.ports > 0, options.warmup >= 0 else {
            throw UsageError("--endpoints, --seconds and --ports must be positive")
        }
        ProbeBench(options).run()
    case "idle":
        var options = IdleBench.Options()
        while let flag = arguments.next() {
            switch flag {
            case "--url": options.url = try arguments.value(flag)
            case "--connections": options.connections = try arguments.int(flag)
            case "--samples": options.samples = try arguments.int(flag)
            case "--spacing-ms": options.spacingMilliseconds = try arguments.int(flag)
            default: throw UsageError("unknown option \(flag) for idle")
            }
        }
        guard options.samples > 0, options.connections >= 0 else {
            throw UsageError("--samples must be positive and --connections not negative")
        }
        try IdleBench(options).run()
    case "history":
        var options = HistoryBench.Options()
        while let flag = arguments.next() {
            switch flag {
            case "--services": options.services = try arguments.int(flag)
            case "--minutes": options.minutes = try arguments.int(flag)
            case "--warmup": options.warmup = try arguments.int(flag)
            case "--results-per-minute": options.resultsPerMinute = try arguments.int(flag)
            case "--dir": options.directory = try arguments.value(flag)
            default: throw UsageError("unknown option \(flag) for history")
            }
        }
        guard options.services > 0, options.minutes > 0, options.warmup >= 0, options.resultsPerMinute > 0 else {
            throw UsageError("--services, --minutes and --results-per-minute must be positive")
        }
        try HistoryBench(options).run()
    case "nginx-geo":
        guard let path = arguments.next() else { throw UsageError("nginx-geo needs a file") }
        for line in try NginxGeo.lines(fileAt: path, prefix: arguments.next() ?? "vb") {
            line.withUnsafeBytes { _ = write(1, $0.baseAddress, $0.count) }
        }
    case "fast":
        var options = FastBench.Options()
        while let flag = arguments.next() {
            switch flag {
            case "--target": options.target = try arguments.value(flag)
            case "--interval-ms": options.intervalMilliseconds = try arguments.int(flag)
            case "--timeout-ms": options.timeoutMilliseconds = try arguments.int(flag)
            case "--rise": options.rise = try arguments.int(flag)
            case "--fall": options.fall = try arguments.int(flag)
            case "--seconds": options.seconds = try arguments.double(flag)
            default: throw UsageError("unknown option \(flag) for fast")
            }
        }
        guard options.intervalMilliseconds > 0, options.timeoutMilliseconds > 0, options.seconds > 0,
              options.rise > 0, options.fall > 0 else {
            throw UsageError("--interval-ms, --timeout-ms, --seconds, --rise and --fall must be positive")
        }
        try FastBench(options).run()
    case "-h", "--help", "help":
        print(usage)
    case let other:
        throw UsageError(other.map { "unknown command \($0)" } ?? "missing command")
    }
} catch {
    FileStream.standardError.write("vitals-bench: \(error)\n\(usage)\n")
    exit(2)
}
