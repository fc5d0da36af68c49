#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CSystem
import Synchronization

/// The one way Vitals starts a thread for a loop (the status server's epoll
/// loop, the prober's, child supervision): a pthread with a name `ps -L`
/// shows, running at the priority the operator gave the process (`nice`,
/// systemd's `Nice=`) rather than that of whichever thread started it (a
/// thread pool's worker may have been given the pool's own).
public final class LoopThread: Sendable {
    private let thread: pthread_t

    private init(thread: pthread_t) { self.thread = thread }

    /// Starts `body` on a new thread named `name` (at most 15 bytes are kept).
    /// `body` and what it captures belong to the new thread from then on.
    public static func start(name: String, _ body: sending @escaping () -> Void) throws(SystemCallError) -> LoopThread {
        let context = Unmanaged.passRetained(LoopThreadContext(name: name, body: body)).toOpaque()
        var thread = pthread_t()
        let rc = pthread_create(&thread, nil, vitalsLoopThreadMain, context)
        guard rc == 0 else {
            Unmanaged<LoopThreadContext>.fromOpaque(context).release()
            throw SystemCallError(call: "pthread_create(\(name))", errno: rc)
        }
        return LoopThread(thread: thread)
    }

    /// Starts `body` like `start`, and traps if the system cannot make a
    /// thread (the process is out of memory or of threads).
    public static func run(name: String, _ body: sending @escaping () -> Void) -> LoopThread {
        do {
            return try start(name: name, body)
        } catch {
            fatalError("cannot start the \(name) thread: \(error)")
        }
    }

    /// Starts `body` like `run`, for a thread nobody joins: its resources
    /// go back to the system when `body` returns.
    public static func detach(name: String, _ body: sending @escaping () -> Void) {
        pthread_detach(run(name: name, body).thread)
    }

    /// Whether the caller is this thread.
    public var isCurrent: Bool { pthread_equal(pthread_self(), thread) != 0 }

    /// Waits for the body to return. Called on the thread itself (a loop
    /// stopping itself), it detaches instead. Call once.
    public func join() {
        if isCurrent {
            pthread_detach(thread)
        } else {
            pthread_join(thread, nil)
        }
    }
}

private final class LoopThreadContext {
    let name: String
    let body: () -> Void
    init(name: String, body: @escaping () -> Void) {
        self.name = name
        self.body = body
    }
}

/// A top-level function, not a closure: see SWIFT-LINUX.md on Swift 6
/// isolation and pthreads.
private func vitalsLoopThreadMain(_ argument: UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer? {
    let context = Unmanaged<LoopThreadContext>.fromOpaque(argument!).takeRetainedValue()
    _ = vitals_thread_adopt_process_nice()
    _ = vitals_thread_set_name(String(context.name.utf8.prefix(15))!)
    context.body()
    return nil
}

extension LoopThread {
    /// Runs `body` on a new thread named `name` and returns what it returns.
    /// The calling task waits without holding a thread of the cooperative
    /// pool, so `body` may block for as long as it needs.
    public static func value<T: Sendable>(name: String, _ body: sending @escaping () -> T) async -> T {
        let handoff = Handoff(body)
        return await withCheckedContinuation { continuation in
            detach(name: name) { continuation.resume(returning: handoff.take()()) }
        }
    }
}

/// Carries a value that is `sending` (nobody else holds it) to the one thread that takes it.
private final class Handoff<Value>: Sendable {
    private let slot: Mutex<Value?>
    init(_ value: sending Value) { slot = Mutex(value) }
    func take() -> sending Value { slot.withLock { $0.take()! } }
}
