import Control
import Foundation
import Packets
import Recovery
import Traces

/// One VNet as the sender reaches it: a tun interface, and the sender's own address in that
/// VNet (the source of its packets there, and where that VNet delivers the receiver's reports).
public struct VNetRoute: Sendable, Equatable {
    public var tun: String
    public var source: IPv4Address
    /// Its reservation on a provisioned access link, bits per second: the adaptive
    /// controller's capacity estimate never goes above it. nil: none.
    public var ceiling: Double?

    public init(tun: String, source: IPv4Address, ceiling: Double? = nil) {
        self.tun = tun
        self.source = source
        self.ceiling = ceiling
    }
}

public struct SenderConfiguration {
    public var trace: FrameTrace
    public var routes: [VNetRoute]
    public var destination: UDPEndpoint
    /// The UDP source port of media packets, where reports come back to.
    public var sourcePort: UInt16 = 5005
    public var mark: TrafficMark = .bestEffort
    /// How the stream goes over the VNets; its controller is made from it.
    public var mode: SendMode
    /// The adaptive controller's parameters (`mode` adaptive).
    public var adaptive = AdaptiveController.Parameters()
    /// The largest IPv4 packet to send; nil takes the smallest MTU of the tuns.
    public var mtu: Int?
    public var streamID: UInt32 = 1
    /// How often a line per VNet goes to the log, seconds.
    public var logInterval: Double = 1
    /// How long to keep listening for reports after the last packet, seconds.
    public var linger: Double = 0.5
    /// Where JSON lines go (one call per line); nil logs nothing.
    public var log: ((String) -> Void)?
    /// Where one CSV line per packet sent goes (header line first); nil logs none.
    public var packetLog: ((String) -> Void)?
    /// When the first frame is due, on the monotonic clock (CLOCK_MONOTONIC, nanoseconds),
    /// so that another process (the lab's schedule) can share the stream's time zero; nil
    /// starts 20 ms after `run()` is called.
    public var startAt: UInt64?
    /// Hand the kernel up to 64 packets per write and let it cut them apart (UDP segmentation
    /// offload through the tun's virtio-net header), where the kernel can; falls back to a
    /// write per packet where it cannot. Unpaced: every bundle. Paced: each run of a frame's
    /// packets on one VNet of one size (on an unshaped path such a run arrives at once, so
    /// probe trains read wrong: not for the adaptive mode).
    public var segmentationOffload = false
    /// Stages between the split and the tuns (parity, retransmission), in order.
    public var stages: [any SenderStage] = []
    /// Shed frames by priority when the VNets together cannot carry the stream (B frames first,
    /// then P frames from the end of the group; never I frames). The trace needs frame types:
    /// give a trace without them a GoP pattern first (`FrameTrace.assigning`).
    public var shedding = false
    /// How lost packets are recovered: `arq-same` and `arq` keep what was sent and resend what
    /// the receiver's NACKs ask for (on the same VNet, or on the one most likely to deliver it).
    public var recovery: RecoveryMode = .none
    /// The FEC block shape (`fec` and `fec+arq`).
    public var fec: FECShape = .default
    /// The playout deadline: a packet is of use until its frame's time plus this, seconds.
    public var latency: Double = 0.2

    public init(trace: FrameTrace, routes: [VNetRoute], destination: UDPEndpoint, mode: SendMode) {
        self.trace = trace
        self.routes = routes
        self.destination = destination
        self.mode = mode
    }
}

/// CPU time of this process so far (user + system), from getrusage.
public enum ProcessCPU {
    public static func seconds() -> Double {
        var usage = rusage()
        getrusage(Int32(RUSAGE_SELF.rawValue), &usage)
        func s(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }
        return s(usage.ru_utime) + s(usage.ru_stime)
    }
}

public struct SenderError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
