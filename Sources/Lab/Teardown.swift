import Foundation

/// Removing a lab: exactly what its state says it made.
extension Lab {
    /// Removes everything this lab made; safe to call twice, or on a half-built lab.
    /// Returns what it removed.
    @discardableResult
    public func down() -> [String] {
        var removed: [String] = []
        let birds = birdProcesses()
        for pid in birds { kill(pid, SIGTERM) }
        if !birds.isEmpty { removed.append("\(birds.count) bird process(es)") }
        // Every process inside the lab's namespaces is the lab's too: senders, receivers.
        for namespace in state.namespaces {
            let pids = ((try? host.run(["ip", "netns", "pids", namespace])) ?? "").split(separator: "\n").compactMap { Int32($0) }
            signal(pids, in: namespace, SIGTERM)
            if !pids.isEmpty { removed.append("\(pids.count) process(es) in \(namespace)") }
        }
        let deadline = Date().addingTimeInterval(2)
        while !birdProcesses().isEmpty && Date() < deadline { usleep(20_000) }
        for pid in birdProcesses() { kill(pid, SIGKILL) }
        for namespace in state.namespaces {
            while true {
                let pids = ((try? host.run(["ip", "netns", "pids", namespace])) ?? "").split(separator: "\n").compactMap { Int32($0) }
                if pids.isEmpty { break }
                if Date() > deadline {
                    signal(pids, in: namespace, SIGKILL)
                    usleep(100_000)
                    break
                }
                usleep(20_000)
            }
        }
        for namespace in state.namespaces.reversed() {
            if (try? host.run(["ip", "netns", "del", namespace])) != nil { removed.append("namespace \(namespace)") }
        }
        if (try? FileManager.default.removeItem(atPath: directory)) != nil { removed.append(directory) }
        // Over hosts, each host's copy of the folder (bird's files and logs).
        if let placed = host as? PlacedHosts {
            for (name, each) in placed.hosts.sorted(by: { $0.key < $1.key }) where (try? each.run(["rm", "-rf", directory], input: nil, timeout: 10)) != nil {
                removed.append("\(directory) on \(name)")
            }
        }
        state.namespaces.removeAll()
        state.birds.removeAll()
        if let emulated {
            emulated.down()
            removed.append("\(emulated.count) emulated host(s)")
        }
        return removed
    }
}
