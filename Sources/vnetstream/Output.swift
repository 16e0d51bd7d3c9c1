import ArgumentParser
import Foundation
import RunRecords

/// Where a command's output goes, the same in every command (like `ip -j` and `iperf3 -J`):
/// human text on stdout; with `--json`, the command's JSON document on stdout and every human
/// line (progress, the live view, warnings, "target missed") on stderr. `--json-file FILE`
/// writes the document to a file as well, whichever way the text goes.
struct OutputOptions: ParsableArguments {
    @Flag(help: "Print the JSON document on stdout; human text, progress and warnings go to stderr.")
    var json = false

    @Option(
        name: .customLong("json-file"), help: ArgumentHelp("Write the JSON document to this file as well.", valueName: "file"),
        completion: .file(extensions: ["json"]))
    var jsonFile: String?

    /// Where human text goes.
    var humanStream: FileHandle { json ? .standardError : .standardOutput }

    /// Whether the human text reaches a terminal (the live view redraws in place there).
    var humanIsTerminal: Bool { isatty(json ? 2 : 1) != 0 }

    /// One line (or several) of human text, written through at once so that it interleaves
    /// in order with a child's output and shows up while a pipe is read.
    func say(_ text: String) {
        humanStream.write(Data((text + "\n").utf8))
    }

    /// The command's JSON document: to the file, and to stdout with `--json`.
    func emit<T: Encodable>(_ document: T) throws {
        try emit(text: try encodeJSON(document))
    }

    /// A document already in JSON text (e.g. a results.json the harness wrote).
    func emit(text: String) throws {
        if let jsonFile { try writeText(text + "\n", to: jsonFile) }
        if json { FileHandle.standardOutput.write(Data((text + "\n").utf8)) }
    }
}

/// A command's stream of JSON lines (`lab play`): one compact object per line, to stdout with
/// `--json` and to the `--json-file` as each arrives.
final class JSONLines {
    private let options: OutputOptions
    private let file: LineFile?

    init(_ options: OutputOptions) throws {
        self.options = options
        file = try options.jsonFile.map { try LineFile(path: $0) }
    }

    func write(_ line: String) {
        file?.write(line)
        if options.json { FileHandle.standardOutput.write(Data((line + "\n").utf8)) }
    }

    func close() { file?.close() }
}

/// A number as plain text, as few digits as it needs (`1.5`, `20`).
func number(_ value: Double) -> String { value.plainText }
