//! A census block: a stable string id and a (multi)polygon in WGS84.

use geo::{InteriorPoint, MultiPolygon, Point};

use super::Attributes;

/// One block of the catchment.
#[derive(Debug, Clone, PartialEq)]
pub struct Block {
    /// Stable id, e.g. a 15-digit TIGER `GEOID20`. Always a string: leading zeros matter.
    pub id: String,
    /// Optional display name (e.g. TIGER `NAME20`, "Block 1000").
    pub name: Option<String>,
    /// Boundary in WGS84 lon/lat degrees. Polygons are kept as multipolygons so that a
    /// block split by a freeway is still one block.
    pub geometry: MultiPolygon<f64>,
    /// Attributes kept from the source file, by field name.
    pub attributes: Attributes,
}

impl Block {
    /// A point guaranteed to lie inside the block (labels, roll-ups, CSV exports).
    pub fn interior_point(&self) -> Option<Point<f64>> {
        self.geometry.interior_point()
    }

    /// The tract a census block belongs to: the first 11 characters of a 15-digit GEOID.
    pub fn tract(&self) -> Option<&str> {
        super::rollup::tract_of(&self.id)
    }
}
