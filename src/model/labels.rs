//! WhatsApp chat labels as WAHA shows them: the 20-colour palette (index ↔ hex, WAHA's
//! `structures/labels.dto`) and the [`Label`] built from a stored one.
//!
//! Pure data, used by the label store, the labels API and the label events.

pub use super::events::Label;

/// WhatsApp's label colours in WAHA's order: `color` is an index into this.
pub const PALETTE: [&str; 20] = [
    "#ff9485", "#64c4ff", "#ffd429", "#dfaef0", "#99b6c1", "#55ccb3", "#ff9dff", "#d3a91d",
    "#6d7cce", "#d7e752", "#00d0e2", "#ffc5c7", "#93ceac", "#f74848", "#00a0f2", "#83e422",
    "#ffaf04", "#b5ebff", "#9ba6ff", "#9368cf",
];

/// WAHA's `Label.toHex`: the palette entry, `#000000` beyond it.
#[must_use]
pub fn color_hex(color: i64) -> String {
    usize::try_from(color)
        .ok()
        .and_then(|i| PALETTE.get(i))
        .map_or_else(|| "#000000".to_string(), |h| (*h).to_string())
}

/// The palette index of `hex` (exact, lower-case as WAHA compares), if it is one.
#[must_use]
pub fn color_of_hex(hex: &str) -> Option<i64> {
    PALETTE
        .iter()
        .position(|h| *h == hex)
        .and_then(|i| i64::try_from(i).ok())
}

/// A label with its hex colour filled in.
#[must_use]
pub fn label(id: &str, name: &str, color: i64) -> Label {
    Label {
        id: id.to_string(),
        name: name.to_string(),
        color,
        color_hex: color_hex(color),
    }
}
