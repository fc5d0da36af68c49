#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CSystem
import VitalsSystem

/// A started child and our ends of its pipes (non-blocking, close-on-exec).
struct SpawnedChild {
    var pid: pid_t
    /// -1 when stdin is `/dev/null`.
    var stdin: Int32
    var stdout: Int32
    /// -1 when stderr shares the stdout pipe.
    var stderr: Int32
}

enum Spawner {
    /// How often a spawn failing with ETXTBSY is tried again (about 155ms in all).
    static let textBusyRetries = 5

    /// Starts `spec.argv` in a new process group with default signal
    /// dispositions, an empty signal mask, stdin/stdout/stderr on pipes, and
    /// no other descriptor of ours.
    static func spawn(_ spec: ChildProcessSpec) -> Result<SpawnedChild, SpawnFailure> {
        guard let program = spec.argv.first, !program.isEmpty else {
            return .failure(SpawnFailure(program: "", errno: 0, message: "cannot run: empty argv"))
        }
        let path: String
        switch resolve(program, environment: spec.environment) {
        case .success(let found): path = found
        case .failure(let failure): return .failure(failure)
        }

        // Our ends are non-blocking; every end is close-on-exec, so a child
        // spawned concurrently by another thread never inherits them (which
        // would keep our pipes open long after this child is gone).
        var opened: [Int32] = []
        func fail(_ error: SystemCallError) -> Result<SpawnedChild, SpawnFailure> {
            for fd in opened { Posix.close(fd) }
            return .failure(SpawnFailure(program: program, errno: error.errno,
                                         message: "cannot run \(program): \(error.call) failed: \(Posix.errorText(error.errno))"))
        }
        var stdinPipe: (read: Int32, write: Int32)?
        let stdoutPipe: (read: Int32, write: Int32)
        var stderrPipe: (read: Int32, write: Int32)?
        do {
            if !spec.stdin.isEmpty {
                let p = try Posix.pipe(nonBlocking: .write)
                opened += [p.read, p.write]
                stdinPipe = p
            }
            stdoutPipe = try Posix.pipe(nonBlocking: .read)
            opened += [stdoutPipe.read, stdoutPipe.write]
            if spec.stderr == .separate {
                let p = try Posix.pipe(nonBlocking: .read)
                opened += [p.read, p.write]
                stderrPipe = p
            }
        } catch {
            return fail(error)
        }

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))
        posix_spawnattr_setpgroup(&attributes, 0) // a new group whose id is the child's pid
        var defaults = sigset_t()
        sigfillset(&defaults)
        sigdelset(&defaults, SIGKILL)
        sigdelset(&defaults, SIGSTOP)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        var mask = sigset_t()
        sigemptyset(&mask)
        posix_spawnattr_setsigmask(&attributes, &mask)

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if let stdinPipe {
            posix_spawn_file_actions_adddup2(&actions, stdinPipe.read, 0)
        } else {
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        }
        // dup2 clears close-on-exec on the copy, so exactly 0, 1 and 2 survive the exec.
        posix_spawn_file_actions_adddup2(&actions, stdoutPipe.write, 1)
        posix_spawn_file_actions_adddup2(&actions, stderrPipe?.write ?? stdoutPipe.write, 2)
        // Descriptors others opened without O_CLOEXEC do not leak into the child either.
        posix_spawn_file_actions_addclosefrom_np(&actions, 3)
        if let directory = spec.workingDirectory {
            posix_spawn_file_actions_addchdir_np(&actions, directory)
        }

        let (pid, rc) = launch(path: path, argv: spec.argv, environment: spec.environment,
                               actions: &actions, attributes: &attributes)
        // The child's ends belong to the child now (or to nobody).
        if let stdinPipe { Posix.close(stdinPipe.read) }
        Posix.close(stdoutPipe.write)
        if let stderrPipe { Posix.close(stderrPipe.write) }
        guard rc == 0 else {
            if let stdinPipe { Posix.close(stdinPipe.write) }
            Posix.close(stdoutPipe.read)
            if let stderrPipe { Posix.close(stderrPipe.read) }
            return .failure(failure(program: program, errno: rc, workingDirectory: spec.workingDirectory))
        }
        return .success(SpawnedChild(pid: pid, stdin: stdinPipe?.write ?? -1,
                                     stdout: stdoutPipe.read, stderr: stderrPipe?.read ?? -1))
    }

    /// `posix_spawn(path)`, tried again while it fails with ETXTBSY. Returns
    /// the pid and the error number (0 when the child runs).
    static func launch(path: String, argv: [String], environment: [String: String],
                       actions: UnsafePointer<posix_spawn_file_actions_t>?,
                       attributes: UnsafePointer<posix_spawnattr_t>) -> (pid: pid_t, errno: Int32) {
        let cArgs = argv.map { strdup($0) } + [nil]
        let cEnv = environment.sorted { $0.key < $1.key }.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for p in cArgs { free(p) }
            for p in cEnv { free(p) }
        }
        var pid: pid_t = 0
        var rc: Int32 = 0
        for retry in 0...Self.textBusyRetries {
            rc = cArgs.withUnsafeBufferPointer { args in
                cEnv.withUnsafeBufferPointer { envp in
                    posix_spawn(&pid, path, actions, attributes,
                                UnsafeMutablePointer(mutating: args.baseAddress!),
                                UnsafeMutablePointer(mutating: envp.baseAddress!))
                }
            }
            // ETXTBSY: the program file is open for writing somewhere. When a
            // script has just been written, that is often a child another
            // thread is spawning at this moment, which holds a copy of the
            // writer's descriptor until its own exec. It passes in microseconds.
            guard rc == ETXTBSY, retry < Self.textBusyRetries else { break }
            usleep(useconds_t(5_000 << retry)) // 5, 10, 20, 40, 80 ms
        }
        return (pid, rc)
    }

    /// `posix_spawn` reports a missing working directory with the same errno
    /// as a missing program; tell the operator which one it was.
    private static func failure(program: String, errno rc: Int32, workingDirectory: String?) -> SpawnFailure {
        if let workingDirectory, rc == ENOENT || rc == EACCES || rc == ENOTDIR {
            var info = stat()
            if stat(workingDirectory, &info) != 0 {
                let err = errno
                return SpawnFailure(program: program, errno: err,
                                    message: "cannot run \(program): working directory \(workingDirectory): \(Posix.errorText(err))")
            }
            if (info.st_mode & S_IFMT) != S_IFDIR {
                return SpawnFailure(program: program, errno: ENOTDIR,
                                    message: "cannot run \(program): working directory \(workingDirectory): \(Posix.errorText(ENOTDIR))")
            }
        }
        return SpawnFailure(program: program, errno: rc, message: "cannot run \(program): \(Posix.errorText(rc))")
    }

    /// A program with a `/` is used as given; a bare name is searched in
    /// `PATH` like `execvp` does: the first executable regular file wins, and
    /// "Permission denied" is reported only when nothing runnable was found
    /// but something was there.
    static func resolve(_ program: String, environment: [String: String]) -> Result<String, SpawnFailure> {
        if program.contains("/") { return .success(program) }
        let searchPath = environment["PATH"] ?? getenv("PATH").map { String(cString: $0) } ?? ""
        let path = searchPath.isEmpty ? "/usr/local/bin:/usr/bin:/bin" : searchPath
        var sawDenied = false
        for entry in path.split(separator: ":", omittingEmptySubsequences: false) {
            let directory = entry.isEmpty ? "." : String(entry)
            let candidate = directory.hasSuffix("/") ? directory + program : directory + "/" + program
            var info = stat()
            guard stat(candidate, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { continue }
            if access(candidate, X_OK) == 0 { return .success(candidate) }
            sawDenied = true
        }
        let err = sawDenied ? EACCES : ENOENT
        return .failure(SpawnFailure(program: program, errno: err,
                                     message: "cannot run \(program): \(Posix.errorText(err)) (searched PATH=\(path))"))
    }
}
