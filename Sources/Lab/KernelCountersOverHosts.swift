import Foundation

extension Lab {
    /// Several routers' counters on one host in one shell session: each read's output after a
    /// marker line, or a failure marker (three tries for the session, as for single reads).
    func readCounters(routers: [String], on door: any Host) -> [(counters: [String: InterfaceCounters], failures: [String])] {
        var script = ""
        for router in routers {
            for command in Self.counterCommands(namespace: plan.namespace(router)) {
                script += "echo '@@vnetstream \(command.kind) \(router)'; \(SSHHost.remoteCommand(command.argv)) 2>/dev/null || echo '@@vnetstream-failed'\n"
            }
        }
        var output: String?
        var failure = ""
        for attempt in 0..<3 where output == nil {
            do { output = try door.run(["sh", "-c", script], input: nil, timeout: 10) } catch {
                failure = "\(error)"
                if attempt < 2 { usleep(200_000) }
            }
        }
        guard let output else { return routers.map { _ in ([:], ["reading the counters on \(door.name): \(failure)"]) } }
        var sections: [String: String] = [:]
        var current: String?
        for line in output.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("@@vnetstream ") {
                current = String(line.dropFirst("@@vnetstream ".count))
                sections[current!] = ""
            } else if line == "@@vnetstream-failed" {
                if let key = current { sections[key] = nil }
                current = nil
            } else if let key = current {
                sections[key]! += line + "\n"
            }
        }
        return routers.map { router in
            let commands = Self.counterCommands(namespace: plan.namespace(router))
            let texts = commands.map { sections["\($0.kind) \(router)"] }
            let failures = zip(commands, texts).filter { $1 == nil }.map { "\($0.0.argv.joined(separator: " ")) on \(door.name): failed" }
            return (counters(router: router, nft: texts[0], qdiscs: texts[1], devices: texts[2]), failures)
        }
    }
}
