import Testing

@testable import Packets
import Units

let sampleHeader = MediaHeader(
    streamID: 0xDEAD_BEEF, streamSequence: 123_456, pathSequence: 61_000, frameNumber: 3_749,
    sendTimeNanoseconds: 149_960_000_123, fragmentIndex: 1, fragmentCount: 2, pathID: 1,
    frameType: UInt8(ascii: "B"), mark: 0xB8, heldMicroseconds: 0x0001_E240)

let sampleReport = ReceiverReport(
    streamID: 7, reportSequence: 99, reportTimeNanoseconds: 12_345_678_900,
    paths: [
        PathReport(
            pathID: 0, highestSequencePlusOne: 1000, packetsReceived: 990, bytesReceived: 1_000_000, packetsLost: 10,
            packetsReordered: 2, packetsDuplicated: 1, delayMicroseconds: -250, jitterMicroseconds: 812,
            capacityBitsPerSecond: 612_000, capacitySamples: 17),
        PathReport(
            pathID: 1, highestSequencePlusOne: 0, packetsReceived: 0, bytesReceived: 0, packetsLost: 0,
            packetsReordered: 0, packetsDuplicated: 0, delayMicroseconds: 0, jitterMicroseconds: 0),
    ])

let sampleEnd = StreamEnd(
    streamID: 7, streamPackets: 7500, frameCount: 3750, lastSendTimeNanoseconds: 149_960_000_000,
    paths: [.init(pathID: 0, packetsSent: 3750), .init(pathID: 1, packetsSent: 3750)])

let sampleRetransmission: MediaHeader = {
    var header = sampleHeader
    header.origin = MediaHeader.Origin(pathID: 0, pathSequence: 0x0102_0304)
    return header
}()

let sampleNack = Nack(
    streamID: 7, sequence: 41,
    ranges: [Nack.Range(pathID: 0, first: 1000, count: 3), Nack.Range(pathID: 1, first: 0xFFFF_FFFE, count: 65535)])

let sampleParity = Parity(
    streamID: 7, firstStreamSequence: 500, stride: 5, covered: 0b10111, protected: ProtectedFields(sampleHeader, payloadBytes: 1200),
    payloadBytes: Parity.fixedSize + 1160, sendTimeNanoseconds: 149_960_000_000, heldMicroseconds: 1234, pathID: 1, pathSequence: 0xFFFF_0001,
    mark: 0xB8)

@Suite("Wire format")
struct WireTests {
    @Test("media headers, reports and stream ends survive a round trip")
    func roundTrips() throws {
        #expect(sampleHeader.encoded.count == MediaHeader.size)
        #expect(try MediaHeader.decode(sampleHeader.encoded).get() == sampleHeader)
        #expect(try ReceiverReport.decode(sampleReport.encoded).get() == sampleReport)
        #expect(sampleEnd.encoded.withUnsafeBytes { (try? StreamEnd.decode($0).get()) == sampleEnd })
        #expect(sampleRetransmission.encoded.count == MediaHeader.size + MediaHeader.originSize)
        #expect(try MediaHeader.decode(sampleRetransmission.encoded).get() == sampleRetransmission)
        #expect(try Nack.decode(sampleNack.encoded).get() == sampleNack)
        #expect(try Parity.decode(sampleParity.encoded).get() == sampleParity)
    }

    @Test("a parity is kind 6: 72 bytes of fixed part, as long as the longest payload it covers; a zero stride, no positions or a reserved word set are garbled")
    func parityLayout() {
        let bytes = sampleParity.encoded
        #expect(bytes.count == Parity.fixedSize + 1160)
        #expect(Array(bytes[0..<4]) == [0x56, 0x4E, Wire.version, 6])
        #expect(Array(bytes[8..<16]) == [0, 0, 0x01, 0xF4, 0xFF, 0xFF, 0, 1])
        #expect(Array(bytes[28..<36]) == [1, 0xB8, 0, 5, 0, 0, 0, 0b10111])
        #expect(sampleParity.positions == [0, 1, 2, 4] && sampleParity.streamSequence(at: 4) == 520)
        for (offset, value) in [(31, UInt8(0)), (35, 0), (39, 1)] {
            var broken = bytes
            broken[offset] = value
            #expect(Parity.decode(broken) == .failure(.garbled), "byte \(offset) = \(value)")
        }
        #expect(Parity.decode(Array(bytes[0..<71])) == .failure(.short))
        #expect(MediaHeader.decode(bytes) == .failure(.unknownKind))
    }

    @Test("a copy's flag survives the wire; the shed run is capped at 31 beside it")
    func copyFlag() throws {
        var header = sampleHeader
        header.copy = true
        header.shedBefore = 200
        header.resends = true
        let decoded = try MediaHeader.decode(header.encoded).get()
        #expect(decoded.copy && decoded.resends && decoded.shedBefore == 31 && !decoded.referencesFirst)
        #expect(header.encoded[35] == 0x1F | 0x20 | 0x40)
    }

    @Test("XOR of three packets' protected fields, with two of them, gives the third back: its origin, its frame, its length; a retransmission gives its original's fields")
    func protectedFieldsRebuild() throws {
        var packets: [(MediaHeader, Int)] = []
        for k in 0..<3 {
            var header = sampleHeader
            header.streamSequence = 10 + UInt32(k)
            header.pathSequence = 700 + UInt32(k * 3)
            header.pathID = UInt8(k % 2)
            header.fragmentIndex = UInt16(k)
            header.fragmentCount = 3
            header.frameType = UInt8(ascii: k == 0 ? "I" : "P")
            header.resends = k == 1
            header.shedBefore = UInt8(k)
            packets.append((header, 1000 + k * 17))
        }
        let parity = packets.reduce(ProtectedFields.zero) { $0 ^ ProtectedFields($1.0, payloadBytes: $1.1) }
        let missing = parity ^ ProtectedFields(packets[0].0, payloadBytes: packets[0].1) ^ ProtectedFields(packets[2].0, payloadBytes: packets[2].1)
        let rebuilt = try #require(missing.rebuilt(streamID: sampleHeader.streamID, streamSequence: 11))
        var expected = packets[1].0
        expected.heldMicroseconds = 0  // the pacing wait is not protected: a resend's is its own
        expected.origin = MediaHeader.Origin(pathID: expected.pathID, pathSequence: expected.pathSequence)
        #expect(rebuilt.header == expected && rebuilt.payloadBytes == 1017)
        var resent = packets[1].0
        resent.origin = MediaHeader.Origin(pathID: resent.pathID, pathSequence: resent.pathSequence)
        resent.pathID = 1
        resent.pathSequence = 9
        #expect(ProtectedFields(resent, payloadBytes: 1017 + MediaHeader.originSize) == ProtectedFields(packets[1].0, payloadBytes: 1017))
        // Fields that cannot be a packet's (no fragments) are refused, not rebuilt.
        #expect(ProtectedFields.zero.rebuilt(streamID: 1, streamSequence: 0) == nil)
    }

    @Test("a retransmission is kind 5 with its origin after the media header; a NACK's ranges are 8 bytes each")
    func recoveryLayout() {
        let resent = sampleRetransmission.encoded
        #expect(Array(resent[0..<4]) == [0x56, 0x4E, Wire.version, 5])
        #expect(Array(resent[4..<40]) == Array(sampleHeader.encoded[4..<40]))
        #expect(Array(resent[40..<48]) == [0, 0, 0, 0, 0x01, 0x02, 0x03, 0x04])
        let nack = sampleNack.encoded
        #expect(nack.count == Nack.fixedSize + 2 * Nack.rangeSize)
        #expect(Array(nack[0..<16]) == [0x56, 0x4E, Wire.version, 4, 0, 0, 0, 7, 0, 0, 0, 41, 0, 2, 0, 0])
        #expect(Array(nack[16..<24]) == [0, 0, 0, 3, 0, 0, 0x03, 0xE8])
        #expect(Array(nack[24..<32]) == [1, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFE])
        // A range of no packets, or on a path no report can carry, is garbled; a count beyond
        // what the bytes hold is short.
        var empty = nack
        empty[18] = 0
        empty[19] = 0
        #expect(Nack.decode(empty) == .failure(.garbled))
        var farPath = nack
        farPath[16] = 40
        #expect(Nack.decode(farPath) == .failure(.garbled))
        #expect(Nack.decode(Array(nack.dropLast())) == .failure(.short))
        // The media decoder refuses a retransmission cut before its origin.
        #expect(MediaHeader.decode(Array(resent[0..<44])) == .failure(.short))
    }

    @Test("NACK ranges: consecutive path sequences in as few ranges as cover them")
    func nackRanges() {
        let ranges = Nack.ranges(pathID: 2, sequences: [9, 5, 6, 7, 12, 13])
        #expect(ranges == [.init(pathID: 2, first: 5, count: 3), .init(pathID: 2, first: 9, count: 1), .init(pathID: 2, first: 12, count: 2)])
        #expect(Nack.ranges(pathID: 0, sequences: []).isEmpty)
    }

    @Test("the header's bytes are the ones the spec gives")
    func layout() {
        let bytes = sampleHeader.encoded
        #expect(Array(bytes[0..<4]) == [0x56, 0x4E, 5, 1])
        #expect(Array(bytes[4..<8]) == [0xDE, 0xAD, 0xBE, 0xEF])
        #expect(Array(bytes[32..<36]) == [1, UInt8(ascii: "B"), 0xB8, 0])
        // The held time, 123,456 µs: the departure is the send time plus it.
        #expect(bytes.count == 40 && Array(bytes[36..<40]) == [0x00, 0x01, 0xE2, 0x40])
        #expect(sampleHeader.departureNanoseconds == 149_960_000_123 + 123_456_000)
    }

    @Test("every prefix of a valid message is short, never a crash or a wrong decode")
    func prefixes() {
        let media = sampleHeader.encoded
        for length in 0..<media.count {
            let result = MediaHeader.decode(Array(media[0..<length]))
            #expect(result == .failure(.short), "length \(length)")
        }
        let report = sampleReport.encoded
        for length in 0..<report.count {
            #expect((try? ReceiverReport.decode(Array(report[0..<length])).get()) == nil, "length \(length)")
        }
    }

    @Test("foreign, future-version, wrong-kind and garbled datagrams are told apart")
    func reasons() {
        var foreign = sampleHeader.encoded
        foreign[0] = 0x45
        #expect(MediaHeader.decode(foreign) == .failure(.foreign))
        var future = sampleHeader.encoded
        future[2] = Wire.version + 1
        #expect(MediaHeader.decode(future) == .failure(.futureVersion))
        #expect(MediaHeader.decode(sampleReport.encoded) == .failure(.unknownKind))
        var garbled = sampleHeader.encoded
        garbled[28] = 0xFF  // fragment index 65281 of 2
        garbled[29] = 0x01
        #expect(MediaHeader.decode(garbled) == .failure(.garbled))
        var tooManyPaths = sampleReport.encoded
        tooManyPaths[20] = 200
        #expect(ReceiverReport.decode(tooManyPaths) == .failure(.garbled))
        #expect([UInt8]([0x56, 0x4E, Wire.version, 9]).withUnsafeBytes { Wire.kind(of: $0) } == .failure(.unknownKind))
    }

    /// The fuzz property: a million inputs, random and mutated from valid messages, through
    /// every decoder. Each must return (a value or a reason) without trapping; a decoded value
    /// must survive re-encoding (reserved bytes are ignored on decode, so the bytes may differ there).
    @Test("a million random and mutated inputs decode or are refused, never crash")
    func fuzz() {
        var generator = SplitMix64(seed: 0x5EED)
        let seeds = [sampleHeader.encoded, sampleReport.encoded, sampleEnd.encoded, sampleRetransmission.encoded, sampleNack.encoded, Array(sampleParity.encoded.prefix(120))]
        var decoded = 0
        var buffer = [UInt8](repeating: 0, count: 256)
        for round in 0..<1_000_000 {
            let length: Int
            if round % 2 == 0 {
                // Random bytes, often starting like ours so that the checks past the magic run.
                length = Int(generator.next() % 200)
                for i in 0..<length { buffer[i] = UInt8(truncatingIfNeeded: generator.next()) }
                if length >= 4, round % 4 == 0 {
                    buffer[0] = 0x56
                    buffer[1] = 0x4E
                    buffer[2] = Wire.version
                    buffer[3] = UInt8(1 + generator.next() % 6)
                }
            } else {
                // A valid message with a few bytes changed, cut short, or run long.
                let seed = seeds[Int(generator.next() % UInt64(seeds.count))]
                length = max(0, min(buffer.count, seed.count + Int(generator.next() % 9) - 4))
                for i in 0..<length { buffer[i] = i < seed.count ? seed[i] : UInt8(truncatingIfNeeded: generator.next()) }
                for _ in 0..<(1 + generator.next() % 3) where length > 0 {
                    buffer[Int(generator.next() % UInt64(length))] = UInt8(truncatingIfNeeded: generator.next())
                }
            }
            buffer.withUnsafeBytes { raw in
                let input = UnsafeRawBufferPointer(rebasing: raw[0..<length])
                _ = Wire.kind(of: input)
                if case .success(let header) = MediaHeader.decode(input) {
                    decoded += 1
                    #expect(MediaHeader.decode(header.encoded) == .success(header))
                    #expect(Array(header.encoded[0..<35]) == Array(input[0..<35]))
                }
                if case .success(let report) = ReceiverReport.decode(input) {
                    decoded += 1
                    #expect(ReceiverReport.decode(report.encoded) == .success(report))
                }
                if case .success = StreamEnd.decode(input) { decoded += 1 }
                if case .success(let nack) = Nack.decode(input) {
                    decoded += 1
                    #expect(Nack.decode(nack.encoded) == .success(nack))
                }
                if case .success(let parity) = Parity.decode(input) {
                    decoded += 1
                    #expect(Parity.decode(parity.encoded) == .success(parity))
                }
                _ = IPv4UDP.parse(input)
            }
        }
        #expect(decoded > 1000, "the mutations should leave some messages valid")
    }
}

@Suite("IPv4/UDP and marks")
struct IPv4UDPTests {
    @Test("segmented headers: lengths cover the whole payload, a valid IPv4 checksum, the UDP field holds the pseudo-header sum")
    func segmentedHeaders() {
        var packet = [UInt8](repeating: 0, count: 28 + 3 * 1000)
        let source = UDPEndpoint("198.18.1.2:5005")!
        let destination = UDPEndpoint("198.18.100.1:5004")!
        packet.withUnsafeMutableBytes {
            IPv4UDP.writeSegmentedHeaders(into: $0, payloadLength: 3000, source: source, destination: destination, tos: 0xB8, identification: 7)
        }
        #expect(packet[0] == 0x45 && packet[1] == 0xB8 && packet[9] == 17)
        #expect(UInt16(packet[2]) << 8 | UInt16(packet[3]) == 3028)
        #expect(UInt16(packet[24]) << 8 | UInt16(packet[25]) == 3008)
        let header = packet.withUnsafeBytes { IPv4UDP.onesComplementSum(UnsafeRawBufferPointer(rebasing: $0[0..<20]), initial: 0) }
        #expect(header == 0xFFFF, "the IPv4 header checksums to all ones")
        // 198.18.1.2 + 198.18.100.1 + protocol 17 + UDP length 3008, folded, not complemented.
        var pseudo: UInt32 = 0xC612 + 0x0102 + 0xC612 + 0x6401 + 17 + 3008
        while pseudo >> 16 != 0 { pseudo = (pseudo & 0xFFFF) + (pseudo >> 16) }
        #expect(UInt32(UInt16(packet[26]) << 8 | UInt16(packet[27])) == pseudo)
    }

    @Test("the word-at-a-time checksum sum equals the RFC 1071 byte-pair sum, any length and initial value")
    func checksumSum() {
        var random = SplitMix64(seed: 42)
        for _ in 0..<2000 {
            let bytes = (0..<Int(random.next() % 1600)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            let initial = UInt32(truncatingIfNeeded: random.next()) & 0x3FFFF
            var reference = UInt64(initial)
            var index = 0
            while index + 1 < bytes.count {
                reference += UInt64(bytes[index]) << 8 | UInt64(bytes[index + 1])
                index += 2
            }
            if index < bytes.count { reference += UInt64(bytes[index]) << 8 }
            while reference >> 16 != 0 { reference = (reference & 0xFFFF) + (reference >> 16) }
            let fast = bytes.withUnsafeBytes { IPv4UDP.onesComplementSum($0, initial: initial) }
            #expect(UInt64(fast) == reference, "length \(bytes.count)")
        }
    }

    @Test("a built packet parses back with valid checksums, and a flipped bit fails them")
    func checksums() throws {
        var packet = [UInt8](repeating: 0, count: 28 + 100)
        for i in 28..<packet.count { packet[i] = UInt8(i & 0xFF) }
        let source = UDPEndpoint("198.18.1.2:5005")!
        let destination = UDPEndpoint("198.18.100.1:5004")!
        packet.withUnsafeMutableBytes {
            IPv4UDP.writeHeaders(into: $0, payloadLength: 100, source: source, destination: destination, tos: 0xB8, identification: 7)
        }
        let datagram = try packet.withUnsafeBytes { try IPv4UDP.parse($0).get() }
        #expect(datagram.source == source && datagram.destination == destination)
        #expect(datagram.tos == 0xB8)
        #expect(datagram.payload == 28..<128)
        // The IPv4 header checksum of this header, computed independently.
        var sum = 0
        for i in stride(from: 0, to: 20, by: 2) where i != 10 { sum += Int(packet[i]) << 8 | Int(packet[i + 1]) }
        while sum > 0xFFFF { sum = (sum & 0xFFFF) + (sum >> 16) }
        #expect(Int(packet[10]) << 8 | Int(packet[11]) == (~sum & 0xFFFF))
        var corrupt = packet
        corrupt[60] ^= 0x01
        #expect(corrupt.withUnsafeBytes { IPv4UDP.parse($0) } == .failure(.badChecksum))
    }

    @Test("TT marks read as DSCP names or TOS bytes")
    func marks() throws {
        #expect(try TrafficMark(parsing: "EF").tos == 0xB8)
        #expect(try TrafficMark(parsing: "af41").tos == 34 << 2)
        #expect(try TrafficMark(parsing: "CS5").tos == 40 << 2)
        #expect(try TrafficMark(parsing: "0xb8").tos == 0xB8)
        #expect(try TrafficMark(parsing: "184").tos == 184)
        #expect(try TrafficMark(parsing: "BE").tos == 0)
        #expect(TrafficMark(tos: 0xB8).description == "EF (TOS 0xb8)")
        #expect(throws: TrafficMark.ParseError.self) { try TrafficMark(parsing: "XX") }
        #expect(throws: TrafficMark.ParseError.self) { try TrafficMark(parsing: "256") }
    }

    @Test("addresses and endpoints read strictly")
    func addresses() {
        #expect(IPv4Address("198.18.0.1")?.value == 0xC612_0001)
        #expect(IPv4Address("198.18.0") == nil && IPv4Address("198.18.0.256") == nil && IPv4Address("a.b.c.d") == nil)
        #expect(UDPEndpoint("198.18.100.1:5004")?.port == 5004)
        #expect(UDPEndpoint("198.18.100.1") == nil && UDPEndpoint("198.18.100.1:0") == nil)
    }

    @Test("frames are cut into as few, as equal packets as fit the MTU")
    func packetizer() {
        let packetizer = Packetizer(mtu: 1500)
        #expect(packetizer.payloadLimit == 1500 - 28 - 40)
        #expect(packetizer.fragments(ofFrame: 0) == [])
        #expect(packetizer.fragments(ofFrame: 1600) == [800, 800])
        #expect(packetizer.fragments(ofFrame: 1432) == [1432])
        #expect(packetizer.fragments(ofFrame: 1433) == [717, 716])
        let big = packetizer.fragments(ofFrame: 16745)
        #expect(big.reduce(0, +) == 16745 && big.allSatisfy { $0 <= 1432 } && big.count == 12)
        // Room for a retransmission's origin: the largest packet plus 8 bytes still fits.
        let resending = Packetizer(mtu: 1500, reserve: MediaHeader.originSize)
        #expect(resending.fragments(ofFrame: 1432) == [716, 716])
        #expect(resending.payloadLimit + 28 + 40 + MediaHeader.originSize == 1500)
    }
}
