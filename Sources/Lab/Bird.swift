import Foundation

/// bird2, one per router of every VNet: its configuration file, socket and pid file in the
/// lab's folder.
extension Lab {
    func file(_ router: String, _ suffix: String) -> String { "\(directory)/\(router).\(suffix)" }

    /// Whether the lab's nodes are on other hosts, whose files and processes are their own:
    /// bird's files are written there, and processes are signalled there.
    var overHosts: Bool { host is PlacedHosts }

    func startBirds() throws {
        // Over hosts, each router's host gets the lab's folder and the router's configuration
        // (one ssh session per host); the copy here is the record.
        if overHosts {
            try host.runConcurrently(
                plan.topology.vnets.flatMap(\.routers).map { router in
                    (argv: ["ip", "netns", "exec", plan.namespace(router), "sh", "-c", "mkdir -p \(SSHHost.remoteCommand([directory])) && cat > \(SSHHost.remoteCommand([file(router, "conf")]))"],
                     input: plan.birdConfig(router: router, logDirectory: directory))
                })
        }
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
    /// Over hosts, none here: the birds run on their routers' hosts, and stop with the other
    /// processes of their namespaces (`down`).
    func birdProcesses() -> [Int32] { overHosts ? [] : state.birds.compactMap(birdProcess) }

    /// Sends `signal` to `pids` of `namespace`: here, or on the namespace's host.
    func signal(_ pids: [Int32], in namespace: String, _ signal: Int32) {
        guard !pids.isEmpty else { return }
        if overHosts {
            _ = try? host.run(["ip", "netns", "exec", namespace, "kill", "-\(signal)"] + pids.map(String.init), input: nil, timeout: 10)
        } else {
            for pid in pids { kill(pid, signal) }
        }
    }

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
