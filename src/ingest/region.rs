//! Picking a region out of a bigger polygon file (a county's tracts, a state's blocks) while it
//! is read: `--where FIELD=VALUE` attribute tests and `--within AREA` (the feature's interior
//! point, in WGS84, lies inside the area's polygons), with per-filter counts for the report.
//!
//! Filters run before validation, so invalid features outside the region do not refuse a file.
//! Attribute tests run first (they are cheap), then the area test; each filter counts only the
//! features that reached it, so the counts add up to the features dropped.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use geo::{BoundingRect, InteriorPoint, MultiPolygon};
use serde::Serialize;
use serde_json::Value;

use super::blocks::{find_field, read_polygon_file, to_wgs84};
use super::source::{LonLatScan, SourceFile, resolve_crs};
use super::{IngestError, source::value_to_text};
use crate::core::{Attributes, BlockIndex};

/// One `FIELD=VALUE` attribute test, as typed by the user.
///
/// The field is matched against the file's attribute names ignoring case; the value is compared
/// with [`value_matches`]. Several tests on different fields must all hold (AND); several tests
/// on the same field are alternatives (OR): `--where spa=7 --where spa=8`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WhereClause {
    /// The attribute name as given (trimmed).
    pub field: String,
    /// The wanted value as given (trimmed); empty matches a missing or empty attribute.
    pub value: String,
}

/// Why a `FIELD=VALUE` text is not a filter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WhereError {
    /// There is no `=` in it.
    #[error("'{0}' is not FIELD=VALUE (e.g. spa=7)")]
    NoEquals(String),
    /// Nothing before the `=`.
    #[error("'{0}' has no field name before '=' (e.g. spa=7)")]
    NoField(String),
}

impl FromStr for WhereClause {
    type Err = WhereError;

    /// Splits at the first `=`, so values may contain `=`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (field, value) = s.split_once('=').ok_or_else(|| WhereError::NoEquals(s.to_string()))?;
        let field = field.trim();
        if field.is_empty() {
            return Err(WhereError::NoField(s.to_string()));
        }
        Ok(WhereClause { field: field.to_string(), value: value.trim().to_string() })
    }
}

impl fmt::Display for WhereClause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.field, self.value)
    }
}

/// Which features of a polygon file to keep. The default keeps every feature.
#[derive(Debug, Clone, Default)]
pub struct FeatureFilter {
    /// Attribute tests: AND across fields, OR within one field.
    pub wheres: Vec<WhereClause>,
    /// A polygon file (shapefile, zipped shapefile or GeoJSON, any CRS it declares); features
    /// whose interior point is not inside (or on the edge of) one of its polygons are dropped.
    pub within: Option<PathBuf>,
}

impl FeatureFilter {
    /// True when the filter keeps everything.
    pub fn is_empty(&self) -> bool {
        self.wheres.is_empty() && self.within.is_none()
    }
}

/// How many features one filter dropped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FilterCount {
    /// The filter, e.g. `where spa=7` or `within hoods.geojson`.
    pub filter: String,
    /// Features that reached this filter and were dropped by it.
    pub dropped: usize,
}

/// What the filters did to a file: `kept N of M features (where spa=7: dropped K; ...)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FilterReport {
    /// Features in the file.
    pub features: usize,
    /// Features that passed every filter (they are then validated as usual).
    pub kept: usize,
    /// One entry per filter, in the order they were applied.
    pub filters: Vec<FilterCount>,
}

impl fmt::Display for FilterReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "kept {} of {} features (", self.kept, self.features)?;
        for (i, c) in self.filters.iter().enumerate() {
            let sep = if i == 0 { "" } else { "; " };
            write!(f, "{sep}{}: dropped {}", c.filter, c.dropped)?;
        }
        write!(f, ")")
    }
}

/// Whether attribute `value` (absent: `None`) matches the wanted text. Both sides are trimmed;
/// when both parse as finite numbers they compare as numbers (`7` matches a DBF `7.0`),
/// otherwise as text, exactly (case matters). An empty `wanted` matches a missing, null or
/// empty attribute.
pub fn value_matches(value: Option<&Value>, wanted: &str) -> bool {
    let wanted = wanted.trim();
    let text = match value {
        None => None,
        Some(Value::Bool(b)) => Some(b.to_string()),
        Some(v @ (Value::Array(_) | Value::Object(_))) => Some(v.to_string()),
        Some(v) => value_to_text(v).ok().flatten(),
    };
    let text = text.unwrap_or_default();
    match (number(&text), number(wanted)) {
        (Some(a), Some(b)) => a == b,
        (None, Some(b)) => text == wanted || label_number(&text) == Some(b),
        _ => text == wanted,
    }
}

/// The number of a coded label such as LA County's `SPA 7 - East` or `District 5`: words, a
/// number, then nothing or ` - NAME`. So `--where spa=7` keeps service planning area 7, as a
/// coalition would write it.
fn label_number(text: &str) -> Option<f64> {
    let start = text.find(|c: char| c.is_ascii_digit())?;
    let (words, rest) = text.split_at(start);
    if words.trim().is_empty() || !words.chars().all(|c| c.is_alphabetic() || c == ' ' || c == '.') {
        return None;
    }
    let end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
    let (digits, tail) = rest.split_at(end);
    let tail = tail.trim_start();
    (tail.is_empty() || tail.starts_with('-')).then(|| number(digits)).flatten()
}

fn number(s: &str) -> Option<f64> {
    s.parse::<f64>().ok().filter(|n| n.is_finite())
}

/// Distinct values remembered per field, for the message when nothing matched.
const SHOWN_VALUES: usize = 20;

/// The attribute tests on one field of the file.
struct FieldTest {
    /// The attribute name in the file.
    field: String,
    /// `where spa=7` or `where spa=7 or spa=8`.
    label: String,
    values: Vec<String>,
    /// Features each value matched.
    hits: Vec<usize>,
    /// Some of the values the field has, for the message when nothing matched.
    seen: BTreeSet<String>,
    more_seen: bool,
    dropped: usize,
}

impl FieldTest {
    fn keeps(&mut self, properties: &Attributes) -> bool {
        let value = properties.get(&self.field);
        let shown = value.map(display_value).unwrap_or_default();
        if self.seen.len() < SHOWN_VALUES {
            self.seen.insert(shown);
        } else if !self.more_seen && !self.seen.contains(&shown) {
            self.more_seen = true;
        }
        match self.values.iter().position(|v| value_matches(value, v)) {
            Some(i) => {
                self.hits[i] += 1;
                true
            }
            None => {
                self.dropped += 1;
                false
            }
        }
    }
}

impl FieldTest {
    /// ` (did you mean spa=SPA 7 - East?)` for each value that matched nothing but is a word of
    /// exactly one of the values seen (`spa=7` on a file that says `SPA 7 - East`).
    fn suggestions(&self) -> String {
        let mut out = String::new();
        for (value, _) in self.values.iter().zip(&self.hits).filter(|(v, hits)| **hits == 0 && !v.is_empty()) {
            let mut words = self
                .seen
                .iter()
                .filter(|seen| seen.split(|c: char| !c.is_alphanumeric()).any(|w| w.eq_ignore_ascii_case(value)));
            if let (Some(only), None) = (words.next(), words.next()) {
                out.push_str(&format!(" (did you mean {}={only}?)", self.field));
            }
        }
        out
    }
}

fn display_value(v: &Value) -> String {
    match v {
        Value::Bool(b) => b.to_string(),
        Value::Array(_) | Value::Object(_) => v.to_string(),
        other => value_to_text(other).ok().flatten().unwrap_or_default(),
    }
}

/// The polygons of a `--within` file, in WGS84, ready for point tests.
struct Region {
    label: String,
    index: BlockIndex,
    dropped: usize,
}

/// A [`FeatureFilter`] resolved against one file's fields, counting as it goes.
pub(crate) struct AppliedFilter {
    tests: Vec<FieldTest>,
    region: Option<Region>,
    features: usize,
}

impl AppliedFilter {
    /// Resolve `filter`'s fields against `fields` (the file's attribute names) and load its
    /// region. An unknown field is an error listing the fields; warnings about the region file
    /// are added to `warnings`.
    pub(crate) fn new(
        path: &Path,
        filter: &FeatureFilter,
        fields: &[String],
        warnings: &mut Vec<String>,
    ) -> Result<AppliedFilter, IngestError> {
        let mut tests: Vec<FieldTest> = Vec::new();
        for clause in &filter.wheres {
            let field = find_field(fields, &clause.field).ok_or_else(|| IngestError::UnknownField {
                path: path.to_path_buf(),
                field: clause.field.clone(),
                fields: fields.to_vec(),
            })?;
            match tests.iter_mut().find(|t| t.field == field) {
                Some(t) => {
                    t.label.push_str(&format!(" or {clause}"));
                    t.values.push(clause.value.clone());
                    t.hits.push(0);
                }
                None => tests.push(FieldTest {
                    field,
                    label: format!("where {clause}"),
                    values: vec![clause.value.clone()],
                    hits: vec![0],
                    seen: BTreeSet::new(),
                    more_seen: false,
                    dropped: 0,
                }),
            }
        }
        let region = filter.within.as_deref().map(|p| read_region(p, warnings)).transpose()?;
        Ok(AppliedFilter { tests, region, features: 0 })
    }

    /// Count a feature and apply the attribute tests to it.
    pub(crate) fn keeps_attributes(&mut self, properties: &Attributes) -> bool {
        self.features += 1;
        self.tests.iter_mut().all(|t| t.keeps(properties))
    }

    /// Apply the area test to a feature that passed the attribute tests, by the interior point
    /// of its WGS84 geometry. A geometry without one (empty) is kept, for validation to reject.
    pub(crate) fn keeps_geometry(&mut self, wgs84: &MultiPolygon<f64>) -> bool {
        let Some(region) = &mut self.region else {
            return true;
        };
        let Some(bbox) = wgs84.bounding_rect() else {
            return true;
        };
        // The interior point is inside the feature's envelope: most features of a county file
        // are dropped here without computing it.
        let near = !region.index.ranks_in_envelope([bbox.min().x, bbox.min().y, bbox.max().x, bbox.max().y]).is_empty();
        let keep = near && wgs84.interior_point().is_none_or(|p| region.index.locate_rank(p.x(), p.y()).is_some());
        region.dropped += usize::from(!keep);
        keep
    }

    /// The counts, or `None` when there was no filter; [`IngestError::NothingKept`] when the
    /// filters dropped every feature of a non-empty file.
    pub(crate) fn finish(self, path: &Path) -> Result<Option<FilterReport>, IngestError> {
        if self.tests.is_empty() && self.region.is_none() {
            return Ok(None);
        }
        let mut filters: Vec<FilterCount> =
            self.tests.iter().map(|t| FilterCount { filter: t.label.clone(), dropped: t.dropped }).collect();
        if let Some(r) = &self.region {
            filters.push(FilterCount { filter: r.label.clone(), dropped: r.dropped });
        }
        let dropped: usize = filters.iter().map(|c| c.dropped).sum();
        let report = FilterReport { features: self.features, kept: self.features - dropped, filters };
        if report.kept == 0 && report.features > 0 {
            let values = self
                .tests
                .iter()
                .map(|t| {
                    let list: Vec<&str> =
                        t.seen.iter().map(|v| if v.is_empty() { "(empty)" } else { v.as_str() }).collect();
                    let more = if t.more_seen { ", ..." } else { "" };
                    format!("{} has values like: {}{more}{}", t.field, list.join(", "), t.suggestions())
                })
                .collect();
            return Err(IngestError::NothingKept { path: path.to_path_buf(), report, values });
        }
        Ok(Some(report))
    }
}

/// Read a `--within` file: every feature must be a polygon or multipolygon; validity is not
/// required (a region is only used for point-in-polygon tests).
fn read_region(path: &Path, warnings: &mut Vec<String>) -> Result<Region, IngestError> {
    let SourceFile { features, crs: declared, warnings: own, .. } =
        read_polygon_file(path, "a region", Default::default())?;
    let scan = LonLatScan::of(features.iter().flat_map(|f| f.geometry.coords()));
    let mut notes = own;
    let crs = resolve_crs(path, declared, None, &scan, &mut notes)?;
    let mut polygons = Vec::with_capacity(features.len());
    for f in features {
        let polygon = to_wgs84(f.geometry, &crs).map_err(|reason| IngestError::Format {
            path: path.to_path_buf(),
            reason: format!("feature {} cannot be used as a region: {reason}", f.number),
        })?;
        polygons.push((f.number.to_string(), polygon));
    }
    if polygons.is_empty() {
        return Err(IngestError::Format {
            path: path.to_path_buf(),
            reason: "no polygon to keep features within".into(),
        });
    }
    let name = path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
    warnings.extend(notes.into_iter().map(|w| format!("{name}: {w}")));
    let index = BlockIndex::from_parts(polygons.iter().map(|(id, p)| (id.as_str(), p)));
    Ok(Region { label: format!("within {name}"), index, dropped: 0 })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    proptest! {
        /// Issue 12: any `--where` text is a clause or a short refusal, never a panic.
        #[test]
        fn any_where_text_is_a_clause_or_a_short_refusal(text in prop_oneof!["[a-z_ ]{0,8}=?[0-9a-z ,]{0,12}", ".{0,300}"]) {
            if let Err(e) = text.parse::<WhereClause>() {
                let m = e.to_string();
                prop_assert!(!m.is_empty() && m.len() < 600, "{} bytes", m.len());
            }
        }
    }

    #[test]
    fn where_clauses_parse() {
        let w: WhereClause = "spa=7".parse().unwrap();
        assert_eq!(w, WhereClause { field: "spa".into(), value: "7".into() });
        let w: WhereClause = " csa = City of Los Angeles ".parse().unwrap();
        assert_eq!(w, WhereClause { field: "csa".into(), value: "City of Los Angeles".into() });
        let w: WhereClause = "expr=a=b".parse().unwrap();
        assert_eq!(w, WhereClause { field: "expr".into(), value: "a=b".into() });
        let w: WhereClause = "name=".parse().unwrap();
        assert_eq!(w.value, "");
        assert_eq!("spa".parse::<WhereClause>(), Err(WhereError::NoEquals("spa".into())));
        assert_eq!(" =7".parse::<WhereClause>(), Err(WhereError::NoField(" =7".into())));
        assert!(WhereError::NoEquals("spa".into()).to_string().contains("FIELD=VALUE"));
    }

    #[test]
    fn numbers_match_coded_labels() {
        for (text, wanted, hit) in [
            ("SPA 7 - East", "7", true),
            ("SPA 7 - East", "7.0", true),
            ("SPA 7 - East", "8", false),
            ("SPA 17 - East", "7", false),
            ("District 5", "5", true),
            ("District 5", "District 5", true),
            ("Route 66 Diner", "66", false),
            ("7 Eleven", "7", false),
            ("A-7", "7", false),
        ] {
            assert_eq!(value_matches(Some(&json!(text)), wanted), hit, "{text} = {wanted}");
        }
    }

    #[test]
    fn values_match_as_numbers_when_both_are_numbers() {
        let cases = [
            (json!(7), "7", true),
            (json!(7.0), "7", true),
            (json!("7"), "7.0", true),
            (json!(" 7 "), "7", true),
            (json!("007"), "7", true),
            (json!(7.5), "7", false),
            (json!(8), "7", false),
            (json!("SPA 7 - East"), "7", true),
            (json!("SPA 7 - East"), " SPA 7 - East ", true),
            (json!("East"), "east", false),
            (json!(true), "true", true),
            (json!(""), "", true),
            (Value::Null, "", true),
            (Value::Null, "0", false),
            (json!("nan"), "nan", true),
            (json!("inf"), "infinity", false),
            (json!(1e3), "1000", true),
        ];
        for (value, wanted, expected) in cases {
            assert_eq!(value_matches(Some(&value), wanted), expected, "{value} vs {wanted:?}");
        }
        assert!(value_matches(None, ""));
        assert!(!value_matches(None, "7"));
    }

    fn props(pairs: &[(&str, Value)]) -> Attributes {
        pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
    }

    #[test]
    fn fields_are_anded_and_values_of_one_field_ored() {
        let fields: Vec<String> = ["SPA", "CSA"].iter().map(|s| s.to_string()).collect();
        let filter = FeatureFilter {
            wheres: ["spa=7", "Spa=8", "csa=Bell"].iter().map(|s| s.parse().unwrap()).collect(),
            within: None,
        };
        let mut applied = AppliedFilter::new(Path::new("t.shp"), &filter, &fields, &mut Vec::new()).unwrap();
        let features = [
            (json!(7.0), "Bell", true),
            (json!(8), "Bell", true),
            (json!(9), "Bell", false),
            (json!(7), "Commerce", false),
        ];
        for (spa, csa, expected) in features {
            let p = props(&[("SPA", spa.clone()), ("CSA", json!(csa))]);
            assert_eq!(applied.keeps_attributes(&p), expected, "{spa} {csa}");
        }
        let report = applied.finish(Path::new("t.shp")).unwrap().unwrap();
        assert_eq!(
            report.to_string(),
            "kept 2 of 4 features (where spa=7 or Spa=8: dropped 1; where csa=Bell: dropped 1)"
        );
    }

    #[test]
    fn unknown_fields_and_empty_results_are_errors() {
        let fields = vec!["tract".to_string(), "spa".to_string()];
        let filter = FeatureFilter { wheres: vec!["county=37".parse().unwrap()], within: None };
        let err = AppliedFilter::new(Path::new("t.shp"), &filter, &fields, &mut Vec::new()).err().unwrap();
        let msg = err.to_string();
        assert!(matches!(err, IngestError::UnknownField { .. }));
        assert!(msg.contains("'county'") && msg.contains("tract, spa"), "{msg}");

        let filter = FeatureFilter { wheres: vec!["spa=East".parse().unwrap()], within: None };
        let mut applied = AppliedFilter::new(Path::new("t.shp"), &filter, &fields, &mut Vec::new()).unwrap();
        for spa in ["SPA 4 - Metro", "SPA 7 - East"] {
            assert!(!applied.keeps_attributes(&props(&[("spa", json!(spa))])));
        }
        let err = applied.finish(Path::new("t.shp")).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("kept 0 of 2 features (where spa=East: dropped 2)"), "{msg}");
        assert!(msg.contains("SPA 4 - Metro, SPA 7 - East (did you mean spa=SPA 7 - East?)"), "{msg}");

        let none = AppliedFilter::new(Path::new("t.shp"), &FeatureFilter::default(), &fields, &mut Vec::new());
        assert_eq!(none.unwrap().finish(Path::new("t.shp")).unwrap(), None);
    }
}
