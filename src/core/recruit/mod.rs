//! Who to recruit next: a priority score for every uncovered block, and what a recruiter needs
//! beside it — the nearest active ambassadors ([`nearest`], kept up to date by [`lists`]) and
//! the neighbouring blocks ([`adjacency`]).
//!
//! # The score
//! Each input is normalised to 0..1 over the blocks being ranked (the candidate set), multiplied
//! by its weight, and the products are the *components*; the priority is their sum, so a row's
//! components say why it ranks where it does, and a weight is what the top block on that input
//! adds to its priority.
//!
//! | component | raw input | normalised |
//! |---|---|---|
//! | `residents` | residents living in the block | `residents / max` (0 when every block has none) |
//! | `need` | an indicator where lower is worse, e.g. `school_readiness` | `(max - value) / (max - min)` over the blocks with a value; a block with no data gets 0 (never "as bad as the worst") |
//! | `children` | children in the block from the block data (e.g. `CHILDREN`; population as a proxy where there is no children field) | `children / max`; 0 without data |
//! | `distance` | metres to the nearest active ambassador | `min(d, cap) / max` over the blocks; the cap keeps one remote block from flattening the rest |
//!
//! Counts are divided by their maximum (20 residents is twice 10), the indicator by its range
//! (a readiness score has no meaningful zero). Priorities are rounded to 6 decimals; equal
//! priorities are ordered by block id.

pub mod adjacency;
pub mod lists;
pub mod nearest;

use std::fmt;

use serde::Serialize;

pub use adjacency::Adjacency;
pub use lists::{NearestLists, QueryPoints};
pub use nearest::{AmbassadorIndex, Moves, Neighbour, NeighbourTable};

use super::Attributes;

/// Block attributes read as "children", in order of preference (case-insensitive). The first
/// one any block of the catchment has is used for every block; population fields are a proxy.
pub const CHILDREN_FIELDS: &[&str] =
    &["CHILDREN", "CHILD", "KIDS", "POP_U18", "UNDER18", "POP20", "POP10", "POP", "POPULATION"];

/// Largest weight accepted: anything bigger is a typo, and it keeps sums finite.
pub const MAX_WEIGHT: f64 = 1000.0;

/// How much each normalised input counts. Defaults: residents 1, need 1, children 0.5,
/// distance 0.25.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Weights {
    /// Residents living in the block.
    pub residents: f64,
    /// Need from the indicator (lower value, more need).
    pub need: f64,
    /// Children (or population) from the block data.
    pub children: f64,
    /// Distance to the nearest active ambassador (farther, higher).
    pub distance: f64,
}

impl Default for Weights {
    fn default() -> Self {
        Weights { residents: 1.0, need: 1.0, children: 0.5, distance: 0.25 }
    }
}

/// A weight that cannot be used; the message names it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WeightError {
    /// Not one of [`Weights::NAMES`].
    #[error("unknown weight '{0}'; the weights are residents, need, children and distance")]
    Unknown(String),
    /// Not a finite number in `0..=MAX_WEIGHT`.
    #[error("weight '{name}' = {value}: expected a number from 0 to 1000")]
    OutOfRange {
        /// The weight.
        name: String,
        /// What was given, as written.
        value: String,
    },
    /// Not `name=value` (or `name:value`).
    #[error("'{0}': expected NAME=VALUE, e.g. residents=2 (names: residents, need, children, distance)")]
    Syntax(String),
}

impl Weights {
    /// The weight names, as in flags, files, query parameters and `components`.
    pub const NAMES: [&'static str; 4] = ["residents", "need", "children", "distance"];

    /// Set one weight by name from its text.
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), WeightError> {
        let v: f64 = value
            .trim()
            .parse()
            .map_err(|_| WeightError::OutOfRange { name: name.to_string(), value: value.to_string() })?;
        self.set_number(name, v).map_err(|e| match e {
            WeightError::OutOfRange { name, .. } => WeightError::OutOfRange { name, value: value.to_string() },
            other => other,
        })
    }

    /// Set one weight by name.
    pub fn set_number(&mut self, name: &str, value: f64) -> Result<(), WeightError> {
        let slot = match name.trim() {
            "residents" => &mut self.residents,
            "need" => &mut self.need,
            "children" => &mut self.children,
            "distance" => &mut self.distance,
            other => return Err(WeightError::Unknown(other.to_string())),
        };
        if !(value.is_finite() && (0.0..=MAX_WEIGHT).contains(&value)) {
            return Err(WeightError::OutOfRange { name: name.trim().to_string(), value: value.to_string() });
        }
        *slot = value;
        Ok(())
    }

    /// Apply `name=value` or `name:value` items, e.g. from `--weight` flags or
    /// `weights=residents:2,need:1`.
    pub fn apply<'a>(&mut self, items: impl IntoIterator<Item = &'a str>) -> Result<(), WeightError> {
        for item in items {
            let (name, value) = item.split_once(['=', ':']).ok_or_else(|| WeightError::Syntax(item.to_string()))?;
            self.set(name, value)?;
        }
        Ok(())
    }

    /// Apply a JSON object of weights (`{"residents": 2, "need": 0.5}`), e.g. a `--weights`
    /// file; weights it does not name keep their value.
    pub fn apply_json(&mut self, json: &serde_json::Value) -> Result<(), WeightError> {
        let object = json.as_object().ok_or_else(|| WeightError::Syntax(json.to_string()))?;
        for (name, value) in object {
            let n = value
                .as_f64()
                .ok_or_else(|| WeightError::OutOfRange { name: name.clone(), value: value.to_string() })?;
            self.set_number(name, n)?;
        }
        Ok(())
    }
}

impl fmt::Display for Weights {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "residents={} need={} children={} distance={}",
            self.residents, self.need, self.children, self.distance
        )
    }
}

/// The raw inputs of one block's score.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ScoreInputs {
    /// Residents living in the block.
    pub residents: u64,
    /// The need indicator's value; `None`: no data.
    pub indicator: Option<f64>,
    /// Children (or population) from the block data; `None`: no data.
    pub children: Option<f64>,
    /// Metres to the nearest active ambassador; `None`: there is none.
    pub distance_m: Option<f64>,
}

/// Weighted components of a priority; they sum to it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Components {
    /// From residents.
    pub residents: f64,
    /// From need.
    pub need: f64,
    /// From children.
    pub children: f64,
    /// From distance to the nearest ambassador.
    pub distance: f64,
}

/// One block's score.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Score {
    /// Sum of the components, rounded to 6 decimals.
    pub priority: f64,
    /// Each weighted, normalised input, rounded to 6 decimals.
    pub components: Components,
}

fn round6(v: f64) -> f64 {
    (v * 1e6).round() / 1e6
}

/// Score every block of the candidate set (see the module docs for the normalisation);
/// `distance_cap_m` bounds the distance input. Same order as `inputs`.
pub fn score(inputs: &[ScoreInputs], weights: &Weights, distance_cap_m: f64) -> Vec<Score> {
    let cap = |d: f64| d.min(distance_cap_m).max(0.0);
    let max_residents = inputs.iter().map(|i| i.residents).max().unwrap_or(0) as f64;
    let max_children = inputs.iter().filter_map(|i| i.children).filter(|c| c.is_finite()).fold(0.0, f64::max);
    let max_distance = inputs.iter().filter_map(|i| i.distance_m).map(cap).fold(0.0, f64::max);
    let values = inputs.iter().filter_map(|i| i.indicator).filter(|v| v.is_finite());
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let ratio = |v: f64, max: f64| if max > 0.0 && v.is_finite() { (v / max).clamp(0.0, 1.0) } else { 0.0 };
    inputs
        .iter()
        .map(|i| {
            let need = match i.indicator {
                Some(v) if v.is_finite() && hi > lo => (hi - v) / (hi - lo),
                _ => 0.0,
            };
            let raw = Components {
                residents: weights.residents * ratio(i.residents as f64, max_residents),
                need: weights.need * need,
                children: weights.children * i.children.map_or(0.0, |c| ratio(c.max(0.0), max_children)),
                distance: weights.distance * i.distance_m.map_or(0.0, |d| ratio(cap(d), max_distance)),
            };
            Score {
                priority: round6(raw.residents + raw.need + raw.children + raw.distance),
                components: Components {
                    residents: round6(raw.residents),
                    need: round6(raw.need),
                    children: round6(raw.children),
                    distance: round6(raw.distance),
                },
            }
        })
        .collect()
}

/// The attribute used as "children" for a catchment: the first of [`CHILDREN_FIELDS`] that
/// some block has (matched case-insensitively; the block's own spelling is returned).
pub fn children_field<'a>(attributes: impl IntoIterator<Item = &'a Attributes> + Clone) -> Option<String> {
    CHILDREN_FIELDS.iter().find_map(|want| {
        attributes.clone().into_iter().find_map(|a| {
            a.iter().find(|(k, v)| k.eq_ignore_ascii_case(want) && number(v).is_some()).map(|(k, _)| k.clone())
        })
    })
}

/// A block attribute as a number: a JSON number or numeric text (dbf fields may be either).
pub fn number(v: &serde_json::Value) -> Option<f64> {
    match v {
        serde_json::Value::Number(n) => n.as_f64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .filter(|x: &f64| x.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(residents: u64, indicator: Option<f64>, children: Option<f64>, distance_m: Option<f64>) -> ScoreInputs {
        ScoreInputs { residents, indicator, children, distance_m }
    }

    #[test]
    fn components_are_normalised_and_sum_to_the_priority() {
        let inputs = [
            input(40, Some(50.0), Some(10.0), Some(500.0)),
            input(20, Some(70.0), Some(20.0), Some(5000.0)),
            input(0, None, None, Some(250.0)),
        ];
        let s = score(&inputs, &Weights::default(), 1000.0);
        assert_eq!(s[0].components, Components { residents: 1.0, need: 1.0, children: 0.25, distance: 0.125 });
        assert_eq!(s[1].components, Components { residents: 0.5, need: 0.0, children: 0.5, distance: 0.25 });
        assert_eq!(s[2].components, Components { residents: 0.0, need: 0.0, children: 0.0, distance: 0.0625 });
        for x in &s {
            let c = x.components;
            approx::assert_abs_diff_eq!(x.priority, c.residents + c.need + c.children + c.distance, epsilon = 1e-9);
        }
    }

    #[test]
    fn degenerate_sets_score_zero() {
        let s = score(&[input(0, Some(5.0), None, None), input(0, Some(5.0), None, None)], &Weights::default(), 1e3);
        assert!(s.iter().all(|x| x.priority == 0.0));
        assert!(score(&[], &Weights::default(), 1e3).is_empty());
    }

    #[test]
    fn weights_parse_and_refuse_precisely() {
        let mut w = Weights::default();
        w.apply(["residents=2", "need:0.5", " distance = 0 "]).unwrap();
        assert_eq!(w, Weights { residents: 2.0, need: 0.5, children: 0.5, distance: 0.0 });
        w.apply_json(&serde_json::json!({"children": 3})).unwrap();
        assert_eq!(w.children, 3.0);
        let msg = |r: Result<(), WeightError>| r.unwrap_err().to_string();
        assert!(msg(w.apply(["people=1"])).contains("unknown weight 'people'"));
        assert!(msg(w.apply(["need=-1"])).contains("weight 'need' = -1"));
        assert!(msg(w.apply(["need=NaN"])).contains("from 0 to 1000"));
        assert!(msg(w.apply(["need=inf"])).contains("from 0 to 1000"));
        assert!(msg(w.apply(["need"])).contains("expected NAME=VALUE"));
        assert!(msg(w.apply_json(&serde_json::json!({"need": "high"}))).contains("weight 'need'"));
        assert!(msg(w.apply_json(&serde_json::json!([1]))).contains("expected NAME=VALUE"));
    }

    #[test]
    fn children_field_prefers_children_then_population() {
        let a = |pairs: &[(&str, serde_json::Value)]| -> Attributes {
            pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
        };
        let blocks = [a(&[("POP20", 10.into())]), a(&[("children", "4".into()), ("POP20", 3.into())])];
        assert_eq!(children_field(&blocks).as_deref(), Some("children"));
        assert_eq!(children_field(&blocks[..1]).as_deref(), Some("POP20"));
        assert_eq!(children_field(&[a(&[("NAME", "x".into())])]), None);
        assert_eq!(number(&"12".into()), Some(12.0));
        assert_eq!(number(&serde_json::Value::Null), None);
    }
}
