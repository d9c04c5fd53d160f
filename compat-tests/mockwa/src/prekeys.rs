//! One-time prekeys as the mock keeps them: 35 bytes each instead of the uploaded `<key>`
//! node (a tree of three nodes with their tags, attributes and buffers, ~0.5 KiB). A
//! whatsapp-rust device uploads a batch of them on pairing (812 by its default, 50 in
//! wharf), so this is most of what a paired device costs the mock (issue 16: hold 10,000
//! connected devices in one process).
//!
//! Owns: [`PreKey`] (parse from an upload's `<key>`, rebuild the node for a bundle). Used
//! by `proto` (upload, count, bundle fetch) and `conn` (the phone's key share); lives in
//! each `state::Device`'s queue until a bundle fetch consumes it.

use wacore_binary::Node;

use crate::wire::{B, bytes, child};

/// A stored one-time prekey.
pub(crate) enum PreKey {
    /// The shape every client sends: a 3-byte id and a 32-byte public key.
    Compact { id: [u8; 3], value: [u8; 32] },
    /// Anything else, kept as uploaded so the mock hands back exactly what it got.
    Node(Box<Node>),
}

impl PreKey {
    /// From an uploaded `<key><id/><value/></key>`.
    pub(crate) fn from_node(n: &Node) -> Self {
        let id = child(n, "id").and_then(bytes).map(<[u8; 3]>::try_from);
        let value = child(n, "value").and_then(bytes).map(<[u8; 32]>::try_from);
        let plain = n.tag == "key"
            && n.attrs.is_empty()
            && n.children().is_some_and(|kids| kids.len() == 2);
        match (plain, id, value) {
            (true, Some(Ok(id)), Some(Ok(value))) => Self::Compact { id, value },
            _ => Self::Node(Box::new(n.clone())),
        }
    }

    /// The `<key>` node, as uploaded.
    pub(crate) fn to_node(&self) -> Node {
        match self {
            Self::Compact { id, value } => B::new("key")
                .kids([
                    B::new("id").bytes(id.to_vec()).build(),
                    B::new("value").bytes(value.to_vec()).build(),
                ])
                .build(),
            Self::Node(n) => (**n).clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_round_trip_and_odd_shapes_kept_whole() {
        let key = B::new("key")
            .kids([
                B::new("id").bytes(vec![0, 1, 2]).build(),
                B::new("value").bytes(vec![7u8; 32]).build(),
            ])
            .build();
        let stored = PreKey::from_node(&key);
        assert!(matches!(stored, PreKey::Compact { .. }));
        assert_eq!(stored.to_node(), key);
        let odd = B::new("key")
            .kids([B::new("id").bytes(vec![1]).build()])
            .build();
        let stored = PreKey::from_node(&odd);
        assert!(matches!(stored, PreKey::Node(_)));
        assert_eq!(stored.to_node(), odd);
        assert!(std::mem::size_of::<PreKey>() <= 40);
    }
}
