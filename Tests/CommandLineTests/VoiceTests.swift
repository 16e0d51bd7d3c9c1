import Foundation
import TestSupport
import Testing
import Voice

@Suite("A voice call, for real (root, namespaces, libpcap, tcpdump)", .serialized, .timeLimit(.minutes(2)))
struct VoiceCallTests {
    @Test("vnetstream voice send and recv across a veth: every packet, jitter near 0, MOS above 4.3; tcpdump decodes it as RTP, payload type 0")
    func call() throws {
        let network = try TwoVNetNetwork()
        defer { network.teardown() }
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        // The receiver in router 1, on its sender-side address: one veth from the sender.
        let capture = try network.start(
            network.router1, [vnetstreamBinary, "capture", "--interface", "west", "--pcap", directory + "/rtp.pcap", "--filter", "udp port 5010", "--packets", "100", "--seconds", "20"])
        let receiver = try network.start(
            network.router1,
            [vnetstreamBinary, "voice", "recv", "--listen", "198.18.11.2:5010", "--playout", "60ms", "--bin", "1s", "--idle-timeout", "1", "--json-file", directory + "/call.json"])
        usleep(500_000)
        let sent = try network.exec(network.sender, [vnetstreamBinary, "voice", "send", "--to", "198.18.11.2:5010", "--duration", "2", "--ssrc", "4660"])
        #expect(sent.status == 0, "\(sent.summary)")
        let received = receiver.wait(timeout: 20)
        #expect(received.status == 0, "\(received.summary)")
        #expect(capture.wait(timeout: 20).status == 0)
        let report = try JSONDecoder().decode(VoiceReport.self, from: Data(contentsOf: URL(fileURLWithPath: directory + "/call.json")))
        #expect(report.expected == 100 && report.received == 100 && report.lost == 0 && report.duplicates == 0, "\(received.stdout)")
        #expect(report.ssrc == 4660 && report.bins.count == 2)
        #expect(report.jitterMs < 5 && (report.whole?.meanDelayMs ?? 99) < 10, "\(received.stdout)")
        #expect((report.whole?.mos ?? 0) > 4.3, "\(received.stdout)")
        // tcpdump, told the port carries RTP, reads payload type 0 and the sequence numbers.
        let dump = try runProcess(["tcpdump", "-n", "-r", directory + "/rtp.pcap", "-T", "rtp"])
        let lines = dump.stdout.split(separator: "\n")
        #expect(lines.count == 100 && lines.allSatisfy { $0.contains("udp/rtp 160 c0 ") }, "\(lines.prefix(3))")
    }
}
