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
/// or hands every packet to a function (a monitor), or both, on a thread of its own, from
/// `init` (capture is active when it returns) until `stop()`.
public final class InterfaceCapture: @unchecked Sendable {
    public let interface: String
    public let file: String
    private let handle: OpaquePointer
    private let lock = NSLock()
    private var stopping = false
    private var captured = 0
    private var dropped = 0
    /// CLOCK_MONOTONIC (µs) when libpcap's counters were last read (capture thread only).
    private var statsReadUs: Int64 = 0
    private let finished = DispatchSemaphore(value: 0)
    /// A packet as a handler sees it: its time (CLOCK_MONOTONIC seconds when monotonic, else
    /// the wall clock's), the bytes captured (from the link-layer header) and its length on the wire.
    public typealias Handler = (_ time: Double, _ bytes: UnsafeRawBufferPointer, _ length: Int) -> Void

    /// Where packets go: the file (one, or a ring of files), the handler.
    private final class Writer {
        let handle: OpaquePointer
        var dumper: OpaquePointer?
        let ring: PcapRing?
        let handler: Handler?
        var realtimeAheadUs: Int64?
        /// CLOCK_MONOTONIC (µs) when this read began and when the one before began: a packet
        /// handed over now arrived after the one before began, whatever the wall clock did.
        var readUs: Int64 = 0
        var previousReadUs: Int64 = 0
        var failure: String?
        init(handle: OpaquePointer, dumper: OpaquePointer?, ring: PcapRing?, handler: Handler?, monotonic: Bool) {
            self.handle = handle
            self.dumper = dumper
            self.ring = ring
            self.handler = handler
            realtimeAheadUs = monotonic ? 0 : nil
        }

        /// Moves to the ring's next file once this one is full.
        func rotateIfFull() {
            guard let ring, let dumper, pcap_dump_ftell64(dumper) >= ring.fileBytes else { return }
            pcap_dump_close(dumper)
            self.dumper = nil
            ring.advance()
            self.dumper = pcap_dump_open(handle, ring.currentPath)
            if self.dumper == nil { failure = "pcap_dump_open \(ring.currentPath): " + String(cString: pcap_geterr(handle)) }
        }
    }
    private let writer: Writer

    /// A rolling capture: files `BASE.N.pcap`, each up to `fileBytes`, the last `files` kept.
    public final class PcapRing: @unchecked Sendable {
        public let base: String
        public let fileBytes: Int64
        public let files: Int
        public private(set) var index = 0
        public init(base: String, fileBytes: Int64, files: Int) {
            self.base = base
            self.fileBytes = max(4096, fileBytes)
            self.files = max(1, files)
        }
        public func path(_ index: Int) -> String { "\(base).\(index).pcap" }
        var currentPath: String { path(index) }
        func advance() {
            index += 1
            if index >= files { unlink(path(index - files)) }
        }
    }
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
    public convenience init(interface: String, file: String, filter: String, snaplen: Int = 65535, immediate: Bool = true, monotonic: Bool = false) throws {
        try self.init(interface: interface, output: .file(file), filter: filter, snaplen: snaplen, immediate: immediate, monotonic: monotonic)
    }

    /// Where a capture's packets go.
    public enum Output {
        case file(String)
        /// Every packet to the handler, and into the ring of files if one is given: what a
        /// monitoring node does with its mirror port (promiscuous: copies are addressed to others).
        case handler(Handler, ring: PcapRing?)
    }

    public init(interface: String, output: Output, filter: String, snaplen: Int = 65535, immediate: Bool = true, monotonic: Bool = false) throws {
        self.interface = interface
        var handler: Handler?
        var ring: PcapRing?
        switch output {
        case .file(let path): self.file = path
        case .handler(let function, let files):
            handler = function
            ring = files
            self.file = files?.path(0) ?? ""
        }
        var errorBuffer = [CChar](repeating: 0, count: Int(PCAP_ERRBUF_SIZE))
        guard let handle = pcap_create(interface, &errorBuffer) else {
            throw CaptureError(interface: interface, call: "pcap_create", message: String(cString: errorBuffer))
        }
        pcap_set_snaplen(handle, Int32(snaplen))
        pcap_set_promisc(handle, handler == nil ? 0 : 1)
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
        var dumper: OpaquePointer?
        if !file.isEmpty {
            guard let opened = pcap_dump_open(handle, file) else { throw fail("pcap_dump_open \(file)") }
            dumper = opened
        }
        self.handle = handle
        self.writer = Writer(handle: handle, dumper: dumper, ring: ring, handler: handler, monotonic: monotonic)
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
        if let handler = writer.handler {
            handler(Double(copy.ts.tv_sec) + Double(copy.ts.tv_usec) / 1e6, UnsafeRawBufferPointer(start: bytes, count: Int(copy.caplen)), Int(copy.len))
        }
        if let dumper = writer.dumper {
            pcap_dump(UnsafeMutablePointer<UInt8>(dumper), &copy, bytes)
            writer.rotateIfFull()
        }
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
            // libpcap's counters, read on this thread (a handle is not to be shared), every
            // 100 ms at most: in immediate mode a dispatch is one packet, and this a syscall.
            var drops: Int?
            let now = Self.realtimeAhead().monotonic
            if now - statsReadUs >= 100_000 {
                statsReadUs = now
                var stats = pcap_stat()
                drops = pcap_stats(handle, &stats) == 0 ? Int(stats.ps_drop) : nil
            }
            lock.lock()
            if count > 0 { captured += Int(count) }
            if let drops { dropped = drops }
            lock.unlock()
            if count < 0 && count != PCAP_ERROR_BREAK { break }
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
        if let dumper = writer.dumper { pcap_dump_close(dumper) }
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

    /// Packets the kernel dropped before libpcap read them, so far.
    public var droppedSoFar: Int {
        lock.lock()
        defer { lock.unlock() }
        return dropped
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
    /// Every IPv4 packet in `path`, in order, to `body`: its capture time (seconds) and its
    /// captured bytes from the IPv4 header on; other frames are skipped.
    public static func forEachIPv4Packet(_ path: String, _ body: (_ time: Double, _ ip: UnsafeRawBufferPointer) throws -> Void) throws {
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
            try body(
                Double(header.pointee.ts.tv_sec) + Double(header.pointee.ts.tv_usec) / 1e6,
                UnsafeRawBufferPointer(start: data + offset, count: captured - offset))
        }
    }

    /// The IPv4 packets in `path`, in order; other frames are skipped.
    public static func ipv4Packets(_ path: String) throws -> [CapturedPacket] {
        var packets: [CapturedPacket] = []
        try forEachIPv4Packet(path) { time, ip in
            let headerLength = Int(ip[0] & 0x0F) * 4
            func u16(_ at: Int) -> UInt16 { UInt16(ip[at]) << 8 | UInt16(ip[at + 1]) }
            func u32(_ at: Int) -> UInt32 { UInt32(u16(at)) << 16 | UInt32(u16(at + 2)) }
            var sourcePort: UInt16 = 0
            var destinationPort: UInt16 = 0
            // UDP and TCP both begin with the two ports.
            if ip[9] == 17 || ip[9] == 6, ip.count >= headerLength + 4 {
                sourcePort = u16(headerLength)
                destinationPort = u16(headerLength + 2)
            }
            packets.append(
                CapturedPacket(
                    time: time, tos: ip[1], ipProtocol: ip[9], source: u32(12), destination: u32(16), sourcePort: sourcePort,
                    destinationPort: destinationPort, length: Int(u16(2))))
        }
        return packets
    }
}
