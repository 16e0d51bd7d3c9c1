/// How the sender recovers what the network loses (`send --recovery`).
public enum RecoveryMode: String, CaseIterable, Sendable, Codable, CustomStringConvertible {
    /// Nothing is resent: every loss is the viewer's.
    case none
    /// Resend on the VNet that lost the packet, as SRT and RIST do: the baseline.
    case arqSame = "arq-same"
    /// Resend on the VNet most likely to deliver it in time: another one whenever the one that
    /// lost it is dead, lossy or full.
    case arq
    /// XOR parity over blocks of the stream (`--fec cols=C,rows=R`), on another VNet than most
    /// of what it protects: the receiver rebuilds a lost packet without asking.
    case fec
    /// Parity first; what it cannot rebuild is NACKed (after the parity has had its chance)
    /// and resent as `arq` does.
    case fecArq = "fec+arq"

    public var description: String { rawValue }

    /// Whether the receiver is asked for NACKs.
    public var resends: Bool { self == .arqSame || self == .arq || self == .fecArq }
    /// Whether parity goes with the stream.
    public var parity: Bool { self == .fec || self == .fecArq }
}
