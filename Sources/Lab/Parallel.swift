import Foundation

/// Work on a thread of its own, and its result.
public final class Background<T>: @unchecked Sendable {
    private let done = DispatchSemaphore(value: 0)
    private var result: T?

    public init(_ work: @escaping () -> T) {
        nonisolated(unsafe) let work = work
        let thread = Thread { [self] in
            result = work()
            done.signal()
        }
        thread.start()
    }

    public func wait() -> T {
        done.wait()
        done.signal()
        return result!
    }
}

public enum Parallel {
    /// `transform` on every element, each on a thread of its own; results in order.
    public static func map<T>(_ indices: Range<Int>, _ transform: @escaping (Int) -> T) -> [T] {
        let jobs = indices.map { index in Background { transform(index) } }
        return jobs.map { $0.wait() }
    }
}
