//! Area layers: any polygons an admin imports to roll coverage up by (neighbourhoods, council
//! districts, service planning areas). A block belongs to the area that contains the block's
//! interior point ([`geo::InteriorPoint`]), located with the block index's exact boundary rule:
//! on a shared edge, or where areas overlap, the area whose id sorts first wins.

use std::collections::HashMap;

use geo::MultiPolygon;

use super::{Attributes, Block, BlockIndex};

/// The built-in grouping by census tract: not an area layer, and not a layer name one can import.
pub const TRACT: &str = "tract";

/// Longest layer name accepted.
pub const MAX_LAYER_NAME: usize = 64;

/// One polygon of an area layer.
#[derive(Debug, Clone, PartialEq)]
pub struct Area {
    /// Stable id within its layer (always a string).
    pub id: String,
    /// Display name (e.g. "Pico-Union").
    pub name: Option<String>,
    /// Boundary in WGS84 lon/lat degrees.
    pub geometry: MultiPolygon<f64>,
    /// Attributes kept from the source file.
    pub attributes: Attributes,
}

impl From<Block> for Area {
    /// Area files are read by the block reader (same formats, CRSs and validation).
    fn from(b: Block) -> Area {
        Area { id: b.id, name: b.name, geometry: b.geometry, attributes: b.attributes }
    }
}

/// A stored area layer, as listed for `--by` and `/coverage/rollup/layers`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AreaLayer {
    /// Layer name (`neighbourhoods`).
    pub name: String,
    /// Number of areas.
    pub areas: u64,
    /// The file it was imported from.
    pub source: Option<String>,
    /// When it was imported (RFC 3339 UTC).
    pub imported_at: String,
}

/// Check a layer name: 1 to 64 lowercase ASCII letters, digits, `-` or `_`, starting with a
/// letter or digit, and not the reserved `tract`. Names appear in URLs (`?by=`) and on the
/// command line, so nothing there needs quoting.
pub fn check_layer_name(name: &str) -> Result<(), String> {
    if name == TRACT {
        return Err(format!("'{TRACT}' is reserved for the built-in roll-up by census tract; choose another name"));
    }
    let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_';
    let starts_ok = name.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if name.is_empty() || name.len() > MAX_LAYER_NAME || !starts_ok || !name.chars().all(ok_char) {
        return Err(format!(
            "layer name {name:?} is not valid: use 1 to {MAX_LAYER_NAME} lowercase letters, digits, '-' or '_', \
             starting with a letter or digit (e.g. neighbourhoods, council-districts)"
        ));
    }
    Ok(())
}

/// Which area each block belongs to.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AreaMembership {
    /// The layer's areas `(id, name)`, in id order.
    pub areas: Vec<(String, Option<String>)>,
    /// Block id → position in `areas`; blocks in no area are absent.
    pub of_block: HashMap<String, u32>,
}

impl AreaMembership {
    /// Place every block by its interior point. Exact and deterministic: a point on an edge
    /// shared by two areas (or inside overlapping areas) goes to the area whose id sorts first.
    /// A block without an interior point (empty geometry) is in no area.
    pub fn compute(areas: &[Area], blocks: &[Block]) -> AreaMembership {
        let index = BlockIndex::from_parts(areas.iter().map(|a| (a.id.as_str(), &a.geometry)));
        let names: HashMap<&str, Option<&String>> = areas.iter().map(|a| (a.id.as_str(), a.name.as_ref())).collect();
        let listed: Vec<(String, Option<String>)> =
            index.ids().iter().map(|id| (id.clone(), names.get(id.as_str()).copied().flatten().cloned())).collect();
        let placed: Vec<(&str, (f64, f64))> =
            blocks.iter().filter_map(|b| b.interior_point().map(|p| (b.id.as_str(), (p.x(), p.y())))).collect();
        let points: Vec<(f64, f64)> = placed.iter().map(|(_, p)| *p).collect();
        let of_block = placed
            .iter()
            .zip(index.locate_many(&points))
            .filter_map(|((id, _), rank)| rank.map(|r| (id.to_string(), r)))
            .collect();
        AreaMembership { areas: listed, of_block }
    }

    /// The area `(id, name)` a block belongs to.
    pub fn area_of(&self, block_id: &str) -> Option<(&str, Option<&str>)> {
        let (id, name) = &self.areas[*self.of_block.get(block_id)? as usize];
        Some((id.as_str(), name.as_deref()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo::polygon;

    fn square(id: &str, x0: f64, y0: f64, x1: f64, y1: f64) -> Block {
        let p = polygon![(x: x0, y: y0), (x: x1, y: y0), (x: x1, y: y1), (x: x0, y: y1), (x: x0, y: y0)];
        Block {
            id: id.into(),
            name: Some(format!("name {id}")),
            geometry: MultiPolygon(vec![p]),
            attributes: Attributes::new(),
        }
    }

    #[test]
    fn layer_names() {
        for ok in ["neighbourhoods", "council-districts", "spa_2024", "7"] {
            assert_eq!(check_layer_name(ok), Ok(()), "{ok}");
        }
        for bad in ["", "tract", "Neighbourhoods", "-x", "a b", "a/b", "é", &"x".repeat(65)] {
            assert!(check_layer_name(bad).is_err(), "{bad}");
        }
        assert!(check_layer_name("tract").unwrap_err().contains("reserved"));
    }

    #[test]
    fn blocks_go_to_the_area_holding_their_interior_point() {
        // West area [0,2]x[0,2], east area [2,4]x[0,2]; an L-shaped block would have its
        // centroid outside itself: the interior point is always inside.
        let areas: Vec<Area> =
            vec![square("west", 0.0, 0.0, 2.0, 2.0).into(), square("east", 2.0, 0.0, 4.0, 2.0).into()];
        let blocks = vec![
            square("b1", 0.5, 0.5, 1.0, 1.0),
            // Straddles the shared edge, mostly east: its interior point is east of x = 2.
            square("b2", 1.9, 0.0, 3.5, 0.5),
            square("b3", 10.0, 10.0, 11.0, 11.0),
            // Exactly on the shared edge x = 2 (degenerate width): the smaller id, "east", wins.
            square("b4", 1.0, 1.0, 3.0, 1.5),
        ];
        let m = AreaMembership::compute(&areas, &blocks);
        assert_eq!(m.areas, vec![("east".into(), Some("name east".into())), ("west".into(), Some("name west".into()))]);
        assert_eq!(m.area_of("b1"), Some(("west", Some("name west"))));
        assert_eq!(m.area_of("b2"), Some(("east", Some("name east"))));
        assert_eq!(m.area_of("b3"), None);
        // b4's interior point is at x = 2, on the shared edge: the boundary rule picks "east".
        assert_eq!(m.area_of("b4"), Some(("east", Some("name east"))));
    }
}
