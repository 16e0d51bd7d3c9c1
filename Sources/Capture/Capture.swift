import CPcap
import Foundation

/// libpcap failed: which call, on which interface, and libpcap's own words.
public struct CaptureError: Error, CustomStringConvertible, Sendable {
    public var interface: String
    public var call: String
    public var message: String

    public var description: String {
        var text = "\(call) on \(interface): \(message)"
        if message.contains("ermission") || message.contains("not permitted") {
            text += "; capturing needs CAP_NET_RAW: run as root"
        }
        return text
    }
}

/// Records what arrives on one interface into a pcap file (readable by tcpdump and Wireshark),
/// on a thread of its own, from `init` (capture is active when it returns) until `stop()`.
public final class InterfaceCapture: @unchecked Sendable {
    public let interface: String
    public let file: String
    private let handle: OpaquePointer
    private let dumper: OpaquePointer
    private let lock = NSLock()
    private var stopping = false
    private var captured = 0
    private let finished = DispatchSemaphore(value: 0)
    /// What the packet callback needs: the file, and how far CLOCK_REALTIME is ahead of
    /// CLOCK_MONOTONIC now (nil: keep the kernel's wall-clock timestamps).
    private final class Writer {
        let dumper: OpaquePointer
        var realtimeAheadUs: Int64?
        /// CLOCK_MONOTONIC (µs) when this read began and when the one before began: a packet
        /// handed over now arrived after the one before began, whatever the wall clock did.
        var readUs: Int64 = 0
        var previousReadUs: Int64 = 0
        init(dumper: OpaquePointer, monotonic: Bool) {
            self.dumper = dumper
            realtimeAheadUs = monotonic ? 0 : nil
        }
    }
    private let writer: Writer

    /// What a capture recorded.
    public struct Summary: Sendable, Codable, Equatable {
        public var interface: String
        public var file: String
        /// Packets written to the file.
        public var packets: Int
        /// Packets the kernel dropped before libpcap could read them (should be 0).
        public var droppedByKernel: Int

        enum CodingKeys: String, CodingKey {
            case interface, file, packets
            case droppedByKernel = "dropped_by_kernel"
        }
    }

    /// Opens `interface` (inbound packets only) with a BPF `filter`, and starts writing `file`,
    /// keeping `snaplen` bytes of each packet (headers are enough to count a flow's bytes).
    /// `immediate`: each packet as it arrives; otherwise in blocks every 50 ms at most, which
    /// costs far less CPU at thousands of packets a second (the file is complete either way).
    /// `monotonic`: timestamps on CLOCK_MONOTONIC (seconds since boot) instead of the wall
    /// clock, which some machines step many times a second (this one: +0.5 ms every 0.1-0.3 s,
    /// 0.5 % fast against CLOCK_MONOTONIC); each block of packets is moved by the clocks'
    /// difference when it is read (within 5 ms of arrival when buffered), and kept within the
    /// span since the read before, so a step between arrival and read misplaces a packet by
    /// that little at most.
    public init(interface: String, file: String, filter: String, snaplen: Int = 65535, immediate: Bool = true, monotonic: Bool = false) throws {
        self.interface = interface
        self.file = file
        var errorBuffer = [CChar](repeating: 0, count: Int(PCAP_ERRBUF_SIZE))
        guard let handle = pcap_create(interface, &errorBuffer) else {
            throw CaptureError(interface: interface, call: "pcap_create", message: String(cString: errorBuffer))
        }
        pcap_set_snaplen(handle, Int32(snaplen))
        pcap_set_promisc(handle, 0)
        pcap_set_immediate_mode(handle, immediate ? 1 : 0)
        // In blocks with monotonic timestamps, a block is read within 5 ms of its first packet,
        // so that a wall-clock step can misplace little (this VM's clock stepped by up to ~1 s).
        pcap_set_timeout(handle, monotonic && !immediate ? 5 : 50)
        pcap_set_buffer_size(handle, 8 << 20)
        let status = pcap_activate(handle)
        guard status >= 0 else {
            let message = String(cString: pcap_geterr(handle))
            pcap_close(handle)
            throw CaptureError(interface: interface, call: "pcap_activate", message: message)
        }
        func fail(_ call: String) -> CaptureError {
            let error = CaptureError(interface: interface, call: call, message: String(cString: pcap_geterr(handle)))
            pcap_close(handle)
            return error
        }
        guard pcap_setdirection(handle, PCAP_D_IN) == 0 else { throw fail("pcap_setdirection") }
        var program = bpf_program()
        guard pcap_compile(handle, &program, filter, 1, PCAP_NETMASK_UNKNOWN) == 0 else { throw fail("pcap_compile '\(filter)'") }
        defer { pcap_freecode(&program) }
        guard pcap_setfilter(handle, &program) == 0 else { throw fail("pcap_setfilter") }
        guard let dumper = pcap_dump_open(handle, file) else { throw fail("pcap_dump_open \(file)") }
        self.handle = handle
        self.dumper = dumper
        self.writer = Writer(dumper: dumper, monotonic: monotonic)
        let thread = Thread { [self] in run() }
        thread.name = "capture \(interface)"
        thread.start()
    }

    /// Writes one packet, its timestamp moved onto CLOCK_MONOTONIC if asked.
    private static let write: pcap_handler = { user, header, bytes in
        guard let user, let header, let bytes else { return }
        let writer = Unmanaged<Writer>.fromOpaque(user).takeUnretainedValue()
        var copy = header.pointee
        if writer.realtimeAheadUs != nil {
            // The clocks' difference now, a few ms at most after the packet's arrival; and a
            // wall-clock step in between would move it by the step, so it is kept within the
            // span it can have arrived in: after the read before this one began, and by now.
            let (ahead, now) = InterfaceCapture.realtimeAhead()
            let us = min(now, max(writer.previousReadUs - 10_000, Int64(copy.ts.tv_sec) * 1_000_000 + Int64(copy.ts.tv_usec) - ahead))
            copy.ts.tv_sec = Int(us / 1_000_000)
            copy.ts.tv_usec = Int(us % 1_000_000)
        }
        pcap_dump(UnsafeMutablePointer<UInt8>(writer.dumper), &copy, bytes)
    }

    /// How far CLOCK_REALTIME is ahead of CLOCK_MONOTONIC now, and CLOCK_MONOTONIC now, µs.
    private static func realtimeAhead() -> (ahead: Int64, monotonic: Int64) {
        var real = timespec()
        var monotonic = timespec()
        clock_gettime(CLOCK_REALTIME, &real)
        clock_gettime(CLOCK_MONOTONIC, &monotonic)
        let mono = Int64(monotonic.tv_sec) * 1_000_000 + Int64(monotonic.tv_nsec) / 1000
        return (Int64(real.tv_sec) * 1_000_000 + Int64(real.tv_nsec) / 1000 - mono, mono)
    }

    private func dispatch() -> Int32 {
        if writer.realtimeAheadUs != nil {
            let (ahead, now) = Self.realtimeAhead()
            writer.realtimeAheadUs = ahead
            writer.previousReadUs = writer.readUs == 0 ? Int64.min / 2 : writer.readUs
            writer.readUs = now
        }
        return pcap_dispatch(handle, -1, Self.write, Unmanaged.passUnretained(writer).toOpaque().assumingMemoryBound(to: UInt8.self))
    }

    private func run() {
        while true {
            lock.lock()
            let stop = stopping
            lock.unlock()
            if stop { break }
            let count = dispatch()
            if count > 0 {
                lock.lock()
                captured += Int(count)
                lock.unlock()
            } else if count < 0 && count != PCAP_ERROR_BREAK {
                break
            }
        }
        // Drain what the kernel already holds, so that the file has everything up to `stop()`.
        var errorBuffer = [CChar](repeating: 0, count: Int(PCAP_ERRBUF_SIZE))
        pcap_setnonblock(handle, 1, &errorBuffer)
        while true {
            let count = dispatch()
            guard count > 0 else { break }
            lock.lock()
            captured += Int(count)
            lock.unlock()
        }
        finished.signal()
    }

    /// Stops capturing, flushes and closes the file. Call once.
    public func stop() -> Summary {
        lock.lock()
        stopping = true
        lock.unlock()
        pcap_breakloop(handle)
        finished.wait()
        var stats = pcap_stat()
        let dropped = pcap_stats(handle, &stats) == 0 ? Int(stats.ps_drop) : -1
        pcap_dump_close(dumper)
        pcap_close(handle)
        lock.lock()
        defer { lock.unlock() }
        return Summary(interface: interface, file: file, packets: captured, droppedByKernel: dropped)
    }

    /// Packets written so far.
    public var packetsSoFar: Int {
        lock.lock()
        defer { lock.unlock() }
        return captured
    }

    /// libpcap's version string.
    public static var libraryVersion: String { String(cString: pcap_lib_version()) }
}

/// An IPv4 packet read back from a pcap file.
public struct CapturedPacket: Sendable, Equatable {
    /// Capture time, seconds since the epoch.
    public var time: Double
    public var tos: UInt8
    /// IP protocol number (17 UDP).
    public var ipProtocol: UInt8
    public var source: UInt32
    public var destination: UInt32
    /// UDP or TCP ports (0 for other protocols).
    public var sourcePort: UInt16
    public var destinationPort: UInt16
    /// The IPv4 total length.
    public var length: Int
}

/// Reads pcap files (Ethernet or raw IP link types) back with libpcap.
public enum PcapFile {
    /// The IPv4 packets in `path`, in order; other frames are skipped.
    public static func ipv4Packets(_ path: String) throws -> [CapturedPacket] {
        var errorBuffer = [CChar](repeating: 0, count: Int(PCAP_ERRBUF_SIZE))
        guard let handle = pcap_open_offline(path, &errorBuffer) else {
            throw CaptureError(interface: path, call: "pcap_open_offline", message: String(cString: errorBuffer))
        }
        defer { pcap_close(handle) }
        let linkType = pcap_datalink(handle)
        let offset: Int
        switch linkType {
        case DLT_EN10MB: offset = 14
        case DLT_RAW, 12 /* LINKTYPE_RAW on some systems */: offset = 0
        case DLT_LINUX_SLL: offset = 16
        default:
            throw CaptureError(interface: path, call: "pcap_datalink", message: "link type \(linkType) is not Ethernet, raw IP or Linux cooked")
        }
        var packets: [CapturedPacket] = []
        var header: UnsafeMutablePointer<pcap_pkthdr>?
        var data: UnsafePointer<UInt8>?
        while true {
            let status = pcap_next_ex(handle, &header, &data)
            if status == PCAP_ERROR_BREAK { break }
            guard status >= 0 else { throw CaptureError(interface: path, call: "pcap_next_ex", message: String(cString: pcap_geterr(handle))) }
            guard status == 1, let header, let data else { continue }
            let captured = Int(header.pointee.caplen)
            if offset == 14 && captured >= 14 && (UInt16(data[12]) << 8 | UInt16(data[13])) != 0x0800 { continue }
            if offset == 16 && captured >= 16 && (UInt16(data[14]) << 8 | UInt16(data[15])) != 0x0800 { continue }
            guard captured >= offset + 20, data[offset] >> 4 == 4 else { continue }
            let ip = data + offset
            let headerLength = Int(ip[0] & 0x0F) * 4
            func u16(_ p: UnsafePointer<UInt8>) -> UInt16 { UInt16(p[0]) << 8 | UInt16(p[1]) }
            func u32(_ p: UnsafePointer<UInt8>) -> UInt32 { UInt32(u16(p)) << 16 | UInt32(u16(p + 2)) }
            var sourcePort: UInt16 = 0
            var destinationPort: UInt16 = 0
            // UDP and TCP both begin with the two ports.
            if ip[9] == 17 || ip[9] == 6, captured >= offset + headerLength + 4 {
                sourcePort = u16(ip + headerLength)
                destinationPort = u16(ip + headerLength + 2)
            }
            packets.append(
                CapturedPacket(
                    time: Double(header.pointee.ts.tv_sec) + Double(header.pointee.ts.tv_usec) / 1e6, tos: ip[1], ipProtocol: ip[9],
                    source: u32(ip + 12), destination: u32(ip + 16), sourcePort: sourcePort, destinationPort: destinationPort,
                    length: Int(u16(ip + 2))))
        }
        return packets
    }
}
