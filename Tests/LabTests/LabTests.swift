import Accounting
import Experiment
import Foundation
import RunRecords
import Streaming
import TestSupport
import Testing

@testable import Lab

let paperTopology = repositoryRoot + "/Experiments/topologies/paper-fig6.toml"
let paperSchedule = repositoryRoot + "/Experiments/schedules/paper-table2.toml"
let onePath = repositoryRoot + "/Tests/LabTests/Fixtures/one-path.toml"

/// A run id no other test uses at the same time.
func freshRunID() -> String { String(format: "t%05x", UInt32.random(in: 0...0xFFFFF)) }

/// Namespaces and bird processes of run `id` that still exist.
func leftovers(_ id: String) throws -> [String] {
    let namespaces = try runProcess(["ip", "netns", "list"]).stdout.split(separator: "\n")
        .map { String($0.split(separator: " ")[0]) }.filter { $0.hasPrefix("vl\(id)-") }
    let birds = try runProcess(["pgrep", "-af", "^bird .*/labs/\(id)/"]).stdout.split(separator: "\n").map(String.init)
    return namespaces + birds
}

@Suite("Lab files and plans (no root needed)")
struct LabPlanTests {
    @Test("paper-fig6 reads as the paper's Fig. 6: two VNets, Pi,1 cheaper than Pi,2, timers from the file")
    func paperTopology() throws {
        let topology = try Topology.load(repositoryRoot + "/Experiments/topologies/paper-fig6.toml")
        #expect(topology.vnets.map(\.name) == ["vnet1", "vnet2"])
        for (index, vnet) in topology.vnets.enumerated() {
            let n = index + 1
            let cheap = vnet.links.filter { $0.path == "P\(n),1" }
            let fallback = vnet.links.filter { $0.path == "P\(n),2" }
            #expect(cheap.count == 2 && fallback.count == 2)
            #expect(cheap.map(\.cost).reduce(0, +) < fallback.map(\.cost).reduce(0, +))
        }
        let plan = try LabPlan(topology: topology, runID: "ab12", shaper: .tbf)
        #expect(plan.nodes.count == 10)
        #expect(plan.namespace("in1") == "vlab12-in1")
        let addresses = plan.links.flatMap { [$0.aAddress, $0.bAddress] }
        #expect(Set(addresses).count == addresses.count)
        #expect(addresses.allSatisfy { $0.description.hasPrefix("198.19.") })
        #expect(plan.senderAddress(vnet: 0).description == "198.18.1.2" && plan.senderAddress(vnet: 1).description == "198.18.2.2")
        let bird = plan.birdConfig(router: "in1", logDirectory: "/x")
        #expect(bird.contains(#"interface "p11" { type ptp; cost 10; hello 5; dead 15; };"#))
        #expect(bird.contains(#"interface "p12" { type ptp; cost 20; hello 5; dead 15; };"#))
        #expect(bird.contains("route 198.18.1.0/30 via 198.19.0.17;"))
        #expect(plan.birdConfig(router: "out1", logDirectory: "/x").contains("route 198.18.100.1/32 via"))
    }

    @Test("paper-table2 reads as Table II: shifts every 30 s, P1,1 down at 90 s and up at 120 s")
    func paperSchedule() throws {
        let schedule = try Schedule.load(repositoryRoot + "/Experiments/schedules/paper-table2.toml")
        #expect(schedule.events.count == 8)
        func rates(_ vnet: String) -> [String] {
            schedule.events.filter { $0.target == .vnet(vnet) }.compactMap {
                if case .shape(let shape) = $0.change { return shape.rate?.description }
                return nil
            }
        }
        #expect(rates("vnet1") == ["600kbit", "200kbit", "400kbit"])
        #expect(rates("vnet2") == ["200kbit", "600kbit", "400kbit"])
        #expect(schedule.events.filter { $0.target == .path("P1,1") }.map { "\(Int($0.atS)) \($0.summary)" } == ["90 P1,1 down", "120 P1,1 up"])
        #expect(schedule.scaled(by: 0.1).events.last?.atS == 12)
    }

    @Test("a lab whose owning experiment died is named as orphaned; one whose owner runs, or with no owner, is not")
    func orphanedLabs() throws {
        let root = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        // A process that lived and is gone, by its pid and start time.
        let child = Process()
        child.executableURL = URL(fileURLWithPath: "/bin/sleep")
        child.arguments = ["30"]
        try child.run()
        let gone = try #require(ProcessIdentity.startTicks(of: child.processIdentifier).map { ProcessIdentity(pid: child.processIdentifier, startTicks: $0) })
        #expect(gone.isAlive)
        kill(child.processIdentifier, SIGKILL)
        child.waitUntilExit()
        #expect(!gone.isAlive)
        let me = try #require(ProcessIdentity.current)
        #expect(me.isAlive && !ProcessIdentity(pid: me.pid, startTicks: me.startTicks + 1).isAlive)
        let topology = try Topology.load(onePath)
        for (id, owner) in [("dead", Optional(gone)), ("live", Optional(me)), ("lab", nil)] {
            var state = LabState(runID: id, topologyFile: onePath, topology: topology, shaper: .tbf, shaperReason: "")
            state.owner = owner
            try FileManager.default.createDirectory(atPath: "\(root)/\(id)", withIntermediateDirectories: true)
            try JSONEncoder().encode(state).write(to: URL(fileURLWithPath: "\(root)/\(id)/state.json"))
        }
        #expect(Lab.orphanedIDs(root: root) == ["dead"])
    }

    @Test("lab play --dry-run prints each event's time and the exact tc and nft commands, and runs nothing")
    func playDryRun() throws {
        let result = try runProcess(
            [vnetstreamBinary, "lab", "play", repositoryRoot + "/Experiments/schedules/paper-table2.toml", "--dry-run", "--topology", repositoryRoot + "/Experiments/topologies/paper-fig6.toml"])
        #expect(result.status == 0, "\(result.summary)")
        let out = result.stdout
        #expect(out.contains("at 30 s: vnet1 rate 200kbit; vnet2 rate 600kbit"), "\(out)")
        #expect(out.contains("tc -n vlID-in1 -batch - <<EOF") && out.contains("qdisc replace dev p11 root handle 1: tbf rate 200000bit"), "\(out)")
        // The failure is one blackhole element, and its end is removed again at 120 s.
        let failure = try #require(out.components(separatedBy: "at 90 s: P1,1 down").last?.components(separatedBy: "at 120 s").first)
        #expect(failure.components(separatedBy: "add element inet vnetlab down {").count == 3, "both links of the path: \(failure)")
        let repair = try #require(out.components(separatedBy: "at 120 s: P1,1 up").last)
        #expect(repair.components(separatedBy: "delete element inet vnetlab down {").count == 3, "\(repair)")
    }

    @Test("bad files are refused with the file and what to fix")
    func badFiles() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let base = try String(contentsOfFile: onePath, encoding: .utf8)
        let cases: [(String, String)] = [
            (base.replacingOccurrences(of: #"endpoints = ["mid:out", "out:mid"]"#, with: #"endpoints = ["mid:out", "nowhere:mid"]"#),
             "link endpoint nowhere:mid is not on one of its routers"),
            (base.replacingOccurrences(of: "dead_s = 4", with: "dead_s = 1"), "dead_s larger than hello_s"),
            (base.replacingOccurrences(of: #"rate = "2mbit""#, with: #"rate = "2mbps""#), "tc reads 'kbps' as kilobytes"),
            (base.replacingOccurrences(of: "cost = 10\n  path = \"P1\"\n  rate", with: "cost = 0\n  path = \"P1\"\n  rate"),
             "link cost must be 1-65534"),
            ("name = \"broken\"\nsender = [", "broken.toml:2:"),
        ]
        for (index, (text, message)) in cases.enumerated() {
            let path = try writeFile(directory, index == cases.count - 1 ? "broken.toml" : "case\(index).toml", text)
            let error = #expect(throws: LabError.self) { try Topology.load(path) }
            #expect(error?.description.contains(message) == true, "\(error?.description ?? "no error")")
            #expect(error?.description.hasPrefix(path) == true)
        }
        let schedule = try writeFile(directory, "s.toml", "name = \"s\"\n[[event]]\nat_s = 5\nvnet = \"vnet1\"\npath = \"P1\"\nrate = \"1mbit\"\n")
        let error = #expect(throws: LabError.self) { try Schedule.load(schedule) }
        #expect(error?.description.contains("event 1 (at 5 s): name exactly one of vnet, path or link") == true)
    }

    @Test("shaping lines: netem with a queue limit from the rate, TBF with burst and limit, loss and blackholes in nftables")
    func shaping() {
        var conditions = LinkConditions()
        conditions.rate = .kbit(400)
        conditions.delayMs = 50
        conditions.lossPct = 2
        let netem = InterfaceShaping(interface: "p11", shaper: .netem, conditions: conditions)
        // 400 kbit/s for 100 ms queue + 50 ms delay, in 1000-byte packets: 7.5, so 8.
        #expect(netem.tcLines == ["qdisc replace dev p11 root handle 1: netem limit 8 delay 50ms loss random 2% rate 400000bit"])
        #expect(netem.nftLines(from: nil).isEmpty)
        let tbf = InterfaceShaping(interface: "p11", shaper: .tbf, conditions: conditions)
        #expect(tbf.tcLines == ["qdisc replace dev p11 root handle 1: tbf rate 400000bit burst 1600 limit 6600"])
        #expect(tbf.nftLines(from: nil) == [
            "flush chain inet vnetlab loss_p11", "add rule inet vnetlab loss_p11 numgen random mod 1000000 < 20000 counter jump lossdrop_p11",
        ])
        #expect(Shaper.tbf.limitations(conditions).first?.contains("delay 50.0 ms not emulated") == true)
        #expect(Shaper.netem.limitations(conditions).isEmpty)
        #expect(InterfaceShaping.blackholeLine(interface: "p11", down: true) == #"add element inet vnetlab down { "p11" }"#)
        // A big rate needs a burst of at least rate/HZ.
        #expect(InterfaceShaping.tbfBurstBytes(100e6) == 50_000)
    }
}

@Suite("Processes the lab starts")
struct CommandTests {
    @Test("a child started while this process ignores SIGTERM (as vnetstream run does while it cleans up) still stops on SIGTERM")
    func childrenGetDefaultSignals() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let previous = signal(SIGTERM, SIG_IGN)
        let child = try Command.Child(["sleep", "30"], stdout: directory + "/out", stderr: directory + "/err")
        signal(SIGTERM, previous)
        let started = Date()
        child.terminate()
        let took = Date().timeIntervalSince(started)
        #expect(took < 5, "the child ignored SIGTERM for \(took) s")
        #expect(child.wait() == 128 + Int32(SIGTERM))
    }

    @Test("commands started ahead wait for their input: each gets its own at run, a spare is stopped and reaped, one with nothing waiting starts then, a failure is thrown")
    func startedAhead() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let a = ["sh", "-c", "cat > \(directory)/a"]
        let b = ["sh", "-c", "cat > \(directory)/b"]
        let spare = ["sh", "-c", "echo $$ > \(directory)/spare; exec sleep 30"]
        let waiting = LocalHost().startWaiting([a, b, spare])
        // The shells are running before their input comes: each has opened its file.
        let deadline = Date().addingTimeInterval(10)
        while !(["a", "b", "spare"].allSatisfy { FileManager.default.fileExists(atPath: "\(directory)/\($0)") }) && Date() < deadline {
            Thread.sleep(forTimeInterval: 0.01)
        }
        #expect(try String(contentsOfFile: directory + "/a", encoding: .utf8) == "", "a read its input before run")
        let pid = Int32(try String(contentsOfFile: directory + "/spare", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines))!
        let started = Date()
        try waiting.run([(b, "second\n"), (a, "first\n"), (["sh", "-c", "cat > \(directory)/c"], "third\n")], timeout: 10)
        #expect(Date().timeIntervalSince(started) < 5, "run waited for the spare")
        #expect(try String(contentsOfFile: directory + "/a", encoding: .utf8) == "first\n")
        #expect(try String(contentsOfFile: directory + "/b", encoding: .utf8) == "second\n")
        #expect(try String(contentsOfFile: directory + "/c", encoding: .utf8) == "third\n")
        #expect(kill(pid, 0) == -1 && errno == ESRCH, "the spare \(pid) still runs (or is not reaped)")
        waiting.cancel()

        let failing = ["sh", "-c", "cat >/dev/null; echo refused >&2; exit 3"]
        let second = LocalHost().startWaiting([failing])
        do {
            try second.run([(failing, "x\n")], timeout: 10)
            Issue.record("a failing command started ahead did not throw")
        } catch {
            #expect("\(error)".contains("exit 3") && "\(error)".contains("refused"), "\(error)")
        }
    }
}

@Suite("The lab, for real (root, namespaces, bird2)", .serialized, .timeLimit(.minutes(5)))
struct LabTests {
    /// A one-path lab (TBF) with a receiver in `dst` writing DIRECTORY/r.json; the receiver,
    /// the folder and the lab are removed when `body` returns or throws.
    func withOnePathReceiver(idleTimeout: String, _ body: (Lab, String, BackgroundProcess) throws -> Void) throws {
        let lab = try Lab.up(topology: try Topology.load(onePath), file: onePath, runID: freshRunID(), shaper: .tbf)
        defer { lab.down() }
        try lab.waitForRouting(timeout: 30)
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let receiver = try BackgroundProcess(
            ["ip", "netns", "exec", lab.plan.namespace("dst"), vnetstreamBinary, "recv", "--json-file", directory + "/r.json",
             "--idle-timeout", idleTimeout, "--linger", "1"])
        defer { receiver.stop() }
        usleep(300_000)
        try body(lab, directory, receiver)
    }

    @Test("paper-fig6: OSPF converges over Pi,1; blackholing P1,1 moves VNet 1 to P1,2 within dead + 2 s; VNet 2 untouched; nothing left after down")
    func paperFailover() throws {
        let id = freshRunID()
        let lab = try Lab.up(topology: try Topology.load(paperTopology), file: paperTopology, runID: id)
        defer { lab.down() }
        try lab.waitForRouting(timeout: 60)
        let receiver = lab.plan.topology.receiverAddress
        func via(_ node: String) -> String? { lab.nextHop(node: node, to: receiver).flatMap { lab.neighbour(of: node, at: $0) } }
        #expect(via("in1") == "p11" && via("in2") == "p21")
        // lab status --json is data: OSPF neighbours as bird sees them (in1 has two, both Full),
        // each link end's qdiscs with the kernel's counters, each VNet's route.
        let printed = try runProcess([vnetstreamBinary, "lab", "status", "--id", id, "--json"])
        #expect(printed.status == 0, "\(printed.summary)")
        let status = try JSONDecoder().decode(Lab.Status.self, from: Data(printed.stdout.utf8))
        #expect(status.ospf["in1"]?.map(\.state) == ["Full/PtP", "Full/PtP"], "\(status.ospf["in1"] ?? [])")
        #expect(status.links.count == lab.plan.links.count && status.shaper == lab.shaper)
        let transit = try #require(status.links.first { $0.path == "P1,1" })
        let tbf = try #require(transit.ends.first?.qdiscs.first { $0.kind == "tbf" }, "\(transit.ends)")
        #expect(tbf.handle == "1:" && tbf.packets > 0, "OSPF's hellos crossed the link: \(tbf)")
        // Router ends carry the media counters (none sent yet), the sender's and receiver's none.
        #expect(transit.ends.allSatisfy { $0.counters?.mediaOut == 0 && $0.counters?.mediaIn == 0 }, "\(transit.ends)")
        let access = try #require(status.links.first { $0.path == nil && $0.ends.contains { $0.end == "in1:snd" } })
        #expect(access.ends.map { $0.counters != nil } == [false, true], "\(access.ends)")
        #expect(status.vnets.map(\.nextRouter) == ["p11", "p21"])
        let dead = Double(lab.plan.topology.vnets[0].deadS)
        let event = Schedule.Event(atS: 0, target: .path("P1,1"), change: .down)
        let start = Date()
        try lab.apply(event)
        var moved: Double?
        var vnet2Changed = false
        while Date().timeIntervalSince(start) < dead + 10 {
            if via("in2") != "p21" { vnet2Changed = true }
            if via("in1") == "p12" {
                moved = Date().timeIntervalSince(start)
                break
            }
            usleep(100_000)
        }
        let seconds = try #require(moved, "VNet 1 never moved to P1,2")
        recordTiming("OSPF reroute after a blackhole (paper-fig6, dead 15 s)", seconds, "s", bound: "hello to dead + 2")
        #expect(seconds <= dead + 2, "moved after \(seconds) s")
        #expect(seconds >= Double(lab.plan.topology.vnets[0].helloS), "a blackhole is noticed by missed hellos, not at once")
        #expect(!vnet2Changed && via("in2") == "p21")
        // The return path too: out1 (its own dead timer, up to a hello later than in1's)
        // reaches the sender's VNet 1 address over P1,2 within the same bound.
        func back() -> String? {
            lab.nextHop(node: "out1", to: lab.plan.senderAddress(vnet: 0).description).flatMap { lab.neighbour(of: "out1", at: $0) }
        }
        while back() != "p12" && Date().timeIntervalSince(start) < dead + 2 { usleep(100_000) }
        recordTiming("OSPF reroute of the return path", Date().timeIntervalSince(start), "s", bound: "dead + 2")
        #expect(back() == "p12", "out1 still returns over \(back() ?? "nothing") after \(Date().timeIntervalSince(start)) s")
        try lab.apply(Schedule.Event(atS: 0, target: .path("P1,1"), change: .up))
        let removed = lab.down()
        #expect(removed.contains { $0.contains("bird") })
        #expect(try leftovers(id).isEmpty)
    }

    @Test("a TBF-shaped path carries its configured rate within 10 % (measured with the sender and receiver)")
    func rate() throws {
        try withOnePathReceiver(idleTimeout: "3") { lab, directory, receiver in
            // 4 Mbit/s offered into 2 Mbit/s for 5 s, in near-MTU packets.
            let sender = try runProcess(
                ["ip", "netns", "exec", lab.plan.namespace("src"), vnetstreamBinary, "send", "--cbr", "4mbit", "--fps", "100", "--mode", "uni",
                 "--duration", "5", "--vnet", "tun0", "--to", "198.18.100.1:5004", "--json-file", directory + "/s.json"])
            #expect(sender.status == 0, "\(sender.summary)")
            let received = receiver.wait(timeout: 30)
            #expect(received.status == 0, "\(received.summary)")
            let result = try JSONDecoder().decode(ReceiverResult.self, from: Data(contentsOf: URL(fileURLWithPath: directory + "/r.json")))
            let summary = try JSONDecoder().decode(SenderSummary.self, from: Data(contentsOf: URL(fileURLWithPath: directory + "/s.json")))
            let path = try #require(result.report?.paths.first)
            // TBF counts whole frames: UDP payload + UDP 8 + IPv4 20 + Ethernet 14. Over the span
            // the link's own deliveries define (the receiver's first to last arrival, kernel
            // stamps), not the sender's duration: a sender that starts late or stalls on a loaded
            // machine (a CI run read 1394 kbit/s that way) does not change what the link carried.
            let wireBytes = Double(path.bytesReceived + path.received * (8 + 20 + 14))
            let span = try #require(path.arrivalSpanS, "the receiver gave no arrival span")
            #expect(span > 3 && summary.durationS >= 4.9, "arrivals over \(span) s of a \(summary.durationS) s stream")
            let rate = wireBytes * 8 * Double(path.received - 1) / Double(path.received) / span
            recordTiming("TBF 2 Mbit/s link, rate carried", rate / 1000, "kbit/s", bound: "2000 ± 10 %")
            #expect(abs(rate / 2e6 - 1) < 0.10, "carried \(rate / 1000) kbit/s on a 2000 kbit/s link")
            #expect(path.lost > 0, "twice the rate was offered")
        }
    }

    @Test("the kernel counts media drops where they happen (queue, random loss, blackhole), and they add up to what the receiver lost")
    func kernelGroundTruth() throws {
        try withOnePathReceiver(idleTimeout: "4") { lab, directory, receiver in
            var snapshots: [KernelSnapshot] = []
            // 1 Mbit/s for 5.5 s through in:mid: unlimited (2 Mbit/s), then 500 kbit/s (the queue
            // drops), then 2 Mbit/s with 20 % random loss, then blackholed, then clean again. In
            // uni mode: the adaptive sender's pacing held packets through the blackhole and let
            // them go into the clean phase, whose queue then dropped some (a fresh-clone run).
            let sender = try BackgroundProcess(
                ["ip", "netns", "exec", lab.plan.namespace("src"), vnetstreamBinary, "send", "--cbr", "1mbit", "--fps", "100",
                 "--duration", "5.5", "--mode", "uni", "--vnet", "tun0", "--to", "198.18.100.1:5004", "--json-file", directory + "/s.json"])
            defer { sender.stop() }
            let link = Schedule.Event.Target.link("in:mid")
            let phases: [(String, Schedule.Event.Change)] = [
                ("queue", .shape(.init(rate: .kbit(500)))), ("loss", .shape(.init(rate: .mbit(2), lossPct: 20))),
                ("blackhole", .down), ("clean", .up),
            ]
            // Each phase's span runs from just before its change to just before the next one.
            snapshots.append(lab.kernelSnapshot(label: "start", atS: 0))
            usleep(1_000_000)
            for (label, change) in phases {
                var events = [Schedule.Event(atS: 0, target: link, change: change)]
                if label == "blackhole" { events.insert(Schedule.Event(atS: 0, target: link, change: .shape(.init(lossPct: 0))), at: 0) }
                snapshots.append(lab.kernelSnapshot(label: label, atS: Double(snapshots.count)))
                try lab.apply(events)
                usleep(1_000_000)
            }
            let sent = sender.wait(timeout: 30)
            #expect(sent.status == 0, "\(sent.summary)")
            let received = receiver.wait(timeout: 30)
            #expect(received.status == 0, "\(received.summary)")
            snapshots.append(lab.kernelSnapshot(label: "end", atS: Double(snapshots.count)))
            #expect(snapshots.allSatisfy { $0.failures.isEmpty }, "\(snapshots.map(\.failures))")
            let result = try JSONDecoder().decode(ReceiverResult.self, from: Data(contentsOf: URL(fileURLWithPath: directory + "/r.json")))
            let summary = try JSONDecoder().decode(SenderSummary.self, from: Data(contentsOf: URL(fileURLWithPath: directory + "/s.json")))
            let path = try #require(result.report?.paths.first)
            let total = KernelDrops(plan: lab.plan, from: snapshots.first!, to: snapshots.last!)
            let vnet = try #require(total.vnets.first)
            // Everything the tun took entered the VNet; what left it is what arrived; what the
            // receiver lost is what the links dropped.
            #expect(vnet.entered == summary.vnets[0].packets && vnet.left == path.received, "\(vnet) \(path.received)")
            #expect(path.lost > 0 && vnet.linkDrops + vnet.routerDrops == path.lost, "\(vnet), receiver lost \(path.lost)")
            let forward = try #require(total.links.first { $0.from == "in:mid" })
            #expect(forward.dropped == forward.blackholeDrops + forward.lossDrops + forward.queueDrops)
            // Each kind of drop sits in its own phase, counted by its own counter. A change takes
            // some milliseconds to apply, so a span may hold a few drops of the one before (at
            // 100 packets/s, 10 is 100 ms of them).
            let spans = zip(snapshots, snapshots.dropFirst()).map { KernelDrops(plan: lab.plan, from: $0, to: $1) }
            func span(_ label: String) throws -> KernelDrops.LinkDirection {
                let drops = try #require(spans.first { $0.fromLabel == label })
                return try #require(drops.links.first { $0.from == "in:mid" }, "\(drops.links)")
            }
            let queue = try span("queue")
            #expect(queue.qdiscDrops > 10 && queue.lossDrops == 0 && queue.blackholeDrops == 0, "\(queue)")
            let loss = try span("loss")
            // 20 % of about 100 packets: more than 5, fewer than 45 (p < 1e-6 outside).
            #expect((5...45).contains(loss.lossDrops) && loss.blackholeDrops == 0 && loss.qdiscDrops <= 10, "\(loss)")
            let blackhole = try span("blackhole")
            #expect(blackhole.blackholeDrops > 50 && blackhole.lossDrops <= 10 && blackhole.qdiscDrops == 0, "\(blackhole)")
            let clean = try span("clean")
            #expect(clean.lossDrops == 0 && clean.blackholeDrops <= 10 && clean.qdiscDrops == 0, "\(clean)")
            // The spans add up to the whole.
            let links = spans.compactMap { $0.links.first { $0.from == "in:mid" } }
            #expect(links.map(\.lossDrops).reduce(0, +) == forward.lossDrops && links.map(\.blackholeDrops).reduce(0, +) == forward.blackholeDrops)
            #expect(links.map(\.dropped).reduce(0, +) == forward.dropped && links.map(\.qdiscDrops).reduce(0, +) == forward.qdiscDrops)
        }
    }

    @Test("schedule events take effect within 50 ms of their time (median), and every one within 150 ms under load")
    func scheduleTiming() throws {
        let id = freshRunID()
        let lab = try Lab.up(topology: try Topology.load(paperTopology), file: paperTopology, runID: id)
        defer { lab.down() }
        let schedule = try Schedule.load(paperSchedule).scaled(by: 0.02)  // 150 s in 3 s
        var lines: [String] = []
        let applied = try SchedulePlayer(lab: lab).play(schedule, log: { lines.append($1) })
        #expect(applied.count == 8 && lines.count == 8)
        // Net of a stall of the whole machine (a paused VM), which no lab code can help.
        let late = applied.map { $0.lateMs - ($0.stalledMs ?? 0) }.sorted()
        recordTiming("schedule event lateness, median", late[late.count / 2], "ms", bound: "50")
        recordTiming("schedule event lateness, max", late.last!, "ms", bound: "150")
        #expect(late[late.count / 2] <= 50, "late by \(late) ms")
        #expect(late.last! <= 150, "late by \(late) ms")
        #expect(late.first! >= 0)
        // What the schedule said is what the kernel has now: vnet1 at 400 kbit/s, P1,1 up.
        let qdisc = try Command.run(["tc", "-n", lab.plan.namespace("in1"), "qdisc", "show", "dev", "p11"])
        #expect(qdisc.contains("rate 400Kbit"), "\(qdisc)")
        let set = try Command.run(["ip", "netns", "exec", lab.plan.namespace("p11"), "nft", "list", "set", "inet", "vnetlab", "down"])
        #expect(!set.contains("elements"), "P1,1 is up again: \(set)")
        #expect(lines[0].contains(#""shaper":"tbf""#) || lines[0].contains(#""shaper":"netem""#))
    }

    @Test("an event due while lab play is stopped (SIGSTOP, as a paused machine stops it) is late by the stop, and its record says the machine stalled that long")
    func stallOfTheMachine() throws {
        let id = freshRunID()
        let lab = try Lab.up(topology: try Topology.load(paperTopology), file: paperTopology, runID: id)
        defer { lab.down() }
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let schedule = directory + "/stall.toml"
        try """
            name = "stall"
            [[event]]
            at_s = 0.5
            vnet = "vnet1"
            rate = "600kbit"
            [[event]]
            at_s = 2.5
            vnet = "vnet1"
            rate = "400kbit"
            """.write(toFile: schedule, atomically: true, encoding: .utf8)
        let play = Process()
        play.executableURL = URL(fileURLWithPath: vnetstreamBinary)
        play.arguments = ["lab", "play", schedule, "--id", id, "--json-file", directory + "/applied.jsonl"]
        let out = Pipe()
        play.standardOutput = out
        try play.run()
        defer { if play.isRunning { play.terminate() } }
        // The first event's line says where the player's clock is: 0.5 s. Stopped from 2 s to
        // 3 s, it sleeps through the second event's time (2.5 s) and applies it after.
        var seen = ""
        let deadline = Date().addingTimeInterval(20)
        while !seen.contains("at 0.5 s") && Date() < deadline { seen += String(decoding: out.fileHandleForReading.availableData, as: UTF8.self) }
        try #require(seen.contains("at 0.5 s"), "lab play printed: \(seen)")
        Thread.sleep(forTimeInterval: 1.5)
        kill(play.processIdentifier, SIGSTOP)
        Thread.sleep(forTimeInterval: 1)
        kill(play.processIdentifier, SIGCONT)
        play.waitUntilExit()
        #expect(play.terminationStatus == 0)
        let lines = try String(contentsOfFile: directory + "/applied.jsonl", encoding: .utf8).split(separator: "\n")
        try #require(lines.count == 2, "\(lines)")
        let second = try JSONDecoder().decode(SchedulePlayer.Applied.self, from: Data(lines[1].utf8))
        let stalled = try #require(second.stalledMs)
        recordTiming("event due in a 1 s stop: late", second.lateMs, "ms", bound: ">= 150")
        recordTiming("event due in a 1 s stop: late less the stall", second.lateMs - stalled, "ms", bound: "60")
        #expect(second.lateMs >= 150, "the stop did not cover the event's time: \(lines[1])")
        #expect(stalled >= 0.8 * second.lateMs && second.lateMs - stalled <= 60, "late \(second.lateMs) ms, stalled \(stalled) ms")
        let first = try JSONDecoder().decode(SchedulePlayer.Applied.self, from: Data(lines[0].utf8))
        #expect((first.stalledMs ?? 0) <= 30, "\(lines[0])")
    }

    @Test("lab up killed mid-build cleans up by itself (SIGTERM); after SIGKILL, lab down removes everything")
    func interrupted() throws {
        for signal in [SIGTERM, SIGKILL] {
            let id = freshRunID()
            let up = try BackgroundProcess([vnetstreamBinary, "lab", "up", paperTopology, "--id", id])
            // Wait until it is building (some namespaces exist), then interrupt it.
            var building = false
            for _ in 0..<200 where !building {
                building = (try leftovers(id)).count >= 3
                if !building { usleep(20_000) }
            }
            #expect(building)
            kill(up.pid, signal)
            let result = up.wait(timeout: 30)
            #expect(result.status != 0)
            if signal == SIGKILL {
                #expect(!(try leftovers(id)).isEmpty, "a killed process cannot clean up; lab down must")
                let down = try runProcess([vnetstreamBinary, "lab", "down", "--id", id])
                #expect(down.status == 0, "\(down.summary)")
            }
            let left = try leftovers(id)
            #expect(left.isEmpty, "after signal \(signal): \(left)")
            let again = try runProcess([vnetstreamBinary, "lab", "down", "--id", id])
            #expect(again.status == 0 && again.stdout.contains("not up"), "lab down twice is safe: \(again.summary)")
        }
    }
}

@Suite("netem inside the VM (Debian's kernel under qemu)", .serialized, .timeLimit(.minutes(10)))
struct NetemVMTests {
    @Test("a command runs in the VM with its output and exit status passed through, and netem attaches there")
    func passthrough() throws {
        let result = try runProcess(
            [vnetstreamBinary, "lab", "vm", "--", "sh", "-c", "tc qdisc add dev lo root netem delay 1ms && tc qdisc show dev lo; echo done; exit 7"])
        #expect(result.status == 7, "\(result.summary)")
        #expect(result.stdout.contains("qdisc netem") && result.stdout.contains("done"), "\(result.stdout)")
        #expect(!result.stdout.contains("VNETSTREAM-VM"), "the markers stay inside")
    }

    /// The rate is what the receiver took in over the link's own time: from its first arrival
    /// to its last, on the kernel's receive stamps (the sender overloads the link 2:1, so the
    /// link is busy all that time). Under TCG, with the other core busy, a 1 Mbit/s netem link
    /// was seen carrying 0.89-1.0 of its rate: the margin is 20 %. The figures are printed.
    @Test("in the VM the lab detects netem; a 50 ms netem link shows 50 ms within 5 ms and a 1 Mbit/s link carries it within 20 %")
    func netemLab() throws {
        let result = try runProcess(
            [vnetstreamBinary, "lab", "vm", "--timeout", "480", "--", "bash", repositoryRoot + "/Tests/LabTests/Fixtures/netem-check.sh",
             vnetstreamBinary, repositoryRoot + "/Tests/LabTests/Fixtures/one-path-netem.toml"])
        #expect(result.status == 0, "\(result.summary)")
        let lines = result.stdout.split(separator: "\n").map(String.init)
        func after(_ marker: String) -> String? {
            lines.first { $0.hasPrefix(marker + " ") }.map { String($0.dropFirst(marker.count + 1)) }
        }
        #expect(after("SHAPER") == "netem")
        // busybox ping: "round-trip min/avg/max = 103.307/116.065/220.042 ms"; 50 ms each way.
        let ping = try #require(after("PING"), "\(result.stdout)")
        let numbers = ping.split(separator: "=").last!.split(separator: "/").compactMap { Double($0.trimmingCharacters(in: .whitespaces.union(.letters))) }
        let oneWay = try #require(numbers.first) / 2
        recordTiming("VM netem one-way delay", oneWay, "ms", bound: "50-55")
        #expect(oneWay >= 50 && oneWay <= 55, "one-way delay \(oneWay) ms from \(ping)")
        let receiver = try JSONDecoder().decode(ReceiverResult.self, from: Data(try #require(after("RECEIVER")).utf8))
        let path = try #require(receiver.report?.paths.first)
        let span = try #require(path.arrivalSpanS, "the receiver gave no arrival span")
        // What crossed the link after the first arrival: IPv4 + UDP headers and Ethernet's 14 B
        // (netem counts the frame) on top of the payload.
        let wireBytes = Double(path.bytesReceived + path.received * (8 + 20 + 14))
        let rate = wireBytes * Double(path.received - 1) / Double(path.received) * 8 / span
        print("netem in the VM: one-way delay \(oneWay) ms, rate \(rate / 1000) kbit/s of 1000 over \(span) s of arrivals, \(path.received) packets received, \(path.lost) lost")
        recordTiming("VM netem 1 Mbit/s link, rate over the arrival span", rate / 1000, "kbit/s", bound: "1000 ± 20 %")
        #expect(abs(rate / 1e6 - 1) < 0.20, "carried \(rate / 1000) kbit/s on a 1000 kbit/s netem link")
    }

    @Test("in the VM the lab finds sch_red: the classes run on real RED queues, each class in its own VNet, every packet accounted for")
    func redClasses() throws {
        // Without --check: the class experiment's targets are orderings of loss and delay
        // between classes (checked on the host run, scripts/test's traffic-class step). Under
        // software emulation with the other core busy the emulated sender cannot always load
        // the queues enough for them to differ: a fresh-clone run had the classes' losses
        // 1.9 % and 2.15 %, the wrong way round. Here the test asserts what the VM shows
        // whatever the load, and prints the figures for the README.
        let experiment = repositoryRoot + "/Tests/LabTests/Fixtures/qos-classes-short.toml"
        let result = try runProcess(
            [vnetstreamBinary, "lab", "vm", "--memory", "3072", "--timeout", "540", "--", "sh", "-c",
             "\(vnetstreamBinary) run \(experiment) --out /tmp/q --shaper netem; status=$?; echo; echo \"RESULTS $(tr -d '\\n' < /tmp/q/results.json)\"; exit $status"])
        print(result.stdout)
        #expect(result.status == 0, "the run failed: \(result.summary)")
        let line = try #require(result.stdout.split(separator: "\n").first { $0.hasPrefix("RESULTS ") }, "\(result.summary)")
        let results = try JSONDecoder().decode(ClassResults.self, from: Data(line.dropFirst(8).utf8))
        #expect(results.red && results.provenance.shaper == "netem")
        #expect(results.classes.allSatisfy { $0.queue.hasPrefix("RED min") }, "\(results.classes.map(\.queue))")
        // Each class crossed only its own VNet (libpcap at each VNet's ingress), and every packet
        // sent was accounted for.
        for figures in results.classes {
            let seen = Set(results.captures.filter { $0.packetsByTOS[String(figures.tos)] ?? 0 > 0 }.map(\.vnet))
            #expect(seen == [figures.vnet], "\(figures.name) (TOS \(figures.tos)) seen on \(seen.sorted()), belongs to \(figures.vnet)")
            #expect(figures.sent > 0 && figures.received <= figures.sent, "\(figures.name): \(figures.received) of \(figures.sent)")
        }
        let delay = try #require(results.classes.first { $0.sensitive == .delay })
        let loss = try #require(results.classes.first { $0.sensitive == .loss })
        recordTiming("VM RED classes, delay class mean delay", try #require(delay.delayMsMean), "ms", bound: "none (README)")
        recordTiming("VM RED classes, loss class mean delay", try #require(loss.delayMsMean), "ms", bound: "none (README)")
        recordTiming("VM RED classes, delay class loss", delay.lossPct, "%", bound: "none (README)")
        recordTiming("VM RED classes, loss class loss", loss.lossPct, "%", bound: "none (README)")
    }

}
