import Foundation

extension Double {
    /// `40`, `33.3`, `0.04`: whole numbers without `.0`, others as Swift prints them. For
    /// messages, headers and tables (not for fixed-width columns).
    public var plainText: String {
        self == rounded() && abs(self) < 1e15 ? String(Int64(self)) : String(self)
    }

    /// Rounded to `places` decimals, trailing zeros dropped: `0.5`, `104.7`, `12` (never an
    /// exponent). For tables and messages.
    public func plainText(places: Int) -> String {
        var text = String(format: "%.\(places)f", self)
        if text.contains(".") {
            while text.hasSuffix("0") { text.removeLast() }
            if text.hasSuffix(".") { text.removeLast() }
        }
        return text == "-0" ? "0" : text
    }
}
