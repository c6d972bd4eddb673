/// Three-way merge of bundles, for git's merge driver: two branches that
/// wrote different slots merge into one bundle with both writes.
public enum BundleMerge {
    /// Why two sides cannot be merged automatically.
    public struct Conflict: Error, Sendable, Equatable, CustomStringConvertible {
        public var description: String

        public init(description: String) { self.description = description }
    }

    /// Merges `ours` and `theirs`, both descended from `base`.
    /// - Throws: ``Conflict`` when both sides changed the policy differently,
    ///   one side re-sealed (compiled) while the other wrote, or both wrote
    ///   the same slot differently.
    public static func merge(base: SecretBundle, ours: SecretBundle, theirs: SecretBundle) throws(Conflict) -> SecretBundle {
        let policies = (base.policyPayload(), ours.policyPayload(), theirs.policyPayload())
        let signatures = (base.policy, ours.policy, theirs.policy)
        var merged: SecretBundle
        if policies.1 == policies.2 && signatures.1 == signatures.2 {
            merged = ours
        } else if policies.1 == policies.0 && signatures.1 == signatures.0 {
            merged = theirs  // only their side changed the policy
        } else if policies.2 == policies.0 && signatures.2 == signatures.0 {
            merged = ours
        } else {
            throw Conflict(description: "both sides changed the policy (declarations or compile); compile again after merging")
        }

        // A side that dropped epochs re-sealed the bundle (compile); writes on the other side cannot be replayed.
        let baseIDs = Set(base.epochs.map(\.id))
        let ourIDs = Set(ours.epochs.map(\.id))
        let theirIDs = Set(theirs.epochs.map(\.id))
        let oursCompiled = !baseIDs.isSubset(of: ourIDs)
        let theirsCompiled = !baseIDs.isSubset(of: theirIDs)
        if (oursCompiled && !theirIDs.subtracting(baseIDs).isEmpty) || (theirsCompiled && !ourIDs.subtracting(baseIDs).isEmpty) {
            throw Conflict(description: "one side re-sealed the bundle (compile) while the other wrote values; redo the writes")
        }
        var epochs: [String: Epoch] = [:]
        for epoch in ours.epochs + theirs.epochs { epochs[epoch.id] = epoch }
        if oursCompiled || theirsCompiled {
            merged.epochs = (oursCompiled ? ours : theirs).epochs
        } else {
            merged.epochs = EpochOrder.sorted(Array(epochs.values))
        }

        let baseValues = Dictionary(base.slots.map { ($0.slot, $0.value) }, uniquingKeysWith: { a, _ in a })
        let ourValues = Dictionary(ours.slots.map { ($0.slot, $0.value) }, uniquingKeysWith: { a, _ in a })
        let theirValues = Dictionary(theirs.slots.map { ($0.slot, $0.value) }, uniquingKeysWith: { a, _ in a })
        for index in merged.slots.indices {
            let slot = merged.slots[index].slot
            let (old, mine, other) = (baseValues[slot] ?? nil, ourValues[slot] ?? nil, theirValues[slot] ?? nil)
            if mine == other || other == old {
                merged.slots[index].value = mine
            } else if mine == old {
                merged.slots[index].value = other
            } else {
                func write(_ value: SealedValue?, in bundle: SecretBundle) -> String {
                    guard let value, let epoch = bundle.epochs.first(where: { $0.id == value.epoch }) else { return "deleted it" }
                    let writer = bundle.userNames[epoch.writer] ?? epoch.writer
                    return "epoch \(epoch.id) by \(writer) at \(epoch.time)"
                }
                throw Conflict(
                    description: "both sides wrote slot \(slot) (ours: \(write(mine, in: ours)); theirs: \(write(other, in: theirs)))")
            }
        }
        return merged
    }
}
