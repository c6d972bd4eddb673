/// What the canonical order of epochs reads: a time, an id, and the epochs
/// an epoch was written after.
public protocol OrderedEpoch {
    var time: Int { get }
    var id: String { get }
    var parents: EpochParents { get }
}

extension Epoch: OrderedEpoch {}
extension ScannedEpoch: OrderedEpoch {}

/// The canonical order of epoch lines (docs/bundle-format.md §3): by time;
/// among epochs of the same time, an epoch after every one it names in
/// `after=`; otherwise by id. Writes are ordered by their chain, not by the
/// clock, so any number of writes within one second keep their order, all
/// truthfully dated by the same second.
///
/// Precisely: repeatedly take, among the remaining epochs of the smallest
/// time whose same-time `after=` parents were all taken, the one with the
/// smallest id. (If none qualifies — parents that name each other — the
/// rest follow by id, and the history rule that a parent comes earlier
/// refuses the bundle.)
public enum EpochOrder {
    /// `epochs` in canonical order.
    public static func sorted<E: OrderedEpoch>(_ epochs: [E]) -> [E] {
        canonicalIndices(epochs).map { epochs[$0] }
    }

    /// Whether `epochs` are in canonical order.
    public static func isCanonical<E: OrderedEpoch>(_ epochs: [E]) -> Bool {
        canonicalIndices(epochs).enumerated().allSatisfy { $0.offset == $0.element }
    }

    /// The positions of `epochs` in canonical order.
    static func canonicalIndices<E: OrderedEpoch>(_ epochs: [E]) -> [Int] {
        // Times that only rise (the usual bundle): already canonical.
        if zip(epochs, epochs.dropFirst()).allSatisfy({ $0.time < $1.time }) { return Array(epochs.indices) }
        let byTimeAndID = epochs.indices.sorted { (epochs[$0].time, epochs[$0].id) < (epochs[$1].time, epochs[$1].id) }
        var order: [Int] = []
        order.reserveCapacity(epochs.count)
        var start = 0
        while start < byTimeAndID.count {
            var end = start + 1
            while end < byTimeAndID.count, epochs[byTimeAndID[end]].time == epochs[byTimeAndID[start]].time { end += 1 }
            let group = Array(byTimeAndID[start..<end])
            order += group.count == 1 ? group : chainOrder(group, epochs)
            start = end
        }
        return order
    }

    /// One time's epochs (given by id) with parents before children: Kahn's
    /// algorithm, the smallest ready id first.
    private static func chainOrder<E: OrderedEpoch>(_ group: [Int], _ epochs: [E]) -> [Int] {
        var position: [String: Int] = [:]  // id → place in `group`
        for (place, index) in group.enumerated() { position[epochs[index].id] = place }
        var waitingOn = [Int](repeating: 0, count: group.count)
        var children = [[Int]](repeating: [], count: group.count)
        for (place, index) in group.enumerated() {
            guard case .after(let parents) = epochs[index].parents else { continue }
            for parent in Set(parents) {
                guard let parentPlace = position[parent], parentPlace != place else { continue }
                waitingOn[place] += 1
                children[parentPlace].append(place)
            }
        }
        // Places are in id order, so the smallest ready place is the smallest ready id.
        var ready = Heap(group.indices.filter { waitingOn[$0] == 0 })
        var taken = [Bool](repeating: false, count: group.count)
        var order: [Int] = []
        while let place = ready.popMinimum() {
            order.append(group[place])
            taken[place] = true
            for child in children[place] {
                waitingOn[child] -= 1
                if waitingOn[child] == 0 { ready.insert(child) }
            }
        }
        for place in group.indices where !taken[place] { order.append(group[place]) }
        return order
    }
}

/// A binary min-heap of integers.
private struct Heap {
    private var items: [Int] = []

    init(_ values: [Int]) {
        for value in values { insert(value) }
    }

    mutating func insert(_ value: Int) {
        items.append(value)
        var child = items.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard items[child] < items[parent] else { break }
            items.swapAt(child, parent)
            child = parent
        }
    }

    mutating func popMinimum() -> Int? {
        guard let first = items.first else { return nil }
        let last = items.removeLast()
        guard !items.isEmpty else { return first }
        items[0] = last
        var parent = 0
        while true {
            let left = 2 * parent + 1, right = left + 1
            var smallest = parent
            if left < items.count, items[left] < items[smallest] { smallest = left }
            if right < items.count, items[right] < items[smallest] { smallest = right }
            guard smallest != parent else { return first }
            items.swapAt(parent, smallest)
            parent = smallest
        }
    }
}
