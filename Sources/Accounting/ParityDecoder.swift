import Packets

/// The receiver's FEC: rebuilds a lost packet from a parity and the other packets it covers.
/// It keeps what FEC protects of each packet that came (originals and retransmissions; never a
/// copy) for the last `window` stream sequences, in fixed memory, and the parities that are
/// still missing two or more packets, until a rebuilt or resent packet makes them solvable
/// (a row's rebuilt packet may complete a column, and so on) or their deadline passes.
struct ParityDecoder {
    /// One packet rebuilt: its header (its origin: where it was first sent) and UDP payload bytes.
    typealias Rebuilt = (header: MediaHeader, payloadBytes: Int)

    static let window = 8192
    static let maximumPending = 512

    private var fields: [ProtectedFields]
    private var tags: [UInt32]
    private var known: [Bool]
    /// The packet in the slot was rebuilt here and delivered so (not yet overtaken by its original).
    private var deliveredRebuilt: [Bool]
    private var pending: [(parity: Parity, deadline: UInt64)] = []
    /// Parities that came, packets they rebuilt, parities that did not fit what arrived (their
    /// rebuilt fields contradicted themselves), and those given up (deadline passed or pushed
    /// out) with packets still missing.
    private(set) var parities = 0
    private(set) var rebuilt = 0
    private(set) var unusable = 0
    private(set) var gaveUp = 0
    /// Rebuilt and delivered, then the original came after all (in time): across VNets of
    /// different delay, a row's parity and other packets can come before one of its packets.
    private(set) var overtaken = 0

    init() {
        fields = Array(repeating: .zero, count: Self.window)
        tags = Array(repeating: 0, count: Self.window)
        known = Array(repeating: false, count: Self.window)
        deliveredRebuilt = Array(repeating: false, count: Self.window)
    }

    /// A rebuilt packet was delivered (in time, first).
    mutating func delivered(rebuilt sequence: UInt32) {
        if has(sequence) { deliveredRebuilt[Int(sequence % UInt32(Self.window))] = true }
    }

    /// The original of `sequence` came in time: true (once) when FEC had delivered it before,
    /// so that it counts as the network's delivery, not as FEC's.
    mutating func overtakes(_ sequence: UInt32) -> Bool {
        let slot = Int(sequence % UInt32(Self.window))
        guard has(sequence), deliveredRebuilt[slot] else { return false }
        deliveredRebuilt[slot] = false
        overtaken += 1
        return true
    }

    private func has(_ sequence: UInt32) -> Bool {
        let slot = Int(sequence % UInt32(Self.window))
        return known[slot] && tags[slot] == sequence
    }

    private mutating func keep(_ value: ProtectedFields, _ sequence: UInt32) {
        let slot = Int(sequence % UInt32(Self.window))
        fields[slot] = value
        tags[slot] = sequence
        known[slot] = true
        deliveredRebuilt[slot] = false
    }

    /// A packet of the stream came (an original or a retransmission, not a copy): kept, and
    /// any parity waiting for it tried again.
    mutating func arrived(_ header: MediaHeader, payloadBytes: Int, now: UInt64) -> [Rebuilt] {
        guard !header.copy else { return [] }
        if has(header.streamSequence) { return [] }
        keep(ProtectedFields(header, payloadBytes: payloadBytes), header.streamSequence)
        guard !pending.isEmpty else { return [] }
        var out: [Rebuilt] = []
        settle([header.streamSequence], now: now, into: &out)
        return out
    }

    /// A parity came, usable until `deadline` (that of the newest packet it covers).
    mutating func arrived(_ parity: Parity, deadline: UInt64, now: UInt64) -> [Rebuilt] {
        parities += 1
        var out: [Rebuilt] = []
        switch solve(parity) {
        case .complete: break
        case .rebuilt(let packet):
            out.append(packet)
            settle([packet.header.streamSequence], now: now, into: &out)
        case .waiting:
            expire(now: now)
            if pending.count >= Self.maximumPending {
                pending.removeFirst()
                gaveUp += 1
            }
            pending.append((parity, deadline))
        case .unusable: unusable += 1
        }
        return out
    }

    /// Parities past their deadline are given up.
    mutating func expire(now: UInt64) {
        let before = pending.count
        pending.removeAll { $0.deadline <= now }
        gaveUp += before - pending.count
    }

    private enum Outcome {
        case complete, rebuilt(Rebuilt), waiting, unusable
    }

    private mutating func solve(_ parity: Parity) -> Outcome {
        var missing: UInt32?
        var xor = parity.protected
        for k in parity.positions {
            let sequence = parity.streamSequence(at: k)
            if has(sequence) {
                xor ^= fields[Int(sequence % UInt32(Self.window))]
            } else if missing == nil {
                missing = sequence
            } else {
                return .waiting
            }
        }
        guard let missing else { return .complete }
        guard let packet = xor.rebuilt(streamID: parity.streamID, streamSequence: missing) else { return .unusable }
        keep(xor, missing)
        rebuilt += 1
        return .rebuilt(packet)
    }

    /// Newly known stream sequences: each pending parity that covers one is tried again, and
    /// what it rebuilds is known in turn.
    private mutating func settle(_ sequences: [UInt32], now: UInt64, into out: inout [Rebuilt]) {
        var queue = sequences
        while let sequence = queue.popLast() {
            var index = 0
            while index < pending.count {
                let parity = pending[index].parity
                guard Self.covers(parity, sequence) else {
                    index += 1
                    continue
                }
                switch solve(parity) {
                case .waiting:
                    index += 1
                    continue
                case .complete: break
                case .rebuilt(let packet):
                    out.append(packet)
                    queue.append(packet.header.streamSequence)
                case .unusable: unusable += 1
                }
                pending.remove(at: index)
            }
        }
    }

    static func covers(_ parity: Parity, _ sequence: UInt32) -> Bool {
        let offset = sequence &- parity.firstStreamSequence
        guard offset % UInt32(parity.stride) == 0 else { return false }
        let k = offset / UInt32(parity.stride)
        return k < UInt32(Parity.maximumSpan) && parity.covered & (1 << k) != 0
    }
}
