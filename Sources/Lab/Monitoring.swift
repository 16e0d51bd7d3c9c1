import Foundation

/// The monitoring VNets at lab up (`MonitorPlan` says what), and what a monitoring node needs
/// to know of the router it watches.
extension Lab {
    func setUpMonitoring() throws {
        let monitoring = plan.monitoring
        guard !monitoring.monis.isEmpty else { return }
        for argv in monitoring.buildCommands(ports: plan.routerInterfaces(of:), namespace: plan.namespace) {
            try Lab.checkInterrupted()
            try host.run(argv)
        }
        for moni in monitoring.monis {
            if let rules = monitoring.nftRules(router: moni.router, ports: plan.routerInterfaces(of: moni.router)) {
                try host.run(["ip", "netns", "exec", plan.namespace(moni.router), "nft", "-f", "-"], input: rules)
            }
        }
    }

    /// A watched router's ports and their MAC addresses, `NAME=MAC`, as its monitoring node
    /// tells copies apart by (`vnetstream monitor watch --port`).
    public func monitorPorts(router: String) throws -> [String] {
        let json = try host.run(["ip", "-n", plan.namespace(router), "-j", "link", "show"])
        struct Device: Decodable {
            var ifname: String
            var address: String?
        }
        let devices = try JSONDecoder().decode([Device].self, from: Data(json.utf8))
        let ports = Set(plan.routerInterfaces(of: router))
        return devices.filter { ports.contains($0.ifname) }.compactMap { device in device.address.map { "\(device.ifname)=\($0)" } }
    }
}

extension Lab {
    /// Copies the mirror link at `router` dropped (its TBF), so far; nil if it cannot be read.
    public func mirrorLinkDrops(router: String) -> Int? {
        let json = try? host.run(["tc", "-s", "-j", "-n", plan.namespace(router), "qdisc", "show"])
        return json.flatMap { try? RootQdiscCounters.parse($0) }?[MonitorPlan.routerMirrorInterface]?.drops
    }
}

extension Topology.Monitor {
    /// Its keys, for files that carry `[[monitor]]` sections of their own.
    public static var keySchema: KeySchema { KeySchema(CodingKeys.self) }
}

extension Lab {
    /// `vnetstream` arguments that run `moni`'s node (`monitor watch`), with the ports of the
    /// router it watches read from the kernel now.
    public func monitorWatchArguments(_ moni: MonitorPlan.Moni, intervalS: Double = 1, durationS: Double = 3600, json: String? = nil) throws -> [String] {
        let collector = plan.monitoring.collector!.description
        return ["monitor", "watch", "--node", moni.node, "--router", moni.router, "--vnet", plan.topology.vnets[moni.vnet].name,
            "--filter", moni.filter.bpf, "--collector", collector, "--interval", String(intervalS), "--duration", String(durationS)]
            + (json.map { ["--json-file", $0] } ?? []) + (try monitorPorts(router: moni.router)).flatMap { ["--port", $0] }
    }

    /// `vnetstream` arguments that run the collector (`monitor collect`) into `records`.
    public func collectorArguments(records: String, durationS: Double = 3600, json: String? = nil) -> [String] {
        ["monitor", "collect", "--listen", plan.monitoring.collector!.description, "--out", records, "--duration", String(durationS), "--linger", "1"]
            + (json.map { ["--json-file", $0] } ?? [])
    }
}
