/// A composed YAML (or JSON) node with its position: the tree the
/// declarations and manifest readers walk.
///
/// Kept deliberately small — a kind, a position, text or children — because
/// large projects hold hundreds of thousands of nodes.
struct YAMLNode {
    enum Kind: Equatable {
        case scalar
        case mapping
        case sequence
    }

    /// How a scalar was written; only plain scalars are typed (see ``NodeReader/ScalarKind``).
    enum Style: Equatable {
        case plain
        case quoted
        case block
    }

    var kind: Kind
    /// 1-based line and column (in Unicode scalars) where the node starts.
    var line: Int
    var column: Int
    /// A scalar's text (empty for collections).
    var text: String
    var style: Style
    /// Sequence items, or mapping keys and values interleaved: k0, v0, k1, v1, ...
    var children: [YAMLNode]

    static func scalar(_ text: String, style: Style, line: Int, column: Int) -> YAMLNode {
        YAMLNode(kind: .scalar, line: line, column: column, text: text, style: style, children: [])
    }

    var isScalar: Bool { kind == .scalar }

    /// Mapping pairs, in order.
    var pairs: some Sequence<(key: YAMLNode, value: YAMLNode)> {
        stride(from: 0, to: kind == .mapping ? children.count - 1 : 0, by: 2).lazy.map { (children[$0], children[$0 + 1]) }
    }

    /// Sequence items.
    var items: [YAMLNode] { kind == .sequence ? children : [] }
}
