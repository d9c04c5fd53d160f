//! JSON bodies read the way Express's body-parser and class-validator read them, without
//! letting a hostile body cost more memory than a small multiple of its size.
//!
//! Owns: the node budget checked before a body becomes a value tree (a 50 MB array of
//! small numbers is 25 million tree nodes — gigabytes — where a WAHA request holds at most
//! thousands), and [`Strict`], a deserializer over `serde_json::Value` that refuses what
//! serde's derive would otherwise accept loosely: an array where an object (a DTO) is
//! expected (`"config": []`). Used by [`super::Body`], once per request.

use serde::de::{self, Deserializer, IntoDeserializer, Visitor};
use serde_json::{Map, Value};

/// Most JSON values (objects, arrays, scalars) one request body may hold. WAHA's largest
/// bodies — participant lists, base64 media (one string) — stay far below it.
pub const MAX_NODES: usize = 200_000;

/// Counts values in `bytes` without building them; `Err(())` past [`MAX_NODES`] — or on
/// a syntax error, which the real parse then reports in its own words.
pub fn within_node_budget(bytes: &[u8]) -> bool {
    let mut count = 0usize;
    let mut de = serde_json::Deserializer::from_slice(bytes);
    match de::DeserializeSeed::deserialize(Counter(&mut count), &mut de) {
        Ok(()) => true,
        // Over budget, or not JSON at all (the real parse names the syntax error).
        Err(_) => count <= MAX_NODES,
    }
}

struct Counter<'a>(&'a mut usize);

impl<'de> de::DeserializeSeed<'de> for Counter<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Counter<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(mut self, _: bool) -> Result<(), E> {
        self.bump()
    }
    fn visit_i64<E: de::Error>(mut self, _: i64) -> Result<(), E> {
        self.bump()
    }
    fn visit_u64<E: de::Error>(mut self, _: u64) -> Result<(), E> {
        self.bump()
    }
    fn visit_f64<E: de::Error>(mut self, _: f64) -> Result<(), E> {
        self.bump()
    }
    fn visit_str<E: de::Error>(mut self, _: &str) -> Result<(), E> {
        self.bump()
    }
    fn visit_unit<E: de::Error>(mut self) -> Result<(), E> {
        self.bump()
    }
    fn visit_seq<A: de::SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        self.bump::<A::Error>()?;
        while seq.next_element_seed(Counter(&mut *self.0))?.is_some() {}
        Ok(())
    }
    fn visit_map<A: de::MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        self.bump::<A::Error>()?;
        while map.next_key_seed(Counter(&mut *self.0))?.is_some() {
            map.next_value_seed(Counter(&mut *self.0))?;
        }
        Ok(())
    }
}

impl Counter<'_> {
    fn bump<E: de::Error>(&mut self) -> Result<(), E> {
        *self.0 += 1;
        if *self.0 > MAX_NODES {
            return Err(E::custom("too many JSON values"));
        }
        Ok(())
    }
}

/// A `serde_json::Value` deserializer that gives structs only objects (see module docs).
/// Everything else behaves exactly as `Value`'s own deserializer.
pub struct Strict(pub Value);

type Error = serde_json::Error;

fn unexpected(v: &Value) -> de::Unexpected<'_> {
    match v {
        Value::Null => de::Unexpected::Unit,
        Value::Bool(b) => de::Unexpected::Bool(*b),
        Value::Number(_) => de::Unexpected::Other("number"),
        Value::String(s) => de::Unexpected::Str(s),
        Value::Array(_) => de::Unexpected::Seq,
        Value::Object(_) => de::Unexpected::Map,
    }
}

impl<'de> Deserializer<'de> for Strict {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Array(items) => {
                let len = items.len();
                let mut seq = Seq(items.into_iter());
                let out = visitor.visit_seq(&mut seq)?;
                if seq.0.len() == 0 {
                    Ok(out)
                } else {
                    Err(de::Error::invalid_length(len, &"fewer elements in array"))
                }
            }
            Value::Object(map) => visitor.visit_map(Fields::new(map)),
            other @ (Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_)) => {
                other.deserialize_any(visitor)
            }
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.0 {
            Value::Object(map) => visitor.visit_map(Fields::new(map)),
            other @ (Value::Null
            | Value::Bool(_)
            | Value::Number(_)
            | Value::String(_)
            | Value::Array(_)) => Err(de::Error::invalid_type(unexpected(&other), &visitor)),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Null => visitor.visit_none(),
            other @ (Value::Bool(_)
            | Value::Number(_)
            | Value::String(_)
            | Value::Array(_)
            | Value::Object(_)) => visitor.visit_some(Strict(other)),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.0.deserialize_enum(name, variants, visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple tuple_struct map identifier
    }
}

impl<'de> IntoDeserializer<'de, Error> for Strict {
    type Deserializer = Self;
    fn into_deserializer(self) -> Self {
        self
    }
}

struct Seq(std::vec::IntoIter<Value>);

impl<'de> de::SeqAccess<'de> for &mut Seq {
    type Error = Error;
    fn next_element_seed<T: de::DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        self.0
            .next()
            .map(|v| seed.deserialize(Strict(v)))
            .transpose()
    }
    fn size_hint(&self) -> Option<usize> {
        Some(self.0.len())
    }
}

struct Fields {
    iter: serde_json::map::IntoIter,
    value: Option<Value>,
}

impl Fields {
    fn new(map: Map<String, Value>) -> Self {
        Self {
            iter: map.into_iter(),
            value: None,
        }
    }
}

impl<'de> de::MapAccess<'de> for Fields {
    type Error = Error;
    fn next_key_seed<K: de::DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        match self.iter.next() {
            Some((k, v)) => {
                self.value = Some(v);
                seed.deserialize(Value::String(k)).map(Some)
            }
            None => Ok(None),
        }
    }
    fn next_value_seed<V: de::DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        match self.value.take() {
            Some(v) => seed.deserialize(Strict(v)),
            None => Err(de::Error::custom("value is missing")),
        }
    }
    fn size_hint(&self) -> Option<usize> {
        Some(self.iter.len())
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use serde_json::json;

    use super::*;

    #[derive(Debug, Deserialize, Default, PartialEq)]
    #[serde(default)]
    struct Inner {
        a: Option<u32>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Outer {
        name: Option<String>,
        config: Option<Inner>,
        list: Option<Vec<Inner>>,
    }

    #[test]
    fn structs_take_objects_only() {
        let loose = json!({"config": []});
        // serde's derive alone accepts it:
        assert!(serde_json::from_value::<Outer>(loose.clone()).is_ok());
        let err = Outer::deserialize(Strict(loose)).unwrap_err().to_string();
        assert!(err.contains("invalid type: sequence"), "{err}");
        let ok = Outer::deserialize(Strict(json!({
            "name": "x", "config": {"a": 1}, "list": [{"a": 2}], "extra": [1, {"b": 2}]
        })))
        .unwrap();
        assert_eq!(ok.config, Some(Inner { a: Some(1) }));
        assert_eq!(ok.list, Some(vec![Inner { a: Some(2) }]));
        assert!(Outer::deserialize(Strict(json!({"list": [[]]}))).is_err());
        assert!(Outer::deserialize(Strict(json!({"config": null}))).is_ok());
    }

    #[test]
    fn node_budget() {
        assert!(within_node_budget(br#"{"a": [1, 2, {"b": "c"}]}"#));
        let big = format!("[{}1]", "1,".repeat(MAX_NODES));
        assert!(!within_node_budget(big.as_bytes()));
        // One huge string is one value.
        let s = format!("{{\"data\": \"{}\"}}", "A".repeat(5_000_000));
        assert!(within_node_budget(s.as_bytes()));
        // Syntax errors are left to the parser.
        assert!(within_node_budget(b"{nope"));
    }
}
