import Foundation
import Packets

/// A monitoring node's view of its mirror port, one copied frame at a time: which router port
/// each copy crossed (by the frame's MAC addresses: a copy taken as the router received it is
/// addressed to the port's MAC; one taken as it sent it comes from it), the flows, and the
/// project's media packets by stream, path and sequence number. Pure: frames in, summaries out.
public struct MirrorObserver: Sendable {
    /// A port of the watched router: its interface name and its MAC address.
    public struct Port: Sendable, Equatable {
        public var name: String
        public var mac: [UInt8]

        public init(name: String, mac: [UInt8]) {
            self.name = name
            self.mac = mac
        }

        /// `NAME=aa:bb:cc:dd:ee:ff`.
        public init?(parsing text: String) {
            let parts = text.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, !parts[0].isEmpty, let mac = Self.mac(parts[1]) else { return nil }
            self.init(name: parts[0], mac: mac)
        }

        static func mac(_ text: String) -> [UInt8]? {
            let bytes = text.split(separator: ":").compactMap { UInt8($0, radix: 16) }
            return bytes.count == 6 && text.split(separator: ":").count == 6 ? bytes : nil
        }
    }

    /// Keys by port index and hook (no strings hashed per copy: a Moni takes 100,000s a second).
    struct FlowKey: Hashable {
        var port: Int
        var inbound: Bool
        var source: UInt32
        var destination: UInt32
        var sourcePort: UInt16
        var destinationPort: UInt16
        var proto: UInt8
        var dscp: UInt8
    }

    struct SeenKey: Hashable {
        var port: Int
        var inbound: Bool
        var stream: UInt32
        var path: UInt8
    }

    public let node: String
    public let router: String
    public let vnet: String
    public let ports: [Port]
    struct Tally {
        var packets = 0
        var bytes = 0
        mutating func add(_ bytes: Int) {
            packets += 1
            self.bytes += bytes
        }
    }

    private var flows: [FlowKey: Tally] = [:]
    private var seen: [SeenKey: [UInt32]] = [:]
    private var copies = 0
    private var unattributed = 0
    private var interval = 0
    private var startS: Double

    public init(node: String, router: String, vnet: String, ports: [Port], startS: Double) {
        self.node = node
        self.router = router
        self.vnet = vnet
        self.ports = ports
        self.startS = startS
    }

    /// Which port a frame crossed (its index), and how: inbound when it is addressed to the
    /// port, outbound when it comes from it.
    func port(of frame: UnsafeRawBufferPointer) -> (Int, Bool)? {
        for (index, port) in ports.enumerated() {
            if (0..<6).allSatisfy({ frame[$0] == port.mac[$0] }) { return (index, true) }
            if (0..<6).allSatisfy({ frame[6 + $0] == port.mac[$0] }) { return (index, false) }
        }
        return nil
    }

    static func hook(_ inbound: Bool) -> String { inbound ? "in" : "out" }

    /// Takes one copied Ethernet frame (as many bytes as were captured).
    public mutating func observe(frame: UnsafeRawBufferPointer) {
        copies += 1
        guard frame.count >= 34, frame[12] == 0x08, frame[13] == 0x00, frame[14] >> 4 == 4, let (port, inbound) = port(of: frame) else {
            unattributed += 1
            return
        }
        let ip = UnsafeRawBufferPointer(rebasing: frame[14...])
        let headerBytes = Int(ip[0] & 0x0f) * 4
        func u16(_ at: Int) -> UInt16 { UInt16(ip[at]) << 8 | UInt16(ip[at + 1]) }
        func u32(_ at: Int) -> UInt32 { UInt32(u16(at)) << 16 | UInt32(u16(at + 2)) }
        let proto = ip[9]
        var key = FlowKey(
            port: port, inbound: inbound, source: u32(12), destination: u32(16), sourcePort: 0, destinationPort: 0, proto: proto, dscp: ip[1] >> 2)
        let hasPorts = (proto == 6 || proto == 17) && ip.count >= headerBytes + 4
        if hasPorts {
            key.sourcePort = u16(headerBytes)
            key.destinationPort = u16(headerBytes + 2)
        }
        flows[key, default: Tally()].add(Int(u16(2)))
        if let header = Self.media(inIPv4: ip) {
            seen[SeenKey(port: port, inbound: inbound, stream: header.streamID, path: header.pathID), default: []].append(header.pathSequence)
        }
    }

    /// The media header of an IPv4 packet (as many bytes as were captured), if it carries one.
    public static func media(inIPv4 ip: UnsafeRawBufferPointer) -> MediaHeader? {
        guard ip.count >= 20 else { return nil }
        let headerBytes = Int(ip[0] & 0x0f) * 4
        guard ip[9] == 17, ip.count >= headerBytes + 8 + MediaHeader.size else { return nil }
        if case .success(let header) = MediaHeader.decode(UnsafeRawBufferPointer(rebasing: ip[(headerBytes + 8)...])) { return header }
        return nil
    }

    /// The interval that ends at `endS`, and a fresh one begins.
    public mutating func summary(endS: Double, droppedByKernel: Int, final: Bool = false) -> MirrorSummary {
        func endpoint(_ address: UInt32, _ port: UInt16) -> String { "\(IPv4Address(address)):\(port)" }
        let flowCounts = flows.map { key, count in
            FlowCount(
                port: ports[key.port].name, hook: Self.hook(key.inbound), source: endpoint(key.source, key.sourcePort), destination: endpoint(key.destination, key.destinationPort),
                proto: key.proto, dscp: key.dscp, packets: count.packets, bytes: count.bytes)
        }.sorted { ($0.port, $0.hook, $0.source, $0.destination) < ($1.port, $1.hook, $1.source, $1.destination) }
        let seenRanges = seen.map { key, numbers in
            SeenRanges(port: ports[key.port].name, hook: Self.hook(key.inbound), stream: key.stream, path: key.path, ranges: SeenRanges.ranges(of: numbers))
        }.sorted { ($0.port, $0.hook, $0.stream, $0.path) < ($1.port, $1.hook, $1.stream, $1.path) }
        let summary = MirrorSummary(
            node: node, router: router, vnet: vnet, interval: interval, startS: startS, endS: endS, flows: flowCounts, seen: seenRanges,
            copies: copies, unattributed: unattributed, droppedByKernel: droppedByKernel, final: final)
        flows.removeAll(keepingCapacity: true)
        seen.removeAll(keepingCapacity: true)
        copies = 0
        unattributed = 0
        interval += 1
        startS = endS
        return summary
    }
}
