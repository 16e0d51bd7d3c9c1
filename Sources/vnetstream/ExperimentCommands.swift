import ArgumentParser
import Experiment
import Foundation
import Lab

struct RunExperiment: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run an experiment: every source in every mode, each in a lab of its own, side by side, under a schedule.",
        discussion: """
            Builds one lab per run (the experiment's topology), plays the schedule on each on the \
            stream's own clock, streams, shows each run's rates and loss while it runs, and writes \
            OUT/results.json (with the raw packet and report logs under OUT/runs/) and the report \
            (`vnetstream report OUT`). Labs are removed at the end, on failure and on Ctrl-C. \
            Needs root. With --json, results.json goes to stdout too and the report and live view \
            to stderr.
            """)

    @Argument(help: "The experiment file (TOML).", completion: .file(extensions: ["toml"]))
    var experiment: String = "Experiments/paper-multinet.toml"

    @Option(help: ArgumentHelp("Where results, logs, tables and plots go.", valueName: "dir"), completion: .directory)
    var out: String = "out/paper-multinet"

    @Option(help: "How links are shaped.")
    var shaper: ShaperChoice = .auto

    @Option(
        help: ArgumentHelp("Also write the report's plots into this folder (the committed reference run: Plots).", valueName: "dir"),
        completion: .directory)
    var plots: String?

    @Option(
        help: ArgumentHelp(
            "Place the runs' labs on the hosts this file names (as `lab up --hosts`); the runs' folders are made on each host and what the processes write there comes back.",
            valueName: "file"),
        completion: .file(extensions: ["toml"]))
    var hosts: String?

    @Flag(help: "Exit with status 3 when a target of the experiment is not met (CI).")
    var check = false

    @OptionGroup(title: "Output (results.json)") var output: OutputOptions

    func run() throws {
        let output = output
        var context = HarnessContext(
            file: experiment, out: out, shaper: shaper.shaper, binary: try selfBinary(), redraw: output.humanIsTerminal) { output.say($0) }
        if let hosts {
            let file = try HostsFile.load(hosts)
            context.place = { topology in
                let placement = try file.apply(to: topology, file: hosts)
                // Every host runs this vnetstream: checked before each run's lab is built.
                try LabCommand.Up.checkVersions(file, placement)
                return placement
            }
        }
        let guards = onInterrupt {
            Lab.interrupt()
            // The harness stops its runs and removes its labs; give it the time to.
            Thread.sleep(forTimeInterval: 30)
        }
        let (report, written) = try ExperimentKinds.run(experiment, context: context, plots: plots)
        _ = guards
        try present(report, results: "\(out)/results.json", then: "results: \(out)/results.json; report: \(written.joined(separator: ", "))", check: check, output: output)
    }
}

/// This binary's path, for the processes the runners start inside namespaces.
func selfBinary() throws -> String {
    let binary = URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL.path
    return CommandLine.arguments[0].contains("/") ? binary : (try? Command.locate("vnetstream")) ?? binary
}

struct Report: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write an experiment's tables (Markdown, CSV, LaTeX) and plots (gnuplot PNG and SVG) from its results.json.",
        discussion: """
            The tables follow the paper's layout: per source, a row per mode, a column per \
            interval; each cell gives the paper's figure, ours and the fluid lower bound. Plots: \
            each VNet's sending rate over time with the schedule's shifts marked, and loss per \
            interval per mode.
            """)

    @Argument(help: "The folder `vnetstream run` wrote (holding results.json).", completion: .directory)
    var folder: String = "out/paper-multinet"

    @Option(help: ArgumentHelp("Also write the plots into this folder (the committed reference run: Plots).", valueName: "dir"), completion: .directory)
    var plots: String?

    @Flag(help: "Exit with status 3 when a target of the experiment is not met (CI).")
    var check = false

    @OptionGroup(title: "Output (results.json)") var output: OutputOptions

    func run() throws {
        let (report, written) = try ExperimentKinds.report(folder: folder, plots: plots)
        try present(report, results: "\(folder)/results.json", then: "wrote \(written.joined(separator: ", "))", check: check, output: output)
    }
}

/// Prints a report's tables and targets, then `line`, and the results document with --json;
/// with --check, a missed target ends the command with status 3, after everything is written.
func present(_ report: any ExperimentReporting, results: String, then line: String, check enforce: Bool, output: OutputOptions) throws {
    output.say(report.markdown)
    output.say(report.targetsMarkdown)
    output.say(line)
    if output.json || output.jsonFile != nil {
        let text: String
        do { text = try String(contentsOfFile: results, encoding: .utf8) } catch {
            throw RuntimeError("cannot read \(results): \(error.localizedDescription)")
        }
        try output.emit(text: text.hasSuffix("\n") ? String(text.dropLast()) : text)
    }
    for check in report.targets where !check.judged { output.say("target not judged: \(check.target): \(check.run): \(check.measured)") }
    let missed = report.targets.filter { $0.judged && !$0.pass }
    guard enforce, !missed.isEmpty else { return }
    for check in missed { output.say("target missed: \(check.target): \(check.run): \(check.measured)") }
    throw ExitCode(3)
}
