import Foundation

/// Removing a lab: exactly what its state says it made.
extension Lab {
    /// Removes everything this lab made; safe to call twice, or on a half-built lab.
    /// Returns what it removed.
    ///
    /// Over hosts, a host that does not answer is left alone (each of its commands would wait
    /// for ssh's timeout): its part stays in the lab's state, which is kept, `leftBehind` says
    /// what and why, and `lab down` run again once the host is back removes the rest.
    @discardableResult
    public func down() -> [String] {
        var removed: [String] = []
        let away = unreachableHosts()
        leftBehind = away.sorted { $0.key < $1.key }.map { name, why in
            let namespaces = state.namespaces.filter { plan.host(ofNamespace: $0) == name }
            return "host \(name) could not be reached (\(why)): left there: \(namespaces.isEmpty ? "the lab's folder" : namespaces.joined(separator: ", ")); run `vnetstream lab down --id \(runID)` again once it answers"
        }
        let reachable = state.namespaces.filter { plan.host(ofNamespace: $0).map { away[$0] == nil } ?? true }
        let birds = birdProcesses()
        for pid in birds { kill(pid, SIGTERM) }
        if !birds.isEmpty { removed.append("\(birds.count) bird process(es)") }
        // Every process inside the lab's namespaces is the lab's too: senders, receivers.
        for namespace in reachable {
            let pids = ((try? host.run(["ip", "netns", "pids", namespace])) ?? "").split(separator: "\n").compactMap { Int32($0) }
            signal(pids, in: namespace, SIGTERM)
            if !pids.isEmpty { removed.append("\(pids.count) process(es) in \(namespace)") }
        }
        let deadline = Date().addingTimeInterval(2)
        while !birdProcesses().isEmpty && Date() < deadline { usleep(20_000) }
        for pid in birdProcesses() { kill(pid, SIGKILL) }
        for namespace in reachable {
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
        for namespace in reachable.reversed() {
            if (try? host.run(["ip", "netns", "del", namespace])) != nil { removed.append("namespace \(namespace)") }
        }
        // Over hosts, each host's copy of the folder (bird's files and logs).
        if let placed = host as? PlacedHosts {
            for (name, each) in placed.hosts.sorted(by: { $0.key < $1.key }) where away[name] == nil && (try? each.run(["rm", "-rf", directory], input: nil, timeout: 10)) != nil {
                removed.append("\(directory) on \(name)")
            }
        }
        // Emulated hosts go as a whole below, with whatever of the lab is on them.
        guard away.isEmpty || emulated != nil else {
            // What is left stays on record, for the next `lab down`.
            state.namespaces.removeAll { reachable.contains($0) }
            state.birds.removeAll { router in plan.topology.host(of: router).map { away[$0] == nil } ?? true }
            try? save()
            return removed
        }
        if (try? FileManager.default.removeItem(atPath: directory)) != nil { removed.append(directory) }
        state.namespaces.removeAll()
        state.birds.removeAll()
        if let emulated {
            emulated.down()
            removed.append("\(emulated.count) emulated host(s)")
            leftBehind = []
        }
        return removed
    }

    /// The lab's ssh hosts that do not answer a fresh connection now (not one shared with other
    /// sessions, which may hang on a dead peer), by name, with what ssh said; asked in parallel.
    func unreachableHosts() -> [String: String] {
        guard let placed = host as? PlacedHosts else { return [:] }
        let hosts = placed.hosts.compactMap { $0.value as? SSHHost }
        let lock = NSLock()
        nonisolated(unsafe) var away: [String: String] = [:]
        DispatchQueue.concurrentPerform(iterations: hosts.count) { index in
            var direct = hosts[index]
            direct.controlPath = nil
            do { _ = try direct.run(["true"], input: nil, timeout: 15) } catch {
                lock.lock()
                away[hosts[index].name] = "\(error)"
                lock.unlock()
            }
        }
        return away
    }
}
