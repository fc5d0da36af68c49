import ArgumentParser

@main
struct Vitals: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Health monitoring and failover agent.")
}
