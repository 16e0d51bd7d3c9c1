import ArgumentParser
import Foundation
import RunRecords
import Traces
import Units
import VideoTraces

struct TraceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "trace",
        abstract: "Read, make and fit frame traces (the media a stream carries).",
        subcommands: [Stats.self, CBR.self, Fit.self, Extract.self])
}

extension TraceCommand {
    struct Stats: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print a trace's frames, duration, frame types, mean and 1-second peak rate, largest frame.",
            discussion: "Rates are in kbit/s of 1000 bit/s; the peak is over consecutive 1-second windows from time 0.")

        @Argument(help: "The trace file.", completion: .file())
        var file: String

        @OptionGroup var input: TraceInputOptions

        @OptionGroup(title: "Output (the statistics)") var output: OutputOptions

        func run() throws {
            let trace = try input.read(file)
            let stats = TraceStatistics(trace)
            try output.emit(stats)
            if output.json { return }
            let types = stats.frameTypes.sorted { FrameType(rawValue: $0.key)! < FrameType(rawValue: $1.key)! }
                .map { "\($0.key) \($0.value)" }.joined(separator: ", ")
            output.say("""
                \(file)
                  format            \(stats.format), \(stats.order) order, sizes in \(stats.sizeUnitInFile.rawValue) in the file
                  frames            \(stats.frames)
                  duration          \(decimal(stats.durationSeconds, 3)) s at \(decimal(stats.framesPerSecond, 3)) frames/s
                  frame types       \(types)
                  mean rate         \(decimal(stats.meanKbps, 3)) kbit/s
                  peak rate (1 s)   \(decimal(stats.peakKbps1s, 3)) kbit/s in [\(decimal(stats.peakWindowStartSeconds, 0)), \(decimal(stats.peakWindowStartSeconds + 1, 0))) s
                  largest frame     \(stats.maxFrameBytes) bytes
                  mean frame        \(decimal(stats.meanFrameBytes, 1)) bytes
                  zero-size frames  \(stats.zeroSizeFrames)
                """)
            if !stats.notes.isEmpty {
                output.say("notes:")
                for note in stats.notes { output.say("  - \(note)") }
            }
        }
    }

    struct CBR: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "cbr",
            abstract: "Write a constant-bit-rate trace (the paper's: 320kbit at 25 frames/s for 150 s).")

        @Option(help: ArgumentHelp("The bit rate: bit, kbit, mbit or gbit (e.g. 320kbit).", valueName: "rate"), transform: bitRate)
        var rate: BitRate = .kbit(320)

        @Option(help: ArgumentHelp("Frames per second.", valueName: "fps"))
        var fps: Double = 25

        @Option(help: ArgumentHelp("Length of the trace (default: 150s).", valueName: "time"), transform: timeSeconds)
        var duration: Double = 150

        @Option(
            name: [.short, .customLong("output")], help: ArgumentHelp("Where to write the trace (CSV: time_ms,bytes).", valueName: "file"),
            completion: .file(extensions: ["csv"]))
        var output: String

        @OptionGroup(title: "Output (the written trace's statistics)") var statistics: OutputOptions

        func run() throws {
            let trace = try CBRSource.trace(rate: rate, framesPerSecond: fps, duration: duration)
            let stats = TraceStatistics(trace)
            try TraceWriter.write(
                trace,
                header: [
                    "vnetstream trace cbr --rate \(rate) --fps \(decimal(fps, 3)) --duration \(decimal(duration, 3))",
                    "constant bit rate \(rate): \(stats.frames) frames of \(stats.maxFrameBytes) bytes at most",
                ], to: output)
            try statistics.emit(stats)
            statistics.say("wrote \(output): \(stats.frames) frames, \(decimal(stats.meanKbps, 3)) kbit/s for \(decimal(stats.durationSeconds, 3)) s")
        }
    }

    struct Fit: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Pick the part of a real trace whose 1-second peak-to-mean ratio is closest to the one asked, scaled to the mean.",
            discussion: """
                What the paper did with its Star Wars IV trace, done in the open: the output's header \
                says which part of which file, the scale factor, and the mean and peak achieved. \
                Parts start on an I frame when the trace has frame types.
                """)

        @Argument(help: "The real trace to take the part from.", completion: .file())
        var file: String

        @OptionGroup var input: TraceInputOptions

        @Option(help: ArgumentHelp("The mean rate to scale to (e.g. 320kbit).", valueName: "rate"), transform: bitRate)
        var mean: BitRate

        @Option(help: ArgumentHelp("The 1-second peak rate whose ratio to the mean the part should have (e.g. 620kbit).", valueName: "rate"), transform: bitRate)
        var peak: BitRate

        @Option(help: ArgumentHelp("Length of the part (default: 150s).", valueName: "time"), transform: timeSeconds)
        var duration: Double = 150

        @Option(
            name: [.short, .customLong("output")], help: ArgumentHelp("Where to write the fitted trace (CSV).", valueName: "file"),
            completion: .file(extensions: ["csv"]))
        var output: String

        @OptionGroup(title: "Output (the written trace's statistics)") var statistics: OutputOptions

        func run() throws {
            let source = try input.read(file)
            let fit = try TraceFitter.fit(source, mean: mean, peak: peak, duration: duration)
            try TraceWriter.write(fit.trace, header: fit.header(source: file), to: output)
            let stats = fit.statistics
            try statistics.emit(stats)
            statistics.say("""
                wrote \(output): \(stats.frames) frames from display frame \(fit.firstFrame) (\(decimal(fit.startSeconds, 3)) s) of \(file), sizes × \(decimal(fit.scale, 6))
                  mean  \(decimal(stats.meanKbps, 3)) kbit/s (asked \(decimal(mean.kilobitsPerSecond, 3)), \(signedPercent(stats.meanKbps, mean.kilobitsPerSecond)))
                  peak  \(decimal(stats.peakKbps1s, 3)) kbit/s over 1 s (asked \(decimal(peak.kilobitsPerSecond, 3)), \(signedPercent(stats.peakKbps1s, peak.kilobitsPerSecond)))
                """)
        }
    }

    struct Extract: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make a trace from a video file with libavformat: one frame per video packet, with its size, time and type.")

        @Argument(help: "The video file (any container and codec libavformat reads).", completion: .file())
        var video: String

        @Option(
            name: [.short, .customLong("output")], help: ArgumentHelp("Where to write the trace (CSV: time_ms,bytes,type).", valueName: "file"),
            completion: .file(extensions: ["csv"]))
        var output: String

        @OptionGroup(title: "Output (the written trace's statistics)") var statistics: OutputOptions

        func run() throws {
            let extracted = try VideoTraceExtractor.extract(path: video)
            try TraceWriter.write(extracted.trace, header: extracted.header(source: video), to: output)
            let stats = TraceStatistics(extracted.trace)
            let types = stats.frameTypes.sorted { FrameType(rawValue: $0.key)! < FrameType(rawValue: $1.key)! }
                .map { "\($0.key) \($0.value)" }.joined(separator: ", ")
            try statistics.emit(stats)
            statistics.say("wrote \(output): \(stats.frames) frames (\(types); types from \(extracted.typesFrom)), "
                + "\(decimal(stats.meanKbps, 3)) kbit/s mean, \(decimal(stats.peakKbps1s, 3)) kbit/s peak over 1 s, codec \(extracted.codec)")
        }
    }
}

func decimal(_ value: Double, _ places: Int) -> String {
    String(format: "%.\(places)f", value)
}

func signedPercent(_ value: Double, _ reference: Double) -> String {
    String(format: "%+.2f %%", (value / reference - 1) * 100)
}

func encodeJSON<T: Encodable>(_ value: T) throws -> String { try JSONFile.text(value) }
