import Traces

/// Source adaptation when the VNets together cannot carry the stream: which frames not to send.
/// A value type with no I/O and no clock: the sender asks it before each frame, in coding
/// order, with what the VNets can deliver now; it answers send or shed.
///
/// The rule (Docs/controller.md, "Shedding"):
/// - Within each group of pictures (from an I frame to the next), what is left to send must fit
///   the budget: what the VNets deliver over the group's frame slots so far, at `headroom` of
///   the deliverable rate, less what was sent, plus the same rate over the slots to come (at
///   most `horizon` frames ahead). What a group leaves unused carries over to the next, up to a
///   quarter of its allowance and two frame slots at the rate now; what it overspent (an I frame
///   alone over the budget) is paid back.
/// - When it does not fit, frames leave the plan in priority order: B frames first (last first),
///   then P frames from the end of the group backwards. I frames (and codec headers, and frames
///   of unknown type) are never shed.
/// - A frame whose reference frame was shed is shed too: it could not be decoded, so sending it
///   would only waste capacity. This keeps every frame the sender sends decodable if it arrives,
///   with one exception: in display order a B frame goes out before the I/P frame after it, and
///   a rate that falls in between may shed that one.
/// - With no deliverable rate (the controller does not know one yet, or the mode has none) every
///   frame goes. Shedding ends as soon as the rate covers the stream again.
public struct FrameShedder: Sendable {
    /// The share of the deliverable rate the kept frames may fill (the rest absorbs estimate
    /// error and probe trains).
    public var headroom: Double
    /// How many frames ahead the plan looks (bounds the work per frame on long groups).
    public var horizon: Int

    /// Each frame's type and IPv4 bytes (headers of all its packets included), in coding order.
    let types: [FrameType]
    let wireBytes: [Int]
    let frameInterval: Double
    /// Whether B frames are sent after both their references (coding order).
    public let referencesFirst: Bool
    /// Where each frame's group ends (the index of the next I frame, or the end).
    let groupEnd: [Int]

    /// What became of each frame asked about so far (true: sent).
    private(set) var sent: [Bool] = []
    /// This group: bytes the rate allowed over the slots so far, and bytes sent.
    private var allowance: Double = 0
    private var spent: Double = 0
    /// Shed frames and bytes by type, so far.
    public private(set) var shedFrames: [FrameType: Int] = [:]
    public private(set) var shedBytes = 0

    /// `wireBytes[i]` is frame i's size on the wire (packets' IPv4 bytes); `framesPerSecond` the
    /// stream's frame rate. Frames are in coding order; `referencesFirst` as the trace says
    /// (`FrameTrace.isReordered`).
    public init(types: [FrameType], wireBytes: [Int], framesPerSecond: Double, referencesFirst: Bool, headroom: Double = 0.95, horizon: Int = 250) {
        precondition(types.count == wireBytes.count && framesPerSecond > 0 && headroom > 0 && horizon > 0)
        self.types = types
        self.wireBytes = wireBytes
        self.frameInterval = 1 / framesPerSecond
        self.referencesFirst = referencesFirst
        self.headroom = headroom
        self.horizon = horizon
        var ends = [Int](repeating: types.count, count: types.count)
        var next = types.count
        for index in types.indices.reversed() {
            ends[index] = next
            if types[index] == .i { next = index }
        }
        groupEnd = ends
        sent.reserveCapacity(types.count)
    }

    /// Whether frame `index` (the next in coding order) goes out, given the rate the VNets can
    /// deliver now (bits per second; nil: unknown, send everything).
    public mutating func decide(_ index: Int, deliverableBitsPerSecond rate: Double?) -> Bool {
        precondition(index == sent.count, "frames are decided in coding order, once each")
        if types[index] == .i || index == 0 {
            // A new group: what the last one left unused carries over, up to a quarter of its
            // allowance (whole frames rarely fill a budget exactly; the rest would be lost every
            // group); what it overspent is paid back in full.
            let left = allowance - spent
            let slots = 2 * (rate.map { max(0, $0) * headroom / 8 } ?? 0) * frameInterval
            allowance = index == 0 ? 0 : min(left, 0.25 * allowance, slots)
            spent = 0
        }
        let budgetRate = rate.map { max(0, $0) * headroom / 8 }  // bytes per second
        if let budgetRate { allowance += budgetRate * frameInterval }
        let send: Bool
        if !referencesSent(index, planned: nil) {
            send = false
        } else if let budgetRate {
            send = plan(from: index, bytesPerSecond: budgetRate).contains(index)
        } else {
            send = true
        }
        sent.append(send)
        if send {
            spent += Double(wireBytes[index])
        } else {
            shedFrames[types[index], default: 0] += 1
            shedBytes += wireBytes[index]
        }
        return send
    }

    /// Never shed: I frames, codec headers, frames of unknown type.
    static func sheddable(_ type: FrameType) -> Bool { type == .b || type == .p }

    /// The frames from `index` to the end of its group (or the horizon) that fit what is left of
    /// the budget, shedding in priority order.
    func plan(from index: Int, bytesPerSecond: Double) -> Set<Int> {
        let end = min(groupEnd[index], index + horizon)
        let range = index..<end
        // What is left: the allowance so far (which includes this frame's slot), less what was
        // sent, plus the slots after this one.
        let left = allowance - spent + bytesPerSecond * frameInterval * Double(end - index - 1)
        var kept = viable(Set(range), in: range)
        var need = kept.reduce(0) { $0 + wireBytes[$1] }
        guard Double(need) > left else { return kept }
        let order = range.filter { types[$0] == .b }.reversed() + range.filter { types[$0] == .p }.reversed()
        for candidate in order where kept.contains(candidate) {
            kept.remove(candidate)
            kept = viable(kept, in: range)
            need = kept.reduce(0) { $0 + wireBytes[$1] }
            if Double(need) <= left { break }
        }
        return kept
    }

    /// `kept` without the frames whose references are neither sent already nor kept.
    private func viable(_ kept: Set<Int>, in range: Range<Int>) -> Set<Int> {
        var result = kept
        for index in range where result.contains(index) && !referencesSent(index, planned: result) {
            result.remove(index)
        }
        // A B frame between its references (display order) needs the anchor after it too.
        if !referencesFirst {
            for index in range where result.contains(index) && types[index] == .b {
                if let next = nextAnchor(after: index), range.contains(next), !result.contains(next) { result.remove(index) }
            }
        }
        return result
    }

    /// Whether the frames `index` refers back to (in sending order) were sent, or are in
    /// `planned`: a P frame's previous anchor; a B frame's previous anchor, and the one before it
    /// when B frames follow their references.
    func referencesSent(_ index: Int, planned: Set<Int>?) -> Bool {
        func ok(_ anchor: Int?) -> Bool {
            guard let anchor else { return true }
            if anchor < sent.count { return sent[anchor] }
            return planned?.contains(anchor) ?? true
        }
        switch types[index] {
        case .p:
            return ok(previousAnchor(before: index))
        case .b:
            guard let last = previousAnchor(before: index) else { return true }
            if referencesFirst { return ok(last) && ok(previousAnchor(before: last)) }
            return ok(last)
        default:
            return true
        }
    }

    private func previousAnchor(before index: Int) -> Int? {
        var n = index - 1
        while n >= 0 {
            if types[n] == .i || types[n] == .p { return n }
            n -= 1
        }
        return nil
    }

    private func nextAnchor(after index: Int) -> Int? {
        var n = index + 1
        while n < types.count {
            if types[n] == .i || types[n] == .p { return n }
            n += 1
        }
        return nil
    }
}
