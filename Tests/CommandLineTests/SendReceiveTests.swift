import Accounting
import Foundation
import RunRecords
import Streaming
import TestSupport
import Testing

/// What one stream through the two-VNet network produced.
struct StreamRun {
    var sender: ProcessResult
    var receiver: ProcessResult
    var summary: SenderSummary
    var result: ReceiverResult
    var report: LossReport { result.report! }
    func vnet(_ number: Int) -> LossReport.PathSummary? { report.paths.first { $0.vnet == number } }
}

/// `vnetstream send` and `vnetstream recv`, run as root in namespaces the tests make.
@Suite("send and recv over two VNets", .serialized, .timeLimit(.minutes(5)))
struct SendReceiveTests {
    /// Starts the receiver, waits until its socket is bound (its captures are on by then), runs
    /// the sender to the end, runs `during` meanwhile, and collects both results.
    func stream(
        _ network: TwoVNetNetwork, send: [String], recv: [String] = [], during: ((TwoVNetNetwork) throws -> Void)? = nil
    ) throws -> StreamRun {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let receiver = try network.start(
            network.receiver,
            [vnetstreamBinary, "recv", "--listen", "0.0.0.0:5004", "--interval", "2", "--idle-timeout", "3",
             "--start-timeout", "30", "--linger", "0.5", "--json"] + recv)
        defer { receiver.stop() }
        var bound = false
        for _ in 0..<250 where !bound {
            bound = try network.exec(network.receiver, ["ss", "-Hlun", "sport = :5004"]).stdout.contains("5004")
            if !bound { usleep(20_000) }
        }
        guard bound else { throw TestSetupError("the receiver did not bind: \(receiver.wait(timeout: 0).summary)") }
        let sender = try network.start(
            network.sender,
            [vnetstreamBinary, "send", "--vnet", "tun0", "--vnet", "tun1", "--to", "\(TwoVNetNetwork.receiverAddress):5004",
             "--json"] + send)
        try during?(network)
        let sent = sender.wait(timeout: 60)
        let received = receiver.wait(timeout: 30)
        guard sent.status == 0 else { throw TestSetupError("the sender failed: \(sent.summary)") }
        guard received.status == 0 else { throw TestSetupError("the receiver failed: \(received.summary)") }
        // With --json, stdout is the JSON document alone (the human text went to stderr).
        let decoder = JSONDecoder()
        do {
            return StreamRun(
                sender: sent, receiver: received,
                summary: try decoder.decode(SenderSummary.self, from: Data(sent.stdout.utf8)),
                result: try decoder.decode(ReceiverResult.self, from: Data(received.stdout.utf8)))
        } catch {
            throw TestSetupError("--json stdout is not the JSON document alone (\(error)):\n\(sent.summary)\n\(received.summary)")
        }
    }

    @Test("a TBF path and a random-drop path: losses match nftables' counter, arrivals match libpcap, marks arrive intact")
    func shapedPaths() throws {
        let network = try TwoVNetNetwork()
        defer { network.teardown() }
        try network.limitRate(router: network.router1, rate: "150kbit")
        try network.dropMedia(router: network.router2, percent: 10)
        let captures = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: captures) }
        let run = try stream(
            network, send: ["--cbr", "400kbit", "--duration", "6", "--tt", "EF", "--split", "1:1"],
            recv: ["--pcap-dir", captures, "--capture", "v1", "--capture", "v2", "--progress", "1s"])
        let report = run.report
        #expect(run.summary.packets == 300 && report.total.sent == 300, "\(report.markdown)")
        #expect(report.endReceived)
        // VNet 2: what the receiver counts lost is exactly what nftables dropped.
        let dropped = try network.droppedByRule(router: network.router2)
        #expect(dropped > 0)
        #expect(run.vnet(2)?.lost == dropped, "\(report.markdown)")
        // VNet 1: 200 kbit/s offered to a 150 kbit/s bucket loses packets.
        #expect((run.vnet(1)?.lost ?? 0) > 10, "\(report.markdown)")
        // What the receiver counts as arrived is what libpcap recorded on each interface
        // (media packets only: kind byte 1 at UDP payload offset 3), read back with tcpdump.
        for (vnet, interface) in [(1, "v1"), (2, "v2")] {
            let read = try runProcess(["tcpdump", "-nn", "-r", "\(captures)/\(interface).pcap", "udp[11] = 1"])
            #expect(read.status == 0, "\(read.summary)")
            let lines = read.stdout.split(separator: "\n").count
            #expect(run.vnet(vnet)?.received == lines, "VNet \(vnet): \(lines) in the capture")
            #expect(run.result.captures.first { $0.interface == interface }?.droppedByKernel == 0)
        }
        // Every packet carried the EF mark (TOS 0xb8 = 184) it was sent with.
        for vnet in [1, 2] {
            let path = try #require(run.vnet(vnet))
            #expect(path.tosSeen == ["184": path.received] && path.tosMismatches == 0)
        }
        #expect(run.summary.vnets.allSatisfy { $0.reportsReceived > 10 })
        #expect(run.summary.pacing.frames == 150)
        // --progress: a line a second per path (on stderr, since --json holds stdout); what the
        // lines say arrived adds up to the report's total (lines end before the last packets).
        let lines = run.receiver.stderr.split(separator: "\n").filter { $0.contains("stream 1  VNet ") }
        #expect(lines.count >= 8, "\(run.receiver.stderr)")
        func received(_ vnet: Int) -> Int {
            lines.filter { $0.contains("VNet \(vnet):") }.compactMap { line in
                line.components(separatedBy: ": ").last?.split(separator: " ").first.flatMap { Int($0) }
            }.reduce(0, +)
        }
        for vnet in [1, 2] {
            let total = try #require(run.vnet(vnet)).received
            #expect(received(vnet) <= total && received(vnet) >= total / 2, "VNet \(vnet): \(received(vnet)) of \(total) in the lines")
        }
        #expect(lines.contains { $0.contains("delay p50 ") && $0.contains(" ms p99 ") }, "\(lines)")
        // The report's delay percentiles: p50 at most p99 at most the maximum.
        for vnet in [1, 2] {
            let path = try #require(run.vnet(vnet))
            let p50 = try #require(path.delayMsP50)
            let p99 = try #require(path.delayMsP99)
            #expect(p50 <= p99 && p99 <= (path.delayMsMax ?? 0) + 0.01 && (path.delayMsMin ?? 0) - 0.01 <= p50, "\(path)")
        }
    }

    @Test("a 1:0 split puts every packet on VNet 1; 1:1 puts half on each, within one packet")
    func splits() throws {
        let network = try TwoVNetNetwork()
        defer { network.teardown() }
        let one = try stream(network, send: ["--cbr", "300kbit", "--duration", "2", "--split", "1:0"])
        #expect(one.summary.vnets.map(\.packets) == [one.summary.packets, 0])
        #expect(one.vnet(1)?.received == one.summary.packets)
        #expect(one.report.total.lost == 0)
        let half = try stream(network, send: ["--cbr", "300kbit", "--duration", "2", "--split", "1:1"])
        let counts = half.summary.vnets.map(\.packets)
        #expect(abs(counts[0] - counts[1]) <= 1 && counts[0] + counts[1] == half.summary.packets)
        #expect(half.vnet(1)?.received == counts[0] && half.vnet(2)?.received == counts[1])
    }

    @Test("unpaced (--cbr max): segmented writes through the tuns arrive as whole packets, counted exactly; a write per packet too")
    func unpaced() throws {
        let network = try TwoVNetNetwork()
        defer { network.teardown() }
        for flags in [[String](), ["--no-segmentation"]] {
            let run = try stream(
                network, send: ["--cbr", "max", "--payload-bytes", "1000", "--duration", "1", "--tt", "AF41", "--split", "1:1"] + flags)
            let report = run.report
            let summary = run.summary
            if flags.isEmpty {
                #expect(summary.offload?.hasPrefix("udp-segmentation (64 packets per write)") == true, "\(summary.offload ?? "nil")")
            } else {
                #expect(summary.offload == "packet-per-write")
            }
            // The receiver knows exactly how many were sent (the end message) and saw whole,
            // valid packets of the right size and mark; losses, if any, are real (unpaced).
            #expect(report.endReceived)
            #expect(report.total.sent == summary.packets, "\(report.markdown)")
            #expect(summary.packets > 10_000, "unpaced for 1 s: \(summary.packets) packets")
            // The test binaries are debug builds on a shared machine: the receiver may fall far
            // behind an unpaced sender, so only arrival itself is asserted here (the rates are
            // scripts/bench throughput's business).
            #expect(report.total.received >= 1000, "\(report.markdown)")
            #expect(report.total.duplicates == 0)
            for path in report.paths {
                #expect(path.tosMismatches == 0 && path.tosSeen.keys.sorted() == ["136"], "\(path.tosSeen)")
                #expect(path.bytesReceived == path.received * 1000, "every packet arrived whole: \(path.bytesReceived) bytes")
            }
            #expect(summary.vnets.allSatisfy { $0.packets > summary.packets / 3 }, "the 1:1 split holds per batch")
            #expect((summary.cpuS ?? 0) > 0 && (run.result.cpuS ?? 0) > 0)
        }
    }

    @Test("paced with --segmentation: a frame's packets go in segmented writes and arrive whole, every one; the adaptive mode refuses it")
    func pacedSegmentation() throws {
        let network = try TwoVNetNetwork()
        defer { network.teardown() }
        // 20 Mbit/s at 25 frames/s: 100 kB frames, 67 full packets and a short one each.
        let run = try stream(network, send: ["--cbr", "20mbit", "--duration", "1", "--split", "1:1", "--mode", "static", "--segmentation"])
        let report = run.report
        #expect(run.summary.offload?.hasPrefix("udp-segmentation (runs of a frame's packets") == true, "\(run.summary.offload ?? "nil")")
        #expect(report.endReceived && report.total.sent == run.summary.packets && run.summary.packets > 1500)
        #expect(report.total.lost == 0 && report.total.received == report.total.sent, "\(report.markdown)")
        #expect(report.paths.allSatisfy { $0.received > 700 }, "both VNets carried runs")
        let refused = try runProcess(
            [vnetstreamBinary, "send", "--cbr", "1mbit", "--vnet", "tun0", "--to", "198.18.100.1:5004", "--mode", "adaptive", "--segmentation"])
        #expect(refused.status != 0 && refused.stderr.contains("probe trains need packets written one by one"), "\(refused.summary)")
    }

    @Test("reports reach the sender while one VNet drops everything")
    func feedbackWithDeadVNet() throws {
        let network = try TwoVNetNetwork()
        defer { network.teardown() }
        try network.dropMedia(router: network.router2, percent: 100)
        let run = try stream(network, send: ["--cbr", "300kbit", "--duration", "3", "--split", "1:1"])
        #expect(run.summary.vnets[0].reportsReceived >= 20, "reports every 100 ms for 3 s over VNet 1")
        let dead = try #require(run.vnet(2))
        #expect(dead.received == 0 && dead.lost == run.summary.vnets[1].packets)
        #expect(run.vnet(1)?.lost == 0)
        // The sender saw VNet 2's losses in the reports that came back over VNet 1.
        let last = try #require(run.summary.lastReport?.first { $0.pathID == 1 })
        #expect(last.packetsReceived == 0)
    }

    @Test("20 % random loss on VNet 2: without recovery the viewer loses what the network did; arq-same and arq NACK it back by the deadline, arq over VNet 1")
    func recovery() throws {
        let network = try TwoVNetNetwork()
        defer { network.teardown() }
        try network.dropMedia(router: network.router2, percent: 20, retransmissions: true)
        var runs: [String: StreamRun] = [:]
        for mode in ["none", "arq-same", "arq"] {
            runs[mode] = try stream(
                network, send: ["--cbr", "1600kbit", "--fps", "100", "--duration", "4", "--split", "1:1", "--recovery", mode, "--latency", "200ms"],
                recv: ["--latency", "200ms"])
        }
        // 2000-byte frames at 100 fps: two packets each, 800 in all, one of each frame on VNet 2,
        // 10 ms apart. A loss shows as a gap only when the next packet on its VNet arrives: at
        // 25 fps (40 ms apart) a run of 4 losses, which 20 % loss gives about one run in eight,
        // showed its first packet's gap past the deadline, and no NACK could save it.
        let none = try #require(runs["none"])
        #expect(none.report.total.sent == 800 && none.report.total.lost >= 20, "\(none.report.markdown)")
        #expect(none.report.total.residualLost == none.report.total.lost && none.report.recovery == nil && none.summary.recovery == nil)
        for mode in ["arq-same", "arq"] {
            let run = try #require(runs[mode])
            let total = run.report.total
            let sender = try #require(run.summary.recovery, "\(mode): no recovery in the sender's summary")
            let receiver = try #require(run.report.recovery, "\(mode): no recovery in the receiver's report")
            #expect(total.lost >= 20, "\(mode): \(run.report.markdown)")
            // Each loss asked for and resent; VNet 1 is clean, so arq's resends all arrive.
            #expect(receiver.asked >= total.lost && sender.resent >= total.lost && sender.nacks > 0, "\(mode): \(sender) \(receiver)\n\(run.report.markdown)")
            #expect((total.residualLost ?? -1) <= 1 && (total.recovered ?? 0) >= total.lost - 1, "\(mode): \(run.report.markdown)")
            #expect(sender.resentBytes >= sender.resent * 1000)
            // Resends are packets of the VNet they went on, charged to its share of the split:
            // the VNets carry the stream's 800 and the resends, still near 1:1 in bytes (the
            // split makes up for a resend with the originals after it; the last frames' resends
            // have none after them), where uncharged resends would all be surplus on one VNet.
            let packets = run.summary.vnets.map(\.packets)
            #expect(
                packets.reduce(0, +) == 800 + sender.resent && abs(packets[0] - packets[1]) <= max(2, sender.resent / 2),
                "\(mode): \(packets), \(sender.resent) resent")
            if mode == "arq-same" { #expect(sender.resentElsewhere == 0) }
            if mode == "arq" { #expect(sender.resentElsewhere == sender.resent && sender.latencyMs == 200) }
        }
    }

    @Test("25 % random loss on VNet 2, parity included: fec rebuilds most of it without asking, fec+arq NACKs only what the parity left, and the parity costs what its shape says")
    func forwardErrorCorrection() throws {
        let network = try TwoVNetNetwork()
        defer { network.teardown() }
        try network.dropMedia(router: network.router2, percent: 25, retransmissions: true, parity: true)
        var runs: [String: StreamRun] = [:]
        for mode in ["fec", "fec+arq"] {
            // 2 Mbit/s, 10000-byte frames: 8 packets each, 200 a second; a 4x4 block spans 2 frames.
            runs[mode] = try stream(
                network, send: ["--cbr", "2mbit", "--duration", "4", "--split", "1:1", "--recovery", mode, "--fec", "cols=4,rows=4"],
                recv: [])
        }
        for mode in ["fec", "fec+arq"] {
            let run = try #require(runs[mode])
            let total = run.report.total
            let sender = try #require(run.summary.recovery, "\(mode): no recovery in the sender's summary")
            let receiver = try #require(run.report.recovery, "\(mode): no recovery in the receiver's report")
            #expect(total.sent == 800 && total.lost >= 50, "\(mode): \(run.report.markdown)")
            // One parity per row and per column: 200 + 200 for 800 packets, nearly all complete.
            let parities = try #require(sender.parities)
            #expect(parities >= 400 && parities <= 410 && (sender.partialParities ?? 99) <= 10 && sender.fec == "cols=4,rows=4,layout=both", "\(sender)")
            #expect(run.summary.vnets.reduce(0) { $0 + $1.packets } == 800 + parities + sender.resent)
            // Rebuilt from what came: a parity of 4 full packets is as long as one of them.
            #expect((receiver.rebuilt ?? 0) > 0 && (total.recoveredFEC ?? 0) > 0 && receiver.parityUnusable == 0, "\(mode): \(receiver)")
            #expect(Double(sender.parityBytes ?? 0) / Double(parities) >= 1250 + 32, "\(sender)")
            if mode == "fec" {
                // Most of the network's loss comes back; the rest (two losses in one row and
                // column) is the viewer's, and nothing is NACKed.
                #expect((total.residualLost ?? .max) * 2 <= total.lost && sender.nacks == 0, "fec: \(run.report.markdown)")
            } else {
                // ARQ picks up what the parity left: nearly nothing is lost, and far fewer
                // packets are resent than the network lost (the parity got the rest first).
                #expect((total.residualLost ?? .max) <= 1, "fec+arq: \(run.report.markdown)")
                #expect(sender.resent < total.lost && sender.resent >= (total.lost - (total.recoveredFEC ?? 0)) / 2, "fec+arq: \(sender), \(total.lost) lost")
            }
            recordTiming(
                "\(mode) at 25 % loss on one VNet: network loss, then after recovery", Double(total.residualLost ?? -1), "packets",
                bound: "of \(total.lost) lost; \(total.recoveredFEC ?? 0) rebuilt, \(sender.resent) resent")
        }
    }

    @Test("VNet 2 fails mid-stream under the adaptive split with arq: the packets it swallowed before it was declared dead are resent over VNet 1 at once")
    func recoveryOfADeadVNetsTail() throws {
        let network = try TwoVNetNetwork()
        defer { network.teardown() }
        let run = try stream(
            network, send: ["--cbr", "600kbit", "--duration", "5", "--recovery", "arq"],
            recv: ["--report-ms", "20"],
            during: { network in
                usleep(2_500_000)
                try network.dropMedia(router: network.router2, percent: 100, retransmissions: true)
            })
        let total = run.report.total
        let recovery = try #require(run.summary.recovery)
        // VNet 2 carried part of the stream until it failed; what it swallowed then is lost to
        // the network, and the dead VNet's unreported tail comes back by the deadline.
        #expect(total.lost > 0 && recovery.deadTail > 0, "\(recovery)\n\(run.report.markdown)")
        #expect((total.residualLost ?? .max) < total.lost, "\(run.report.markdown)")
        recordTiming(
            "dead VNet's tail with arq: lost to the network, then after recovery", Double(total.residualLost ?? -1), "packets",
            bound: "< \(total.lost) (network), \(recovery.deadTail) resent as the tail")
    }

    @Test("garbage datagrams mid-stream are counted by reason and change nothing else")
    func garbage() throws {
        let network = try TwoVNetNetwork()
        defer { network.teardown() }
        let run = try stream(network, send: ["--cbr", "300kbit", "--duration", "3"]) { network in
            usleep(1_000_000)
            // From router 2: five foreign datagrams, three too short, two of a future version.
            let script = """
                for i in 1 2 3 4 5; do printf 'hello, not ours' > /dev/udp/\(TwoVNetNetwork.receiverAddress)/5004; done
                for i in 1 2 3; do printf 'VN' > /dev/udp/\(TwoVNetNetwork.receiverAddress)/5004; done
                for i in 1 2; do printf 'VN\\011\\001abcdefghijklmnopqrstuvwxyz0123456789' > /dev/udp/\(TwoVNetNetwork.receiverAddress)/5004; done
                """
            try network.exec(network.router2, ["bash", "-c", script]).requireSuccess()
        }
        let report = run.report
        #expect(report.dropped == ["foreign": 5, "short": 3, "future_version": 2], "\(report.markdown)")
        #expect(report.total.lost == 0 && report.total.received == run.summary.packets)
        #expect(report.paths.allSatisfy { $0.duplicates == 0 && $0.reordered == 0 })
    }

    @Test("without root, or without /dev/net/tun, the commands stop at once and say what to do")
    func privileges() throws {
        let network = try TwoVNetNetwork()
        defer { network.teardown() }
        // A tun owned by root: attaching to it needs CAP_NET_ADMIN. (One made without an owner
        // lets any user attach, and /dev/net/tun is world-writable on some systems.)
        try network.ip("-n", network.sender, "tuntap", "add", "dev", "tunroot", "mode", "tun", "user", "0")
        try network.ip("-n", network.sender, "addr", "add", "198.18.9.1/30", "dev", "tunroot")
        let nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
        let send = [vnetstreamBinary, "send", "--cbr", "100kbit", "--duration", "1", "--vnet", "tunroot", "--to", "198.18.100.1:5004"]
        let started = Date()
        let unprivileged = try network.exec(network.sender, nobody + send)
        #expect(unprivileged.status != 0)
        // Either /dev/net/tun itself is closed to other users, or attaching needs CAP_NET_ADMIN:
        // both say so, and both say what to do.
        #expect(
            unprivileged.stderr.contains("/dev/net/tun needs read and write access: run as root")
                || unprivileged.stderr.contains("needs CAP_NET_ADMIN: run as root"), "\(unprivileged.summary)")

        let noTun = try network.exec(
            network.sender,
            ["unshare", "--mount", "--", "sh", "-c", "mount -t tmpfs none /dev/net && exec \"$0\" \"$@\""] + send)
        #expect(noTun.status != 0)
        #expect(noTun.stderr.contains("this system has no tun device"), "\(noTun.summary)")

        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try runProcess(["chmod", "777", directory]).requireSuccess()
        let capture = try network.exec(
            network.receiver,
            nobody + [vnetstreamBinary, "recv", "--pcap-dir", directory, "--capture", "v1", "--start-timeout", "1"])
        #expect(capture.status != 0)
        #expect(capture.stderr.contains("run as root"), "\(capture.summary)")
        #expect(Date().timeIntervalSince(started) < 20, "each stops at once, not after a timeout")
    }
}
