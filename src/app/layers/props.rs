//! A feature's properties as the JSON text of their values only, the keys (names, in order)
//! shared by every feature that has the same ones: a county's resource-access features repeat
//! two dozen key names each (~530 of their ~610 bytes), the blocks a dozen.

use std::sync::Arc;

use serde_json::{Map, Value};

/// Property names in order, each also as its JSON object key (`"name":`).
#[derive(Debug, PartialEq, Eq)]
pub struct PropKeys {
    names: Box<[Box<str>]>,
    quoted: Box<[Box<str>]>,
    /// Bytes of every quoted key together.
    quoted_len: usize,
}

impl PropKeys {
    /// Keys of these names, in this order.
    pub fn new<S: AsRef<str>>(names: impl IntoIterator<Item = S>) -> Arc<PropKeys> {
        let names: Box<[Box<str>]> = names.into_iter().map(|n| n.as_ref().into()).collect();
        // Serializing a string cannot fail.
        let quoted: Box<[Box<str>]> =
            names.iter().map(|n| format!("{}:", serde_json::to_string(&**n).unwrap_or_default()).into()).collect();
        let quoted_len = quoted.iter().map(|q| q.len()).sum();
        Arc::new(PropKeys { names, quoted, quoted_len })
    }

    fn matches(&self, map: &Map<String, Value>) -> bool {
        self.names.len() == map.len() && self.names.iter().zip(map.keys()).all(|(a, b)| **a == **b)
    }
}

/// One feature's properties: the values' JSON joined by commas, and the shared keys.
#[derive(Debug, Clone)]
pub struct Props {
    keys: Arc<PropKeys>,
    values: Box<str>,
}

impl Props {
    /// The properties of `map`, sharing `like`'s keys when they are the map's (in order);
    /// otherwise new keys, left in `like` for the next feature.
    pub fn from_map(map: &Map<String, Value>, like: &mut Option<Arc<PropKeys>>) -> Props {
        let keys = match like {
            Some(k) if k.matches(map) => k.clone(),
            _ => {
                let k = PropKeys::new(map.keys());
                *like = Some(k.clone());
                k
            }
        };
        let mut values = Vec::with_capacity(16 * map.len());
        for (n, v) in map.values().enumerate() {
            if n > 0 {
                values.push(b',');
            }
            // Serializing a JSON value into a Vec cannot fail.
            let _ = serde_json::to_writer(&mut values, v);
        }
        Props { keys, values: String::from_utf8(values).unwrap_or_default().into_boxed_str() }
    }

    /// Properties already written as `keys`' values joined by commas (every value valid JSON,
    /// one per key).
    pub fn from_values(keys: Arc<PropKeys>, values: String) -> Props {
        Props { keys, values: values.into_boxed_str() }
    }

    /// The keys, to share with the same feature's next properties.
    pub fn keys(&self) -> &Arc<PropKeys> {
        &self.keys
    }

    /// The JSON text of property `name`'s value, if the feature has it.
    pub fn value(&self, name: &str) -> Option<&str> {
        let at = self.keys.names.iter().position(|n| **n == *name)?;
        values(&self.values).nth(at)
    }

    /// Length of the object's JSON text.
    pub fn json_len(&self) -> usize {
        2 + self.keys.quoted_len + self.values.len()
    }

    /// Append the object as compact JSON.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        out.push(b'{');
        for (n, (key, value)) in self.keys.quoted.iter().zip(values(&self.values)).enumerate() {
            if n > 0 {
                out.push(b',');
            }
            out.extend_from_slice(key.as_bytes());
            out.extend_from_slice(value.as_bytes());
        }
        out.push(b'}');
    }

    /// The object as compact JSON.
    pub fn json(&self) -> String {
        let mut out = Vec::with_capacity(self.json_len());
        self.write_json(&mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

/// The values of a comma-joined list of JSON values: split at the commas outside strings,
/// arrays and objects.
fn values(text: &str) -> impl Iterator<Item = &str> {
    let bytes = text.as_bytes();
    let mut start = 0;
    let mut done = text.is_empty();
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
        let mut i = start;
        while i < bytes.len() {
            let b = bytes[i];
            if in_string {
                if escaped {
                    escaped = false;
                } else if b == b'\\' {
                    escaped = true;
                } else if b == b'"' {
                    in_string = false;
                }
            } else {
                match b {
                    b'"' => in_string = true,
                    b'[' | b'{' => depth += 1,
                    b']' | b'}' => depth = depth.saturating_sub(1),
                    b',' if depth == 0 => break,
                    _ => {}
                }
            }
            i += 1;
        }
        let value = &text[start..i];
        if i >= bytes.len() {
            done = true;
        }
        start = i + 1;
        Some(value)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn leaf() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            (-1e9f64..1e9).prop_map(Value::from),
            ".{0,12}".prop_map(Value::from),
            Just(Value::from("a,\"b\",[c]{d}\\")),
        ]
    }

    fn value() -> impl Strategy<Value = Value> {
        leaf().prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                prop::collection::btree_map(".{0,5}", inner, 0..4).prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// Keys and values written back give the object serde_json writes, whatever the values
        /// hold (commas, quotes, brackets and escapes inside strings, nesting).
        #[test]
        fn the_object_is_the_one_serde_json_writes(
            entries in prop::collection::btree_map("[a-z_,\"{]{0,8}", value(), 0..8),
        ) {
            let map: Map<String, Value> = entries.into_iter().collect();
            let mut like = None;
            let props = Props::from_map(&map, &mut like);
            let want = serde_json::to_string(&map).unwrap();
            prop_assert_eq!(props.json(), want.clone());
            prop_assert_eq!(props.json_len(), want.len());
            // The next feature with the same keys shares them.
            for (k, v) in &map {
                let text = serde_json::to_string(v).unwrap();
                prop_assert_eq!(props.value(k), Some(text.as_str()));
            }
            let again = Props::from_map(&map, &mut like);
            prop_assert!(Arc::ptr_eq(again.keys(), props.keys()));
        }
    }

    #[test]
    fn other_keys_get_their_own() {
        let a: Map<String, Value> = serde_json::from_str(r#"{"a":1,"b":"x,y"}"#).unwrap();
        let b: Map<String, Value> = serde_json::from_str(r#"{"a":1}"#).unwrap();
        let mut like = None;
        let pa = Props::from_map(&a, &mut like);
        let pb = Props::from_map(&b, &mut like);
        assert!(!Arc::ptr_eq(pa.keys(), pb.keys()));
        assert_eq!(pa.json(), r#"{"a":1,"b":"x,y"}"#);
        assert_eq!(pb.json(), r#"{"a":1}"#);
        let empty = Props::from_map(&Map::new(), &mut like);
        assert_eq!((empty.json(), empty.json_len()), ("{}".to_string(), 2));
    }
}
