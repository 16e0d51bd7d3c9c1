import Devices
import Foundation
import Pacing
import Packets
import RunRecords

/// The sender's device writer: the packets the core hands it, into their VNets' tuns.
extension Sender {
    /// The device writer: each packet into its VNet's tun; with segmentation, each run of one
    /// VNet's packets of one size in one segmented write where the kernel takes those.
    func write(_ packets: [OutgoingPacket]) throws {
        var rest = packets[...]
        while segmenting, rest.count > 1 {
            // The longest run from here of one VNet's packets of one size, no copies, that fits
            // one segmented write; a run of one goes as a packet.
            let first = rest.first!
            let most = min(64, (65535 - IPv4UDP.headerSize) / max(1, first.payloadBytes))
            var run = 1
            while run < min(most, rest.count) {
                let next = rest[rest.startIndex + run]
                guard next.vnet == first.vnet, !next.copy, !first.copy, next.parity == nil, first.parity == nil, next.payloadBytes == first.payloadBytes
                else { break }
                run += 1
            }
            guard run > 1 else {
                try writeEach(rest.prefix(1))
                rest = rest.dropFirst()
                continue
            }
            if try writeSegmented(Array(rest.prefix(run))) {
                rest = rest.dropFirst(run)
                continue
            }
            // This kernel takes no segmented writes: a packet per write from here on.
            segmenting = false
            offload = "packet-per-write (the kernel refused UDP segmentation through the tun: Linux 6.2 or later has it)"
        }
        try writeEach(rest)
    }

    func writeEach(_ packets: ArraySlice<OutgoingPacket>) throws {
        for packet in packets {
            let header = core.stamp(packet)
            let length = packet.payloadBytes
            let route = configuration.routes[packet.vnet]
            identification &+= 1
            let taken = try buffer.withUnsafeMutableBytes { raw -> Bool in
                if var parity = packet.parity {
                    // Its path fields as stamped; after the fixed part, the filler payloads' XOR: zeros.
                    parity.pathID = header.pathID
                    parity.pathSequence = header.pathSequence
                    parity.heldMicroseconds = header.heldMicroseconds
                    parity.mark = header.mark
                    parity.write(into: raw, at: IPv4UDP.headerSize)
                    let rest = IPv4UDP.headerSize + Parity.fixedSize
                    if length > Parity.fixedSize { raw[rest..<(IPv4UDP.headerSize + length)].initializeMemory(as: UInt8.self, repeating: 0) }
                } else {
                    header.write(into: raw, at: IPv4UDP.headerSize)
                }
                IPv4UDP.writeHeaders(
                    into: raw, payloadLength: length, source: UDPEndpoint(address: route.source, port: configuration.sourcePort),
                    destination: configuration.destination, tos: configuration.mark.tos, identification: identification)
                return try tuns[packet.vnet].write(UnsafeRawBufferPointer(rebasing: raw[0..<(IPv4UDP.headerSize + length)]))
            }
            written(header, payloadBytes: length, copy: packet.copy, taken: taken, parity: packet.parity != nil, now: MonotonicClock.now())
        }
    }

    /// A bundle of packets of one VNet in one segmented write; false (and nothing counted) when
    /// the kernel refuses segmented writes.
    func writeSegmented(_ packets: [OutgoingPacket]) throws -> Bool {
        let vnet = packets[0].vnet
        let payloadBytes = packets[0].payloadBytes
        let route = configuration.routes[vnet]
        let firstPathSequence = core.vnets[vnet].pathSequence
        identification &+= 1
        let sent = try segmentBuffer.withUnsafeMutableBytes { raw -> Bool? in
            for (k, packet) in packets.enumerated() {
                var header = packet.header
                header.pathID = UInt8(vnet)
                header.pathSequence = firstPathSequence &+ UInt32(k)
                header.write(into: raw, at: IPv4UDP.headerSize + k * payloadBytes)
            }
            IPv4UDP.writeSegmentedHeaders(
                into: raw, payloadLength: packets.count * payloadBytes,
                source: UDPEndpoint(address: route.source, port: configuration.sourcePort),
                destination: configuration.destination, tos: configuration.mark.tos, identification: identification)
            do {
                return try tuns[vnet].writeSegmented(
                    UnsafeRawBufferPointer(rebasing: raw[0..<(IPv4UDP.headerSize + packets.count * payloadBytes)]), segmentBytes: payloadBytes)
            } catch where tuns[vnet].segmentationWorks == false {
                return nil
            }
        }
        guard let sent else { return false }
        let now = MonotonicClock.now()
        for packet in packets { written(core.stamp(packet), payloadBytes: payloadBytes, copy: false, taken: sent, now: now) }
        return true
    }

    /// Counts one packet written (or not taken), tells the controller, and logs it.
    func written(_ header: MediaHeader, payloadBytes: Int, copy: Bool, taken: Bool, parity: Bool = false, now: UInt64) {
        core.written(header, payloadBytes: payloadBytes, copy: copy, taken: taken, parity: parity, now: now)
        if let packetLog = configuration.packetLog {
            packetLog(
                SentPacket(
                    t: Double(now &- start) / 1e9, streamSequence: header.streamSequence, vnet: Int(header.pathID) + 1,
                    pathSequence: header.pathSequence, frame: header.frameNumber, bytes: IPv4UDP.headerSize + payloadBytes, copy: copy,
                    localDrop: !taken, resent: header.origin != nil, parity: parity
                ).csvRow)
        }
    }
}
