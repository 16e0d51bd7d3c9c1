import Packets
#if canImport(Glibc)
import Glibc
#endif

/// An interface's IPv4 address as the kernel has it.
public struct InterfaceAddress: Sendable, Equatable {
    public var local: IPv4Address
    /// The peer of a point-to-point address (`ip addr add A peer B`), if one was given.
    public var peer: IPv4Address?
    public var prefixLength: Int

    /// The first IPv4 address of interface `name`, or nil if it has none.
    public static func of(_ name: String) -> InterfaceAddress? {
        var list: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&list) == 0 else { return nil }
        defer { freeifaddrs(list) }
        var entry = list
        while let current = entry {
            defer { entry = current.pointee.ifa_next }
            guard String(cString: current.pointee.ifa_name) == name,
                let address = current.pointee.ifa_addr, address.pointee.sa_family == sa_family_t(AF_INET)
            else { continue }
            func ipv4(_ pointer: UnsafeMutablePointer<sockaddr>?) -> IPv4Address? {
                guard let pointer, pointer.pointee.sa_family == sa_family_t(AF_INET) else { return nil }
                return pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) {
                    IPv4Address(UInt32(bigEndian: $0.pointee.sin_addr.s_addr))
                }
            }
            let local = ipv4(address)!
            let mask = ipv4(current.pointee.ifa_netmask)?.value ?? 0xFFFF_FFFF
            let pointToPoint = current.pointee.ifa_flags & UInt32(IFF_POINTOPOINT) != 0
            let peer = pointToPoint ? ipv4(current.pointee.ifa_ifu.ifu_dstaddr) : nil
            return InterfaceAddress(local: local, peer: peer == local ? nil : peer, prefixLength: mask.nonzeroBitCount)
        }
        return nil
    }

    /// The address a host behind this interface would use: the peer of a point-to-point
    /// address, else the next address in the prefix (198.18.1.2 behind 198.18.1.1/30).
    public var farEnd: IPv4Address? {
        if let peer { return peer }
        guard prefixLength < 31 else { return nil }
        let hostMask: UInt32 = prefixLength == 0 ? .max : (1 << UInt32(32 - prefixLength)) - 1
        let next = local.value &+ 1
        guard next & hostMask != hostMask, next & hostMask != 0 else { return nil }
        return IPv4Address(next)
    }
}
