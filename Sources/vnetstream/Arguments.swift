import ArgumentParser
import Traces
import Recovery
import Units

extension TraceFormat: ExpressibleByArgument {}
extension SizeUnit: ExpressibleByArgument {}

/// Reads `320kbit`-style rates for options, with the parser's own sentence on failure.
/// A time option: `100ms`, `2s`, `1.5m`; a bare number is seconds.
func timeSeconds(_ text: String) throws -> Double {
    do { return try TimeSpan.seconds(parsing: text) } catch let error as TimeSpan.ParseError {
        throw ValidationError(error.description)
    }
}

func bitRate(_ text: String) throws -> BitRate {
    do { return try BitRate(parsing: text) } catch let error as BitRate.ParseError {
        throw ValidationError(error.description)
    }
}

/// How to read a trace file: shared by every command that takes one.
struct TraceInputOptions: ParsableArguments {
    @Option(help: ArgumentHelp("The trace format; detected when left out.", valueName: "format"))
    var format: TraceFormat?

    @Option(help: ArgumentHelp("The unit of sizes in the file; detected when left out.", valueName: "unit"))
    var units: SizeUnit?

    @Option(help: ArgumentHelp("Frames per second: paces TKN terse traces (default 25) and re-times others at exact intervals.", valueName: "fps"))
    var fps: Double?

    @Option(
        help: ArgumentHelp(
            "The frame types of a trace without them (TKN terse, CBR): one group of pictures in display order, like IBBPBBPBBPBB.",
            discussion: "Laid over the frames in display order from the first. A trace with its own frame types keeps them.",
            valueName: "pattern"),
        transform: { text in
            do { return try GoPPattern(text) } catch let error as GoPPatternError { throw ValidationError(error.description) }
        })
    var gop: GoPPattern?

    func validate() throws {
        if let fps, !(fps > 0 && fps.isFinite) { throw ValidationError("--fps must be a positive number, not \(fps).") }
    }

    var readOptions: TraceReadOptions { TraceReadOptions(format: format, sizeUnit: units, framesPerSecond: fps) }

    /// The trace, with the `--gop` pattern (or `pattern`, without one) laid over it when it has
    /// no frame types.
    func read(_ path: String, default pattern: GoPPattern? = nil) throws -> FrameTrace {
        typed(try TraceReader.read(contentsOf: path, options: readOptions), default: pattern)
    }

    func typed(_ trace: FrameTrace, default pattern: GoPPattern? = nil) -> FrameTrace {
        guard let pattern = gop ?? pattern else { return trace }
        guard !trace.hasFrameTypes else {
            var kept = trace
            kept.notes.append("the trace has its own frame types; --gop \(pattern) is not used")
            return kept
        }
        return trace.assigning(pattern)
    }
}
extension RecoveryMode: ExpressibleByArgument {}
