import Foundation
import Packets
import RunRecords
import TestSupport
import Testing

@testable import Experiment
@testable import Lab
@testable import Voice

@Suite("The shadow-voip experiment as plans (no root needed)")
struct ShadowVoicePlanTests {
    let file = repositoryRoot + "/Experiments/shadow-voip.toml"

    @Test("Table 1 becomes events at the phase boundaries: B activated, B's priority, the promote, A retired; monitors at both exits")
    func table1() throws {
        let experiment = try ShadowVoiceExperiment.load(file)
        #expect(experiment.production == "A" && experiment.shadow == "B" && experiment.phaseS == 30 && experiment.streamS == 180)
        #expect(experiment.schedule.events.map(\.summary) == ["B activate", "B priority EF (TOS 0xb8)", "B promote", "A retire"])
        #expect(experiment.schedule.events.map(\.atS) == [60, 90, 120, 150])
        #expect(experiment.topology.monitors.map { "\($0.vnet) \($0.routers ?? []) \($0.traffic ?? "")" } == ["A [\"a2\"] port:5010", "B [\"a2s\"] port:5010"])
        #expect(try ExperimentKinds.load(file) == "shadow-voip")
    }

    @Test("phases a lab cannot run are refused: an unknown VNet, production not active, a retired VNet back, production leaving")
    func refusals() throws {
        typealias Phase = ShadowVoiceExperimentFile.Phase
        func refusal(_ phases: [Phase]) -> String {
            do {
                _ = try ShadowVoiceExperiment.boundaries(phases, production: "A", shadow: "B", phaseS: 10, load: .defaults, mark: TrafficMark(dscp: 46))
                return ""
            } catch { return "\(error)" }
        }
        #expect(refusal([Phase(production: "C", active: ["C"], priority: [], load: "L")]).contains("'C' is neither A nor B"))
        #expect(refusal([Phase(production: "A", active: ["B"], priority: [], load: "L")]).contains("production A must be active"))
        #expect(refusal([Phase(production: "A", active: ["A"], priority: [], load: "X")]).contains("L, H, L-H or H-L"))
        let a = Phase(production: "A", active: ["A", "B"], priority: [], load: "H")
        let b = Phase(production: "B", active: ["B"], priority: [], load: "H")
        #expect(refusal([a, b, Phase(production: "B", active: ["A", "B"], priority: [], load: "H")]).contains("A was retired before"))
        #expect(refusal([a, Phase(production: "A", active: ["A"], priority: [], load: "H"), Phase(production: "A", active: ["B"], priority: [], load: "H")])
            .contains("production A must be active"))
        #expect(refusal(ShadowVoiceExperimentFile.table1(production: "A", shadow: "B")) == "")
    }

    @Test("a topology that monitors the pair itself is refused: the experiment puts its own monitoring node at each exit")
    func ownMonitors() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let topology = try String(contentsOfFile: repositoryRoot + "/Experiments/topologies/shadow-voip.toml", encoding: .utf8)
        try (topology + "\n[[monitor]]\nvnet = \"A\"\n").write(toFile: directory + "/t.toml", atomically: true, encoding: .utf8)
        let experiment = try String(contentsOfFile: file, encoding: .utf8).replacingOccurrences(of: "topologies/shadow-voip.toml", with: "t.toml")
        try experiment.write(toFile: directory + "/e.toml", atomically: true, encoding: .utf8)
        #expect(throws: LabError.self) { _ = try ShadowVoiceExperiment.load(directory + "/e.toml") }
        do { _ = try ShadowVoiceExperiment.load(directory + "/e.toml") } catch { #expect("\(error)".contains("monitors A itself"), "\(error)") }
    }

    @Test("the background: each flow's on/off times replay the same for the same load and length, carry the load asked for, and are heavy-tailed")
    func background() throws {
        let load = BackgroundLoad.defaults
        let one = load.departures(flow: 3, share: 0.85, durationS: 60)
        #expect(one == load.departures(flow: 3, share: 0.85, durationS: 60), "replayed")
        #expect(one != load.departures(flow: 4, share: 0.85, durationS: 60), "flows differ")
        // Eight flows together: the mean load within 15 % of 85 % of 20 Mbit/s over 10 minutes.
        let packets = (0..<load.flows).map { load.departures(flow: $0, share: 0.85, durationS: 600).count }.reduce(0, +)
        let mbit = Double(packets) * Double(load.packetBytes + 28) * 8 / 600 / 1e6
        #expect(abs(mbit - 17) < 17 * 0.15, "\(mbit) Mbit/s")
        // Off periods: the longest of a flow's gaps is many times its mean (a Pareto with shape 1.5).
        let spacing = 1000 / load.onRate(share: 0.85)
        let offs = load.departures(flow: 0, share: 0.85, durationS: 600).filter { $0 > spacing * 1.5 }
        #expect(offs.max()! > 8 * offs.reduce(0, +) / Double(offs.count), "longest off \(offs.max()!) ms")
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try load.writeScript(to: directory + "/s.itg", share: 0.22, durationS: 5, receiver: "198.18.100.1", firstPort: 10001, signalling: 9003)
        let lines = try String(contentsOfFile: directory + "/s.itg", encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 8 && lines[0].hasPrefix("-a 198.18.100.1 -Sdp 9003 -rp 10001 -T UDP -Ft \(directory)/s.itg.1.idt -c 1400 -z "))
        #expect(lines[0].hasSuffix(" -t 5000"))
    }

    @Test("a voice packet log row reads back as written, and accounting it again gives the receiver's report")
    func packetLog() throws {
        var packets: [VoicePacket] = []
        for n in 0..<100 where n % 17 != 5 {
            let sent = UInt64(1_000_000_000) + UInt64(n) * 20_000_000
            packets.append(VoicePacket(ssrc: 7, sequence: UInt16((65500 + n) % 65536), timestamp: UInt32(n * 160), sendNanoseconds: sent, arrivalNanoseconds: sent + 2_000_000))
        }
        for packet in packets {
            #expect(VoicePacket(csvFields: packet.csvRow.split(separator: ",", omittingEmptySubsequences: false)) == packet)
        }
        var accounting = VoiceAccounting()
        for packet in packets { accounting.arrived(packet) }
        let report = accounting.report(binS: 1, playoutMs: 60)
        #expect(report.expected == 100 && report.lost == 6 && report.duplicates == 0, "\(report.expected) \(report.lost)")
        let fates = accounting.fates(playoutMs: 60)
        #expect(fates.count == 100 && fates[5].received == false && fates[5].sendNanoseconds == 1_100_000_000, "a lost packet's send time is its place's")
        #expect(VoiceAccounting.summary(fates, startS: 0, jitterMs: accounting.jitterMs) == report.whole)
    }

    @Test("the shadow's isolation is judged only on the same background: a third offered more than 1.5 % off the thirds' median is left out, an idle third off it is not judged and not missed")
    func isolationOnTheSameBackground() {
        func bin(_ ppl: Double, _ delay: Double) -> VoiceAccounting.Bin {
            VoiceAccounting.Bin(
                startS: 0, expected: 500, received: 500, lost: 0, late: 0, meanDelayMs: delay, mouthToEarMs: delay + 80, jitterMs: 1, pplPct: ppl, burstR: 1, r: 80, mos: 4)
        }
        typealias Isolation = ShadowVoiceResults.Isolation
        #expect(Isolation.median([17.4, 16.6, 17.3]) == 17.3 && Isolation.median([1, 3]) == 2 && Isolation.median([]) == nil)
        #expect(Isolation.comparable(17.1, median: 17.3) && !Isolation.comparable(17.0, median: 17.3) && Isolation.comparable(5, median: nil))
        var isolation = Isolation(
            atS: 60, idle: bin(9.4, 15.8), active: [bin(16.0, 22.0), bin(16.4, 22.5), bin(15.8, 21.9)], idleOfferedMbit: 16.63, activeOfferedMbit: [17.34, 17.4, 17.5],
            leftOut: ["100 s: 16.97 Mbit/s"], offeredMedianMbit: 17.34)
        #expect(!isolation.idleComparable, "4 % short of the median: not the same background")
        #expect(isolation.bands.map { !$0.ppl.contains(9.4) } == true, "and its loss lies outside the band, which would read as a miss")
        isolation.idleOfferedMbit = 17.3
        #expect(isolation.idleComparable)
        isolation.idleOfferedMbit = nil
        #expect(isolation.idleComparable, "results from before the entry was counted are judged as they were")
        struct Shown: ExperimentReporting {
            var targets: [TargetCheck]
            var markdown: String { "" }
            func write(folder: String, plotsCopy: String?) throws -> [String] { [] }
        }
        let shown = Shown(targets: [
            TargetCheck(target: "t1", run: "r", measured: "m", pass: false, note: nil, judged: false), TargetCheck(target: "t2", run: "r", measured: "m", pass: false, note: nil),
        ]).targetsMarkdown
        #expect(shown.contains("| t1 | r | m | not judged |") && shown.contains("| t2 | r | m | **no** |"), "\(shown)")
    }
}
