//! MVT 2.1 geometry checks shared by the tile tests: the raw command grammar (decoded from the
//! protobuf with prost, no repeated closing points) and polygon validity (exterior rings with
//! positive area first, holes negative, OGC-valid by geo's validation).
#![allow(dead_code, clippy::unwrap_used)]

use geo::{Coord, LineString, MultiPolygon, Polygon, Validation};
use geozero::mvt::{Message, Tile};

/// A ring as decoded: closed (first point repeated at the end, as ClosePath implies).
pub type Ring = Vec<(f64, f64)>;

/// One decoded feature: layer name, geometry type (1 point, 2 line, 3 polygon), rings or points.
pub struct Decoded {
    /// Layer name.
    pub layer: String,
    /// Geometry type.
    pub kind: i32,
    /// Rings (polygons) or single points.
    pub parts: Vec<Ring>,
}

/// Decode every feature's geometry, asserting the command grammar and that no ring repeats its
/// first point before ClosePath.
pub fn decode_raw(bytes: &[u8]) -> Vec<Decoded> {
    let tile = Tile::decode(bytes).unwrap();
    let mut out = Vec::new();
    for layer in &tile.layers {
        assert_eq!((layer.version, layer.extent), (2, Some(4096)), "layer {}", layer.name);
        for f in &layer.features {
            let g = &f.geometry;
            let zz = |v: u32| i64::from((v >> 1) as i32 ^ -((v & 1) as i32));
            let (mut i, mut cx, mut cy) = (0usize, 0i64, 0i64);
            let mut parts: Vec<Ring> = Vec::new();
            while i < g.len() {
                let (cmd, count) = (g[i] & 7, g[i] >> 3);
                i += 1;
                match cmd {
                    1 | 2 => {
                        assert!(count > 0, "empty command");
                        for _ in 0..count {
                            cx += zz(g[i]);
                            cy += zz(g[i + 1]);
                            i += 2;
                            if cmd == 1 {
                                parts.push(Vec::new());
                            }
                            parts.last_mut().expect("LineTo after MoveTo").push((cx as f64, cy as f64));
                        }
                    }
                    7 => {
                        assert_eq!(count, 1, "ClosePath count");
                        let ring = parts.last_mut().expect("ClosePath after MoveTo");
                        assert_ne!(ring.first(), ring.last(), "ring repeats its first point before ClosePath");
                        let first = ring[0];
                        ring.push(first);
                    }
                    other => panic!("unknown command {other} in layer {}", layer.name),
                }
            }
            out.push(Decoded { layer: layer.name.clone(), kind: f.r#type.unwrap_or(0), parts });
        }
    }
    out
}

/// Twice-free surveyor's formula (MVT 4.3.4.4) of a closed ring, in tile coordinates (y down).
pub fn area(ring: &Ring) -> f64 {
    ring.windows(2).map(|w| w[0].0 * w[1].1 - w[1].0 * w[0].1).sum::<f64>() / 2.0
}

/// MVT polygon rules: every ring closed with at least three distinct points and non-zero area,
/// an exterior ring (positive area) before its holes (negative), and the result OGC-valid.
pub fn assert_valid_polygon(rings: &[Ring], what: &str) {
    let mut polygons: Vec<(LineString<f64>, Vec<LineString<f64>>)> = Vec::new();
    for ring in rings {
        assert!(ring.len() >= 4, "{what}: a ring needs 3 points plus the closing one: {ring:?}");
        assert_eq!(ring.first(), ring.last(), "{what}: ring not closed");
        let a = area(ring);
        assert!(a != 0.0, "{what}: zero-area ring");
        let ls: LineString<f64> = ring.iter().map(|&(x, y)| Coord { x, y }).collect();
        if a > 0.0 {
            polygons.push((ls, Vec::new()));
        } else {
            polygons.last_mut().unwrap_or_else(|| panic!("{what}: a hole before any exterior ring")).1.push(ls);
        }
    }
    let mp = MultiPolygon::new(polygons.into_iter().map(|(e, h)| Polygon::new(e, h)).collect());
    if let Err(e) = mp.check_validation() {
        panic!("{what}: invalid polygon: {e}");
    }
}
