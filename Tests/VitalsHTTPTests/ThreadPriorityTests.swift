#if canImport(Glibc)
import Glibc
#endif
import CSystem
import Foundation
import Synchronization
import Testing
@testable import VitalsHTTP

/// The ids of this process's threads called `name`.
func threads(named name: String) -> [pid_t] {
    let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? []
    return tasks.compactMap { tid in
        let comm = (try? String(contentsOfFile: "/proc/self/task/\(tid)/comm", encoding: .utf8)) ?? ""
        return comm.trimmingCharacters(in: .whitespacesAndNewlines) == name ? pid_t(tid) : nil
    }
}

/// A thread pool may give its workers a priority of its own; the server's
/// loop thread, started from one, must run at the priority the operator gave
/// the process (`nice`, systemd's `Nice=`), not at the worker's.
@Suite("HTTPServer thread priority", .serialized)
struct ThreadPriorityTests {
    static let isRoot = geteuid() == 0
    /// A starter 5 lower than the process must still be a valid nice (at most 19).
    static let roomForALowerStarter = vitals_thread_nice(getpid()) <= 14

    @Test("the event-loop thread takes the process's nice value, not its starter's",
          .enabled(if: isRoot, "giving a thread back a higher priority needs root"),
          .enabled(if: roomForALowerStarter, "the tests run at nice 15 or more: no room for a starter 5 lower"))
    func loopThreadTakesTheProcessNice() throws {
        let process = vitals_thread_nice(getpid())
        let seen = Mutex<(starter: Int32, loops: [Int32])>((0, []))
        let done = DispatchSemaphore(value: 0)
        let starter = Thread {
            defer { done.signal() }
            // A starter at a lower priority than the process, as a pool worker may be.
            _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), id_t(vitals_thread_id()), process + 5)
            let mine = vitals_thread_nice(vitals_thread_id())
            try? withServer { server in
                // The loop answers once it runs; by then it has set its priority.
                let client = try TestClient(server.localAddresses[0])
                try client.send("GET / HTTP/1.1\r\nHost: t\r\n\r\n")
                _ = try client.readResponse()
                let loops = threads(named: "vitals-http").map { vitals_thread_nice($0) }
                seen.withLock { $0 = (mine, loops) }
            }
        }
        starter.start()
        done.wait()
        let (starterNice, loops) = seen.withLock { $0 }
        #expect(starterNice == process + 5, "the starter ran at a lower priority")
        #expect(!loops.isEmpty, "the loop thread is named vitals-http")
        #expect(loops.allSatisfy { $0 == process }, "loop threads at nice \(loops), process at \(process)")
    }
}
