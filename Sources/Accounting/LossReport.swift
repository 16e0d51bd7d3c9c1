import Packets
import Units

/// The receiver's results for one stream: one document, units in the key names, rendered to
/// Markdown, CSV and JSON from the same values.
///
/// Two loss figures per path, as the paper's tables need: `loss_pct_of_path` (lost on this path
/// over sent on this path) and `loss_pct_of_all` (lost on this path over all packets of the
/// stream sent in the interval; these add up to the interval's total when each packet took
/// one path).
public struct LossReport: Codable, Sendable {
    public struct PathFigures: Codable, Sendable, Equatable {
        public var path: Int
        /// VNet number as people count them: path id + 1.
        public var vnet: Int
        public var sent: Int
        public var received: Int
        public var lost: Int
        public var lossPctOfPath: Double
        public var lossPctOfAll: Double
        public var duplicates: Int
        public var reordered: Int
        public var delayMsMean: Double?
        public var delayMsMax: Double?

        enum CodingKeys: String, CodingKey {
            case path, vnet, sent, received, lost, duplicates, reordered
            case lossPctOfPath = "loss_pct_of_path"
            case lossPctOfAll = "loss_pct_of_all"
            case delayMsMean = "delay_ms_mean"
            case delayMsMax = "delay_ms_max"
        }
    }

    public struct Interval: Codable, Sendable, Equatable {
        public var startS: Double
        public var endS: Double
        public var sent: Int
        public var received: Int
        public var lost: Int
        public var lossPct: Double
        public var duplicates: Int
        public var perVNet: [PathFigures]
        /// The interval's frames (by send time) per type: lost, shed, decodable.
        public var frames: [FrameFigures]?
        /// After recovery: the stream's packets not delivered by their playout deadline (lost
        /// for good, or late), of `streamSent`; originals that arrived after it; packets a
        /// retransmission delivered in time. (`lost` above is the network's loss.)
        public var residualLost: Int?
        public var residualLossPct: Double?
        public var late: Int?
        public var recovered: Int?
        /// Packets FEC rebuilt that were delivered in time (nil: the stream had no parity).
        public var recoveredFEC: Int?
        /// The stream's own packets sent in the interval (retransmissions not counted again).
        public var streamSent: Int?

        enum CodingKeys: String, CodingKey {
            case sent, received, lost, duplicates, frames, late, recovered
            case residualLost = "residual_lost"
            case residualLossPct = "residual_loss_pct"
            case recoveredFEC = "recovered_fec"
            case streamSent = "stream_sent"
            case startS = "start_s"
            case endS = "end_s"
            case lossPct = "loss_pct"
            case perVNet = "per_vnet"
        }
    }

    public struct PathSummary: Codable, Sendable, Equatable {
        public var path: Int
        public var vnet: Int
        public var received: Int
        public var lost: Int
        public var duplicates: Int
        public var reordered: Int
        /// Packets more than the sequence window behind the newest: counted, still lost.
        public var tooLate: Int
        public var bytesReceived: Int
        public var delayMsMin: Double?
        public var delayMsMean: Double?
        public var delayMsMax: Double?
        /// Percentiles of the relative one-way delay (an HDR histogram, 3 significant digits).
        public var delayMsP50: Double?
        public var delayMsP99: Double?
        public var jitterMs: Double
        /// Seconds from the path's first arrival to its last, on the kernel's receive stamps
        /// where it gave them: what the path carried over its own time, not the sender's.
        public var arrivalSpanS: Double?
        /// TOS bytes seen on this path's packets, by value (as a decimal string key).
        public var tosSeen: [String: Int]
        /// Packets whose TOS byte differed from the mark the sender put in its header.
        public var tosMismatches: Int

        enum CodingKeys: String, CodingKey {
            case path, vnet, received, lost, duplicates, reordered
            case tooLate = "too_late"
            case bytesReceived = "bytes_received"
            case delayMsMin = "delay_ms_min"
            case delayMsMean = "delay_ms_mean"
            case delayMsMax = "delay_ms_max"
            case delayMsP50 = "delay_ms_p50"
            case delayMsP99 = "delay_ms_p99"
            case jitterMs = "jitter_ms"
            case arrivalSpanS = "arrival_span_s"
            case tosSeen = "tos_seen"
            case tosMismatches = "tos_mismatches"
        }
    }

    /// Frames of one type: `frames` counts them all (sent or shed); `lost` the sent ones with a
    /// packet missing (`loss_pct` of those sent); `shed` the ones the sender never sent; and
    /// `decodable` those whose packets and references all arrived (`decodable_pct` of all).
    public struct FrameFigures: Codable, Sendable, Equatable {
        public var type: String
        public var frames: Int
        public var lost: Int
        public var lossPct: Double
        public var shed: Int
        public var decodable: Int
        public var decodablePct: Double
        /// Media bytes of the decodable frames.
        public var decodableBytes: Int

        init(type: UInt8, _ tally: FrameTally) {
            self.type = String(UnicodeScalar(type))
            frames = tally.frames
            lost = tally.lost
            lossPct = percent(tally.lost, tally.frames - tally.shed)
            shed = tally.shed
            decodable = tally.decodable
            decodablePct = percent(tally.decodable, tally.frames)
            decodableBytes = tally.decodableBytes
        }

        enum CodingKeys: String, CodingKey {
            case type, frames, lost, shed, decodable
            case lossPct = "loss_pct"
            case decodablePct = "decodable_pct"
            case decodableBytes = "decodable_bytes"
        }

        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            type = try c.decode(String.self, forKey: .type)
            frames = try c.decode(Int.self, forKey: .frames)
            lost = try c.decode(Int.self, forKey: .lost)
            lossPct = try c.decode(Double.self, forKey: .lossPct)
            // Results written before frames were counted as shed and decodable.
            shed = try c.decodeIfPresent(Int.self, forKey: .shed) ?? 0
            decodable = try c.decodeIfPresent(Int.self, forKey: .decodable) ?? 0
            decodablePct = try c.decodeIfPresent(Double.self, forKey: .decodablePct) ?? 0
            decodableBytes = try c.decodeIfPresent(Int.self, forKey: .decodableBytes) ?? 0
        }
    }

    public var streamID: UInt32
    public var intervalS: Double
    /// Whether the sender's end-of-stream message arrived; without it, packets sent after the
    /// last one that arrived are not counted as lost.
    public var endReceived: Bool
    public var intervals: [Interval]
    public var total: Interval
    public var paths: [PathSummary]
    public var frames: [FrameFigures]
    /// Datagrams dropped undecoded, by reason; and those of other streams.
    public var dropped: [String: Int]
    public var otherStreams: Int
    /// The receiver's side of recovery (a stream whose sender resends); nil: it did not.
    public var recovery: Recovery?

    /// What the receiver asked for and got: NACK messages sent, path sequences asked for,
    /// retransmissions that answered one, entries given up at their deadline, and the smoothed
    /// time from a NACK to its answer.
    public struct Recovery: Codable, Sendable, Equatable {
        public var latencyMs: Double
        public var nacks: Int
        public var asked: Int
        public var answered: Int
        public var gaveUp: Int
        public var recoveryMs: Double?
        /// FEC (nil: no parity came): parity packets that came, packets they rebuilt, parities
        /// that did not fit what arrived, and those given up with two or more still missing.
        public var parities: Int?
        public var rebuilt: Int?
        public var parityUnusable: Int?
        public var parityGaveUp: Int?
        /// Rebuilt and delivered, then the original came in time after all (not in
        /// `recovered_fec`: the network delivered it).
        public var rebuiltOvertaken: Int?

        enum CodingKeys: String, CodingKey {
            case nacks, asked, answered, parities, rebuilt
            case latencyMs = "latency_ms"
            case parityUnusable = "parity_unusable"
            case parityGaveUp = "parity_gave_up"
            case rebuiltOvertaken = "rebuilt_overtaken"
            case gaveUp = "gave_up"
            case recoveryMs = "recovery_ms"
        }
    }

    enum CodingKeys: String, CodingKey {
        case intervals, total, paths, frames, dropped, recovery
        case streamID = "stream_id"
        case intervalS = "interval_s"
        case endReceived = "end_received"
        case otherStreams = "other_streams"
    }
}

func percent(_ part: Int, _ whole: Int) -> Double {
    whole > 0 ? (Double(part) / Double(whole) * 1e6).rounded() / 1e4 : 0
}

func milliseconds(_ nanoseconds: Double?) -> Double? {
    nanoseconds.map { ($0 / 1e3).rounded() / 1e3 }
}

extension StreamAccounting {
    /// The results as they stand (call after the stream ended, or at any time for a snapshot).
    public func lossReport() -> LossReport {
        let ids = pathIDs
        let count = max(streamTallies.count, paths.values.map(\.tallies.count).max() ?? 0)
        let seconds = Double(intervalNanoseconds) / 1e9
        // When every packet took one path, an interval's totals are the sum of its paths, so that
        // the per-VNet columns add up exactly (the paper's layout). With copies on several paths
        // (duplicate mode) a packet is lost only when no copy arrived: the stream's own count.
        let copies = stream.duplicates > 0
        let frameTallies = frames.settledTallies(types: frameTypes)
        func frameFigures(_ byType: [UInt8: FrameTally]) -> [LossReport.FrameFigures] {
            byType.sorted { $0.key < $1.key }.map { LossReport.FrameFigures(type: $0.key, $0.value) }
        }
        var intervals: [LossReport.Interval] = []
        for index in 0..<count {
            var all = streamTallies[index]
            if !copies {
                all = IntervalTally()
                for id in ids {
                    let tally = paths[id]!.tallies[index]
                    all.received += tally.received
                    all.missing += tally.missing
                }
                all.duplicates = streamTallies[index].duplicates
            }
            let perVNet = ids.map { id -> LossReport.PathFigures in
                let path = paths[id]!
                let tally = path.tallies[index]
                let delay = index < path.delayByInterval.count ? path.delayByInterval[index] : DelayTally()
                return figures(id: id, tally: tally, allSent: all.sent, delay: delay)
            }
            var interval = LossReport.Interval(
                startS: Double(index) * seconds, endS: Double(index + 1) * seconds, sent: all.sent,
                received: all.received, lost: all.missing, lossPct: percent(all.missing, all.sent),
                duplicates: all.duplicates + perVNet.reduce(0) { $0 + $1.duplicates }, perVNet: perVNet,
                frames: frameTallies[index].map(frameFigures))
            interval.fillResidual(
                delivered: playout.tallies[index].received, late: playout.late[index], recovered: playout.recovered[index], streamSent: streamTallies[index].sent)
            if parityReceived { interval.recoveredFEC = playout.rebuilt[index] }
            intervals.append(interval)
        }
        let streamSent = stream.received + stream.missing
        let totalPerVNet = ids.map { id -> LossReport.PathFigures in
            let path = paths[id]!
            var tally = IntervalTally()
            for t in path.tallies.tallies {
                tally.received += t.received
                tally.missing += t.missing
                tally.duplicates += t.duplicates
                tally.reordered += t.reordered
            }
            return figures(id: id, tally: tally, allSent: streamSent, delay: path.delay)
        }
        var total = LossReport.Interval(
            startS: 0, endS: Double(count) * seconds, sent: streamSent, received: stream.received,
            lost: stream.missing, lossPct: percent(stream.missing, streamSent),
            duplicates: stream.duplicates + totalPerVNet.reduce(0) { $0 + $1.duplicates }, perVNet: totalPerVNet)
        total.fillResidual(delivered: playout.delivered.received, late: playout.late.total, recovered: playout.recovered.total, streamSent: streamSent)
        if parityReceived { total.recoveredFEC = playout.rebuilt.total }
        let pathSummaries = ids.map { id -> LossReport.PathSummary in
            let path = paths[id]!
            return LossReport.PathSummary(
                path: Int(id), vnet: Int(id) + 1, received: path.tracker.received, lost: path.tracker.missing,
                duplicates: path.tracker.duplicates, reordered: path.tracker.reordered, tooLate: path.tracker.tooOld,
                bytesReceived: path.tallies.tallies.reduce(0) { $0 + $1.bytes },
                delayMsMin: path.delay.count > 0 ? milliseconds(Double(path.delay.minimum)) : nil,
                delayMsMean: milliseconds(path.delay.mean),
                delayMsMax: path.delay.count > 0 ? milliseconds(Double(path.delay.maximum)) : nil,
                delayMsP50: path.delays.percentile(50).map { ($0 * 1000).rounded() / 1000 },
                delayMsP99: path.delays.percentile(99).map { ($0 * 1000).rounded() / 1000 },
                jitterMs: milliseconds(path.jitter) ?? 0, arrivalSpanS: path.arrivalSpanSeconds.map { ($0 * 1e6).rounded() / 1e6 },
                tosSeen: Dictionary(uniqueKeysWithValues: path.marks.map { (String($0.key), $0.value) }),
                tosMismatches: path.markMismatches)
        }
        var framesByType: [UInt8: FrameTally] = [:]
        for byType in frameTallies.values {
            for (type, tally) in byType { framesByType[type] = (framesByType[type] ?? FrameTally()) + tally }
        }
        var report = LossReport(
            streamID: streamID, intervalS: seconds, endReceived: end != nil, intervals: intervals, total: total,
            paths: pathSummaries, frames: frameFigures(framesByType),
            dropped: Dictionary(uniqueKeysWithValues: dropped.map { ($0.key.rawValue, $0.value) }), otherStreams: otherStreams)
        if resends || parityReceived {
            report.recovery = LossReport.Recovery(
                latencyMs: Double(playout.latencyNanoseconds) / 1e6, nacks: nackList.nacks, asked: nackList.asked, answered: nackList.answered,
                gaveUp: nackList.gaveUp, recoveryMs: milliseconds(nackList.smoothedRecovery.map { Double($0) }))
            if parityReceived {
                report.recovery?.parities = fec.parities
                report.recovery?.rebuilt = fec.rebuilt
                report.recovery?.parityUnusable = fec.unusable
                report.recovery?.parityGaveUp = fec.gaveUp
                report.recovery?.rebuiltOvertaken = fec.overtaken
            }
        }
        return report
    }

    private func figures(id: UInt8, tally: IntervalTally, allSent: Int, delay: DelayTally) -> LossReport.PathFigures {
        LossReport.PathFigures(
            path: Int(id), vnet: Int(id) + 1, sent: tally.sent, received: tally.received, lost: tally.missing,
            lossPctOfPath: percent(tally.missing, tally.sent), lossPctOfAll: percent(tally.missing, allSent),
            duplicates: tally.duplicates, reordered: tally.reordered, delayMsMean: milliseconds(delay.mean),
            delayMsMax: delay.count > 0 ? milliseconds(Double(delay.maximum)) : nil)
    }
}

extension LossReport.Interval {
    /// The figures after recovery: `delivered` of the stream's `streamSent` packets came by
    /// their deadline (an original, or a retransmission of it).
    mutating func fillResidual(delivered: Int, late: Int, recovered: Int, streamSent: Int) {
        // The sender's end message settles the tail; before it, what is still to come is not
        // yet counted, in either tracker.
        let missing = max(0, streamSent - delivered)
        residualLost = missing
        residualLossPct = percent(missing, streamSent)
        self.late = late
        self.recovered = recovered
        self.streamSent = streamSent
    }
}
