import Foundation

/// A link between two nodes on different hosts: a VXLAN pair, one VNI per link, UDP 4789 over
/// the underlay (containerlab's and Megalos' choice; this kernel has no GRE). Each end is made
/// in its host's own namespace, so that the tunnel's UDP socket stays on the underlay, and then
/// moved into the node's namespace and renamed there. The link's MTU is the underlay's less the
/// 50 bytes of VXLAN over IPv4 (outer IPv4 20, UDP 8, VXLAN 8, inner Ethernet 14).
public struct CrossHostLink: Sendable, Equatable {
    public struct End: Sendable, Equatable {
        /// The host's underlay address and the device it leaves by.
        public var underlayAddress: String
        public var underlayDevice: String
        /// The node's namespace on that host, and the link's device in it.
        public var namespace: String
        public var device: String
        /// `a.b.c.d/len`, or none.
        public var address: String?

        public init(underlayAddress: String, underlayDevice: String, namespace: String, device: String, address: String? = nil) {
            self.underlayAddress = underlayAddress
            self.underlayDevice = underlayDevice
            self.namespace = namespace
            self.device = device
            self.address = address
        }
    }

    public static let udpPort = 4789
    public static let overhead = 50
    /// VXLAN's network identifiers are 24 bits; 0 is left alone.
    public static let vnis: ClosedRange<UInt32> = 1...0xFF_FFFF

    public var vni: UInt32
    public var a: End
    public var b: End

    public init(vni: UInt32, a: End, b: End) throws {
        guard Self.vnis.contains(vni) else { throw LabError("VXLAN link: VNI \(vni) is not 1-16777215") }
        for end in [a, b] where end.device.count > 15 || end.device.isEmpty {
            throw LabError("VXLAN link \(vni): device name \(end.device) must be 1-15 characters")
        }
        self.vni = vni
        self.a = a
        self.b = b
    }

    /// The name the end has in its host's namespace before it moves (unique per VNI there).
    var transitName: String { "vxl\(vni)" }

    /// What `end`'s host runs to make its end, towards `peer`, with the underlay's MTU.
    public func commands(at end: End, peer: End, underlayMTU: Int) -> [[String]] {
        let inside = ["ip", "netns", "exec", end.namespace, "ip"]
        var commands = [
            [
                "ip", "link", "add", transitName, "type", "vxlan", "id", String(vni), "local", end.underlayAddress, "remote", peer.underlayAddress,
                "dstport", String(Self.udpPort), "dev", end.underlayDevice,
            ],
            ["ip", "link", "set", transitName, "mtu", String(underlayMTU - Self.overhead)],
            ["ip", "link", "set", transitName, "netns", end.namespace],
            inside + ["link", "set", transitName, "name", end.device],
        ]
        if let address = end.address { commands.append(inside + ["addr", "add", address, "dev", end.device]) }
        commands.append(inside + ["link", "set", end.device, "up"])
        return commands
    }

    /// Makes both ends, `a` on `hostA` and `b` on `hostB`; returns the link's MTU. If the second
    /// end fails, the first is removed again.
    @discardableResult
    public func up(_ hostA: any Host, _ hostB: any Host) throws -> Int {
        let mtus = try [(hostA, a), (hostB, b)].map { host, end in
            let text = try host.run(["cat", "/sys/class/net/\(end.underlayDevice)/mtu"]).trimmingCharacters(in: .whitespacesAndNewlines)
            guard let mtu = Int(text), mtu > Self.overhead + 576 else {
                throw LabError("host \(host.name): underlay device \(end.underlayDevice) has MTU \(text), too small for VXLAN")
            }
            return mtu
        }
        let mtu = mtus.min()!
        for command in commands(at: a, peer: b, underlayMTU: mtu) { try hostA.run(command) }
        do {
            for command in commands(at: b, peer: a, underlayMTU: mtu) { try hostB.run(command) }
        } catch {
            down(hostA, hostB)
            throw error
        }
        return mtu - Self.overhead
    }

    /// Removes both ends (each where it may be: moved, or still in transit); errors ignored.
    public func down(_ hostA: any Host, _ hostB: any Host) {
        for (host, end) in [(hostA, a), (hostB, b)] {
            _ = try? host.run(["ip", "netns", "exec", end.namespace, "ip", "link", "del", end.device])
            _ = try? host.run(["sh", "-c", "ip link del \(transitName) 2>/dev/null || true"])
        }
    }
}
