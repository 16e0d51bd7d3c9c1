// vnetstream-bench: speed and memory figures, printed, never asserted (machines here are shared
// and noisy; tests keep their timing margins wide, the tight numbers live here).
// Run with scripts/bench (release build). Usage: vnetstream-bench [traces] [accounting] [recovery] [fec] [pacing [--seconds N]] [throughput] [cpu-vs-rate] [overlay]
// The throughput suite runs last, so that its headline is the last line printed.
import Accounting
import Foundation
import Packets
import Traces
import Units

var arguments = Array(CommandLine.arguments.dropFirst())
let pacingSeconds: Double = {
    guard let flag = arguments.firstIndex(of: "--seconds"), flag + 1 < arguments.count else { return 150 }
    return Double(arguments[flag + 1]) ?? 150
}()
if let flag = arguments.firstIndex(of: "--seconds") { arguments.removeSubrange(flag...min(flag + 1, arguments.count - 1)) }
let suites = arguments.isEmpty ? ["traces", "accounting", "recovery", "fec", "pacing", "cpu-vs-rate", "overlay", "throughput"] : arguments
let shared = ProcessInfo.processInfo.environment["VNETSTREAM_SHARED"] ?? "../shared"
let jurassic = shared + "/traces/Terse_Jurassic.dat"

/// Runs `body` `repeats` times and prints min and median wall time.
func measure(_ name: String, repeats: Int, _ body: () throws -> Void) rethrows {
    var times: [Double] = []
    for _ in 0..<repeats {
        let start = ContinuousClock.now
        try body()
        let elapsed = ContinuousClock.now - start
        times.append(Double(elapsed.components.seconds) * 1e3 + Double(elapsed.components.attoseconds) / 1e15)
    }
    times.sort()
    let label = name.padding(toLength: 44, withPad: " ", startingAt: 0)
    print(label + String(format: " min %8.2f ms   median %8.2f ms   (%d runs)", times[0], times[times.count / 2], repeats))
}

/// Peak resident set size of this process so far, from /proc (kB).
func peakResidentKilobytes() -> Int {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return -1 }
    for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
        return Int(line.split(separator: " ", omittingEmptySubsequences: true)[1]) ?? -1
    }
    return -1
}

func tracesSuite() throws {
    print("== traces: \(jurassic) (TKN terse, 89,998 frames)")
    var frames = 0
    try measure("read + stats, in process", repeats: 10) {
        let trace = try TraceReader.read(contentsOf: jurassic)
        frames = TraceStatistics(trace).frames
    }
    print("   frames read: \(frames)")
    let source = try TraceReader.read(contentsOf: jurassic)
    try measure("fit 320kbit mean / 620kbit peak / 150 s", repeats: 5) {
        _ = try TraceFitter.fit(source, mean: .kbit(320), peak: .kbit(620), duration: 150)
    }
    // The whole command as a user runs it: process start, read, stats, print.
    let binary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("vnetstream").path
    if FileManager.default.isExecutableFile(atPath: binary) {
        try measure("`vnetstream trace stats` (whole command)", repeats: 10) {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: binary)
            process.arguments = ["trace", "stats", jurassic, "--json"]
            process.standardOutput = FileHandle.nullDevice
            try process.run()
            process.waitUntilExit()
            guard process.terminationStatus == 0 else { throw CocoaError(.executableLoad) }
        }
    } else {
        print("   (no vnetstream binary beside the benchmark: build the package first)")
    }
    print("   peak resident size of the benchmark process: \(peakResidentKilobytes()) kB")
}

/// One simulated hour of a two-path stream through the receiver's accounting, no I/O: 1 %
/// random loss, some reordering, 30 s intervals. Prints resident memory every 10 simulated
/// minutes (it must stay flat) and the packets per second one core accounts.
func accountingSuite() {
    print("== accounting: one hour of a 2-VNet stream, 10 Mbit/s in 1250-byte packets (1000 packets/s), 1 % loss: decode, account, report every 50 ms")
    var accounting = StreamAccounting(streamID: 1, intervalSeconds: 30)
    // Seeded: the system generator makes a getrandom call per number, which would be most of
    // what this measures.
    var random = SplitMix64(seed: 0x9E37_79B9_7F4A_7C15)
    let packetsPerSecond = 1000
    let total = 3600 * packetsPerSecond
    var pathSequence: [UInt32] = [0, 0]
    let start = ContinuousClock.now
    var held: MediaHeader?
    var datagram = [UInt8](repeating: 0, count: 1250)
    var reportBytes = 0
    for n in 0..<total {
        let path = n % 2
        let header = MediaHeader(
            streamID: 1, streamSequence: UInt32(n), pathSequence: pathSequence[path], frameNumber: UInt32(n / 4),
            sendTimeNanoseconds: UInt64(n) * 1_000_000, fragmentIndex: UInt16(n % 4), fragmentCount: 4,
            pathID: UInt8(path), frameType: UInt8(ascii: "P"), mark: 0xB8)
        pathSequence[path] += 1
        let arrival = UInt64(n) * 1_000_000 + 5_000_000
        if random.next() % 100 == 0 { continue }  // lost
        if random.next() % 500 == 0, held == nil {  // held back: arrives after the next one
            held = header
            continue
        }
        // As the receiver does: the datagram's bytes are decoded, then accounted.
        datagram.withUnsafeMutableBytes { header.write(into: $0, at: 0) }
        let decoded = datagram.withUnsafeBytes { raw -> MediaHeader? in
            guard case .success(.media) = Wire.kind(of: raw), case .success(let h) = MediaHeader.decode(raw) else { return nil }
            return h
        }
        accounting.record(decoded!, bytes: 1250, tos: 0xB8, arrival: arrival)
        if let late = held {
            accounting.record(late, bytes: 1250, tos: 0xB8, arrival: arrival)
            held = nil
        }
        // A report every 50 ms of stream, as the receiver sends them.
        if n % 50 == 0 { reportBytes &+= accounting.report(sequence: UInt32(n / 50), now: arrival).encoded.count }
        if n % (600 * packetsPerSecond) == 0 && n > 0 {
            print("   after \(n / packetsPerSecond / 60) simulated minutes: peak resident size \(peakResidentKilobytes()) kB")
        }
    }
    let elapsed = ContinuousClock.now - start
    let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    let report = accounting.lossReport()
    print("   after 60 simulated minutes: peak resident size \(peakResidentKilobytes()) kB")
    print(String(format: "   decoded and accounted %d packets (and %d reports, %d bytes) in %.2f s: %.2f million packets/s on one core", total, total / 50, reportBytes, seconds, Double(total) / seconds / 1e6))
    print(String(format: "   loss %.3f %% over %d intervals (expected about 1 %%)", report.total.lossPct, report.intervals.count))
}

/// The real sender's pacing: the 150 s CBR and VBR sources streamed at once into two tuns of a
/// throwaway namespace whose routes blackhole the packets; each sender reports how late every
/// frame left against its schedule. Needs root.
func pacingSuite(seconds pacingSeconds: Double) throws {
    print("== pacing: the sender's send-time error against the schedule, \(Int(pacingSeconds)) s each, CBR and VBR at once")
    guard getuid() == 0 else {
        print("   skipped: needs root (namespaces and tun)")
        return
    }
    let binary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("vnetstream").path
    let namespace = "vnstbench\(getpid())"
    let work = NSTemporaryDirectory() + namespace
    try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
    func run(_ argv: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
        process.arguments = argv
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw CocoaError(.executableLoad, userInfo: ["argv": argv.joined(separator: " ")]) }
    }
    try run(["netns", "add", namespace])
    defer {
        try? run(["netns", "del", namespace])
        try? FileManager.default.removeItem(atPath: work)
    }
    for (index, tun) in ["tun0", "tun1"].enumerated() {
        try run(["-n", namespace, "tuntap", "add", "dev", tun, "mode", "tun"])
        try run(["-n", namespace, "addr", "add", "198.18.\(index + 1).1/30", "dev", tun])
        try run(["-n", namespace, "link", "set", tun, "up"])
    }
    try run(["-n", namespace, "route", "add", "blackhole", "198.18.100.1"])
    let cbr = work + "/cbr.csv"
    let vbr = work + "/vbr.csv"
    let length = min(150, pacingSeconds)
    try TraceWriter.write(try CBRSource.trace(rate: .kbit(320), framesPerSecond: 25, duration: length), header: [], to: cbr)
    let fit = try TraceFitter.fit(try TraceReader.read(contentsOf: jurassic), mean: .kbit(320), peak: .kbit(620), duration: 150)
    var part = fit.trace
    part.frames = part.frames.filter { $0.time < length }
    try TraceWriter.write(part, header: [], to: vbr)
    let senders = try [("CBR 320 kbit/s", cbr, "tun0"), ("VBR 320/620 kbit/s", vbr, "tun1")].map { name, trace, tun -> (String, Process, String) in
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
        let json = "\(work)/\(tun).json"
        process.arguments = ["netns", "exec", namespace, binary, "send", trace, "--vnet", tun, "--to", "198.18.100.1:5004", "--json-file", json]
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        return (name, process, json)
    }
    for (name, process, json) in senders {
        process.waitUntilExit()
        guard process.terminationStatus == 0,
            let object = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: json))) as? [String: Any],
            let pacing = object["pacing"] as? [String: Any]
        else {
            print("   \(name): the sender failed")
            continue
        }
        print("   \(name.padding(toLength: 20, withPad: " ", startingAt: 0)) frames \(pacing["frames"]!)   late by p50 \(pacing["p50_us"]!) us   p99 \(pacing["p99_us"]!) us   max \(pacing["max_us"]!) us")
    }
}

for suite in suites {
    do {
        switch suite {
        case "traces": try tracesSuite()
        case "accounting": accountingSuite()
        case "recovery": recoverySuite()
        case "fec": fecSuite()
        case "pacing": try pacingSuite(seconds: pacingSeconds)
        case "throughput": try throughputSuite(seconds: 5)
        case "cpu-vs-rate": try cpuVsRateSuite(seconds: 5)
        case "overlay": try overlaySuite()
        default:
            FileHandle.standardError.write(Data("vnetstream-bench: unknown suite '\(suite)'; known: traces, accounting, recovery, fec, pacing, throughput, cpu-vs-rate, overlay\n".utf8))
            exit(2)
        }
    } catch {
        FileHandle.standardError.write(Data("vnetstream-bench: suite \(suite) failed: \(error)\n".utf8))
        exit(1)
    }
}
