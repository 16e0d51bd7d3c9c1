// vnetstream-bench: speed and memory figures, printed, never asserted (machines here are shared
// and noisy; tests keep their timing margins wide, the tight numbers live here).
// Run with scripts/bench (release build). Usage: vnetstream-bench [traces]
import Foundation
import Traces
import Units

let arguments = CommandLine.arguments.dropFirst()
let suites = arguments.isEmpty ? ["traces"] : Array(arguments)
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

for suite in suites {
    switch suite {
    case "traces": try tracesSuite()
    default:
        FileHandle.standardError.write(Data("vnetstream-bench: unknown suite '\(suite)'; known: traces\n".utf8))
        exit(2)
    }
}
