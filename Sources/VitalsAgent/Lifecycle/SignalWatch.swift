import Foundation
import Synchronization

/// The agent's signals. Threads already exist (the runtime's), so a signal
/// may land on any of them: the default actions are ignored and the signals
/// taken through dispatch sources, which see them whichever thread they hit.
/// SIGPIPE is ignored (a closed socket is an error from `send`, not a death).
/// Made and used on the thread that runs the agent.
final class SignalWatch {
    private let queue = DispatchQueue(label: "vitals.signals")
    private var sources: [any DispatchSourceSignal] = []
    private let stopSignal = StopSignal()

    init() {
        signal(SIGPIPE, SIG_IGN)
        for number in [SIGINT, SIGTERM] {
            watch(number) { [stopSignal] in stopSignal.signal(number) }
        }
    }

    deinit {
        sources.forEach { $0.cancel() }
    }

    /// Calls `body` on each SIGHUP.
    func onHangup(_ body: @escaping @Sendable () -> Void) {
        watch(SIGHUP, body)
    }

    /// Blocks until SIGINT or SIGTERM; returns the first one received.
    func waitForStop() -> Int32 {
        stopSignal.wait()
    }

    private func watch(_ number: Int32, _ body: @escaping @Sendable () -> Void) {
        signal(number, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: number, queue: queue)
        source.setEventHandler(handler: body)
        source.resume()
        sources.append(source)
    }
}

/// The first stop signal received; `wait()` blocks until there is one.
final class StopSignal: Sendable {
    private let semaphore = DispatchSemaphore(value: 0)
    private let received = Mutex<Int32?>(nil)

    func signal(_ number: Int32) {
        let first = received.withLock { value -> Bool in
            guard value == nil else { return false }
            value = number
            return true
        }
        if first { semaphore.signal() }
    }

    func wait() -> Int32 {
        semaphore.wait()
        return received.withLock { $0 ?? SIGTERM }
    }
}

/// A reference filled in after construction, for closures made before their target exists.
final class Late<Value: AnyObject & Sendable>: Sendable {
    init() {}
    private let box = Mutex<Value?>(nil)
    var value: Value? {
        get { box.withLock { $0 } }
        set { box.withLock { $0 = newValue } }
    }
}
