import Accounting
import Packets
import Traces

/// What a run's frames came to in one interval (by send time): the receiver's count of
/// decodable, lost and shed frames, set against what the VNets could have carried.
public struct FrameFigures: Codable, Sendable, Equatable {
    /// Frames of the trace in the interval (sent or shed).
    public var frames: Int
    public var shed: Int
    /// Sent, and some packet missing.
    public var lost: Int
    public var decodable: Int
    public var iFrames: Int
    /// I frames whose packets all arrived.
    public var iDecodable: Int
    /// Media bytes of every frame of the trace in the interval, and of the decodable ones.
    public var bytes: Int
    public var decodableBytes: Int
    /// Decodable bytes over all the frames' bytes: the decodable frames weighted by size.
    public var decodableBytesPct: Double
    /// What the VNets the run uses could carry of the stream in the interval: their mean
    /// capacity over the stream's rate on the wire (IPv4 + 14 B Ethernet), at most 100 %.
    public var capacitySharePct: Double
    /// Shed frames by type letter.
    public var shedByType: [String: Int]

    enum CodingKeys: String, CodingKey {
        case frames, shed, lost, decodable, bytes
        case iFrames = "i_frames"
        case iDecodable = "i_decodable"
        case decodableBytes = "decodable_bytes"
        case decodableBytesPct = "decodable_bytes_pct"
        case capacitySharePct = "capacity_share_pct"
        case shedByType = "shed_by_type"
    }

    /// Decodable bytes as a share of what the capacity allows, percent (100: every byte the
    /// VNets could carry was a decodable frame's).
    public var decodableOfCapacityPct: Double {
        capacitySharePct > 0 ? decodableBytesPct / capacitySharePct * 100 : 100
    }

    /// Per interval (`count` of `intervalS`) and in total; nil when the trace has no frame types.
    static func compute(
        receiver: LossReport, trace: FrameTrace, mtu: Int, intervalS: Double, count: Int, capacity: CapacityTimeline, vnets: [Int]
    ) -> (intervals: [FrameFigures], total: FrameFigures)? {
        guard trace.hasFrameTypes, count > 0 else { return nil }
        let packetizer = Packetizer(mtu: mtu)
        var bytes = [Int](repeating: 0, count: count)
        var wireBits = [Double](repeating: 0, count: count)
        var iFrames = [Int](repeating: 0, count: count)
        for (frame, sendTime) in zip(trace.frames, trace.sendTimes) {
            let index = min(count - 1, max(0, Int(sendTime / intervalS)))
            bytes[index] += frame.bytes
            let fragments = packetizer.fragments(ofFrame: frame.bytes)
            wireBits[index] += Double(frame.bytes + fragments.count * (MediaHeader.size + IPv4UDP.headerSize + RunAnalysis.linkOverheadBytes)) * 8
            if frame.type == .i { iFrames[index] += 1 }
        }
        /// Mean capacity of the VNets over [from, to), bits per second, sampled every 10 ms.
        func meanCapacity(_ from: Double, _ to: Double) -> Double {
            let steps = max(1, Int(((to - from) / 0.01).rounded()))
            var sum = 0.0
            for step in 0..<steps {
                let t = from + (Double(step) + 0.5) * (to - from) / Double(steps)
                sum += min(1e12, vnets.map { capacity.capacity(vnet: $0, at: t) }.reduce(0, +))
            }
            return sum / Double(steps)
        }
        func figures(_ byType: [LossReport.FrameFigures], bytes: Int, wireBits: Double, iFrames: Int, capacityBits: Double) -> FrameFigures {
            let i = byType.first { $0.type == "I" }
            let share = wireBits > 0 ? min(1, capacityBits / wireBits) : 1
            let decodableBytes = byType.reduce(0) { $0 + $1.decodableBytes }
            return FrameFigures(
                frames: byType.reduce(0) { $0 + $1.frames }, shed: byType.reduce(0) { $0 + $1.shed }, lost: byType.reduce(0) { $0 + $1.lost },
                decodable: byType.reduce(0) { $0 + $1.decodable }, iFrames: max(iFrames, i?.frames ?? 0), iDecodable: i?.decodable ?? 0,
                bytes: bytes, decodableBytes: decodableBytes, decodableBytesPct: round3(percent(Double(decodableBytes), Double(bytes))),
                capacitySharePct: round3(share * 100),
                shedByType: Dictionary(uniqueKeysWithValues: byType.filter { $0.shed > 0 }.map { ($0.type, $0.shed) }))
        }
        var intervals: [FrameFigures] = []
        var capacityTotal = 0.0
        for index in 0..<count {
            let capacityBits = meanCapacity(Double(index) * intervalS, Double(index + 1) * intervalS) * intervalS
            capacityTotal += capacityBits
            let byType = index < receiver.intervals.count ? receiver.intervals[index].frames ?? [] : []
            intervals.append(figures(byType, bytes: bytes[index], wireBits: wireBits[index], iFrames: iFrames[index], capacityBits: capacityBits))
        }
        // Frames the receiver placed past the last interval (a late end) count in the total.
        let total = figures(
            receiver.frames, bytes: bytes.reduce(0, +), wireBits: wireBits.reduce(0, +), iFrames: iFrames.reduce(0, +), capacityBits: capacityTotal)
        return (intervals, total)
    }
}
