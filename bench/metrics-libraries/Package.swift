// swift-tools-version:6.0
import PackageDescription

// A side package: measures swift-metrics with swift-prometheus against the
// agent's hand-written /metrics, so the main package does not depend on them.
let package = Package(
    name: "metrics-libraries",
    platforms: [.macOS(.v14)],
    dependencies: [
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(name: "vitals", path: "../.."),
    ],
    targets: [
        // mallinfo2, which the Glibc module does not bring in.
        .target(name: "CHeap"),
        .executableTarget(
            name: "MetricsLibrariesBench",
            dependencies: [
                "CHeap",
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "VitalsAgent", package: "vitals"),
                .product(name: "VitalsCore", package: "vitals"),
            ],
            swiftSettings: [.enableUpcomingFeature("ExistentialAny")]
        ),
    ]
)
