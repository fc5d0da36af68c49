import ArgumentParser
import VitalsCore

struct Version: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print the version of vitals.")

    func run() {
        print("vitals \(VitalsVersion.current)")
    }
}
