extension Double {
    /// `40`, `33.3`, `0.04`: whole numbers without `.0`, others as Swift prints them. For
    /// messages, headers and tables (not for fixed-width columns).
    public var plainText: String {
        self == rounded() && abs(self) < 1e15 ? String(Int64(self)) : String(self)
    }
}
