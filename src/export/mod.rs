//! Exports of the public layers: RFC 7946 GeoJSON (WGS84, exterior rings counter-clockwise,
//! holes clockwise, at most 7 decimals, string ids) and CSV here; GeoPackage, FlatGeobuf and
//! zipped shapefiles in [`download`] and its writers. Public layers carry per-block counts
//! only, never people.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;

use geo::orient::{Direction, Orient};
use geo::{LineString, MultiPolygon, Polygon};
use serde_json::{Map, Value, json};

use crate::core::{Block, BlockCoverage, IndicatorValue, Resource, resource};

pub mod download;
pub mod fgb;
pub mod gpkg;
pub mod shp;
pub mod tiles;

pub use download::{DownloadFormat, ExportError, OutputCrs, Srs, write_download};

/// Round to 7 decimals (~1 cm), the precision RFC 7946 recommends as plenty.
pub fn round7(v: f64) -> f64 {
    (v * 1e7).round() / 1e7
}

/// A ring's positions, each vertex through `at`: consecutive repeats (after `at` rounds) dropped,
/// the ring closed.
fn ring_positions<E>(
    ring: &LineString<f64>,
    at: &mut impl FnMut(f64, f64) -> Result<[f64; 2], E>,
) -> Result<Vec<[f64; 2]>, E> {
    let mut out: Vec<[f64; 2]> = Vec::with_capacity(ring.0.len() + 1);
    visit_ring_positions(ring, at, |p| out.push(p))?;
    Ok(out)
}

/// [`ring_positions`] one by one, to `emit`, without collecting them.
fn visit_ring_positions<E>(
    ring: &LineString<f64>,
    at: &mut impl FnMut(f64, f64) -> Result<[f64; 2], E>,
    mut emit: impl FnMut([f64; 2]),
) -> Result<(), E> {
    let (mut first, mut last): (Option<[f64; 2]>, Option<[f64; 2]>) = (None, None);
    for c in &ring.0 {
        let p = at(c.x, c.y)?;
        if last != Some(p) {
            emit(p);
            first.get_or_insert(p);
            last = Some(p);
        }
    }
    if let (Some(f), Some(l)) = (first, last)
        && f != l
    {
        emit(f);
    }
    Ok(())
}

/// The `coordinates` of a lon/lat MultiPolygon as RFC 7946 lays them out — exterior rings
/// counter-clockwise and holes clockwise (in lon/lat), rings closed, consecutive repeats
/// dropped — with each vertex written by `at` (lon, lat → the served pair, rounded as served).
/// [`multipolygon_json`] is this with CRS84 at 1e-7°; a reprojection keeps the lon/lat vertex
/// order, so a ring runs the same way round whatever the output's axis order.
pub fn multipolygon_positions<E>(
    mp: &MultiPolygon<f64>,
    mut at: impl FnMut(f64, f64) -> Result<[f64; 2], E>,
) -> Result<Vec<Vec<Vec<[f64; 2]>>>, E> {
    let oriented = mp.orient(Direction::Default);
    oriented
        .0
        .iter()
        .map(|p: &Polygon<f64>| {
            std::iter::once(p.exterior()).chain(p.interiors()).map(|r| ring_positions(r, &mut at)).collect()
        })
        .collect()
}

/// A MultiPolygon as an RFC 7946 geometry object.
pub fn multipolygon_json(mp: &MultiPolygon<f64>) -> Value {
    let coords = multipolygon_positions(mp, |x, y| Ok::<_, std::convert::Infallible>([round7(x), round7(y)]))
        .unwrap_or_else(|never| match never {});
    json!({ "type": "MultiPolygon", "coordinates": coords })
}

/// Append [`multipolygon_json`] of `mp` as compact JSON — the same bytes as serializing that
/// value — without building it. `mp` must be oriented already (`Orient::orient` with
/// `Direction::Default`): served layers keep their polygons so, and write their GeoJSON per
/// request instead of keeping a county's ~37 MB of it.
pub fn write_oriented_multipolygon_json(mp: &MultiPolygon<f64>, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"coordinates\":[");
    for (i, polygon) in mp.0.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.push(b'[');
        for (j, ring) in std::iter::once(polygon.exterior()).chain(polygon.interiors()).enumerate() {
            if j > 0 {
                out.push(b',');
            }
            out.push(b'[');
            let mut comma = false;
            let round = &mut |x: f64, y: f64| Ok::<_, std::convert::Infallible>([round7(x), round7(y)]);
            let written = visit_ring_positions(ring, round, |p| {
                write_position(out, p, std::mem::replace(&mut comma, true));
            });
            written.unwrap_or_else(|never| match never {});
            out.push(b']');
        }
        out.push(b']');
    }
    out.extend_from_slice(b"],\"type\":\"MultiPolygon\"}");
}

/// `[x,y]` as serde_json writes it, after a comma unless first.
fn write_position(out: &mut Vec<u8>, p: [f64; 2], comma: bool) {
    // Writing numbers into a Vec cannot fail.
    if comma {
        out.push(b',');
    }
    out.push(b'[');
    let _ = serde_json::to_writer(&mut *out, &p[0]);
    out.push(b',');
    let _ = serde_json::to_writer(&mut *out, &p[1]);
    out.push(b']');
}

/// Append [`point_json`] as compact JSON, the same bytes as serializing it.
pub fn write_point_json(lon: f64, lat: f64, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"coordinates\":[");
    let _ = serde_json::to_writer(&mut *out, &round7(lon));
    out.push(b',');
    let _ = serde_json::to_writer(&mut *out, &round7(lat));
    out.extend_from_slice(b"],\"type\":\"Point\"}");
}

/// A point as an RFC 7946 geometry object.
pub fn point_json(lon: f64, lat: f64) -> Value {
    json!({ "type": "Point", "coordinates": [round7(lon), round7(lat)] })
}

/// Streams a FeatureCollection: header, features, footer.
pub struct FeatureWriter<W: Write> {
    out: W,
    first: bool,
}

impl<W: Write> FeatureWriter<W> {
    /// Start a collection.
    pub fn new(mut out: W) -> std::io::Result<Self> {
        out.write_all(b"{\"type\":\"FeatureCollection\",\"features\":[")?;
        Ok(FeatureWriter { out, first: true })
    }

    /// Write one feature with a string id.
    pub fn feature(&mut self, id: &str, geometry: Value, properties: Map<String, Value>) -> std::io::Result<()> {
        if !self.first {
            self.out.write_all(b",\n")?;
        } else {
            self.out.write_all(b"\n")?;
        }
        self.first = false;
        let f = json!({ "type": "Feature", "id": id, "geometry": geometry, "properties": properties });
        serde_json::to_writer(&mut self.out, &f)?;
        Ok(())
    }

    /// Close the collection.
    pub fn finish(mut self) -> std::io::Result<W> {
        self.out.write_all(b"\n]}\n")?;
        self.out.flush()?;
        Ok(self.out)
    }
}

/// Latest value per (block, indicator): `block → indicator → (date, value)`.
pub fn latest_indicators(values: &[IndicatorValue]) -> HashMap<&str, BTreeMap<&str, (Option<&str>, f64)>> {
    let mut out: HashMap<&str, BTreeMap<&str, (Option<&str>, f64)>> = HashMap::new();
    for v in values {
        let slot = out.entry(v.block_id.as_str()).or_default();
        let newer = slot.get(v.indicator.as_str()).is_none_or(|(d, _)| v.date.as_deref() >= *d);
        if newer {
            slot.insert(v.indicator.as_str(), (v.date.as_deref(), v.value));
        }
    }
    out
}

/// Properties of a block in the public layer: source attributes, then counts and indicators.
pub fn block_properties(
    block: &Block,
    coverage: Option<&BlockCoverage>,
    target: u32,
    indicators: Option<&BTreeMap<&str, (Option<&str>, f64)>>,
) -> Map<String, Value> {
    let mut p = block.attributes.clone();
    p.insert("block_id".into(), block.id.clone().into());
    p.insert("name".into(), block.name.clone().map_or(Value::Null, Value::from));
    p.insert("residents".into(), coverage.map_or(0, |c| c.residents).into());
    p.insert("ambassadors".into(), coverage.map_or(0, |c| c.ambassadors).into());
    p.insert("covered".into(), coverage.is_some_and(|c| c.covered).into());
    p.insert("target".into(), target.into());
    if let Some(ind) = indicators {
        for (name, (_, value)) in ind {
            p.insert((*name).to_string(), json_number(*value));
        }
    }
    p
}

/// A JSON number, or `null` for NaN/infinity (which JSON cannot carry).
pub fn json_number(v: f64) -> Value {
    serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number)
}

/// Blocks with coverage and indicator values as GeoJSON.
pub fn write_blocks_geojson<W: Write>(
    out: W,
    blocks: &[Block],
    coverage: &[BlockCoverage],
    target: u32,
    indicators: &[IndicatorValue],
) -> std::io::Result<W> {
    let by_id: HashMap<&str, &BlockCoverage> = coverage.iter().map(|c| (c.block_id.as_str(), c)).collect();
    let latest = latest_indicators(indicators);
    let mut w = FeatureWriter::new(out)?;
    for b in blocks {
        let props = block_properties(b, by_id.get(b.id.as_str()).copied(), target, latest.get(b.id.as_str()));
        w.feature(&b.id, multipolygon_json(&b.geometry), props)?;
    }
    w.finish()
}

/// Blocks as CSV: counts, an interior point and one column per indicator.
pub fn write_blocks_csv<W: Write>(
    out: W,
    blocks: &[Block],
    coverage: &[BlockCoverage],
    target: u32,
    indicators: &[IndicatorValue],
) -> csv::Result<W> {
    let by_id: HashMap<&str, &BlockCoverage> = coverage.iter().map(|c| (c.block_id.as_str(), c)).collect();
    let latest = latest_indicators(indicators);
    let mut names: Vec<&str> = latest.values().flat_map(|m| m.keys().copied()).collect();
    names.sort_unstable();
    names.dedup();
    let mut w = csv::Writer::from_writer(out);
    let mut header = vec!["block_id", "name", "residents", "ambassadors", "covered", "target", "lon", "lat"];
    header.extend(names.iter().copied());
    w.write_record(&header)?;
    for b in blocks {
        let c = by_id.get(b.id.as_str());
        let (lon, lat) = b
            .interior_point()
            .map_or((String::new(), String::new()), |p| (round7(p.x()).to_string(), round7(p.y()).to_string()));
        let mut row = vec![
            b.id.clone(),
            b.name.clone().unwrap_or_default(),
            c.map_or(0, |c| c.residents).to_string(),
            c.map_or(0, |c| c.ambassadors).to_string(),
            c.is_some_and(|c| c.covered).to_string(),
            target.to_string(),
            lon,
            lat,
        ];
        let ind = latest.get(b.id.as_str());
        for n in &names {
            row.push(ind.and_then(|m| m.get(n)).map_or(String::new(), |(_, v)| v.to_string()));
        }
        w.write_record(&row)?;
    }
    w.flush()?;
    w.into_inner().map_err(|e| csv::Error::from(e.into_error()))
}

/// Properties of a resource in the public layer: source attributes, then the known fields.
pub fn resource_properties(r: &Resource) -> Map<String, Value> {
    let mut p = r.attributes.clone();
    let opt = |v: &Option<String>| v.clone().map_or(Value::Null, Value::from);
    p.insert("id".into(), r.id.clone().into());
    p.insert("name".into(), opt(&r.name));
    p.insert("category".into(), r.category.clone().into());
    p.insert("address".into(), opt(&r.address));
    p.insert("phone".into(), opt(&r.phone));
    p.insert("email".into(), opt(&r.email));
    p.insert("url".into(), opt(&r.url));
    p.insert("block_id".into(), opt(&r.block_id));
    // Always present (null when absent), so clients that infer a schema see the columns.
    for field in [resource::HOURS, resource::LANGUAGES, resource::CAPACITY] {
        p.entry(field).or_insert(Value::Null);
    }
    p
}

/// Resources as GeoJSON points.
pub fn write_resources_geojson<W: Write>(out: W, resources: &[Resource]) -> std::io::Result<W> {
    let mut w = FeatureWriter::new(out)?;
    for r in resources {
        w.feature(&r.id, point_json(r.lon, r.lat), resource_properties(r))?;
    }
    w.finish()
}

/// Resources as CSV (re-importable with `belong import resources`).
pub fn write_resources_csv<W: Write>(out: W, resources: &[Resource]) -> csv::Result<W> {
    let mut w = csv::Writer::from_writer(out);
    w.write_record([
        "id",
        "name",
        "category",
        "lon",
        "lat",
        "address",
        "phone",
        "email",
        "url",
        "hours",
        "languages",
        "capacity",
        "block_id",
    ])?;
    for r in resources {
        let o = |v: &Option<String>| v.clone().unwrap_or_default();
        let text = |v: Option<&str>| v.unwrap_or_default().to_string();
        w.write_record([
            r.id.clone(),
            o(&r.name),
            r.category.clone(),
            round7(r.lon).to_string(),
            round7(r.lat).to_string(),
            o(&r.address),
            o(&r.phone),
            o(&r.email),
            o(&r.url),
            text(r.hours()),
            text(r.languages()),
            r.attributes.get(resource::CAPACITY).map(|v| v.to_string()).unwrap_or_default(),
            o(&r.block_id),
        ])?;
    }
    w.flush()?;
    w.into_inner().map_err(|e| csv::Error::from(e.into_error()))
}

/// One indicator as block polygons: the latest value and date, `no_data` where there is none.
pub fn write_indicator_geojson<W: Write>(
    out: W,
    blocks: &[Block],
    indicator: &str,
    values: &[IndicatorValue],
) -> std::io::Result<W> {
    let latest = latest_indicators(values);
    let mut w = FeatureWriter::new(out)?;
    for b in blocks {
        let v = latest.get(b.id.as_str()).and_then(|m| m.get(indicator));
        let mut p = Map::new();
        p.insert("block_id".into(), b.id.clone().into());
        p.insert("name".into(), b.name.clone().map_or(Value::Null, Value::from));
        p.insert("indicator".into(), indicator.into());
        p.insert("value".into(), v.map_or(Value::Null, |(_, x)| json_number(*x)));
        p.insert("date".into(), v.and_then(|(d, _)| *d).map_or(Value::Null, Value::from));
        p.insert("no_data".into(), v.is_none().into());
        w.feature(&b.id, multipolygon_json(&b.geometry), p)?;
    }
    w.finish()
}

/// All indicator values in long CSV form (re-importable).
pub fn write_indicators_csv<W: Write>(out: W, values: &[IndicatorValue]) -> csv::Result<W> {
    let mut w = csv::Writer::from_writer(out);
    w.write_record(["block_id", "indicator", "value", "date"])?;
    for v in values {
        w.write_record([
            v.block_id.as_str(),
            v.indicator.as_str(),
            &v.value.to_string(),
            v.date.as_deref().unwrap_or(""),
        ])?;
    }
    w.flush()?;
    w.into_inner().map_err(|e| csv::Error::from(e.into_error()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo::polygon;

    proptest::proptest! {
        /// The writer gives the bytes of the serialized value, repeats (after rounding),
        /// unclosed rings, empty rings and holes included.
        #[test]
        fn written_geometry_is_the_serialized_value(
            polygons in proptest::collection::vec(
                proptest::collection::vec(
                    proptest::collection::vec((-180.0f64..180.0, -90.0f64..90.0, 0u8..4), 0..7), 1..4),
                1..4),
        ) {
            let mp = MultiPolygon(polygons.iter().map(|rings| {
                let ring = |r: &Vec<(f64, f64, u8)>| {
                    // Some vertices repeated, some only after rounding to 1e-7.
                    LineString::from(r.iter().flat_map(|&(x, y, k)| {
                        let near = (x + 1e-9, y);
                        match k { 0 => vec![(x, y), (x, y)], 1 => vec![(x, y), near], _ => vec![(x, y)] }
                    }).collect::<Vec<_>>())
                };
                Polygon::new(ring(&rings[0]), rings[1..].iter().map(ring).collect())
            }).collect());
            let oriented = mp.orient(Direction::Default);
            let mut out = Vec::new();
            write_oriented_multipolygon_json(&oriented, &mut out);
            proptest::prop_assert_eq!(String::from_utf8(out).unwrap(), multipolygon_json(&mp).to_string());
            let (x, y, _) = polygons[0][0].first().copied().unwrap_or((1.5, -2.25, 0));
            let mut out = Vec::new();
            write_point_json(x, y, &mut out);
            proptest::prop_assert_eq!(String::from_utf8(out).unwrap(), point_json(x, y).to_string());
        }
    }

    #[test]
    fn geometry_is_rfc7946() {
        // Clockwise exterior with a counter-clockwise hole and 9-decimal coordinates.
        let mut p =
            polygon![(x: 0.0, y: 0.0), (x: 0.0, y: 4.0), (x: 4.123456789, y: 4.0), (x: 4.0, y: 0.0), (x: 0.0, y: 0.0)];
        p.interiors_push(vec![(1.0, 1.0), (2.0, 1.0), (2.0, 2.0), (1.0, 2.0), (1.0, 1.0)]);
        let v = multipolygon_json(&MultiPolygon(vec![p]));
        let rings = v["coordinates"][0].as_array().unwrap();
        let area = |ring: &Value| -> f64 {
            let pts: Vec<(f64, f64)> =
                ring.as_array().unwrap().iter().map(|c| (c[0].as_f64().unwrap(), c[1].as_f64().unwrap())).collect();
            pts.windows(2).map(|w| w[0].0 * w[1].1 - w[1].0 * w[0].1).sum::<f64>() / 2.0
        };
        assert!(area(&rings[0]) > 0.0, "exterior must be counter-clockwise");
        assert!(area(&rings[1]) < 0.0, "hole must be clockwise");
        let text = v.to_string();
        assert!(text.contains("4.1234568"), "{text}");
        assert!(!text.contains("4.12345678"), "{text}");
    }

    #[test]
    fn ids_stay_strings() {
        let mut buf = Vec::new();
        let mut w = FeatureWriter::new(&mut buf).unwrap();
        w.feature("060371011101000", point_json(-118.0, 34.0), Map::new()).unwrap();
        w.finish().unwrap();
        let v: Value = serde_json::from_slice(&buf).unwrap();
        assert_eq!(v["features"][0]["id"], "060371011101000");
    }
}
