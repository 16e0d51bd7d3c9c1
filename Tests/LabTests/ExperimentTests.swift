import Foundation
import RunRecords
import TestSupport
import Traces
import Recovery
import Testing

@testable import Experiment
@testable import Lab

@Suite("Experiment results from logs (no root needed)")
struct RunAnalysisTests {
    /// CBR at 50 packets/s of 864 bytes for `seconds`, one VNet, delivered except `lost`.
    func cbr(seconds: Double, lost: Set<UInt32> = []) -> ([SentPacket], [ReceivedPacket]) {
        var sent: [SentPacket] = []
        var received: [ReceivedPacket] = []
        for n in 0..<Int(seconds * 50) {
            let t = Double(n) / 50
            sent.append(SentPacket(t: t, streamSequence: UInt32(n), vnet: 1, pathSequence: UInt32(n), frame: 0, bytes: 864, copy: false, localDrop: false))
            if !lost.contains(UInt32(n)) {
                received.append(ReceivedPacket(monotonicNanoseconds: UInt64(t * 1e9), streamSequence: UInt32(n), vnet: 1, pathSequence: UInt32(n), frame: 0, bytes: 864, tos: nil, stream: 1))
            }
        }
        return (sent, received)
    }

    @Test("the fluid bound of a constant stream over a smaller capacity is 1 - c/r, less what the queue absorbs")
    func fluidBound() {
        let (sent, received) = cbr(seconds: 60)
        let timeline = CapacityTimeline(
            vnets: 2, steps: [.init(tS: 0, vnet: 1, kbitS: 600), .init(tS: 30, vnet: 1, kbitS: 200)], outages: [])
        let analysis = RunAnalysis(
            sent: sent, received: received, startMonotonic: 0, intervalS: 30, durationS: 60, capacity: timeline, queueBytes: { _, c in c * 0.1 / 8 + 1600 }, usesAllVNets: false, uniVNet: 1)
        let (intervals, total) = analysis.intervalsAndTotal()
        #expect(intervals.map(\.sent) == [1500, 1500])
        #expect(intervals[0].fluidBoundPct == 0)
        let offered = 50.0 * Double(864 + RunAnalysis.linkOverheadBytes) * 8
        // The queue (100 ms at 200 kbit/s + 1600 B) absorbs 4100 B of the 30 s of excess.
        let expected = ((offered - 200_000) * 30 / 8 - 4100) / (offered * 30 / 8) * 100
        #expect(abs(intervals[1].fluidBoundPct - expected) < 0.05, "\(intervals[1].fluidBoundPct) vs \(expected)")
        #expect(total.lost == 0)
    }

    @Test("loss counts distinct packets; copies that arrived save a packet; per-VNet columns add up")
    func lossWithCopies() {
        var (sent, received) = cbr(seconds: 2, lost: [10, 11, 12])
        // Packet 11 also went as a copy on VNet 2, and that copy arrived.
        sent.append(SentPacket(t: 0.22, streamSequence: 11, vnet: 2, pathSequence: 0, frame: 0, bytes: 864, copy: true, localDrop: false))
        received.append(ReceivedPacket(monotonicNanoseconds: 230_000_000, streamSequence: 11, vnet: 2, pathSequence: 0, frame: 0, bytes: 864, tos: nil, stream: 1))
        let analysis = RunAnalysis(
            sent: sent, received: received, startMonotonic: 0, intervalS: 1, durationS: 2,
            capacity: CapacityTimeline(vnets: 2, steps: [], outages: []), queueBytes: { _, c in c * 0.1 / 8 + 1600 },
            usesAllVNets: true, uniVNet: nil)
        let (intervals, total) = analysis.intervalsAndTotal()
        #expect(total.sent == 100)
        #expect(total.lost == 2)
        #expect(intervals[0].lost == 2)
        #expect(intervals[0].perVNet[0].lost == 2)
        #expect(intervals[0].perVNet[0].pathLost == 3)
        #expect(intervals[0].perVNet[1].copies == 1)
        #expect(intervals[0].perVNet.map(\.lossPctOfAll).reduce(0, +) == intervals[0].lossPct)
        #expect(analysis.sentBytes - analysis.streamBytes == 864)
    }

    @Test("the route's return over a path that came back is a change of its own: the split before it is judged up to it, and afresh from it")
    func routeReturn() {
        // Two VNets at 400 kbit/s; VNet 1 fails at 10 s, is rerouted at 12 s, and its route goes
        // back over the path at 20 s. The sender splits 1:1, all on VNet 2 during the outage,
        // and for 1.5 s after the return three packets in four on VNet 2.
        var sent: [SentPacket] = []
        for n in 0..<3000 {
            let t = Double(n) / 100
            let vnet: Int
            if t >= 10 && t < 12 { vnet = 2 } else if t >= 20 && t < 21.5 { vnet = n % 4 == 0 ? 1 : 2 } else { vnet = n % 2 + 1 }
            sent.append(SentPacket(t: t, streamSequence: UInt32(n), vnet: vnet, pathSequence: UInt32(n), frame: 0, bytes: 500, copy: false, localDrop: false))
        }
        let steps = [CapacityTimeline.Step(tS: 0, vnet: 1, kbitS: 400), CapacityTimeline.Step(tS: 0, vnet: 2, kbitS: 400)]
        func shifts(returnedS: Double?) -> [RunResult.Shift] {
            let outage = CapacityTimeline.Outage(vnet: 1, path: "P1,1", fromS: 10, toS: 12, rerouted: true, returnedS: returnedS)
            return RunAnalysis(
                sent: sent, received: [], startMonotonic: 0, intervalS: 10, durationS: 30,
                capacity: CapacityTimeline(vnets: 2, steps: steps, outages: [outage]), queueBytes: { _, c in c * 0.1 / 8 + 1600 },
                usesAllVNets: true, uniVNet: nil
            ).shifts()
        }
        let judged = shifts(returnedS: 20)
        let afterReroute = judged.first { $0.atS == 12 }
        let afterReturn = judged.first { $0.atS == 20 }
        #expect(afterReroute?.settleS == 0, "\(judged)")
        #expect((afterReturn?.settleS ?? 0) > 0.5 && (afterReturn?.settleS ?? 9) < 2, "\(judged)")
        // Unseen, the dip after the return counts against the reroute's condition.
        #expect((shifts(returnedS: nil).first { $0.atS == 12 }?.settleS ?? 0) > 8)
        #expect(CapacityTimeline(vnets: 2, steps: steps, outages: [.init(vnet: 1, path: "P1,1", fromS: 10, toS: 12, rerouted: true, returnedS: 20)]).breakpoints == [0, 10, 12, 20])
    }

    @Test("a failover is measured from the failure to the last packet before the VNet went quiet, even if it came back before the route watch saw the reroute")
    func failover() {
        // 50 packets/s on VNet 1; the failure at 10 s; the sender stops using it at 10.12 s and
        // resumes at 14.70 s; the route watch saw the reroute at 14.73 s.
        let times = (0..<1000).map { Double($0) / 50 }.filter { $0 < 10.12 || $0 >= 14.7 }
        let sent = times.enumerated().map {
            SentPacket(t: $0.element, streamSequence: UInt32($0.offset), vnet: 1, pathSequence: UInt32($0.offset), frame: 0, bytes: 864, copy: false, localDrop: false)
        }
        let outage = CapacityTimeline.Outage(vnet: 1, path: "P1,1", fromS: 10.0, toS: 14.73, rerouted: true)
        let analysis = RunAnalysis(
            sent: sent, received: [], startMonotonic: 0, intervalS: 10, durationS: 20,
            capacity: CapacityTimeline(vnets: 2, steps: [], outages: [outage]), queueBytes: { _, c in c * 0.1 / 8 + 1600 },
            usesAllVNets: true, uniVNet: nil)
        let failover = analysis.failovers()[0]
        #expect(abs((failover.leftMs ?? -1) - 100) < 1)
        #expect(failover.returnedAfterS == 0)
        // Nothing arrived in this log; of what was lost, the packets sent onto the failed VNet in
        // the first 150 ms (10.00-10.10 s: six) are counted apart, the rest are not.
        var allowing = analysis
        allowing.leaveAllowanceS = 0.15
        let counted = allowing.intervalsAndTotal()
        #expect(counted.intervals.map(\.lostLeaving) == [0, 6] && counted.total.lostLeaving == 6)
        #expect(analysis.intervalsAndTotal().total.lostLeaving == 0, "no allowance, nothing apart")
        #expect(abs(counted.intervals[1].lossAfterLeavingPct - Double(counted.intervals[1].lost - 6) / Double(counted.intervals[1].sent) * 100) < 0.01)
        // A sender that never leaves: the whole outage.
        let steady = (0..<1000).map {
            SentPacket(t: Double($0) / 50, streamSequence: UInt32($0), vnet: 1, pathSequence: UInt32($0), frame: 0, bytes: 864, copy: false, localDrop: false)
        }
        let stuck = RunAnalysis(
            sent: steady, received: [], startMonotonic: 0, intervalS: 10, durationS: 20,
            capacity: CapacityTimeline(vnets: 2, steps: [], outages: [outage]), queueBytes: { _, c in c * 0.1 / 8 + 1600 },
            usesAllVNets: true, uniVNet: nil)
        #expect(abs((stuck.failovers()[0].leftMs ?? 0) - 4730) < 1)
        // A 1 s outage (a flapping path): left at 10.12 s, back at 10.96 s, quiet for less than a
        // second but more than half the outage.
        let flap = CapacityTimeline.Outage(vnet: 1, path: "P1,1", fromS: 10.0, toS: 11.0, rerouted: false)
        let flapping = RunAnalysis(
            sent: steady.filter { $0.t < 10.12 || $0.t >= 10.96 }, received: [], startMonotonic: 0, intervalS: 10, durationS: 20,
            capacity: CapacityTimeline(vnets: 2, steps: [], outages: [flap]), queueBytes: { _, c in c * 0.1 / 8 + 1600 },
            usesAllVNets: true, uniVNet: nil)
        #expect(abs((flapping.failovers()[0].leftMs ?? -1) - 100) < 1)
        #expect(flapping.failovers()[0].returnedAfterS == 0)
    }

    @Test("the split settles when every 2 s window after a change is within 10 points of capacity-proportional")
    func settle() {
        // 600:200 kbit/s from 0 s. The sender splits 1:1 until 1.5 s, then 3:1 (whole 4-packet cycles).
        var sent: [SentPacket] = []
        for n in 0..<500 {
            let t = Double(n) / 50
            let vnet = t < 1.5 ? (n % 2 == 0 ? 1 : 2) : (n % 4 == 3 ? 2 : 1)
            sent.append(SentPacket(t: t, streamSequence: UInt32(n), vnet: vnet, pathSequence: UInt32(n), frame: 0, bytes: 864, copy: false, localDrop: false))
        }
        let timeline = CapacityTimeline(vnets: 2, steps: [.init(tS: 0, vnet: 1, kbitS: 600), .init(tS: 0, vnet: 2, kbitS: 200)], outages: [])
        let analysis = RunAnalysis(
            sent: sent, received: [], startMonotonic: 0, intervalS: 10, durationS: 10, capacity: timeline, queueBytes: { _, c in c * 0.1 / 8 + 1600 }, usesAllVNets: true, uniVNet: nil)
        let shift = analysis.shifts()[0]
        #expect(shift.capacitySharePct == [75, 25])
        // A window starting at s holds (1.5 - s) s of 1:1 and the rest at 3:1: within 10 points
        // from s = 0.7 on (62.5 % at 1:1 weighs at most 0.8 s of 2 s).
        let settle = try? #require(shift.settleS)
        #expect(settle.map { $0 >= 0.6 && $0 <= 0.8 } == true, "settled after \(String(describing: settle))")

        // The next change (to 1:3) began at 5 s and was in place only at 7 s (slow commands, as
        // over ssh on a loaded machine); the sender moved at 5.1 s. The 3:1 condition is judged
        // until 5 s, when the change began, not until 7 s, when it was known to be in place.
        let moved = sent.map { packet in
            var copy = packet
            if packet.t >= 5.1 { copy.vnet = Int(packet.streamSequence) % 4 == 3 ? 1 : 2 }
            return copy
        }
        func firstSettle(began: [Double: Double]) -> Double? {
            RunAnalysis(
                sent: moved, received: [], startMonotonic: 0, intervalS: 10, durationS: 10,
                capacity: CapacityTimeline(
                    vnets: 2, steps: [.init(tS: 0, vnet: 1, kbitS: 600), .init(tS: 0, vnet: 2, kbitS: 200), .init(tS: 7, vnet: 1, kbitS: 200), .init(tS: 7, vnet: 2, kbitS: 600)],
                    outages: [], began: began),
                queueBytes: { _, c in c * 0.1 / 8 + 1600 }, usesAllVNets: true, uniVNet: nil
            ).shifts()[0].settleS
        }
        #expect(firstSettle(began: [:]) == nil, "judged until 7 s, the move at 5.1 s looks like never settling")
        #expect(firstSettle(began: [7: 5]).map { $0 >= 0.6 && $0 <= 0.8 } == true, "\(String(describing: firstSettle(began: [7: 5])))")

        // A 1 s outage of VNet 1 (a flapping path) is too short for a 2 s window: it is judged in
        // 0.5 s windows. The sender leaves after 0.12 s; a window from s holds (0.12 - s) s of
        // VNet 1's half, within 10 points (of 0 %) from s = 0.1 on. A sender that stays is never.
        let flap = CapacityTimeline.Outage(vnet: 1, path: "P1,1", fromS: 4, toS: 5, rerouted: false)
        let even = (0..<500).map {
            SentPacket(t: Double($0) / 50, streamSequence: UInt32($0), vnet: 1 + $0 % 2, pathSequence: UInt32($0), frame: 0, bytes: 864, copy: false, localDrop: false)
        }
        func settleOfOutage(_ packets: [SentPacket]) -> Double? {
            RunAnalysis(
                sent: packets, received: [], startMonotonic: 0, intervalS: 10, durationS: 10,
                capacity: CapacityTimeline(vnets: 2, steps: [.init(tS: 0, vnet: 1, kbitS: 400), .init(tS: 0, vnet: 2, kbitS: 400)], outages: [flap]),
                queueBytes: { _, c in c * 0.1 / 8 + 1600 }, usesAllVNets: true, uniVNet: nil
            ).shifts().first { $0.atS == 4 }?.settleS
        }
        let leaving = settleOfOutage(even.map { packet in
            var moved = packet
            if packet.t >= 4.12 && packet.t < 5 { moved.vnet = 2 }
            return moved
        })
        #expect(leaving.map { $0 >= 0.05 && $0 <= 0.15 } == true, "settled after \(String(describing: leaving))")
        #expect(settleOfOutage(even) == nil)

        // A second outage 3 s later makes VNet 1 a flapping one: the split is no longer judged
        // against capacity-proportional from then on, nor the return to it.
        let again = CapacityTimeline.Outage(vnet: 1, path: "P1,1", fromS: 7, toS: 8, rerouted: false)
        let twice = RunAnalysis(
            sent: even, received: [], startMonotonic: 0, intervalS: 10, durationS: 10,
            capacity: CapacityTimeline(vnets: 2, steps: [.init(tS: 0, vnet: 1, kbitS: 400), .init(tS: 0, vnet: 2, kbitS: 400)], outages: [flap, again]),
            queueBytes: { _, c in c * 0.1 / 8 + 1600 }, usesAllVNets: true, uniVNet: nil)
        #expect(twice.shifts().map(\.atS) == [0, 4, 5], "\(twice.shifts().map(\.atS))")
        #expect(twice.failovers().map(\.flapping) == [nil, true])
        let apart = CapacityTimeline.Outage(vnet: 1, path: "P1,1", fromS: 4 + RunAnalysis.flapWindowS + 1, toS: 4 + RunAnalysis.flapWindowS + 2, rerouted: false)
        let far = RunAnalysis(
            sent: even, received: [], startMonotonic: 0, intervalS: 10, durationS: 30,
            capacity: CapacityTimeline(vnets: 2, steps: [], outages: [flap, apart]), queueBytes: { _, c in c * 0.1 / 8 + 1600 }, usesAllVNets: true, uniVNet: nil)
        #expect(far.failovers().map(\.flapping) == [nil, nil], "two outages further apart than the window: no flap")
    }

    @Test("the fluid bound counts random loss: none while a clean VNet has room, the share that must go on the lossy VNet otherwise")
    func lossAwareBound() throws {
        // 320 kbit/s of 1000-byte IPv4 packets (1014 B on the link) for 10 s.
        var sent: [SentPacket] = []
        for n in 0..<400 {
            sent.append(SentPacket(t: Double(n) / 40, streamSequence: UInt32(n), vnet: 1, pathSequence: UInt32(n), frame: 0, bytes: 1000, copy: false, localDrop: false))
        }
        func bound(_ vnet2: Double, loss: Double, splitting: Bool = true) -> Double {
            let timeline = CapacityTimeline(
                vnets: 2, steps: [.init(tS: 0, vnet: 1, kbitS: 400), .init(tS: 0, vnet: 2, kbitS: vnet2)], outages: [],
                losses: [.init(tS: 0, vnet: 1, lossPct: loss)])
            let analysis = RunAnalysis(
                sent: sent, received: [], startMonotonic: 0, intervalS: 10, durationS: 10, capacity: timeline,
                queueBytes: { _, c in c * 0.1 / 8 + 1600 }, usesAllVNets: splitting, uniVNet: splitting ? nil : 1)
            return analysis.intervalsAndTotal().total.fluidBoundPct
        }
        #expect(bound(400, loss: 3) == 0, "the clean VNet carries it all")
        // VNet 2 at 200 kbit/s: 324.5 - 200 = 124.5 kbit/s must go on VNet 1, 3 % of which is lost.
        let short = bound(200, loss: 3)
        #expect(abs(short - 124.48 / 324.48 * 3) < 0.1, "\(short) %")
        // One VNet alone: its loss rate (uni-net on the lossy VNet).
        #expect(abs(bound(400, loss: 3, splitting: false) - 3) < 0.05)
        // The loss of a VNet from a schedule: a vnet-wide 3 % on two links in a row is 5.91 %.
        let topology = try Topology.load(repositoryRoot + "/Experiments/topologies/paper-fig6.toml")
        let schedule = Schedule(name: "loss", description: nil, events: [.init(atS: 5, target: .vnet("vnet1"), change: .shape(.init(lossPct: 3)))])
        let applied = [SchedulePlayer.Applied(index: 1, event: "", atS: 5, startedS: 5, appliedS: 5.01, lateMs: 10, shaper: "tbf", limitations: [])]
        let timeline = CapacityTimeline.from(schedule: schedule, applied: applied, topology: topology, outages: [])
        #expect(timeline.loss(vnet: 1, at: 4) == 0 && abs(timeline.loss(vnet: 1, at: 6) - (1 - 0.97 * 0.97)) < 1e-9)
        #expect(timeline.loss(vnet: 2, at: 6) == 0 && timeline.breakpoints.contains(5.01))
    }

    @Test("every experiment file in Experiments/ reads and checks, with its topology and schedule")
    func everyExperimentFile() throws {
        let folder = repositoryRoot + "/Experiments"
        let files = try FileManager.default.contentsOfDirectory(atPath: folder).filter { $0.hasSuffix(".toml") }.sorted()
        #expect(files.count >= 5, "\(files)")
        for name in files {
            #expect(throws: Never.self, "\(name)") { try ExperimentKinds.load(folder + "/" + name) }
        }
        #expect(try ExperimentKinds.load(folder + "/paper-qos-classes.toml") == "classes")
        for name in ["random-loss", "crowded-failover"] {
            let file = try ExperimentFile.load(folder + "/\(name).toml")
            #expect(file.targets.notWorseThan == "static-1:1" && file.targets.leaveMs == 150, "\(name)")
        }
    }

    @Test("the paper's experiment file reads, and bad modes are refused with the file named")
    func experimentFile() throws {
        let file = try ExperimentFile.load(repositoryRoot + "/Experiments/paper-multinet.toml")
        #expect(file.modes.map(\.description) == ["uni-net1", "uni-net2", "multi-net", "static-1:1", "duplicate"])
        #expect(file.sources.map(\.name) == ["cbr", "vbr"])
        let directory = try makeTemporaryDirectory()
        let bad = try writeFile(
            directory, "bad.toml",
            "name = \"bad\"\ntopology = \"t.toml\"\nschedule = \"s.toml\"\nmodes = [\"tri-net\"]\n[[source]]\nname = \"cbr\"\ncbr = \"320kbit\"\n")
        #expect {
            try ExperimentFile.load(bad)
        } throws: { String(describing: $0).contains("bad.toml") && String(describing: $0).contains("tri-net") }
    }

    @Test("a source's fec: the shape read, sent as send --fec; refused with the source named when it is not a shape or the recovery has no parity")
    func fecSources() throws {
        let file = try ExperimentFile.load(repositoryRoot + "/Experiments/recovery.toml")
        let fec = try #require(file.sources.first { $0.name == "cbr-fec-arq" })
        #expect(fec.recovery == .fecArq && fec.fec == FECShape(columns: 4, rows: 1, layout: .rows))
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let head = "name = \"x\"\ntopology = \"t.toml\"\nschedule = \"s.toml\"\nmodes = [\"multi-net\"]\n[[source]]\nname = \"v\"\ncbr = \"320kbit\"\n"
        for (body, says) in [
            ("recovery = \"arq\"\nfec = \"cols=4\"\n", "fec goes with recovery"), ("recovery = \"fec\"\nfec = \"cols=40\"\n", "cols=40 must be 1 to 32"),
        ] {
            let path = try writeFile(directory, "fec.toml", head + body)
            #expect {
                try ExperimentFile.load(path)
            } throws: { String(describing: $0).contains("fec.toml") && String(describing: $0).contains(says) && String(describing: $0).contains("source v") }
        }
    }

    @Test("sources that shed: their own modes, a GoP pattern by default, and a clear refusal when they would run without the controller")
    func sheddingSources() throws {
        let file = try ExperimentFile.load(repositoryRoot + "/Experiments/shortfall.toml")
        #expect(file.runs.map { "\($0.source.name) \($0.mode)" } == [
            "vbr multi-net", "vbr static-1:1", "vbr duplicate", "vbr-shed multi-net", "cbr multi-net", "cbr static-1:1", "cbr duplicate", "cbr-shed multi-net",
        ])
        #expect(file.sources.map(\.shed) == [false, true, false, true])
        #expect(file.sources.allSatisfy { $0.gop == .mpeg4 })
        #expect(file.targets.decodableOfCapacityPct == 90 && file.targets.everyIFrame)
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let head = "name = \"x\"\ntopology = \"t.toml\"\nschedule = \"s.toml\"\nmodes = [\"multi-net\", \"static-1:1\"]\n"
        let everyMode = try writeFile(directory, "shed.toml", head + "[[source]]\nname = \"v\"\ncbr = \"320kbit\"\nshed = true\n")
        #expect {
            try ExperimentFile.load(everyMode)
        } throws: { String(describing: $0).contains("shed.toml") && String(describing: $0).contains("modes = [\"multi-net\"]") }
        let badGoP = try writeFile(directory, "gop.toml", head + "[[source]]\nname = \"v\"\ncbr = \"320kbit\"\ngop = \"PBB\"\n")
        #expect {
            try ExperimentFile.load(badGoP)
        } throws: { String(describing: $0).contains("start with its only I frame") }
        let defaulted = try writeFile(directory, "ok.toml", head + "[[source]]\nname = \"v\"\ncbr = \"320kbit\"\nshed = true\nmodes = [\"multi-net\"]\n")
        #expect(try ExperimentFile.load(defaulted).sources[0].gop == .mpeg4)
    }

    /// What the harness sees of a kind: through the protocol, as a generic caller does.
    func timing<Kind: ExperimentKind>(_ kind: Kind) -> [Double] { [kind.startLeadS, kind.staggerS, kind.streamS, kind.timeLimitS(runs: 10)] }

    @Test("the harness gets each kind's own timing and targets through the protocol (lead, stagger, stream length)")
    func kindTiming() throws {
        let paper = try MultiNetExperiment.load(repositoryRoot + "/Experiments/paper-multinet.toml")
        #expect(timing(paper) == [3, 0.5, 150, 245])
        #expect(timing(try MultiNetExperiment.load(repositoryRoot + "/Experiments/paper-multinet-vm.toml"))[0] == 30)
        let classes = try ClassExperiment.load(repositoryRoot + "/Experiments/paper-qos-classes.toml")
        #expect(timing(classes)[2] == Double(classes.file.packets) / classes.file.packetsPerSecond)
        #expect(paper.file.sources.map(\.lossTargetPct) == [0.5, 1.0])
        #expect(paper.file.targets == ExperimentFile.Targets())
    }

    @Test("a typo in any file kind is refused with the file, its line, the section and the nearest valid key")
    func unknownKeys() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        func typo(_ source: String, _ from: String, _ to: String) throws -> String {
            let text = try String(contentsOfFile: repositoryRoot + "/" + source, encoding: .utf8)
            #expect(text.contains(from), "\(source) has no '\(from)' to misspell")
            return try writeFile(directory, (source as NSString).lastPathComponent, text.replacingOccurrences(of: from, with: to))
        }
        func refusal(_ load: () throws -> Any) -> String {
            do { _ = try load() } catch { return String(describing: error) }
            return "(accepted)"
        }
        let topology = try typo("Experiments/topologies/paper-fig6.toml", "dead_s = ", "dead_sec = ")
        let message = refusal { try Topology.load(topology) }
        #expect(message.hasPrefix(topology + ":"), "\(message)")
        #expect(message.contains("[[vnet]] 1: unknown key 'dead_sec' (did you mean 'dead_s'?)"), "\(message)")
        let line = try #require(Int(message.dropFirst(topology.count + 1).prefix { $0.isNumber }), "\(message)")
        let lines = try String(contentsOfFile: topology, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines[line - 1].hasPrefix("dead_sec"), "line \(line) is '\(lines[line - 1])'")
        let schedule = try typo("Experiments/schedules/paper-table2.toml", "rate = ", "rates = ")
        #expect(refusal { try Schedule.load(schedule) }.contains("[[event]] 1: unknown key 'rates' (did you mean 'rate'?)"))
        let experiment = try typo("Experiments/paper-multinet.toml", "fit_peak = ", "fit_pek = ")
        #expect(refusal { try ExperimentFile.load(experiment) }.contains("[[source]] 2: unknown key 'fit_pek' (did you mean 'fit_peak'?)"))
        let classes = try typo("Experiments/paper-qos-classes.toml", "packets_per_second", "packet_per_second")
        #expect(refusal { try ClassExperimentFile.load(classes) }.contains("unknown key 'packet_per_second' (did you mean 'packets_per_second'?)"))
        // Every file the project ships reads as it is.
        _ = try Topology.load(repositoryRoot + "/Experiments/topologies/paper-fig4.toml")
        _ = try ExperimentFile.load(repositoryRoot + "/Experiments/paper-multinet-vm.toml")
        _ = try ClassExperimentFile.load(repositoryRoot + "/Tests/LabTests/Fixtures/qos-classes-short.toml")
        for fixture in ["one-path.toml", "one-path-netem.toml"] { _ = try Topology.load(repositoryRoot + "/Tests/LabTests/Fixtures/" + fixture) }
        _ = try Topology.load(repositoryRoot + "/Benchmarks/throughput.toml")
    }

    @Test("from a clone with no shared/ beside it, the paper experiment's VBR source falls back to the project's own x264 trace, fitted to 320/620 kbit/s")
    func sourcesFromACloneAlone() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let clone = directory + "/repo"
        try FileManager.default.createDirectory(atPath: clone, withIntermediateDirectories: true)
        for folder in ["Experiments", "Traces"] {
            try FileManager.default.copyItem(atPath: repositoryRoot + "/" + folder, toPath: clone + "/" + folder)
        }
        #expect(!FileManager.default.fileExists(atPath: directory + "/shared"))
        let experiment = try MultiNetExperiment.load(clone + "/Experiments/paper-multinet.toml")
        let vbr = try #require(experiment.file.sources.first { $0.name == "vbr" })
        let (path, reason) = try ExperimentFile.traceFile(of: vbr, relativeTo: experiment.path, environment: [:])
        #expect(path == clone + "/Traces/scenes-x264-25fps-12min.csv", "\(path)")
        #expect(reason.contains("is not there"), "\(reason)")
        let used = try experiment.prepare(vbr, into: directory + "/vbr.csv", environment: [:])
        #expect(used.input == path && used.reason == reason)
        let fitted = try TraceReader.read(contentsOf: directory + "/vbr.csv")
        let stats = TraceStatistics(fitted)
        #expect(abs(stats.durationSeconds - 150) < 0.1)
        #expect(abs(stats.meanKbps - 320) < 1, "mean \(stats.meanKbps)")
        #expect(abs(stats.peakKbps1s / 620 - 1) < 0.05, "peak \(stats.peakKbps1s) kbit/s for 620")
        // A source whose trace and fallback are both missing is refused with both named.
        var lost = vbr
        lost.fallbackTrace = "nowhere.csv"
        #expect(throws: LabError.self) { try ExperimentFile.traceFile(of: lost, relativeTo: experiment.path, environment: [:]) }
    }
}
