#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import ArgumentParser
import Foundation
import VitalsAgent
import VitalsCore
import VitalsProbe
import VitalsProcess

struct Exec: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a cron job and report its start, end and exit status as heartbeats.",
        discussion: """
        Pings POST /v1/heartbeat/NAME/start, runs the command (argv, no shell) with this \
        process's stdin, stdout and stderr, so cron mails the job's own output, then pings \
        /v1/heartbeat/NAME/STATUS?duration=… with the job's exit status (0 is success). \
        SIGTERM and SIGINT are passed on to the job.

        The job's stdout and stderr pass through pipes on their way to this process's own, \
        and the last bytes of both (agent.ping_body_limit from the config, default 10 KiB) \
        go with the final ping as its body, where the agent keeps them with the beat and \
        its event. --no-output leaves the job this process's stdout and stderr and sends no body.

        Exits with the job's exit status, 128+N when a signal N killed it, 127 when the \
        command was not found and 126 when it could not be executed (as shells do; both are \
        reported as failures). An agent that cannot be reached, or refuses the ping, gets \
        a one-line warning on stderr and never changes the exit status.

        With a ping key the pings go to /v1/ping/KEY/… instead and need no token. The key \
        is $VITALS_PING_KEY when set, else read from --key-file, else from the heartbeat's \
        key file in the config (its key_file, or STATE_DIR/heartbeat-keys/NAME) when that \
        can be read. Without a key, the token is $VITALS_TOKEN when set, else read from \
        --token-file, else from the config's agent.token_file, else ./.vitals/token.

        Example (/etc/cron.d): 0 3 * * * root vitals exec --heartbeat nightly-backup \
        -c /etc/vitals/vitals.yaml -- /usr/local/bin/backup.sh
        """
    )

    @Option(help: ArgumentHelp("The heartbeat service the job reports to.", valueName: "name"))
    var heartbeat: String

    @Option(help: ArgumentHelp("The agent's base URL, e.g. http://127.0.0.1:9310. Default: from the config's agent.listen.",
                               valueName: "url"))
    var url: String?

    @Option(name: [.customShort("c"), .customLong("config")],
            help: ArgumentHelp("Read the agent's address and token file from this configuration file. Default: etc/vitals.yaml when it exists.",
                               valueName: "file"))
    var configPath: String?

    @Option(help: ArgumentHelp("The file holding the agent's bearer token.", valueName: "path"))
    var tokenFile: String?

    @Option(help: ArgumentHelp("The file holding this heartbeat's ping key.", valueName: "path"))
    var keyFile: String?

    @Option(help: ArgumentHelp("Bound on each ping to the agent, e.g. 5s or 500ms.", valueName: "duration"))
    var timeout: String = "5s"

    @Flag(help: "Do not send the tail of the job's output with the final ping.")
    var noOutput = false

    @Argument(parsing: .postTerminator, help: ArgumentHelp("The job, after --: a program and its arguments.",
                                                           valueName: "command"))
    var command: [String] = []

    func validate() throws {
        guard HeartbeatPing.isValidName(heartbeat) else {
            throw ValidationError("--heartbeat must be a service name (letters, digits, \".\", \"_\", \"-\", starting with a letter or digit); got \"\(heartbeat)\"")
        }
        guard let bound = DurationText.parse(timeout), bound > .zero else {
            throw ValidationError("--timeout: expected a duration like 5s or 500ms; got \"\(timeout)\"")
        }
        guard let program = command.first, !program.isEmpty else {
            throw ValidationError("give the job after --, e.g. vitals exec --heartbeat \(heartbeat) -- /usr/local/bin/backup.sh")
        }
    }

    func run() throws {
        // Before the first ping, so a stop that comes while we wait for the agent still reaches the job.
        let signals = SignalForwarding.install()
        func environment(_ name: String) -> String? {
            ProcessInfo.processInfo.environment[name]
                .map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
                .flatMap { $0.isEmpty ? nil : $0 }
        }
        var environmentKey = environment("VITALS_PING_KEY")
        if let key = environmentKey, !HeartbeatKeys.isValid(key) {
            printError("vitals exec: VITALS_PING_KEY is not a ping key (at least 16 letters, digits, -, _, . or ~); not using it")
            environmentKey = nil
        }
        let environmentToken = environment("VITALS_TOKEN")
        // Read only when it is needed for something, and then a broken one named once.
        let loaded = url == nil || (environmentKey == nil && keyFile == nil)
            || (environmentToken == nil && tokenFile == nil) ? config() : nil
        let base = url ?? Status.baseURL(fromConfig: configPath ?? Self.defaultConfigPath)
        let credential: HeartbeatPing.Credential
        if let key = environmentKey ?? keyFile.flatMap({ try? HeartbeatKeys.read(at: $0).get() })
            ?? loaded.flatMap({ configuredKey(in: $0) }) {
            credential = .key(key)
        } else if let environmentToken {
            credential = .token(environmentToken)
        } else {
            let path = tokenFile ?? loaded?.agent.tokenFile ?? "./.vitals/token"
            credential = BearerToken.read(at: path).map { .token($0.text) } ?? .unreadableToken(path)
        }
        if let keyFile, environmentKey == nil, case .failure(let error) = HeartbeatKeys.read(at: keyFile) {
            printError("vitals exec: \(error); not using it")
        }
        let ping = HeartbeatPing(base: base, service: heartbeat, credential: credential,
                                 timeout: DurationText.parse(timeout) ?? .seconds(5))
        ping.send(.start)

        let limit = loaded?.agent.pingBodyLimit ?? PingBody.defaultLimit
        let output = noOutput || limit == 0 ? nil : OutputTail(limit: limit)
        let outcome = CronJob.run(command, signals: signals, output: output)
        switch outcome {
        case .finished(let exitStatus, let duration):
            ping.send(.finished(exitStatus: exitStatus, duration: duration), body: output?.bytes ?? [])
            throw ExitCode(exitStatus)
        case .cannotStart(let exitStatus, let message):
            printError("vitals exec: \(message)")
            ping.send(.finished(exitStatus: exitStatus, duration: .zero), body: Array("vitals exec: \(message)\n".utf8))
            throw ExitCode(exitStatus)
        }
    }

    // MARK: Where to report

    /// The heartbeat's key from its key file, when the config names the
    /// heartbeat and the file can be read (the agent's state directory may not be).
    private func configuredKey(in config: VitalsConfig) -> String? {
        guard case .heartbeat(let check)? = config.service(named: heartbeat)?.check else { return nil }
        return try? HeartbeatKeys.read(at: check.keyPath(service: heartbeat, stateDir: config.agent.stateDir)).get()
    }

    static let defaultConfigPath = "etc/vitals.yaml"

    /// The config file, when one was named or the default one exists. A named
    /// file that cannot be used is worth a warning, never a failed job.
    private func config() -> VitalsConfig? {
        let path = configPath ?? Self.defaultConfigPath
        switch ConfigFile.load(path: path) {
        case .success(let config):
            return config
        case .failure(let failure):
            if configPath != nil {
                let first = failure.description.split(separator: "\n").first.map(String.init) ?? failure.description
                printError("vitals exec: cannot use the configuration (\(first)); using the defaults")
            }
            return nil
        }
    }
}

/// The two pings of a cron run. A ping that fails prints one warning line
/// and is otherwise forgotten: reporting must never fail the job.
struct HeartbeatPing {
    enum Credential {
        /// The heartbeat's own key: it goes in the URL, and no token is sent.
        case key(String)
        case token(String)
        /// No token could be read from this path; pings go without one (and are refused).
        case unreadableToken(String)
    }

    enum Beat {
        case start
        case finished(exitStatus: Int32, duration: Duration)
    }

    var base: String
    var service: String
    var credential: Credential
    var timeout: Duration

    /// Names as the config allows them: they are a path segment of the URL.
    static func isValidName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, first.isASCIIAlphanumeric else { return false }
        return name.unicodeScalars.allSatisfy { $0.isASCIIAlphanumeric || $0 == "." || $0 == "_" || $0 == "-" }
    }

    func url(for beat: Beat) -> String {
        let root: String
        if case .key(let key) = credential {
            root = (base.hasSuffix("/") ? base : base + "/") + "v1/ping/" + key
        } else {
            root = (base.hasSuffix("/") ? base : base + "/") + "v1/heartbeat/" + service
        }
        switch beat {
        case .start:
            return root + "/start"
        case .finished(let exitStatus, let duration):
            // Durations as the agent parses them: whole milliseconds, as seconds.
            let ms = max(0, duration.milliseconds)
            return root + "/\(exitStatus)?duration=\(ms / 1000).\(String(format: "%03lld", ms % 1000))s"
        }
    }

    /// `body`: what the agent keeps with the beat (the tail of the job's output).
    func send(_ beat: Beat, body: [UInt8] = []) {
        let target = url(for: beat)
        var headers: [String: String] = [:]
        if case .token(let secret) = credential { headers["Authorization"] = "Bearer \(secret)" }
        if !body.isEmpty { headers["Content-Type"] = "text/plain; charset=utf-8" }
        switch HTTPFetch.request("POST", url: target, headers: headers, body: body, timeout: timeout) {
        case .failure(let failure):
            warn(target, failure.message)
        case .success(let response) where (200..<300).contains(response.status):
            return
        case .success(let response):
            var why = "answered \(response.status)"
            if let message = Self.errorMessage(response.body) { why += ": \(message)" }
            if response.status == 404, case .key = credential {
                why += " (a wrong ping key? `vitals heartbeat-key \(service)` shows the right one)"
            }
            if response.status == 401, case .unreadableToken(let path) = credential {
                why += " (no token: set VITALS_TOKEN or make \(path) readable)"
            }
            warn(target, why)
        }
    }

    private func warn(_ target: String, _ why: String) {
        let line = why.split(whereSeparator: \.isNewline).joined(separator: " ")
        // The key is a secret: it stays out of cron's mail.
        var shown = target
        if case .key(let key) = credential { shown = target.replacingOccurrences(of: "/v1/ping/" + key, with: "/v1/ping/KEY") }
        printError("vitals exec: could not report to the agent at \(shown): \(line)")
    }

    /// The message of the agent's `{"error":{"message":…}}` documents, else the body's first line.
    static func errorMessage(_ body: [UInt8]) -> String? {
        struct Document: Decodable {
            struct Inner: Decodable { var message: String }
            var error: Inner
        }
        if let document = try? JSONDecoder().decode(Document.self, from: Data(body)) { return document.error.message }
        let text = String(decoding: body.prefix(200), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return text.isEmpty ? nil : text.split(whereSeparator: \.isNewline).first.map(String.init)
    }
}

private extension Unicode.Scalar {
    var isASCIIAlphanumeric: Bool {
        ("a"..."z").contains(self) || ("A"..."Z").contains(self) || ("0"..."9").contains(self)
    }
}

/// Runs the job the way a shell would for cron (see `ForegroundProcess`)
/// and words the outcome as a shell does.
enum CronJob {
    enum Outcome {
        /// `exitStatus` is 128+N when signal N ended the job.
        case finished(exitStatus: Int32, duration: Duration)
        /// 127: not found; 126: found but not executable.
        case cannotStart(exitStatus: Int32, message: String)
    }

    static func run(_ argv: [String], signals: SignalForwarding, output: OutputTail? = nil) -> Outcome {
        switch ForegroundProcess.run(argv, signals: signals, output: output) {
        case .success(let exit):
            return .finished(exitStatus: exit.shellStatus, duration: exit.duration)
        case .failure(let failure):
            let notFound = failure.errno == ENOENT || failure.errno == ENOTDIR
            return .cannotStart(exitStatus: notFound ? 127 : 126,
                                message: "cannot run \(failure.program): \(String(cString: strerror(failure.errno)))")
        }
    }
}
