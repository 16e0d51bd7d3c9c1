import CNetShims
#if canImport(Glibc)
import Glibc
#endif

/// A tun interface this process is attached to: IPv4 packets written to it enter the kernel as
/// if they arrived on the interface; packets the kernel routes out of it are read here.
/// Owns its file descriptor and closes it when released.
public final class TunDevice: @unchecked Sendable {
    public let name: String
    public let fileDescriptor: Int32
    /// Attached with a virtio-net header (IFF_VNET_HDR): every packet carries one, which is how
    /// the kernel takes offloads such as UDP segmentation from us.
    public let virtioHeader: Bool
    /// Whether this kernel took a UDP-segmented write (nil: not tried yet).
    public private(set) var segmentationWorks: Bool?

    private init(name: String, fileDescriptor: Int32, virtioHeader: Bool) {
        self.name = name
        self.fileDescriptor = fileDescriptor
        self.virtioHeader = virtioHeader
    }

    deinit { close(fileDescriptor) }

    /// Attaches to the existing tun interface `name` (made by `ip tuntap add dev NAME mode tun`
    /// or by `vnetstream lab up`, with its addresses and routes). Reads are non-blocking.
    /// `virtioHeader` attaches with IFF_VNET_HDR, for `writeSegmented`.
    public static func attach(_ name: String, virtioHeader: Bool = false) throws -> TunDevice {
        guard !name.isEmpty, name.utf8.count < 16, !name.contains("/") else {
            throw SystemError("attach", "tun '\(name)'", errno: EINVAL, hint: "an interface name has 1 to 15 characters")
        }
        guard access("/sys/class/net/\(name)", F_OK) == 0 else {
            throw SystemError(
                "attach", "tun \(name)", errno: ENODEV,
                hint: "there is no interface \(name) in this network namespace; create it with "
                    + "`ip tuntap add dev \(name) mode tun`, give it an address and routes (vnetstream lab up does all that)")
        }
        guard access("/sys/class/net/\(name)/tun_flags", F_OK) == 0 else {
            throw SystemError("attach", "tun \(name)", errno: EINVAL, hint: "\(name) exists but is not a tun interface")
        }
        var step: Int32 = 0
        let fd = vns_tun_attach(name, virtioHeader ? 1 : 0, &step)
        guard fd >= 0 else {
            let code = errno
            if step == 1 {
                let hint =
                    code == ENOENT || code == ENODEV || code == ENXIO
                    ? "this system has no tun device: load the tun module (modprobe tun) or create it (mknod /dev/net/tun c 10 200)"
                    : code == EACCES || code == EPERM ? "/dev/net/tun needs read and write access: run as root" : nil
                throw SystemError("open", "/dev/net/tun", errno: code, hint: hint)
            }
            let hint =
                code == EPERM || code == EACCES
                ? "attaching to a tun interface needs CAP_NET_ADMIN: run as root (or create it with `ip tuntap add ... user UID`)"
                : code == EBUSY ? "another process is attached to \(name)" : nil
            throw SystemError("TUNSETIFF", "tun \(name)", errno: code, hint: hint)
        }
        let flags = fcntl(fd, F_GETFL)
        _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
        return TunDevice(name: name, fileDescriptor: fd, virtioHeader: virtioHeader)
    }

    /// The interface's MTU.
    public func mtu() throws -> Int {
        let mtu = vns_interface_mtu(name)
        guard mtu > 0 else { throw SystemError("SIOCGIFMTU", "tun \(name)", errno: errno) }
        return Int(mtu)
    }

    /// Writes one whole IPv4 packet. Returns false when the kernel would block (the packet is
    /// not sent: counted by the caller as a local drop).
    @discardableResult
    public func write(_ packet: UnsafeRawBufferPointer) throws -> Bool {
        while true {
            let written =
                virtioHeader
                ? vns_tun_write_vnet(fileDescriptor, packet.baseAddress, packet.count, 0)
                : Glibc.write(fileDescriptor, packet.baseAddress, packet.count)
            if written >= 0 { return true }
            if errno == EINTR { continue }
            if errno == EAGAIN || errno == ENOBUFS { return false }
            throw SystemError("write", "tun \(name)", errno: errno)
        }
    }

    /// Writes one IPv4/UDP packet whose payload the kernel cuts into `segmentBytes` pieces, each
    /// sent as its own IPv4/UDP packet with the same headers (UDP segmentation offload, Linux
    /// 6.2 and later): one system call for up to 64 packets. The UDP checksum field must hold
    /// the pseudo-header sum (`IPv4UDP.writeSegmentedHeaders`). Needs `virtioHeader`. Returns
    /// false when the kernel would block; throws `EINVAL` where the kernel has no such offload
    /// (and remembers it in `segmentationWorks`).
    public func writeSegmented(_ packet: UnsafeRawBufferPointer, segmentBytes: Int) throws -> Bool {
        precondition(virtioHeader && segmentBytes > 0 && segmentBytes <= 65535)
        while true {
            let written = vns_tun_write_vnet(fileDescriptor, packet.baseAddress, packet.count, UInt16(segmentBytes))
            if written >= 0 {
                segmentationWorks = true
                return true
            }
            if errno == EINTR { continue }
            if errno == EAGAIN || errno == ENOBUFS { return false }
            if errno == EINVAL && segmentationWorks == nil { segmentationWorks = false }
            throw SystemError("write (UDP segmentation offload)", "tun \(name)", errno: errno)
        }
    }

    /// Reads one packet the kernel routed out of the interface; nil when none is waiting.
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int? {
        while true {
            let count =
                virtioHeader
                ? vns_tun_read_vnet(fileDescriptor, buffer.baseAddress, buffer.count)
                : Glibc.read(fileDescriptor, buffer.baseAddress, buffer.count)
            if count >= 0 { return count }
            if errno == EINTR { continue }
            if errno == EAGAIN { return nil }
            throw SystemError("read", "tun \(name)", errno: errno)
        }
    }
}
