import Foundation

/// bird2, one per router of every VNet: its configuration file, socket and pid file in the
/// lab's folder.
extension Lab {
    func file(_ router: String, _ suffix: String) -> String { "\(directory)/\(router).\(suffix)" }

    func startBirds() throws {
        for vnet in plan.topology.vnets {
            for router in vnet.routers {
                try plan.birdConfig(router: router, logDirectory: directory).write(toFile: file(router, "conf"), atomically: true, encoding: .utf8)
                state.birds.append(router)
                try save()
                try Lab.checkInterrupted()
                try host.startDaemon(
                    ["ip", "netns", "exec", plan.namespace(router), "bird", "-c", file(router, "conf"), "-s", file(router, "ctl"),
                     "-P", file(router, "pid")])
            }
        }
    }

    /// Bird processes started from this lab's folder, by their pid files (checked against the
    /// process's command line, so a reused pid is never killed).
    func birdProcesses() -> [Int32] { state.birds.compactMap(birdProcess) }

    /// The bird of `router`, by its pid file, if that process is still this lab's bird.
    func birdProcess(_ router: String) -> Int32? {
        guard let text = try? String(contentsOfFile: file(router, "pid"), encoding: .utf8),
            let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)),
            let cmdline = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline"),
            String(decoding: cmdline, as: UTF8.self).contains(directory)
        else { return nil }
        return pid
    }
}
