import Foundation

/// The E-model of ITU-T G.107: a voice call's transmission rating R from its impairments, and
/// the MOS it predicts. Pure: parameters in, numbers out.
///
/// R = Ro - Is - Id - Ie,eff + A. Ro is the basic signal-to-noise ratio, Is the impairments
/// that come with the voice signal itself, Id those of delay (talker echo Idte, listener echo
/// Idle, the delay itself Idd), Ie,eff those of the codec and of lost packets, A the
/// advantage factor. Every parameter's default is G.107's, with which R = 93.2 (MOS 4.41).
public struct EModel: Sendable, Equatable {
    // Send and receive loudness ratings, sidetone masking, listener sidetone (dB).
    public var slr = 8.0
    public var rlr = 2.0
    public var stmr = 15.0
    public var lstr = 18.0
    /// D-values of the telephone's send and receive sides.
    public var ds = 3.0
    public var dr = 3.0
    /// Talker echo loudness rating, weighted echo path loss (dB).
    public var telr = 65.0
    public var wepl = 110.0
    /// Mean one-way delay of the echo path, absolute delay (mouth to ear), round-trip delay of
    /// the listener echo loop (ms).
    public var t = 0.0
    public var ta = 0.0
    public var tr = 0.0
    /// Quantizing distortion units.
    public var qdu = 1.0
    /// The codec's equipment impairment, and its packet-loss robustness.
    public var ie = 0.0
    public var bpl = 4.3
    /// Packets lost (or too late to play), percent; and how bursty the loss is (1: random).
    public var ppl = 0.0
    public var burstR = 1.0
    /// Circuit noise at the 0 dBr point (dBm0p), the noise floor at the receive side (dBmp),
    /// room noise at each side (dB(A)).
    public var nc = -70.0
    public var nfor = -64.0
    public var ps = 35.0
    public var pr = 35.0
    /// The advantage factor (0 for wired calls).
    public var a = 0.0
    /// The delay at which Idd starts to grow, and how sharply (G.107 2014 on: mT, sT).
    public var mT = 100.0
    public var sT = 1.0

    public init() {}

    /// G.711 (Ie 0) over a network with `oneWayMs` of mouth-to-ear delay and `lossPct` of its
    /// packets lost or too late, `burstR` their burstiness; Bpl 25.1 with packet loss
    /// concealment, 4.3 without (G.113 Appendix I). The echo path's delay is the same, the
    /// listener echo loop twice it.
    /// A delay below 0 (clocks that disagree) counts as 0, and one that is no number as well.
    public static func g711(oneWayMs: Double, lossPct: Double, burstR: Double = 1, concealment: Bool = true) -> EModel {
        let oneWayMs = oneWayMs.isFinite ? max(0, oneWayMs) : 0
        var model = EModel()
        model.t = oneWayMs
        model.ta = oneWayMs
        model.tr = 2 * oneWayMs
        model.ie = 0
        model.bpl = concealment ? 25.1 : 4.3
        model.ppl = lossPct
        model.burstR = burstR
        return model
    }

    static func lg(_ x: Double) -> Double { log10(x) }

    // MARK: - Ro: the basic signal-to-noise ratio

    public var olr: Double { slr + rlr }
    public var nos: Double { ps - slr - ds - 100 + 0.004 * pow(ps - olr - ds - 14, 2) }
    public var pre: Double { pr + 10 * Self.lg(1 + pow(10, (10 - lstr) / 10)) }
    public var nor: Double { rlr - 121 + pre + 0.008 * pow(pre - 35, 2) }
    public var nfo: Double { nfor + rlr }
    /// The total noise power No (dBm0p).
    public var no: Double { 10 * Self.lg(pow(10, nc / 10) + pow(10, nos / 10) + pow(10, nor / 10) + pow(10, nfo / 10)) }
    public var ro: Double { 15 - 1.5 * (slr + no) }

    // MARK: - Is: impairments simultaneous with the voice

    public var iolr: Double {
        let xolr = olr + 0.2 * (64 + no - rlr)
        return 20 * (pow(1 + pow(xolr / 8, 8), 1.0 / 8) - xolr / 8)
    }
    public var stmro: Double { -10 * Self.lg(pow(10, -stmr / 10) + exp(-t / 4) * pow(10, -telr / 10)) }
    public var ist: Double {
        let s = stmro
        return 12 * pow(1 + pow((s - 13) / 6, 8), 1.0 / 8) - 28 * pow(1 + pow((s + 1) / 19.4, 35), 1.0 / 35)
            - 13 * pow(1 + pow((s - 3) / 33, 13), 1.0 / 13) + 29
    }
    public var iq: Double {
        let q = 37 - 15 * Self.lg(qdu)
        let g = 1.07 + 0.258 * q + 0.0602 * q * q
        let y = (ro - 100) / 15 + 46 / 8.4 - g / 9
        let z = 46.0 / 30 - g / 40
        return 15 * Self.lg(1 + pow(10, y) + pow(10, z))
    }
    public var isFactor: Double { iolr + ist + iq }

    // MARK: - Id: delay

    /// Talker echo.
    public var idte: Double {
        let roe = -1.5 * (no - rlr)
        var terv = telr - 40 * Self.lg((1 + t / 10) / (1 + t / 150)) + 6 * exp(-0.3 * t * t)
        if stmr < 9 { terv += ist / 2 }
        let re = 80 + 2.5 * (terv - 14)
        let idte = ((roe - re) / 2 + sqrt(pow(roe - re, 2) / 4 + 100) - 1) * (1 - exp(-t))
        return idte
    }
    /// Listener echo.
    public var idle: Double {
        let rle = 10.5 * (wepl + 7) * pow(tr + 1, -0.25)
        return (ro - rle) / 2 + sqrt(pow(ro - rle, 2) / 4 + 169)
    }
    /// The delay itself: 0 up to mT of absolute delay.
    public var idd: Double {
        guard ta > mT else { return 0 }
        let x = Self.lg(ta / mT) / Self.lg(2)
        return 25 * (pow(1 + pow(x, 6 * sT), 1 / (6 * sT)) - 3 * pow(1 + pow(x / 3, 6 * sT), 1 / (6 * sT)) + 2)
    }
    public var id: Double { idte + idle + idd }

    // MARK: - Ie,eff: codec and packet loss

    public var ieEff: Double { ie + (95 - ie) * ppl / (ppl / burstR + bpl) }

    // MARK: - R and MOS

    public var r: Double { ro - isFactor - id - ieEff + a }
    public var mos: Double { Self.mos(r: r) }

    /// G.107's mapping from R to MOS (conversational quality). Its cubic dips to 0.99 for R
    /// below 6.5; the MOS scale's floor of 1 holds there.
    public static func mos(r: Double) -> Double {
        if r <= 0 { return 1 }
        if r >= 100 { return 4.5 }
        return max(1, 1 + 0.035 * r + r * (r - 60) * (100 - r) * 7e-6)
    }
}

/// How packets went missing: the loss percentage and G.107's burst ratio, from each packet's
/// fate in order (true: played; false: lost or too late to play). With a two-state model
/// (p: from found to lost, q: from lost to found), BurstR = 1 / (p + q); 1 for random loss, above
/// 1 for bursts.
public struct LossPattern: Sendable, Equatable {
    public var packets: Int
    public var lost: Int
    public var burstR: Double

    public var lossPct: Double { packets == 0 ? 0 : Double(lost) / Double(packets) * 100 }

    public init(packets: Int, lost: Int, burstR: Double) {
        self.packets = packets
        self.lost = lost
        self.burstR = burstR
    }

    public init(played: [Bool]) {
        packets = played.count
        lost = played.filter { !$0 }.count
        var foundToLost = 0, found = 0, lostToFound = 0, lostBefore = 0
        for (previous, next) in zip(played, played.dropFirst()) {
            if previous {
                found += 1
                if !next { foundToLost += 1 }
            } else {
                lostBefore += 1
                if next { lostToFound += 1 }
            }
        }
        let p = found == 0 ? 0 : Double(foundToLost) / Double(found)
        let q = lostBefore == 0 ? 1 : Double(lostToFound) / Double(lostBefore)
        // No loss, or loss that never ends: 1 (G.107's default).
        burstR = lost == 0 || p + q == 0 ? 1 : 1 / (p + q)
    }
}
