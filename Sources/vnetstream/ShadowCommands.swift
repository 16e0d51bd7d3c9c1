import ArgumentParser
import Foundation
import Lab

extension LabCommand {
    struct Promote: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make a VNet or its shadow the one whose output reaches the receiver, in one nftables transaction.",
            discussion: """
                Both keep carrying what enters the production VNet (the entry copies it into the \
                shadow); at the receiver one nftables set says whose output passes, and this \
                command refills it in one transaction. For --overlap both outputs then pass and \
                the exit lets each packet through once, whichever VNet brings it first (nothing \
                the old VNet still queues is lost, nothing the new one brings late is doubled); \
                then the other's output is counted and dropped. Promoting the other back rolls \
                it back. Example: vnetstream lab promote voiceb
                """)

        @Option(help: ArgumentHelp("The lab's run id (default: the only lab that is up).", valueName: "id"))
        var id: String?

        @Argument(help: "The VNet to make the production one: a production VNet or its shadow.")
        var vnet: String

        @Option(help: ArgumentHelp("Seconds both outputs pass, first copy winning: longer than the old VNet queues a packet.", valueName: "seconds"))
        var overlap: Double = Lab.defaultOverlapS

        @OptionGroup(title: "Output (the switch: production, standby, how long it took)") var output: OutputOptions

        func run() throws {
            let promotion = try Lab.open(runID: id).promote(vnet: vnet, overlapS: overlap)
            try output.emit(promotion)
            output.say("\(promotion.production) is production, \(promotion.standby) standby, in \(number(promotion.tookMs)) ms (both passed for \(number(promotion.overlapS)) s)")
        }
    }
}

extension LabCommand {
    struct Retire: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Remove the standby one of a VNet and its shadow: the copies stop, its routers and namespaces go.",
            discussion: """
                If it is the old production VNet (its shadow was promoted), what entered it now \
                enters the shadow directly. A production VNet is refused: promote the other first. \
                Example: vnetstream lab promote voiceb && vnetstream lab retire voice
                """)

        @Option(help: ArgumentHelp("The lab's run id (default: the only lab that is up).", valueName: "id"))
        var id: String?

        @Argument(help: "The VNet to remove.")
        var vnet: String

        func run() throws {
            let removed = try Lab.open(runID: id).retire(vnet: vnet)
            print("VNet \(vnet) retired: \(removed.joined(separator: ", "))")
        }
    }
}

extension LabCommand {
    struct Copy: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Start or stop copying what enters a production VNet into its shadow (one nftables transaction at the entry).",
            discussion: """
                A shadow that is not copied into is idle: it carries nothing, and the exit has \
                nothing of it to drop. Schedules do the same with action = "activate" or \
                "deactivate". Example: vnetstream lab copy voiceb --off
                """)

        @Option(help: ArgumentHelp("The lab's run id (default: the only lab that is up).", valueName: "id"))
        var id: String?

        @Argument(help: "The shadow VNet.")
        var vnet: String

        @Flag(name: .customLong("off"), help: "Stop copying (default: start).")
        var off = false

        func run() throws {
            try Lab.open(runID: id).setCopying(shadow: vnet, on: !off)
            print("VNet \(vnet): the entry \(off ? "no longer copies into it (idle)" : "copies into it")")
        }
    }
}
