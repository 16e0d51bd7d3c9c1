import Packets

/// What became of a stream's frames, per frame type and per send-time interval: how many there
/// were, how many were lost (some packet missing), shed by the sender (never sent: the
/// header of the next frame sent says how many), and decodable.
///
/// A frame is decodable when all its packets arrived and its references are decodable:
/// - I frames, codec headers (`H`) and frames of unknown type (`-`): themselves alone;
/// - P frames: the previous I or P frame (in coding order);
/// - B frames: both neighbouring I/P frames in display order. When the stream sends B frames
///   after both references (coding order, the header's flag), those are the two I/P frames
///   before it; otherwise the one before and the one after it.
/// A shed I/P frame counts as a reference that is not decodable. A frame of which nothing
/// arrived and whose type the receiver does not know (it was not given the trace) counts as a
/// lost I/P frame: the count stays on the safe side, never calling decodable what may not be.
public struct FrameTally: Sendable, Equatable, Codable {
    /// Frames of the stream (sent or shed).
    public var frames = 0
    /// Sent, and some packet never arrived.
    public var lost = 0
    /// Never sent: the sender shed them.
    public var shed = 0
    public var decodable = 0
    /// Media bytes of the decodable frames (the frames' sizes, headers excluded).
    public var decodableBytes = 0

    public init() {}

    static func + (a: FrameTally, b: FrameTally) -> FrameTally {
        var sum = a
        sum.frames += b.frames
        sum.lost += b.lost
        sum.shed += b.shed
        sum.decodable += b.decodable
        sum.decodableBytes += b.decodableBytes
        return sum
    }

    enum CodingKeys: String, CodingKey {
        case frames, lost, shed, decodable
        case decodableBytes = "decodable_bytes"
    }
}

/// Frames and their fragments. A window of recent frames waits for late fragments; older ones
/// are settled in frame order, which is when their decodability is decided. The window is a
/// ring indexed by frame number: no hashing and no allocation per packet (settling, once per
/// frame, adds to a dictionary per interval).
struct FrameAccounting {
    static let window: Int64 = 4096

    struct Pending {
        var type: UInt8
        var fragments: Int
        var received: Int
        /// Media bytes of the packets that arrived.
        var bytes: Int
        var interval: Int
        var shed: Bool
    }

    /// A settled frame, for the decoder.
    struct Settled {
        var type: UInt8
        var complete: Bool
        /// No packet of it arrived.
        var missing = false
        var shed: Bool
        var bytes: Int
        var interval: Int
    }

    /// Slot `n % window` holds frame n while it waits (`placed`), for `highest - window < n <= highest`.
    var ring = [Pending](repeating: Pending(type: 0, fragments: 0, received: 0, bytes: 0, interval: 0, shed: false), count: Int(window))
    var placed = [Bool](repeating: false, count: Int(window))
    var highest: Int64 = -1
    /// Every frame below this number is settled.
    var settledBelow: Int64 = 0
    /// The frame count the sender's end message gave.
    var closedCount: Int64?
    /// The interval of the latest packet, for frames of which nothing arrived.
    var latestInterval = 0
    var decoder = Decoder()

    private static func slot(_ number: Int64) -> Int { Int(number & (window - 1)) }

    mutating func record(_ header: MediaHeader, bytes: Int, interval: Int, types: [UInt8]?) {
        let number = Int64(header.frameNumber)
        decoder.referencesFirst = header.referencesFirst
        latestInterval = max(latestInterval, interval)
        if number < settledBelow { return }  // already settled as lost; too late to help
        if number > highest {
            // Frames leaving the window are settled before their slots are reused.
            settle(below: number - Self.window + 1, types: types)
            // Frames skipped over wait in the window too: a packet of theirs may still come.
            var n = max(highest + 1, number - Self.window + 1)
            while n < number {
                ring[Self.slot(n)] = Pending(type: type(of: n, types), fragments: 1, received: 0, bytes: 0, interval: interval, shed: false)
                placed[Self.slot(n)] = true
                n += 1
            }
            highest = number
        }
        let slot = Self.slot(number)
        if !placed[slot] {
            ring[slot] = Pending(type: header.frameType, fragments: Int(header.fragmentCount), received: 0, bytes: 0, interval: interval, shed: false)
            placed[slot] = true
        }
        ring[slot].type = header.frameType
        ring[slot].fragments = Int(header.fragmentCount)
        ring[slot].received += 1
        ring[slot].bytes += max(0, bytes - MediaHeader.size)
        ring[slot].interval = interval
        ring[slot].shed = false
        // The frames right before this one that the sender shed.
        if header.shedBefore > 0 {
            var n = max(settledBelow, number - Int64(header.shedBefore))
            while n < number {
                let shedSlot = Self.slot(n)
                if placed[shedSlot] && ring[shedSlot].received == 0 { ring[shedSlot].shed = true }
                n += 1
            }
        }
    }

    private func type(of number: Int64, _ types: [UInt8]?) -> UInt8 {
        guard let types, number >= 0, number < types.count else { return UInt8(ascii: "-") }
        return types[Int(number)]
    }

    /// Settles the frames below `limit` in order: those waiting in the ring one by one, those
    /// never placed (a gap wider than the window) as lost.
    private mutating func settle(below limit: Int64, types: [UInt8]?) {
        guard limit > settledBelow else { return }
        let ringEnd = min(limit, highest + 1)
        var n = max(settledBelow, highest + 1 - Self.window)
        if n > settledBelow { settleMissing(from: settledBelow, to: n, types: types) }
        while n < ringEnd {
            let slot = Self.slot(n)
            if placed[slot] {
                let frame = ring[slot]
                decoder.settle(
                    Settled(
                        type: frame.type, complete: frame.received >= frame.fragments, missing: frame.received == 0, shed: frame.shed,
                        bytes: frame.bytes, interval: frame.interval))
                placed[slot] = false
            }
            n += 1
        }
        settleMissing(from: max(ringEnd, settledBelow), to: limit, types: types)
        settledBelow = limit
    }

    /// Frames `low..<high`, of which nothing arrived, settled as lost. Without types (or past
    /// the trace's end) they count in bulk, so a garbled frame number cannot make this loop long.
    private mutating func settleMissing(from low: Int64, to high: Int64, types: [UInt8]?) {
        guard high > low else { return }
        var bulkFrom = low
        if let types, low < types.count {
            let typedEnd = min(high, Int64(types.count))
            for n in low..<typedEnd {
                decoder.settle(Settled(type: types[Int(n)], complete: false, missing: true, shed: false, bytes: 0, interval: latestInterval))
            }
            bulkFrom = typedEnd
        }
        guard high > bulkFrom else { return }
        decoder.settleUnknown(count: Int(high - bulkFrom), interval: latestInterval)
    }

    /// The sender said how many frames there were: the ones never seen are lost (once settled).
    mutating func close(frameCount: Int64) {
        closedCount = frameCount
    }

    /// Every frame settled as of now (a copy settles what still waits): the tallies by interval
    /// and type letter.
    func settledTallies(types: [UInt8]?) -> [Int: [UInt8: FrameTally]] {
        var copy = self
        copy.settle(below: max(highest + 1, closedCount ?? 0), types: types)
        copy.decoder.finish()
        return copy.decoder.tallies
    }

    /// Decides decodability frame by frame, in frame order.
    struct Decoder {
        var referencesFirst = false
        /// Whether the last two I/P frames settled were decodable (nil: none yet).
        var lastAnchor: Bool?
        var anchorBefore: Bool?
        /// B frames between their references (display order) waiting for the I/P after them:
        /// each with whether it is decodable so far.
        var waiting: [(frame: Settled, decodable: Bool)] = []
        var tallies: [Int: [UInt8: FrameTally]] = [:]

        static let i = UInt8(ascii: "I"), p = UInt8(ascii: "P"), b = UInt8(ascii: "B"), unknown = UInt8(ascii: "-")

        mutating func settle(_ frame: Settled) {
            let whole = frame.complete && !frame.shed
            switch frame.type {
            case Self.i, Self.p:
                anchor(frame, decodable: whole && (frame.type == Self.i || (lastAnchor ?? true)))
            case Self.unknown where frame.missing && !frame.shed:
                // It may have been an I/P frame: the frames after it are not counted decodable.
                anchor(frame, decodable: false)
            case Self.b:
                if referencesFirst {
                    count(frame, decodable: whole && (lastAnchor ?? true) && (anchorBefore ?? true))
                } else {
                    waiting.append((frame, whole && (lastAnchor ?? true)))
                }
            default:
                count(frame, decodable: whole)
            }
        }

        private mutating func anchor(_ frame: Settled, decodable: Bool) {
            for entry in waiting { count(entry.frame, decodable: entry.decodable && decodable) }
            waiting.removeAll(keepingCapacity: true)
            anchorBefore = lastAnchor
            lastAnchor = decodable
            count(frame, decodable: decodable)
        }

        /// Frames of unknown type of which nothing arrived, beyond the trace or without one.
        mutating func settleUnknown(count n: Int, interval: Int) {
            guard n > 0 else { return }
            settle(Settled(type: Self.unknown, complete: false, missing: true, shed: false, bytes: 0, interval: interval))
            var tally = FrameTally()
            tally.frames = n - 1
            tally.lost = n - 1
            add(tally, type: Self.unknown, interval: interval)
        }

        /// The stream's end: B frames still waiting have no I/P after them.
        mutating func finish() {
            for entry in waiting { count(entry.frame, decodable: entry.decodable) }
            waiting.removeAll()
        }

        private mutating func count(_ frame: Settled, decodable: Bool) {
            var tally = FrameTally()
            tally.frames = 1
            if frame.shed {
                tally.shed = 1
            } else if !frame.complete {
                tally.lost = 1
            }
            if decodable {
                tally.decodable = 1
                tally.decodableBytes = frame.bytes
            }
            add(tally, type: frame.type, interval: frame.interval)
        }

        private mutating func add(_ tally: FrameTally, type: UInt8, interval: Int) {
            tallies[interval, default: [:]][type] = (tallies[interval]?[type] ?? FrameTally()) + tally
        }
    }
}
