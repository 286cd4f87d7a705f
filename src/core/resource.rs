//! Community resources: partner organisations, schools, clinics, food banks, shelters.

use super::Attributes;

/// A point resource with its category and public contact fields.
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    /// Stable id (from the source, or derived from the content).
    pub id: String,
    /// Organisation or site name.
    pub name: Option<String>,
    /// Category such as `school`, `clinic`, `food_bank`, `shelter`, `partner`.
    pub category: String,
    /// Longitude, WGS84 degrees.
    pub lon: f64,
    /// Latitude, WGS84 degrees.
    pub lat: f64,
    /// Street address.
    pub address: Option<String>,
    /// Public phone number of the organisation.
    pub phone: Option<String>,
    /// Public email of the organisation.
    pub email: Option<String>,
    /// Web site.
    pub url: Option<String>,
    /// Other source fields.
    pub attributes: Attributes,
    /// Block containing the point, `None` outside the catchment.
    pub block_id: Option<String>,
}

/// Attribute holding a resource's opening hours, as imported (free text).
pub const HOURS: &str = "hours";
/// Attribute holding the languages a resource serves in, as imported (free text).
pub const LANGUAGES: &str = "languages";
/// Attribute holding a resource's capacity: beds, seats or slots (a non-negative number). The
/// access analysis counts a resource without one as 1.
pub const CAPACITY: &str = "capacity";

/// Source field names read as each of the fields above (first match, case-insensitive).
const ALIASES: &[(&str, &[&str])] = &[
    (HOURS, &["hours", "opening_hours", "hours_of_operation", "schedule"]),
    (LANGUAGES, &["languages", "language", "languages_spoken"]),
    (CAPACITY, &["capacity", "beds", "seats", "slots"]),
];

impl Resource {
    /// Opening hours, as imported.
    pub fn hours(&self) -> Option<&str> {
        self.attributes.get(HOURS).and_then(|v| v.as_str())
    }

    /// Languages served, as imported.
    pub fn languages(&self) -> Option<&str> {
        self.attributes.get(LANGUAGES).and_then(|v| v.as_str())
    }

    /// Capacity (beds, seats, slots), when the source gave one.
    pub fn capacity(&self) -> Option<f64> {
        self.attributes.get(CAPACITY).and_then(|v| v.as_f64())
    }
}

/// Put the optional access fields of imported `attributes` under their names ([`HOURS`],
/// [`LANGUAGES`], [`CAPACITY`]): the first source field matching one of their aliases is
/// renamed; hours and languages become trimmed text (a list of languages is joined with
/// ", "), capacity a number. Empty values are dropped. Returns the source field and the
/// reason when a capacity is not a non-negative number, or hours or languages break the text
/// rule (longer than [`super::text::MAX_TEXT`] characters, control characters): the record
/// should be rejected.
pub fn normalise_access_fields(attributes: &mut super::Attributes) -> Result<(), (String, String)> {
    use serde_json::Value;
    let quote = |s: &str| super::text::clip(s, 200);
    for (name, aliases) in ALIASES {
        let Some(key) =
            aliases.iter().find_map(|a| attributes.keys().find(|k| k.trim().eq_ignore_ascii_case(a)).cloned())
        else {
            continue;
        };
        let Some(value) = attributes.remove(&key) else { continue };
        let value = if *name == CAPACITY {
            let number = match &value {
                Value::Null => continue,
                Value::String(s) if s.trim().is_empty() => continue,
                Value::Number(n) => n.as_f64(),
                Value::String(s) => s.trim().parse::<f64>().ok(),
                _ => None,
            };
            match number.filter(|x| x.is_finite() && *x >= 0.0).and_then(serde_json::Number::from_f64) {
                // Whole numbers stay integers (`12`, not `12.0`) in every output.
                Some(n) => match n.as_f64() {
                    Some(x) if x.fract() == 0.0 && x < 9e15 => Value::from(x as u64),
                    _ => Value::Number(n),
                },
                None => {
                    let shown = match &value {
                        Value::String(s) => format!("'{}'", quote(s)),
                        other => quote(&other.to_string()),
                    };
                    return Err((
                        key,
                        format!("capacity {shown} is not a number of at least 0 (beds, seats or slots)"),
                    ));
                }
            }
        } else {
            let text = match value {
                Value::Null => continue,
                Value::String(s) => s.trim().to_string(),
                Value::Array(items) => items
                    .iter()
                    .filter_map(|v| match v {
                        Value::String(s) => Some(s.trim().to_string()),
                        Value::Null => None,
                        other => Some(other.to_string()),
                    })
                    .filter(|s| !s.is_empty())
                    .collect::<Vec<_>>()
                    .join(", "),
                other => other.to_string(),
            };
            // The text rule of every other field ([`super::text::field_text`]).
            match super::text::field_text(&text) {
                Ok(Some(text)) => Value::String(text.to_string()),
                Ok(None) => continue,
                Err(e) => return Err((key, e.to_string())),
            }
        };
        attributes.insert((*name).to_string(), value);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn attrs(v: serde_json::Value) -> crate::core::Attributes {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn access_fields_are_renamed_and_typed() {
        let mut a = attrs(json!({"Hours": " Mon-Fri 9-5 ", "Language": ["English", "Spanish"], "beds": "12", "x": 1}));
        normalise_access_fields(&mut a).unwrap();
        assert_eq!(a, attrs(json!({"hours": "Mon-Fri 9-5", "languages": "English, Spanish", "capacity": 12, "x": 1})));
        let mut a = attrs(json!({"capacity": 2.5, "hours": ""}));
        normalise_access_fields(&mut a).unwrap();
        assert_eq!(a, attrs(json!({"capacity": 2.5})));
    }

    #[test]
    fn a_capacity_that_is_not_a_count_is_refused() {
        for bad in [json!("many"), json!(-1), json!("NaN"), json!(true), json!("inf")] {
            let mut a = attrs(json!({ "capacity": bad }));
            let (field, reason) = normalise_access_fields(&mut a).unwrap_err();
            assert_eq!(field, "capacity");
            assert!(reason.contains("not a number"), "{reason}");
        }
    }
}
