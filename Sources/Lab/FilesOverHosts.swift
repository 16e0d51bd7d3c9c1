import Foundation

/// The files a run's processes write by path (`--json-file`, packet logs) on the hosts they run
/// on. A host whose filesystem is this machine's (an emulated host, as a rule) needs nothing;
/// on one apart (a real host, or an emulated one with its own mount there) the run's folders
/// are made before the processes start, and what they wrote is brought back after.
extension Lab {
    /// The lab's hosts over ssh on which `folder` is not this machine's: a marker file written
    /// here is not seen there.
    public func hostsApart(from folder: String) throws -> [SSHHost] {
        guard let placed = host as? PlacedHosts else { return [] }
        let marker = "\(folder)/.vnetstream-here-\(UUID().uuidString)"
        try Data().write(to: URL(fileURLWithPath: marker))
        defer { try? FileManager.default.removeItem(atPath: marker) }
        return placed.hosts.keys.sorted().compactMap { placed.hosts[$0] as? SSHHost }.filter { ssh in
            (try? ssh.run(["test", "-e", marker])) == nil
        }
    }

    /// Makes every folder under `folder` (itself included) on each host in `apart`.
    public func makeFolders(_ folder: String, on apart: [SSHHost]) throws {
        guard !apart.isEmpty else { return }
        var folders = [folder]
        if let walker = FileManager.default.enumerator(atPath: folder) {
            for case let path as String in walker {
                var directory: ObjCBool = false
                if FileManager.default.fileExists(atPath: "\(folder)/\(path)", isDirectory: &directory), directory.boolValue { folders.append("\(folder)/\(path)") }
            }
        }
        for ssh in apart { try ssh.run(["mkdir", "-p"] + folders) }
    }

    /// Brings back what each host in `apart` has under `folder` (one tar stream each, in base64
    /// over ssh), over the local copies of the same names; returns how many files came, by host.
    @discardableResult
    public func gather(_ folder: String, from apart: [SSHHost]) throws -> [String: Int] {
        var counts: [String: Int] = [:]
        for ssh in apart {
            let encoded = try ssh.run(["sh", "-c", "cd \(SSHHost.remoteCommand([folder])) && tar -cf - . | base64 -w 0"], input: nil, timeout: 120)
            guard let archive = Data(base64Encoded: encoded.trimmingCharacters(in: .whitespacesAndNewlines)) else {
                throw LabError("host \(ssh.name): what came back of \(folder) is not base64 (\(encoded.prefix(80)))")
            }
            let file = NSTemporaryDirectory() + "vnetstream-gather-\(UUID().uuidString).tar"
            try archive.write(to: URL(fileURLWithPath: file))
            defer { try? FileManager.default.removeItem(atPath: file) }
            let listed = try Command.run(["tar", "-tf", file]).split(separator: "\n").filter { !$0.hasSuffix("/") }
            try Command.run(["tar", "-xf", file, "-C", folder, "--no-same-owner"])
            counts[ssh.name] = listed.count
        }
        return counts
    }
}
