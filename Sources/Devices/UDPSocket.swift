import CNetShims
import Packets
#if canImport(Glibc)
import Glibc
#endif

/// A non-blocking IPv4 UDP socket that reports each datagram's TOS byte. Owns its descriptor.
public final class UDPSocket: @unchecked Sendable {
    public let fileDescriptor: Int32
    public let local: UDPEndpoint

    /// A datagram as it arrived.
    public struct Arrival {
        public var count: Int
        public var source: UDPEndpoint
        /// The IPv4 TOS byte it carried (nil if the kernel did not say).
        public var tos: UInt8?
        /// When the kernel received it (CLOCK_REALTIME, nanoseconds; nil if it did not say):
        /// unaffected by how late this process got to read it, so gaps between arrivals are
        /// the network's, not the scheduler's.
        public var kernelTimeNanoseconds: Int64?
        /// With coalescing on: the size of each datagram the kernel merged into this one (all but
        /// the last have exactly this size); nil for a single datagram.
        public var segmentBytes: Int?

        public init(count: Int, source: UDPEndpoint, tos: UInt8?, kernelTimeNanoseconds: Int64?, segmentBytes: Int? = nil) {
            self.count = count
            self.source = source
            self.tos = tos
            self.kernelTimeNanoseconds = kernelTimeNanoseconds
            self.segmentBytes = segmentBytes
        }
    }

    /// Binds to `local` (address 0.0.0.0 for any) with IP_RECVTOS and SO_TIMESTAMPNS on and a receive buffer of
    /// `receiveBufferBytes`.
    public init(bind local: UDPEndpoint, receiveBufferBytes: Int32 = 4 << 20) throws {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SystemError("socket", "UDP", errno: errno) }
        var on: Int32 = 1
        var size = receiveBufferBytes
        setsockopt(fd, Int32(IPPROTO_IP), IP_RECVTOS, &on, socklen_t(MemoryLayout<Int32>.size))
        vns_enable_receive_timestamps(fd)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in(endpoint: local)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else {
            let code = errno
            close(fd)
            let hint =
                code == EADDRNOTAVAIL ? "\(local.address) is not an address of this host (or network namespace)"
                : code == EADDRINUSE ? "another socket is bound to port \(local.port)" : nil
            throw SystemError("bind", "UDP \(local)", errno: code, hint: hint)
        }
        self.fileDescriptor = fd
        self.local = local
    }

    deinit { close(fileDescriptor) }

    /// Lets the kernel hand over several datagrams of one flow at once (UDP GRO); `receive` and
    /// `receiveBatch` then give their segment size. False where the kernel has no UDP GRO.
    @discardableResult
    public func enableCoalescing() -> Bool { vns_enable_udp_gro(fileDescriptor) == 0 }

    /// Up to `arrivals.count` (at most 64) datagrams at once (recvmmsg), into consecutive slots of
    /// `slotBytes` in `buffer`: datagram i is at `i * slotBytes`. Returns how many (0: none waiting).
    public func receiveBatch(into buffer: UnsafeMutableRawBufferPointer, slotBytes: Int, arrivals: inout [Arrival]) throws -> Int {
        let count = min(arrivals.count, 64, buffer.count / slotBytes)
        while true {
            let received = withUnsafeTemporaryAllocation(of: vns_datagram.self, capacity: count) { out -> Int32 in
                let n = vns_recv_batch(fileDescriptor, buffer.baseAddress!.assumingMemoryBound(to: UInt8.self), slotBytes, Int32(count), out.baseAddress!)
                if n > 0 {
                    for i in 0..<Int(n) {
                        let d = out[i]
                        arrivals[i] = Arrival(
                            count: d.length, source: UDPEndpoint(address: IPv4Address(d.source_addr), port: d.source_port),
                            tos: d.tos >= 0 ? UInt8(d.tos) : nil, kernelTimeNanoseconds: d.kernel_ns >= 0 ? d.kernel_ns : nil,
                            segmentBytes: d.segment > 0 ? Int(d.segment) : nil)
                    }
                }
                return n
            }
            if received >= 0 { return Int(received) }
            if errno == EINTR { continue }
            if errno == EAGAIN { return 0 }
            throw SystemError("recvmmsg", "UDP \(local)", errno: errno)
        }
    }

    /// Marks every datagram this socket sends with `tos` (IP_TOS), as any application can.
    public func setTypeOfService(_ tos: UInt8) throws {
        var value = Int32(tos)
        guard setsockopt(fileDescriptor, Int32(IPPROTO_IP), IP_TOS, &value, socklen_t(MemoryLayout<Int32>.size)) == 0 else {
            throw SystemError("setsockopt IP_TOS", "UDP \(local)", errno: errno)
        }
    }

    /// Joins multicast group `group` on every interface that is up and has an IPv4 address
    /// (loopback aside): a member need not know which link its copies come in on. Returns the
    /// interfaces joined; throws when there is none.
    @discardableResult
    public func join(group: IPv4Address) throws -> [String] {
        var list: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&list) == 0 else { throw SystemError("getifaddrs", "joining \(group)", errno: errno) }
        defer { freeifaddrs(list) }
        var joined: [String] = []
        var entry = list
        while let current = entry {
            defer { entry = current.pointee.ifa_next }
            let flags = Int32(current.pointee.ifa_flags)
            guard let address = current.pointee.ifa_addr, address.pointee.sa_family == sa_family_t(AF_INET),
                flags & Int32(IFF_UP) != 0, flags & Int32(IFF_LOOPBACK) == 0
            else { continue }
            let local = address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_addr }
            var request = ip_mreq(imr_multiaddr: in_addr(s_addr: group.value.bigEndian), imr_interface: local)
            let name = String(cString: current.pointee.ifa_name)
            guard setsockopt(fileDescriptor, Int32(IPPROTO_IP), IP_ADD_MEMBERSHIP, &request, socklen_t(MemoryLayout<ip_mreq>.size)) == 0 else {
                throw SystemError("setsockopt IP_ADD_MEMBERSHIP \(group)", "UDP \(local) on \(name)", errno: errno)
            }
            joined.append(name)
        }
        guard !joined.isEmpty else { throw SystemError("joining \(group)", "UDP \(self.local): no interface is up with an IPv4 address", errno: ENODEV) }
        return joined
    }

    /// The next datagram, or nil when none is waiting.
    public func receive(into buffer: UnsafeMutableRawBufferPointer) throws -> Arrival? {
        var address: UInt32 = 0
        var port: UInt16 = 0
        var tos: Int32 = -1
        var stamp: Int64 = -1
        while true {
            let count = vns_recv_with_tos(fileDescriptor, buffer.baseAddress, buffer.count, &address, &port, &tos, &stamp)
            if count >= 0 {
                return Arrival(
                    count: count, source: UDPEndpoint(address: IPv4Address(address), port: port),
                    tos: tos >= 0 ? UInt8(tos) : nil, kernelTimeNanoseconds: stamp >= 0 ? stamp : nil)
            }
            if errno == EINTR { continue }
            if errno == EAGAIN { return nil }
            throw SystemError("recvmsg", "UDP \(local)", errno: errno)
        }
    }

    /// Sends one datagram. Returns false when the send would block or the route is missing for
    /// the moment (a report is best effort; the next one follows shortly).
    @discardableResult
    public func send(_ bytes: [UInt8], to destination: UDPEndpoint) throws -> Bool {
        var address = sockaddr_in(endpoint: destination)
        while true {
            let sent = bytes.withUnsafeBytes { data in
                withUnsafePointer(to: &address) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        sendto(fileDescriptor, data.baseAddress, data.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                    }
                }
            }
            if sent >= 0 { return true }
            switch errno {
            case EINTR: continue
            // EPERM: a netfilter rule of this host dropped it (the lab's random loss on the
            // link it leaves by): lost like any datagram the network drops.
            case EAGAIN, ENOBUFS, ENETUNREACH, EHOSTUNREACH, ECONNREFUSED, EPERM: return false
            default: throw SystemError("sendto", "UDP \(destination)", errno: errno)
            }
        }
    }
}

extension sockaddr_in {
    init(endpoint: UDPEndpoint) {
        self.init()
        sin_family = sa_family_t(AF_INET)
        sin_port = endpoint.port.bigEndian
        sin_addr = in_addr(s_addr: endpoint.address.value.bigEndian)
    }
}

/// Waits until one of `descriptors` is readable or about `timeoutNanoseconds` pass (nil:
/// forever; rounded down to whole milliseconds, so it never waits past a deadline: callers that
/// need a precise wake-up follow with `Pacer.wait`). Returns which are readable.
public func waitForReadable(_ descriptors: [Int32], timeoutNanoseconds: Int64?) throws -> [Bool] {
    var fds = descriptors.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
    let timeout = timeoutNanoseconds.map { Int32(clamping: max(0, $0) / 1_000_000) } ?? -1
    let ready = fds.withUnsafeMutableBufferPointer { poll($0.baseAddress, nfds_t($0.count), timeout) }
    if ready >= 0 { return fds.map { $0.revents & Int16(POLLIN | POLLERR) != 0 } }
    if errno == EINTR { return fds.map { _ in false } }
    throw SystemError("poll", "\(descriptors.count) descriptors", errno: errno)
}
