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
                command refills it in one transaction: the other's output is counted and dropped \
                from then on. Promoting the other back rolls it back. Example: vnetstream lab promote voiceb
                """)

        @Option(help: ArgumentHelp("The lab's run id (default: the only lab that is up).", valueName: "id"))
        var id: String?

        @Argument(help: "The VNet to make the production one: a production VNet or its shadow.")
        var vnet: String

        @OptionGroup(title: "Output (the switch: production, standby, how long it took)") var output: OutputOptions

        func run() throws {
            let promotion = try Lab.open(runID: id).promote(vnet: vnet)
            try output.emit(promotion)
            output.say("\(promotion.production) is production, \(promotion.standby) standby, in \(number(promotion.tookMs)) ms")
        }
    }
}
