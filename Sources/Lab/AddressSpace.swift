import Packets

/// A VNet's own address space (`address_space = "10.0.0.0/24"`): the /30s of the links between
/// its routers come from it, and other VNets may share it (Docs/lab.md, "Naming and addresses").
extension Topology.VNet {
    /// `address_space` read: its first address and prefix length (nil: none given); throws
    /// when it is not an aligned IPv4 prefix of /8-/30 with a /30 for each link, or when it
    /// overlaps the lab's own 198.18.0.0/15.
    public func space() throws -> (base: IPv4Address, length: Int)? {
        guard let addressSpace else { return nil }
        let parts = addressSpace.split(separator: "/")
        guard parts.count == 2, let base = IPv4Address(String(parts[0])), let length = Int(parts[1]), (8...30).contains(length) else {
            throw LabError("address_space '\(addressSpace)' is not an IPv4 prefix of /8 to /30 (a.b.c.d/len)")
        }
        let size = UInt32(1) << UInt32(32 - length)
        guard base.value % size == 0 else { throw LabError("address_space '\(addressSpace)': the address is not the prefix's first") }
        guard Int(size / 4) >= links.count else {
            throw LabError("address_space '\(addressSpace)' holds \(size / 4) links of /30, and the VNet has \(links.count)")
        }
        let lab = IPv4Address("198.18.0.0")!.value
        guard base.value &+ size <= lab || base.value >= lab + (1 << 17) else {
            throw LabError("address_space '\(addressSpace)' overlaps 198.18.0.0/15, the lab's own (tuns, access links, the receiver)")
        }
        return (base, length)
    }
}
