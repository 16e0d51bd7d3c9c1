import Capture
import Devices
import Foundation
import Packets
import Pacing

/// A monitoring node at work (`vnetstream monitor watch`): libpcap on its mirror port, a
/// `MirrorObserver` per copy, and every interval a summary to the collector over the
/// monitoring VNet's own links. Stops after `durationS` or when `stop` says so, and sends a
/// last summary before it does.
public enum MonitorNode {
    public struct Configuration: Sendable {
        public var node: String
        public var router: String
        public var vnet: String
        public var interface: String
        public var ports: [MirrorObserver.Port]
        public var filter: String
        public var collector: UDPEndpoint
        public var intervalS: Double
        public var durationS: Double
        /// A rolling pcap of the copies (nil: none).
        public var ring: InterfaceCapture.PcapRing?
        public var snaplen: Int
        /// The pcap's timestamps on CLOCK_MONOTONIC (InterfaceCapture's `monotonic`), not the wall clock.
        public var monotonic: Bool

        public init(
            node: String, router: String, vnet: String, interface: String, ports: [MirrorObserver.Port], filter: String, collector: UDPEndpoint,
            intervalS: Double, durationS: Double, ring: InterfaceCapture.PcapRing?, snaplen: Int, monotonic: Bool = false
        ) {
            self.monotonic = monotonic
            self.node = node
            self.router = router
            self.vnet = vnet
            self.interface = interface
            self.ports = ports
            self.filter = filter
            self.collector = collector
            self.intervalS = intervalS
            self.durationS = durationS
            self.ring = ring
            self.snaplen = snaplen
        }
    }

    /// What a node did, over its whole life.
    public struct Totals: Codable, Sendable, Equatable {
        public var node: String
        public var copies: Int
        public var droppedByKernel: Int
        public var intervals: Int
        public var datagrams: Int
        /// Datagrams the socket would not take (the monitoring VNet full): counted, not retried.
        public var unsent: Int
        /// CPU seconds this process used (user + system): the Moni's cost, apart from the router's.
        public var cpuS: Double

        enum CodingKeys: String, CodingKey {
            case node, copies, intervals, datagrams, unsent
            case droppedByKernel = "dropped_by_kernel"
            case cpuS = "cpu_s"
        }
    }

    public static func run(_ configuration: Configuration, stop: () -> Bool) throws -> Totals {
        let socket = try UDPSocket(bind: UDPEndpoint(address: IPv4Address(0), port: 0), receiveBufferBytes: 65536)
        let lock = NSLock()
        let start = Double(MonotonicClock.now()) / 1e9
        var observer = MirrorObserver(
            node: configuration.node, router: configuration.router, vnet: configuration.vnet, ports: configuration.ports, startS: start)
        let capture = try InterfaceCapture(
            interface: configuration.interface,
            output: .handler({ _, bytes, _ in
                lock.lock()
                observer.observe(frame: bytes)
                lock.unlock()
            }, ring: configuration.ring), filter: configuration.filter, snaplen: configuration.snaplen, immediate: false,
            monotonic: configuration.monotonic)
        var totals = Totals(node: configuration.node, copies: 0, droppedByKernel: 0, intervals: 0, datagrams: 0, unsent: 0, cpuS: 0)
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        func send(final: Bool) throws {
            let now = Double(MonotonicClock.now()) / 1e9
            lock.lock()
            let summary = observer.summary(endS: now, droppedByKernel: capture.droppedSoFar, final: final)
            lock.unlock()
            totals.copies += summary.copies
            totals.intervals += 1
            for part in summary.split() {
                totals.datagrams += 1
                if try !socket.send(Array(try encoder.encode(part)), to: configuration.collector) { totals.unsent += 1 }
            }
        }
        let end = start + configuration.durationS
        var next = start + configuration.intervalS
        while true {
            let now = Double(MonotonicClock.now()) / 1e9
            if stop() || now >= end { break }
            if now >= next {
                try send(final: false)
                next += configuration.intervalS
                continue
            }
            usleep(UInt32(max(1000, min(50_000, (min(next, end) - now) * 1e6))))
        }
        let summary = capture.stop()
        try send(final: true)
        totals.droppedByKernel = summary.droppedByKernel
        totals.cpuS = processCPUSeconds()
        return totals
    }

    static func processCPUSeconds() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
    }
}

/// The monitoring VNet's collector (`vnetstream monitor collect`): takes every node's summaries
/// and keeps them, one JSON line each, for the locator. Stops after `durationS` or on `stop`,
/// after taking what is still on its way for `lingerS`.
public enum MonitorCollector {
    public struct Totals: Codable, Sendable, Equatable {
        public var datagrams: Int
        /// Datagrams that were not a node's summary (counted, left out of the file).
        public var rejected: Int
        /// Per node: intervals received (part 0), and whether its last summary came.
        public var intervals: [String: Int]
        public var finals: [String]
    }

    public static func run(listen: UDPEndpoint, out: String, durationS: Double, lingerS: Double = 0.5, stop: () -> Bool) throws -> Totals {
        let socket = try UDPSocket(bind: listen, receiveBufferBytes: 8 << 20)
        guard FileManager.default.createFile(atPath: out, contents: nil), let file = FileHandle(forWritingAtPath: out) else {
            throw MonitorError("cannot create \(out)")
        }
        defer { try? file.close() }
        var totals = Totals(datagrams: 0, rejected: 0, intervals: [:], finals: [])
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 65536, alignment: 8)
        defer { buffer.deallocate() }
        let decoder = JSONDecoder()
        let start = Double(MonotonicClock.now()) / 1e9
        var stopAt: Double?
        while true {
            let now = Double(MonotonicClock.now()) / 1e9
            if stopAt == nil && (stop() || now - start >= durationS) { stopAt = now + lingerS }
            if let stopAt, now >= stopAt { break }
            _ = try waitForReadable([socket.fileDescriptor], timeoutNanoseconds: 50_000_000)
            while let arrival = try socket.receive(into: buffer) {
                totals.datagrams += 1
                let data = Data(bytes: buffer.baseAddress!, count: arrival.count)
                guard let summary = try? decoder.decode(MirrorSummary.self, from: data) else {
                    totals.rejected += 1
                    continue
                }
                if summary.part == 0 { totals.intervals[summary.node, default: 0] += 1 }
                if summary.final && summary.part == 0 { totals.finals.append(summary.node) }
                try file.write(contentsOf: data + Data("\n".utf8))
            }
        }
        totals.finals.sort()
        return totals
    }

    /// A collector's file: every summary in it, a bad line named.
    public static func read(_ path: String) throws -> [MirrorSummary] {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw MonitorError("\(path): cannot read the collector's records: \(error.localizedDescription)")
        }
        let decoder = JSONDecoder()
        var summaries: [MirrorSummary] = []
        for (index, line) in text.split(separator: "\n").enumerated() {
            do { summaries.append(try decoder.decode(MirrorSummary.self, from: Data(line.utf8))) } catch {
                throw MonitorError("\(path):\(index + 1): not a monitoring node's summary: \(error)")
            }
        }
        return summaries
    }
}

public struct MonitorError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}
