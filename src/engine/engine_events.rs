//! `engine.event`: every whatsapp-rust event rendered as WAHA's raw `EnginePayload`
//! (`{event, data}`), for the webhooks and WebSocket clients that ask for `engine.event`
//! by name (it is not in `*`).
//!
//! Owns: the rendering — `event` is `events.<Variant>` (GOWS names whatsmeow's types the
//! same way, e.g. `events.Message`), `data` the event's serde JSON with secrets redacted
//! (fields named like keys, secrets, tokens, passwords or signatures become `"***"`,
//! byte arrays become their length, pairing QR codes and codes are withheld) and capped in
//! size. Called by the engine's event
//! handler for each event while [`EngineEventsWanted`] says someone listens; stateless.

use std::sync::Arc;

use serde_json::{Value, json};
use whatsapp_rust::types::events::Event;

/// Asked for each engine event: does any webhook or WebSocket client of the session want
/// `engine.event`? (Rendering every event costs a serialization; most sessions skip it.)
#[derive(Clone)]
pub struct EngineEventsWanted(pub Arc<dyn Fn() -> bool + Send + Sync>);

impl EngineEventsWanted {
    /// Nobody listens.
    #[must_use]
    pub fn never() -> Self {
        Self(Arc::new(|| false))
    }

    /// Asks now.
    #[must_use]
    pub fn get(&self) -> bool {
        (self.0)()
    }
}

impl std::fmt::Debug for EngineEventsWanted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EngineEventsWanted")
    }
}

/// Larger renderings (a history-sync blob) are replaced by their size.
const MAX_DATA_BYTES: usize = 256 * 1024;

/// Field names whose values are never shown.
const SECRET_WORDS: [&str; 8] = [
    "key",
    "secret",
    "token",
    "password",
    "passkey",
    "signature",
    "hmac",
    "noise",
];

fn redact(v: Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| {
                    let lower = k.to_ascii_lowercase();
                    if SECRET_WORDS.iter().any(|w| lower.contains(w)) && !v.is_null() {
                        (k, Value::String("***".into()))
                    } else {
                        (k, redact(v))
                    }
                })
                .collect(),
        ),
        // A byte string (keys, media hashes, ciphertext): its length only.
        Value::Array(items) if items.len() >= 16 && items.iter().all(Value::is_u64) => {
            Value::String(format!("<{} bytes>", items.len()))
        }
        Value::Array(items) => Value::Array(items.into_iter().map(redact).collect()),
        other @ (Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_)) => other,
    }
}

/// `(event, data)` of WAHA's `EnginePayload` for one whatsapp-rust event.
#[must_use]
pub fn render(event: &Event) -> (String, Value) {
    // `Event`'s Debug is its variant name only.
    let name = format!("events.{event:?}");
    let data = match serde_json::to_value(event) {
        // Externally tagged: `{"Variant": data}`, or the bare name of a unit variant.
        Ok(Value::Object(mut map)) if map.len() == 1 => {
            map.values_mut().next().map(Value::take).unwrap_or_default()
        }
        Ok(Value::String(_)) => Value::Null,
        Ok(other) => other,
        Err(e) => json!({"error": e.to_string()}),
    };
    // A QR code carries the device's identity and ADV secret; a pairing code pairs.
    let data = if name.starts_with("events.Pairing") {
        json!({"redacted": true})
    } else {
        redact(data)
    };
    let size = data.to_string().len();
    let data = if size > MAX_DATA_BYTES {
        json!({"truncated": true, "bytes": size})
    } else {
        data
    };
    (name, data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_and_bytes_are_redacted() {
        let v = redact(json!({
            "media_key": [1, 2, 3],
            "noiseKey": {"private": [1]},
            "authToken": null,
            "text": "hello",
            "blob": (0..32).collect::<Vec<u32>>(),
            "list": [1, 2],
            "nested": [{"secretValue": "x", "id": "a"}],
        }));
        assert_eq!(v["media_key"], "***");
        assert_eq!(v["noiseKey"], "***");
        assert_eq!(v["authToken"], Value::Null);
        assert_eq!(v["text"], "hello");
        assert_eq!(v["blob"], "<32 bytes>");
        assert_eq!(v["list"], json!([1, 2]));
        assert_eq!(v["nested"][0]["secretValue"], "***");
        assert_eq!(v["nested"][0]["id"], "a");
    }
}
