import ArgumentParser
import CPcap
import VideoTraces

@main
struct VNetStream: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vnetstream",
        abstract: "Stream real-time media over several virtual networks at once, and measure what survives.",
        discussion: """
            Traces describe the media (frame sizes and times); the sender paces, marks and splits \
            them across one tun interface per VNet; the receiver accounts every packet per path. \
            See README.md for the experiment and Docs/ for formats.

            Exit status: 0 ok; 1 a failure while running (one line says what failed); 64 bad \
            usage; 3 a target missed under --check; 128+N killed by signal N.
            """,
        version: "0.1.0 (libavformat \(VideoTraceExtractor.libraryVersion), \(String(cString: pcap_lib_version())))",
        subcommands: [
            RunExperiment.self, Report.self, TraceCommand.self, Send.self, SendMarked.self, Recv.self, CaptureCommand.self, LabCommand.self,
            MonitorCommand.self, VoiceCommand.self, ScoreCommand.self,
        ])
}
