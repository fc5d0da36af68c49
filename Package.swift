// swift-tools-version:6.0
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "vitals",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "vitals", targets: ["vitals"]),
        // For the side packages under bench/ that compare Vitals with other libraries.
        .library(name: "VitalsAgent", targets: ["VitalsAgent"]),
        .library(name: "VitalsCore", targets: ["VitalsCore"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
    ],
    targets: [
        // C boundaries: each is wrapped once, in the Swift target that owns it.
        .systemLibrary(
            name: "CCurl",
            pkgConfig: "libcurl",
            providers: [.apt(["libcurl4-openssl-dev"])]
        ),
        // c-ares for dns: checks, driven from the probe loop like curl's sockets.
        .systemLibrary(
            name: "CAres",
            pkgConfig: "libcares",
            providers: [.apt(["libc-ares-dev"])]
        ),
        .target(name: "CSystem"),
        // Debian's libsqlite3-dev, used through its C API directly: a Swift
        // wrapper package would add its build time to every clean build for
        // the dozen calls the history store makes.
        .systemLibrary(
            name: "CSQLite",
            pkgConfig: "sqlite3",
            providers: [.apt(["libsqlite3-dev"])]
        ),
        // The system layer: syscalls (EINTR, errno, traps), the monotonic
        // clock, loop threads. Knows nothing of Vitals.
        .target(
            name: "VitalsSystem",
            dependencies: ["CSystem"],
            swiftSettings: swiftSettings
        ),

        // The libcurl boundary: global init once, one-off requests, errors in curl's words.
        .target(
            name: "VitalsCurl",
            dependencies: ["CCurl"],
            swiftSettings: swiftSettings
        ),

        // Pure model and decisions: configuration, health, failover. No I/O.
        .target(
            name: "VitalsCore",
            dependencies: [.product(name: "Yams", package: "Yams")],
            swiftSettings: swiftSettings
        ),
        // Seeing: scheduler, curl multi prober, TCP, DNS and exec checks.
        .target(
            name: "VitalsProbe",
            dependencies: ["VitalsCore", "VitalsSystem", "VitalsProcess", "VitalsCurl", "CCurl", "CAres"],
            swiftSettings: swiftSettings
        ),
        // Child processes: spawn in a process group, feed stdin, capture
        // capped output, time out with TERM then KILL, reap. Knows nothing of Vitals.
        .target(
            name: "VitalsProcess",
            dependencies: ["VitalsSystem", "CSystem"],
            swiftSettings: swiftSettings
        ),
        // Acting: the action runner protocol and the exec, webhook and log runners.
        .target(
            name: "VitalsActions",
            dependencies: ["VitalsCore", "VitalsProcess", "VitalsCurl", "VitalsSystem", "CCurl"],
            swiftSettings: swiftSettings
        ),
        // Speaking: a small HTTP/1.1 server on epoll. Knows nothing of Vitals.
        .target(
            name: "VitalsHTTP",
            dependencies: ["VitalsSystem", "CSystem"],
            swiftSettings: swiftSettings
        ),
        // libFuzzer target for the HTTP request parser; built and run by scripts/fuzz.sh.
        .executableTarget(
            name: "VitalsHTTPFuzz",
            dependencies: ["VitalsHTTP"],
            swiftSettings: swiftSettings
        ),
        // `make bench`: drives the prober against a local fleet and measures the status server.
        .executableTarget(
            name: "VitalsBench",
            dependencies: ["VitalsProbe", "VitalsCore", "VitalsHTTP", "VitalsHistory"],
            swiftSettings: swiftSettings
        ),
        // Coordinating: the etcd client (leases, conditional writes, watch)
        // behind a small protocol. Knows nothing of groups or probes.
        .target(
            name: "VitalsCluster",
            dependencies: ["VitalsCurl", "VitalsSystem"],
            swiftSettings: swiftSettings
        ),
        // Remembering: the state directory's lock, the event journal and the
        // snapshot, written safely. Knows nothing of HTTP or probes.
        .target(
            name: "VitalsStore",
            dependencies: ["VitalsCore", "VitalsSystem"],
            swiftSettings: swiftSettings
        ),
        // Remembering over days: per-minute and hourly buckets, outages and
        // events in one embedded SQLite file, written by a thread of its own.
        .target(
            name: "VitalsHistory",
            dependencies: ["VitalsCore", "CSQLite"],
            swiftSettings: swiftSettings
        ),
        // Wiring: the state owner, status view, API handlers, lifecycle.
        .target(
            name: "VitalsAgent",
            dependencies: [
                "VitalsCore", "VitalsProbe", "VitalsHTTP", "VitalsActions", "VitalsStore", "VitalsSystem",
                "VitalsCluster", "VitalsCurl", "VitalsHistory",
                .product(name: "Logging", package: "swift-log"),
            ],
            // The status page, compiled in: `make install` installs the binary alone.
            resources: [
                .embedInCode("Status/Page/status.html"),
                .embedInCode("Status/Page/status.css"),
                .embedInCode("Status/Page/status.js"),
            ],
            swiftSettings: swiftSettings
        ),
        // The command line only.
        .executableTarget(
            name: "vitals",
            dependencies: [
                "VitalsAgent", "VitalsCore", "VitalsProbe", "VitalsProcess",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),

        // Test helpers shared by the test targets: a manual clock, a DNS server, the journal
        // torture child, scratch folders, child-process and loopback helpers.
        // Only test targets depend on it, so none of it ships in the agent.
        .target(
            name: "VitalsTestKit",
            dependencies: ["VitalsCore", "VitalsStore", "VitalsCurl"],
            path: "Tests/VitalsTestKit",
            swiftSettings: swiftSettings
        ),

        .testTarget(name: "VitalsCoreTests", dependencies: ["VitalsCore"],
                    resources: [.copy("Fixtures")], swiftSettings: swiftSettings),
        .testTarget(name: "VitalsProbeTests", dependencies: ["VitalsProbe", "VitalsCore", "VitalsSystem", "CCurl", "CAres", "CSystem", "VitalsTestKit"],
                    swiftSettings: swiftSettings),
        .testTarget(name: "VitalsHTTPTests", dependencies: ["VitalsHTTP", "VitalsSystem", "CSystem"],
                    swiftSettings: swiftSettings),
        .testTarget(name: "VitalsCurlTests", dependencies: ["VitalsCurl", "VitalsHTTP", "CCurl"],
                    swiftSettings: swiftSettings),
        .testTarget(name: "VitalsClusterTests", dependencies: ["VitalsCluster", "VitalsCurl", "VitalsTestKit"],
                    swiftSettings: swiftSettings),
        .testTarget(name: "VitalsProcessTests", dependencies: ["VitalsProcess", "VitalsTestKit"],
                    swiftSettings: swiftSettings),
        .testTarget(name: "VitalsActionsTests", dependencies: ["VitalsActions", "VitalsCore", "VitalsTestKit"],
                    swiftSettings: swiftSettings),
        .testTarget(name: "VitalsHistoryTests", dependencies: ["VitalsHistory", "VitalsCore", "VitalsTestKit", "CSQLite"],
                    swiftSettings: swiftSettings),
        .testTarget(name: "VitalsAgentTests", dependencies: [
                        "VitalsAgent", "VitalsCore", "VitalsActions", "VitalsHTTP", "VitalsProbe", "VitalsStore",
                        "VitalsTestKit", "VitalsCluster", "vitals", "VitalsHistory",
                        .product(name: "Logging", package: "swift-log"),
                    ],
                    swiftSettings: swiftSettings),
    ]
)
