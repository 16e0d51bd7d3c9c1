/// The nearest-rank percentile of values already sorted in ascending order: the smallest value
/// with at least `fraction` (0-1) of them at or below it (nil: no values). One definition for
/// every report's p5, median and p99.
public func nearestRank<T>(_ fraction: Double, ofSorted sorted: [T]) -> T? {
    guard !sorted.isEmpty else { return nil }
    let rank = Int((fraction * Double(sorted.count)).rounded(.up)) - 1
    return sorted[min(sorted.count - 1, max(0, rank))]
}
