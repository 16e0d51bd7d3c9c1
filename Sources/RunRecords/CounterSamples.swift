import Foundation
import Units

/// One reading of an interface's counters (`vnetstream monitor counters --csv`): what a router
/// forwarded, second by second, from the kernel's own count.
public struct CounterSample: CSVRecord, Equatable {
    /// CLOCK_MONOTONIC seconds.
    public var t: Double
    public var txPackets: Int
    public var rxPackets: Int
    public var txDropped: Int
    public var rxDropped: Int
    public var txBytes: Int
    public var rxBytes: Int

    public init(t: Double, txPackets: Int, rxPackets: Int, txDropped: Int, rxDropped: Int, txBytes: Int = 0, rxBytes: Int = 0) {
        self.t = t
        self.txPackets = txPackets
        self.rxPackets = rxPackets
        self.txDropped = txDropped
        self.rxDropped = rxDropped
        self.txBytes = txBytes
        self.rxBytes = rxBytes
    }

    public static let csvHeader = "mono_s,tx_packets,rx_packets,tx_dropped,rx_dropped,tx_bytes,rx_bytes"

    public var csvRow: String { "\(t.plainText(places: 6)),\(txPackets),\(rxPackets),\(txDropped),\(rxDropped),\(txBytes),\(rxBytes)" }

    public init?(csvFields f: [Substring]) {
        guard let t = Double(f[0]), let tx = Int(f[1]), let rx = Int(f[2]), let txd = Int(f[3]), let rxd = Int(f[4]), let txb = Int(f[5]), let rxb = Int(f[6])
        else { return nil }
        self.init(t: t, txPackets: tx, rxPackets: rx, txDropped: txd, rxDropped: rxd, txBytes: txb, rxBytes: rxb)
    }

    /// The counters of `interface` now, from sysfs (this process's network namespace).
    public static func read(_ interface: String, at t: Double) throws -> CounterSample {
        func value(_ name: String) throws -> Int {
            let path = "/sys/class/net/\(interface)/statistics/\(name)"
            guard let text = try? String(contentsOfFile: path, encoding: .utf8), let n = Int(text.trimmingCharacters(in: .whitespacesAndNewlines)) else {
                throw RecordError("cannot read \(path): is there an interface \(interface) in this network namespace?")
            }
            return n
        }
        return CounterSample(
            t: t, txPackets: try value("tx_packets"), rxPackets: try value("rx_packets"), txDropped: try value("tx_dropped"), rxDropped: try value("rx_dropped"),
            txBytes: try value("tx_bytes"), rxBytes: try value("rx_bytes"))
    }

    /// Packets per second between consecutive samples (the transmit side), with each span's midpoint.
    public static func txRates(_ samples: [CounterSample]) -> [(t: Double, pps: Double)] {
        zip(samples, samples.dropFirst()).compactMap { a, b in
            b.t > a.t ? ((a.t + b.t) / 2, Double(b.txPackets - a.txPackets) / (b.t - a.t)) : nil
        }
    }
}
