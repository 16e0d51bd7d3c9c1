/// How the sender recovers what the network loses (`send --recovery`).
public enum RecoveryMode: String, CaseIterable, Sendable, Codable, CustomStringConvertible {
    /// Nothing is resent: every loss is the viewer's.
    case none
    /// Resend on the VNet that lost the packet, as SRT and RIST do: the baseline.
    case arqSame = "arq-same"
    /// Resend on the VNet most likely to deliver it in time: another one whenever the one that
    /// lost it is dead, lossy or full.
    case arq

    public var description: String { rawValue }

    /// Whether the receiver is asked for NACKs.
    public var resends: Bool { self != .none }
}
