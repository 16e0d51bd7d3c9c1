import Foundation
import Lab
import RunRecords

/// Every kind of experiment, by the `kind` key of its files: the one place a kind is named.
public enum ExperimentKinds {
    static let all: [Entry] = [.of(MultiNetExperiment.self), .of(ClassExperiment.self), .of(AccessExperiment.self), .of(MonitorExperiment.self),
        .of(MonitorOverheadExperiment.self), .of(ShadowVoiceExperiment.self), .of(MulticastExperiment.self),
    ]
    static let byName = Dictionary(uniqueKeysWithValues: all.map { ($0.kind, $0) })
    /// Files and results documents without a `kind` key are of this kind.
    static let defaultKind = MultiNetExperiment.kind

    public typealias Outcome = (report: any ExperimentReporting, written: [String])

    /// A kind, its type erased: what the CLI can do with it.
    struct Entry: Sendable {
        var kind: String
        /// Runs an experiment file through the harness, then writes the report.
        var run: @Sendable (_ path: String, _ context: HarnessContext, _ plots: String?) throws -> Outcome
        /// Loads a results document and writes its report.
        var report: @Sendable (_ path: String, _ folder: String, _ plots: String?) throws -> Outcome
        /// Reads and checks an experiment file, running nothing.
        var load: @Sendable (_ path: String) throws -> Void

        static func of<Kind: ExperimentKind>(_: Kind.Type) -> Entry {
            Entry(
                kind: Kind.kind,
                run: { path, context, plots in
                    let results = try Harness.run(try Kind.load(path), context: context)
                    let report = Kind.report(results, folder: context.out)
                    return (report, try report.write(folder: context.out, plotsCopy: plots))
                },
                report: { path, folder, plots in
                    let report = Kind.report(try Kind.Results.load(path), folder: folder)
                    return (report, try report.write(folder: folder, plotsCopy: plots))
                },
                load: { path in _ = try Kind.load(path) })
        }
    }

    struct KindKey: Decodable { var kind: String? }

    static func entry(named name: String?, in file: String) throws -> Entry {
        let name = name ?? defaultKind
        guard let entry = byName[name] else {
            throw ExperimentError("\(file): unknown kind '\(name)' (kinds: \(all.map(\.kind).joined(separator: ", ")))")
        }
        return entry
    }

    /// Reads and checks the experiment file `path`, of whichever kind it is; returns its kind.
    @discardableResult
    public static func load(_ path: String) throws -> String {
        let entry = try entry(named: try loadTOML(KindKey.self, from: path, kind: "experiment").kind, in: path)
        try entry.load(path)
        return entry.kind
    }

    /// Runs the experiment file `path`, of whichever kind it is; writes results.json and the report.
    public static func run(_ path: String, context: HarnessContext, plots: String?) throws -> Outcome {
        try entry(named: try loadTOML(KindKey.self, from: path, kind: "experiment").kind, in: path).run(path, context, plots)
    }

    /// The report of the results in `folder`, of whichever kind they are; writes its files.
    public static func report(folder: String, plots: String?) throws -> Outcome {
        let path = "\(folder)/results.json"
        let name = try JSONFile.read(KindKey.self, from: path, what: "results document", hint: "run `vnetstream run` first").kind
        return try entry(named: name, in: path).report(path, folder, plots)
    }
}
