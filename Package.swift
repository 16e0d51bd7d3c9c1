// swift-tools-version:6.0
// VNetStream: stream real-time media over several virtual networks at once.
//
// Modules follow the data (see README "Layout"): traces -> pacer -> packets and marks ->
// splitter/controller -> tun and sockets -> accounting -> reports, with the lab beside them.
import PackageDescription

let package = Package(
    name: "VNetStream",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "vnetstream", targets: ["vnetstream"]),
        .library(name: "Traces", targets: ["Traces"]),
        .library(name: "VideoTraces", targets: ["VideoTraces"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
    ],
    targets: [
        // Bit rates and durations as typed values, shared by every stage.
        .target(name: "Units"),
        // Frame traces: readers for the common formats, statistics, CBR sources, fitting, writing.
        .target(name: "Traces", dependencies: ["Units"]),
        // The pacer: frame send times on the monotonic clock.
        .target(name: "Pacing", dependencies: ["Units"]),
        // Packets and marks: the wire format (media header, reports, stream end), IPv4/UDP with
        // checksums, TT marks, the packetizer. Pure codecs: no I/O.
        .target(name: "Packets"),
        // The splitter: which VNet each packet takes (the controller drives its weights).
        .target(name: "Splitting"),
        // The controller: from the receiver's reports, each VNet's capacity and liveness, and the
        // split that follows from them; also the fixed and duplicate modes. No I/O.
        .target(name: "Control", dependencies: ["Packets", "Splitting"]),
        // Recovery: retransmission across VNets (the buffer, what to resend and where). No I/O.
        .target(name: "Recovery", dependencies: ["Packets", "Control"]),
        // Source adaptation: which frames to shed, by priority, when the VNets together cannot
        // carry the stream. No I/O.
        .target(name: "Shedding", dependencies: ["Traces"]),
        // Tun interfaces and UDP sockets: thin typed wrappers over the syscalls.
        .target(name: "Devices", dependencies: ["Packets", "CNetShims"]),
        .target(name: "CNetShims"),
        // Receiver accounting per path and interval, and the loss tables: a state machine, no I/O.
        .target(name: "Accounting", dependencies: ["Packets", "Units", .product(name: "Histogram", package: "hdrhistogram-swift")]),
        // Per-interface captures with libpcap.
        .target(name: "Capture", dependencies: ["CPcap"]),
        // Monitoring VNets: what a monitoring node makes of its mirrored copies, its summaries,
        // the collector, and where along a path each lost packet was lost.
        .target(name: "Monitoring", dependencies: ["Packets", "Capture", "Devices", "Pacing"]),
        // The run records: what senders and receivers are started with (their arguments), what
        // they log (CSV packet logs, the sender's JSON lines) and what they sum up, with one
        // writer and one reader each. Shared by Streaming (which writes) and Experiment (which reads).
        .target(name: "RunRecords", dependencies: ["Packets", "Pacing", "Accounting", "Capture", "Control", "Units"]),
        // The sender and receiver loops: the stages above put together over real devices.
        .target(
            name: "Streaming",
            dependencies: ["Traces", "Pacing", "Packets", "Splitting", "Control", "Recovery", "Shedding", "Devices", "Accounting", "Capture", "Units", "RunRecords"]),
        // The VNet lab: topologies and schedules (TOML), namespaces, veth, tun, OSPF with bird2,
        // shaping with netem or TBF + nftables, path failures, and the netem VM.
        .target(
            name: "Lab",
            dependencies: ["Units", "Packets", "CNetShims", .product(name: "TOMLKit", package: "TOMLKit")]),
        // Experiments: many runs side by side, each in its own lab, and their results and reports.
        .target(name: "Experiment", dependencies: ["Lab", "Traces", "Units", "Pacing", "Packets", "Capture", "Control", "RunRecords", "Monitoring", "Voice", "Recovery"]),
        // Frame traces from real video files through libavformat / libavcodec's parsers.
        .target(name: "VideoTraces", dependencies: ["Traces", "CFFmpeg"]),
        .systemLibrary(
            name: "CFFmpeg", pkgConfig: "libavformat",
            providers: [.apt(["libavformat-dev", "libavcodec-dev", "libavutil-dev"])]),
        .systemLibrary(
            name: "CPcap", pkgConfig: "libpcap",
            providers: [.apt(["libpcap-dev"])]),
        // Voice quality: the E-model of ITU-T G.107 (R and MOS from delay and packet loss). Pure.
        .target(name: "VoiceQuality"),
        // A voice call: G.711 over RTP (RFC 3550), the receiver's statistics, jitter and playout
        // buffer, and the E-model's R and MOS per bin. Pure.
        .target(name: "Voice", dependencies: ["VoiceQuality", "RunRecords"]),
        // What the viewer sees of a video that crossed the VNets: the received file matched to the
        // sent one frame by frame, PSNR and SSIM through ffmpeg, EvalVid's MOS per interval.
        .target(name: "VideoQuality", dependencies: ["Units", "Lab"]),
        // The command-line tool: thin, declarative, on top of the modules above.
        .executableTarget(
            name: "vnetstream",
            dependencies: [
                "Traces", "VideoTraces", "Units", "CPcap", "Capture", "Streaming", "Packets", "Splitting", "Control", "Pacing", "Lab", "Experiment",
                "RunRecords", "Accounting", "Devices", "Monitoring", "Voice", "Recovery", "VideoQuality",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        // Benchmarks print numbers; run them with scripts/bench (release build).
        .executableTarget(
            name: "vnetstream-bench", dependencies: ["Traces", "Units", "Pacing", "Packets", "Accounting", "Lab", "Streaming", "RunRecords", "Recovery", "Control"],
            path: "Benchmarks", exclude: ["throughput.toml"]),
        // Helpers for tests that run real programs (ffmpeg, ffprobe, the built vnetstream).
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "TracesTests", dependencies: ["Traces", "Units", "TestSupport"]),
        .testTarget(name: "SheddingTests", dependencies: ["Shedding", "Traces", "Accounting", "Packets"]),
        .testTarget(name: "PacketsTests", dependencies: ["Packets", "Splitting", "Accounting", "Pacing", "Control", "Units", "RunRecords"]),
        .testTarget(
            name: "LabTests", dependencies: ["Lab", "Units", "Experiment", "vnetstream", "TestSupport", "Streaming", "Accounting", "Capture", "Packets", "RunRecords", "Control", "Traces", "Monitoring", "Voice", "Recovery"],
            exclude: ["Fixtures"]),
        .testTarget(name: "StreamingTests", dependencies: ["Streaming", "Control", "Packets", "Splitting", "RunRecords", "Recovery", "Accounting"]),
        .testTarget(name: "VoiceQualityTests", dependencies: ["VoiceQuality", "Voice"]),
        .testTarget(name: "VideoQualityTests", dependencies: ["VideoQuality", "TestSupport"]),
        .testTarget(name: "VideoTracesTests", dependencies: ["VideoTraces", "Traces", "TestSupport"]),
        // Depends on the executable so that `swift test` builds the binary it runs.
        .testTarget(
            name: "CommandLineTests", dependencies: ["vnetstream", "Experiment", "Traces", "TestSupport", "Streaming", "Accounting", "RunRecords", "Control", "Voice"]),
    ]
)
