import ArgumentParser

@main
struct Vitals: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vitals",
        abstract: "Watch services, decide failover, act on it, and report it all as JSON.",
        discussion: """
        Vitals probes HTTP, TCP and plugin checks, tracks heartbeats from services and \
        cron jobs, fails groups over between redundant members, runs your scripts and \
        webhooks when that happens, and serves its status over HTTP.

        Start with `vitals validate -c etc/vitals.yaml`, then `vitals run -c etc/vitals.yaml`.
        """,
        version: VitalsVersionText.current,
        subcommands: [Run.self, Check.self, Validate.self, Status.self, Events.self, History.self, Exec.self, Explain.self, HeartbeatKey.self, Version.self]
    )
}
