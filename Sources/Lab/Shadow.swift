import Foundation
import Packets

/// Shadow VNets (the troubleshooting paper, part 2): a clone B of a production VNet A, with its
/// own namespaces and links and only the changes its file names (link costs, the queue). What
/// enters A is duplicated into B at the entry (the sender node, nftables `dup to` in the ip
/// family, routed to B's ingress); at the exit, one nftables set in the receiver says whose
/// output passes: the other's is counted and dropped. `lab promote` swaps that set in one
/// transaction; promoting the other back rolls it back.
///
/// A shadow is written as `[[shadow]]` (cloned when the file is read: routers and tun get the
/// `suffix`) or as a whole `[[vnet]]` with `shadow_of`.
extension Topology {
    public struct Shadow: Codable, Sendable, Equatable {
        /// The shadow VNet's name.
        public var name: String
        /// The production VNet it clones.
        public var of: String
        /// Added to each router's name and to the tun's (default "s"): node names stay 1-8 characters.
        public var suffix: String?
        /// Link costs that differ from the production's, by the link's first endpoint there (`in1:p11`).
        public var cost: [String: Int]?
        /// Its queue policy, if it differs.
        public var queue: QueuePolicy?
        /// Strict priority for a DSCP on its links (`"EF"`), if it differs.
        public var priority: String?

        enum CodingKeys: String, CodingKey, CaseIterable {
            case name, of, suffix, cost, queue, priority
        }

        /// The clone, as a VNet of the topology.
        func clone(in vnets: [VNet]) throws -> VNet {
            guard let production = vnets.first(where: { $0.name == of }) else {
                throw LabError("[[shadow]] \(name): no VNet '\(of)' to clone (\(vnets.map(\.name).joined(separator: ", ")))")
            }
            guard production.shadowOf == nil else { throw LabError("[[shadow]] \(name): \(of) is itself a shadow") }
            let suffix = self.suffix ?? "s"
            func renamed(_ router: String) -> String { router + suffix }
            var clone = production
            clone.name = name
            clone.tun = production.tun + suffix
            clone.routers = production.routers.map(renamed)
            clone.ingress = renamed(production.ingress)
            clone.egress = renamed(production.egress)
            clone.reserve = nil
            clone.shadowOf = of
            if let queue { clone.queue = queue }
            if let priority { clone.priority = priority }
            var unknown = Set((cost ?? [:]).keys)
            clone.links = production.links.map { link in
                var copy = link
                copy.endpoints = [Endpoint(node: renamed(link.a.node), interface: link.a.interface).description, Endpoint(node: renamed(link.b.node), interface: link.b.interface).description]
                if let cost = cost?[link.a.description] {
                    copy.cost = cost
                    unknown.remove(link.a.description)
                }
                return copy
            }
            if let first = unknown.sorted().first {
                throw LabError("[[shadow]] \(name): cost for '\(first)': no link of \(of) starts there (\(production.links.map { $0.a.description }.joined(separator: ", ")))")
            }
            return clone
        }
    }

    /// Each shadow VNet's index and its production VNet's index.
    public var shadowPairs: [(shadow: Int, production: Int)] {
        vnets.enumerated().compactMap { index, vnet in
            vnet.shadowOf.flatMap { name in vnets.firstIndex { $0.name == name } }.map { (index, $0) }
        }
    }
}

extension LabPlan {
    /// The node in front of the VNets' ingresses (the sender, or the access router with `[access]`).
    public var shadowEntryNode: String { links.first { $0.access && $0.b.interface == Self.ingressInterface }!.a.node }

    /// The entry node's `nft -f` input for its shadows: whatever it routes into a production
    /// VNet's access link is duplicated to the shadow's ingress. nil without shadows. Pairs with
    /// a VNet in `retired` (removed) or `idle` (not copied into now) are left out.
    public func shadowEntryRules(retired: Set<String> = [], idle: Set<String> = []) -> String? {
        let off = retired.union(idle)
        let pairs = topology.shadowPairs.filter { !off.contains(topology.vnets[$0.shadow].name) && !off.contains(topology.vnets[$0.production].name) }
        guard !topology.shadowPairs.isEmpty else { return nil }
        var rules = ["table ip vnetshadow {", "  chain entry {", "    type filter hook postrouting priority 0; policy accept;"]
        for pair in pairs {
            let production = links.first { $0.access && $0.vnet == pair.production && $0.b.interface == Self.ingressInterface }!
            let shadow = links.first { $0.access && $0.vnet == pair.shadow && $0.b.interface == Self.ingressInterface }!
            rules.append(
                "    oifname \"\(production.a.interface)\" ip daddr \(receiverAddress) counter dup to \(shadow.bAddress) device \"\(shadow.a.interface)\" comment \"into \(topology.vnets[pair.shadow].name)\"")
        }
        rules += ["  }", "}"]
        // Refilled as a whole: made if missing, emptied, filled, in one transaction.
        return "table ip vnetshadow\nflush table ip vnetshadow\n" + rules.joined(separator: "\n") + "\n"
    }

    /// The sender's interface into each VNet's ingress: what is offered to the VNet.
    public func entryInterface(vnet: Int) -> String {
        links.first { $0.access && $0.vnet == vnet && $0.b.interface == Self.ingressInterface }!.a.interface
    }

    /// The receiver's interface from each VNet's egress.
    public func exitInterface(vnet: Int) -> String {
        links.first { $0.access && $0.vnet == vnet && $0.a.interface == Self.egressInterface }!.b.interface
    }

    /// The VNets (indices) of shadow pairs whose output the exit drops when `production` (VNet
    /// names) are the production ones.
    public func standbyVNets(production: Set<String>) -> Set<Int> {
        Set(topology.shadowPairs.flatMap { [$0.shadow, $0.production] }.filter { !production.contains(topology.vnets[$0].name) })
    }

    /// What identifies one packet and its copies at the exit: the addresses, IP id and length,
    /// and the first 16 bytes of the transport header (ports, and for UDP its checksum and
    /// payload start: RTP's sequence number, the media header; for TCP its sequence numbers).
    /// A copy made by `dup` is the same bytes, so it has the same key.
    static let copyKey = "ip saddr . ip daddr . ip id . ip length . @th,0,128"

    /// The receiver's `nft -f` input that makes the exit drop the output of the VNets in
    /// `standby` (indices): one transaction that refills the set of standby exits. The table is
    /// made on the first call (`create: true`), with the copy filter: every packet that leaves
    /// a pair's exit is remembered for `overlapS` seconds (a dynamic set, at most 65536 at a
    /// time), and a second copy within that time is counted and dropped. That is what makes a
    /// switch exact when the two VNets' delays differ: for a moment both pass, first copy wins.
    public func shadowExitRules(standby: Set<Int>, create: Bool, overlapS: Double = Lab.defaultOverlapS) -> String? {
        let pairs = topology.shadowPairs
        guard !pairs.isEmpty else { return nil }
        let exits = Set(pairs.flatMap { [$0.shadow, $0.production] }).sorted().map { "\"\(exitInterface(vnet: $0))\"" }
        let standby = standby.sorted().map { "\"\(exitInterface(vnet: $0))\"" }
        var lines: [String] = []
        if create {
            let timeoutMs = max(1, Int((overlapS * 1000).rounded()))
            lines += [
                "table ip vnetshadow {", "  set standby { type ifname; }",
                "  set paired { type ifname; elements = { \(exits.joined(separator: ", ")) }; }",
                "  set seen { typeof \(Self.copyKey); size 65536; flags dynamic,timeout; timeout \(timeoutMs)ms; }",
                "  counter standby { }", "  counter copies { }", "  chain exit {",
                "    type filter hook prerouting priority -300; policy accept;",
                "    iifname @standby counter name \"standby\" drop",
                "    iifname @paired \(Self.copyKey) @seen counter name \"copies\" drop",
                "    iifname @paired add @seen { \(Self.copyKey) }", "  }", "}",
            ]
        }
        lines.append("flush set ip vnetshadow standby")
        if !standby.isEmpty { lines.append("add element ip vnetshadow standby { \(standby.joined(separator: ", ")) }") }
        return lines.joined(separator: "\n") + "\n"
    }
}

extension Lab {
    func setUpShadows() throws {
        guard let entry = plan.shadowEntryRules() else { return }
        state.production = Dictionary(uniqueKeysWithValues: plan.topology.shadowPairs.map { (plan.topology.vnets[$0.production].name, plan.topology.vnets[$0.production].name) })
        try host.run(["ip", "netns", "exec", plan.namespace(plan.shadowEntryNode), "nft", "-f", "-"], input: entry)
        try host.run(
            ["ip", "netns", "exec", plan.namespace(plan.topology.receiver), "nft", "-f", "-"],
            input: plan.shadowExitRules(standby: plan.standbyVNets(production: Set(state.production.values)), create: true)!)
    }

    /// How long, at a switch, both VNets' outputs pass with the copy filter (first copy wins):
    /// longer than the old production VNet keeps a packet queued (its queue_ms), and what the
    /// exit remembers each packet for.
    public static let defaultOverlapS = 1.0

    /// What `lab promote` did.
    public struct Promotion: Codable, Sendable {
        public var production: String
        public var standby: String
        /// The switch's transaction.
        public var tookMs: Double
        /// How long both outputs passed, first copy winning, before the standby one was dropped.
        public var overlapS: Double

        enum CodingKeys: String, CodingKey {
            case production, standby
            case tookMs = "took_ms"
            case overlapS = "overlap_s"
        }
    }

    /// Makes `vnet` (a production VNet or its shadow) the one whose output reaches the receiver,
    /// in one nftables transaction at the exit. For `overlapS` after it both outputs pass and the
    /// exit's copy filter lets each packet through once, whichever VNet brings it first: what
    /// the old VNet still had queued is not lost, what the new one brings late is not doubled.
    /// A second transaction then drops the other's output (counted) from then on.
    @discardableResult
    public func promote(vnet: String, overlapS: Double = Lab.defaultOverlapS) throws -> Promotion {
        lock.lock()
        defer { lock.unlock() }
        return try promoteLocked(vnet: vnet, overlapS: overlapS)
    }

    func promoteLocked(vnet: String, overlapS: Double) throws -> Promotion {
        guard overlapS >= 0, overlapS <= 30 else { throw LabError("the overlap of a switch is 0-30 s, not \(overlapS)") }
        let vnets = plan.topology.vnets
        guard let index = vnets.firstIndex(where: { $0.name == vnet }) else {
            throw LabError("no VNet '\(vnet)' in \(plan.topology.name) (\(vnets.map(\.name).joined(separator: ", ")))")
        }
        guard let pair = plan.topology.shadowPairs.first(where: { $0.shadow == index || $0.production == index }) else {
            throw LabError("VNet \(vnet) has no shadow and shadows none: nothing to promote it over")
        }
        let group = vnets[pair.production].name
        let other = vnets[index == pair.shadow ? pair.production : pair.shadow].name
        var next = state.production
        next[group] = vnet
        let standby = plan.standbyVNets(production: Set(next.values))
        let exit = ["ip", "netns", "exec", plan.namespace(plan.topology.receiver), "nft", "-f", "-"]
        let start = Date()
        // Both pass (first copy wins), then the old one is standby.
        try host.run(exit, input: plan.shadowExitRules(standby: standby.subtracting([pair.production, pair.shadow]), create: false)!)
        let took = Date().timeIntervalSince(start)
        lastEffective = Date()
        state.production = next
        try save()
        Thread.sleep(forTimeInterval: overlapS)
        try host.run(exit, input: plan.shadowExitRules(standby: standby, create: false)!)
        return Promotion(production: vnet, standby: other, tookMs: (took * 10_000).rounded() / 10, overlapS: overlapS)
    }

    /// What the exit dropped so far: output of a standby VNet, and second copies (the copy filter).
    public struct ExitDrops: Codable, Sendable, Equatable {
        public var standby: Int
        public var copies: Int
    }

    public func exitDrops() throws -> ExitDrops {
        let json = try host.run(["ip", "netns", "exec", plan.namespace(plan.topology.receiver), "nft", "-j", "list", "counters", "table", "ip", "vnetshadow"])
        let counters = try NFTCounters.parse(json)
        func packets(_ name: String) -> Int { counters[name] ?? 0 }
        return ExitDrops(standby: packets("standby"), copies: packets("copies"))
    }
}

extension Lab {
    /// Starts (`on`) or stops copying what enters the production VNet into its shadow `vnet`,
    /// in one transaction at the entry. A shadow not copied into is idle: it carries nothing,
    /// and its exit has nothing to drop. Copying again is the same call.
    public func setCopying(shadow vnet: String, on: Bool) throws {
        lock.lock()
        defer { lock.unlock() }
        try setCopyingLocked(shadow: vnet, on: on)
    }

    func setCopyingLocked(shadow vnet: String, on: Bool) throws {
        let vnets = plan.topology.vnets
        guard let index = vnets.firstIndex(where: { $0.name == vnet }), !state.retired.contains(vnet) else {
            throw LabError("no VNet '\(vnet)' up in \(plan.topology.name) (\(vnets.map(\.name).filter { !state.retired.contains($0) }.joined(separator: ", ")))")
        }
        guard let pair = plan.topology.shadowPairs.first(where: { $0.shadow == index }) else {
            throw LabError("VNet \(vnet) is no shadow: only a shadow VNet is copied into (\(plan.topology.shadowPairs.map { vnets[$0.shadow].name }.joined(separator: ", ")))")
        }
        guard on || state.production[vnets[pair.production].name] != vnet else {
            throw LabError("VNet \(vnet) is production: promote \(vnets[pair.production].name) first")
        }
        var idle = Set(state.idle)
        if on { idle.remove(vnet) } else { idle.insert(vnet) }
        try host.run(
            ["ip", "netns", "exec", plan.namespace(plan.shadowEntryNode), "nft", "-f", "-"],
            input: plan.shadowEntryRules(retired: Set(state.retired), idle: idle)!)
        lastEffective = Date()
        state.idle = idle.sorted()
        try save()
    }

    /// Removes `vnet`, the standby one of a VNet and its shadow: the entry stops copying, its
    /// birds stop and its namespaces go. If it was the production VNet (its shadow was
    /// promoted), what entered it now enters the shadow directly. Returns what it removed.
    @discardableResult
    public func retire(vnet: String) throws -> [String] {
        lock.lock()
        defer { lock.unlock() }
        return try retireLocked(vnet: vnet)
    }

    func retireLocked(vnet: String) throws -> [String] {
        let vnets = plan.topology.vnets
        guard let index = vnets.firstIndex(where: { $0.name == vnet }), !state.retired.contains(vnet) else {
            throw LabError("no VNet '\(vnet)' up in \(plan.topology.name) (\(vnets.map(\.name).filter { !state.retired.contains($0) }.joined(separator: ", ")))")
        }
        guard let pair = plan.topology.shadowPairs.first(where: { $0.shadow == index || $0.production == index }) else {
            throw LabError("VNet \(vnet) has no shadow and shadows none: lab down removes the whole lab")
        }
        let group = vnets[pair.production].name
        guard state.production[group] != vnet else {
            throw LabError("VNet \(vnet) is production: promote \(vnets[index == pair.shadow ? pair.production : pair.shadow].name) first")
        }
        var retired = Set(state.retired)
        retired.insert(vnet)
        let entry = plan.namespace(plan.shadowEntryNode)
        if index == pair.production {
            guard plan.topology.access == nil else { throw LabError("retiring a production VNet behind [access] is not supported yet: retire its shadow, or lab down") }
            // What is routed into the old VNet (its tun, its classes) now enters the shadow.
            let via = plan.senderNextHop(vnet: pair.shadow).description
            try host.run(["ip", "-n", entry, "route", "replace", plan.receiverAddress.description, "via", via, "table", String(100 + index + 1)])
            // The main table's route for the sender's own sockets, if it went through the old VNet.
            let fallback = plan.topology.defaultVNet.flatMap { name in vnets.firstIndex { $0.name == name } } ?? 0
            if !plan.topology.classes.isEmpty && fallback == index {
                try host.run(["ip", "-n", entry, "route", "replace", plan.receiverAddress.description, "via", via, "src", plan.tunAddress(vnet: pair.shadow).description])
            }
        }
        try host.run(["ip", "netns", "exec", entry, "nft", "-f", "-"], input: plan.shadowEntryRules(retired: retired, idle: Set(state.idle))!)
        var removed: [String] = []
        let routers = Set(vnets[index].routers)
        for pid in routers.compactMap(birdProcess) { kill(pid, SIGTERM) }
        usleep(200_000)
        for router in vnets[index].routers {
            let namespace = plan.namespace(router)
            signal(((try? host.run(["ip", "netns", "pids", namespace])) ?? "").split(separator: "\n").compactMap { Int32($0) }, in: namespace, SIGKILL)
            try host.run(["ip", "netns", "del", namespace])
            state.namespaces.removeAll { $0 == namespace }
            removed.append("namespace \(namespace)")
        }
        state.birds.removeAll { routers.contains($0) }
        state.retired = retired.sorted()
        try save()
        return removed
    }
}
