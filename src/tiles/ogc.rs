//! What OGC API – Tiles says about our tiles, without URLs: the WebMercatorQuad tile matrix set
//! (the XYZ grid every tile is cut on, OGC 2D Tile Matrix Set), the tiles a layer's extent
//! covers at each zoom (`tileMatrixSetLimits`), and each layer's description in tile set
//! metadata. The HTTP layer adds the links.
//!
//! WebMercatorQuad's tile matrix `z`, row `r`, column `c` is XYZ tile `z/c/r` ([`TileId`] with
//! `x = c`, `y = r`): both count rows from the top.

use std::collections::BTreeMap;
use std::ops::RangeInclusive;

use serde::Serialize;
use serde_json::{Value, json};

use super::{MAX_ZOOM, SourceLayer, TileId};

/// Identifier of the one tile matrix set served.
pub const WEB_MERCATOR_QUAD: &str = "WebMercatorQuad";
/// Its URI in the OGC definitions register.
pub const WEB_MERCATOR_QUAD_URI: &str = "http://www.opengis.net/def/tilematrixset/OGC/1.0/WebMercatorQuad";
/// Web Mercator (EPSG:3857), the CRS of the tile matrix set.
pub const EPSG_3857: &str = "http://www.opengis.net/def/crs/EPSG/0/3857";

/// Half the side of the Web Mercator square, in metres: the grid's top left corner is
/// `(-HALF_WORLD_M, HALF_WORLD_M)`.
const HALF_WORLD_M: f64 = 20_037_508.342_789_244;
/// Tile side in pixels, by which the standardised scale is defined (the MVT extent does not
/// enter into it).
const TILE_PIXELS: u32 = 256;
/// The standardised rendering pixel size (0.28 mm), by which scale denominators are defined.
const PIXEL_M: f64 = 0.000_28;

/// A tile matrix set definition (OGC 2D Tile Matrix Set 2.0).
///
/// It also carries the members of the 1.0 encoding (`identifier`, `supportedCRS`, the
/// bounding box's corners, and in each matrix `identifier` and `topLeftCorner`): GDAL 3.6, as
/// Debian ships it, reads only those, and takes a document for a definition only when it has
/// `"identifier"`, `"boundingBox"` and `"tileMatrices"`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TileMatrixSet {
    /// `WebMercatorQuad`.
    pub id: &'static str,
    /// The same, under its 1.0 name.
    pub identifier: &'static str,
    /// Human title.
    pub title: &'static str,
    /// [`WEB_MERCATOR_QUAD_URI`].
    pub uri: &'static str,
    /// [`EPSG_3857`].
    pub crs: &'static str,
    /// The same, under its 1.0 name.
    #[serde(rename = "supportedCRS")]
    pub supported_crs: &'static str,
    /// Easting, then northing.
    pub ordered_axes: [&'static str; 2],
    /// The square the grid covers, in metres.
    pub bounding_box: TmsBoundingBox,
    /// The well-known scale set it follows (Google Maps compatible).
    pub well_known_scale_set: &'static str,
    /// One matrix per zoom, 0 to [`MAX_ZOOM`].
    pub tile_matrices: Vec<TileMatrix>,
}

/// The extent of a tile matrix set, in its CRS, under the 2.0 names (`lowerLeft`,
/// `upperRight`) and the 1.0 ones (`lowerCorner`, `upperCorner`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TmsBoundingBox {
    /// The CRS of the corners.
    pub crs: &'static str,
    /// South-west corner.
    pub lower_left: [f64; 2],
    /// North-east corner.
    pub upper_right: [f64; 2],
    /// South-west corner (1.0).
    pub lower_corner: [f64; 2],
    /// North-east corner (1.0).
    pub upper_corner: [f64; 2],
}

/// One zoom level of a tile matrix set.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TileMatrix {
    /// The zoom, as text.
    pub id: String,
    /// The same, under its 1.0 name.
    pub identifier: String,
    /// Scale at 0.28 mm pixels.
    pub scale_denominator: f64,
    /// Metres per pixel (at 256-pixel tiles).
    pub cell_size: f64,
    /// Always `topLeft`.
    pub corner_of_origin: &'static str,
    /// The top left corner of the grid, in metres.
    pub point_of_origin: [f64; 2],
    /// The same, under its 1.0 name.
    pub top_left_corner: [f64; 2],
    /// Pixels per tile side.
    pub tile_width: u32,
    /// Pixels per tile side.
    pub tile_height: u32,
    /// Columns, `2^z`.
    pub matrix_width: u64,
    /// Rows, `2^z`.
    pub matrix_height: u64,
}

/// The WebMercatorQuad tile matrix set, zooms 0 to [`MAX_ZOOM`] (every zoom a tile can be
/// asked at).
pub fn web_mercator_quad() -> TileMatrixSet {
    let origin = [-HALF_WORLD_M, HALF_WORLD_M];
    let tile_matrices = (0..=MAX_ZOOM)
        .map(|z| {
            let n = 1u64 << z;
            let cell_size = 2.0 * HALF_WORLD_M / (f64::from(TILE_PIXELS) * n as f64);
            TileMatrix {
                id: z.to_string(),
                identifier: z.to_string(),
                scale_denominator: cell_size / PIXEL_M,
                cell_size,
                corner_of_origin: "topLeft",
                point_of_origin: origin,
                top_left_corner: origin,
                tile_width: TILE_PIXELS,
                tile_height: TILE_PIXELS,
                matrix_width: n,
                matrix_height: n,
            }
        })
        .collect();
    TileMatrixSet {
        id: WEB_MERCATOR_QUAD,
        identifier: WEB_MERCATOR_QUAD,
        title: "Google Maps Compatible for the World",
        uri: WEB_MERCATOR_QUAD_URI,
        crs: EPSG_3857,
        supported_crs: EPSG_3857,
        ordered_axes: ["X", "Y"],
        bounding_box: TmsBoundingBox {
            crs: EPSG_3857,
            lower_left: [-HALF_WORLD_M, -HALF_WORLD_M],
            upper_right: [HALF_WORLD_M, HALF_WORLD_M],
            lower_corner: [-HALF_WORLD_M, -HALF_WORLD_M],
            upper_corner: [HALF_WORLD_M, HALF_WORLD_M],
        },
        well_known_scale_set: "http://www.opengis.net/def/wkss/OGC/1.0/GoogleMapsCompatible",
        tile_matrices,
    }
}

/// The tiles of one tile matrix that hold data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TileMatrixLimits {
    /// The zoom, as text (serialized as a string, as the schema asks).
    #[serde(serialize_with = "as_text")]
    pub tile_matrix: u8,
    /// First row.
    pub min_tile_row: u32,
    /// Last row.
    pub max_tile_row: u32,
    /// First column.
    pub min_tile_col: u32,
    /// Last column.
    pub max_tile_col: u32,
}

fn as_text<S: serde::Serializer>(z: &u8, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(z)
}

impl TileMatrixLimits {
    /// Whether the tile lies within these limits (at their zoom).
    pub fn contains(&self, tile: TileId) -> bool {
        tile.z == self.tile_matrix
            && (self.min_tile_row..=self.max_tile_row).contains(&tile.y)
            && (self.min_tile_col..=self.max_tile_col).contains(&tile.x)
    }
}

/// The tiles that meet `bounds` (`[west, south, east, north]`, degrees) at each zoom of
/// `zooms`; none for a layer without features.
pub fn limits(bounds: Option<[f64; 4]>, zooms: RangeInclusive<u8>) -> Vec<TileMatrixLimits> {
    let Some(bounds) = bounds else { return Vec::new() };
    zooms
        .map(|z| {
            let (cols, rows) = TileId::range(z, bounds);
            TileMatrixLimits {
                tile_matrix: z,
                min_tile_row: *rows.start(),
                max_tile_row: *rows.end(),
                min_tile_col: *cols.start(),
                max_tile_col: *cols.end(),
            }
        })
        .collect()
}

/// A layer of a tile set, as tile set metadata describes it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TileSetLayer {
    /// The layer's name in the tiles.
    pub id: String,
    /// What it shows.
    pub description: String,
    /// Always `vector`.
    pub data_type: &'static str,
    /// 0 for points, 2 for polygons; absent for an empty or mixed layer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub geometry_dimension: Option<u8>,
    /// The first zoom it is drawn at.
    #[serde(serialize_with = "as_text")]
    pub min_tile_matrix: u8,
    /// The last zoom it is cut at (clients over-zoom beyond).
    #[serde(serialize_with = "as_text")]
    pub max_tile_matrix: u8,
    /// A JSON Schema of the feature properties in the tiles.
    pub properties_schema: Value,
}

impl TileSetLayer {
    /// The description of `layer` over zooms `zooms`.
    pub fn of(layer: &SourceLayer, zooms: RangeInclusive<u8>) -> TileSetLayer {
        let properties: BTreeMap<&str, Value> = layer
            .fields
            .iter()
            .map(|(name, kind)| {
                let ty = match *kind {
                    "Number" => "number",
                    "Boolean" => "boolean",
                    _ => "string",
                };
                (name.as_str(), json!({ "type": ty }))
            })
            .collect();
        TileSetLayer {
            id: layer.name.clone(),
            description: layer.description.clone(),
            data_type: "vector",
            geometry_dimension: match layer.geometry {
                "Point" => Some(0),
                "Polygon" => Some(2),
                _ => None,
            },
            min_tile_matrix: *zooms.start(),
            max_tile_matrix: *zooms.end(),
            properties_schema: json!({ "type": "object", "properties": properties }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn web_mercator_quad_matches_the_registered_definition() {
        let tms = web_mercator_quad();
        assert_eq!(tms.tile_matrices.len(), usize::from(MAX_ZOOM) + 1);
        let z0 = &tms.tile_matrices[0];
        // The values of the OGC's WebMercatorQuad.json (17-083r4 annex D).
        assert!((z0.scale_denominator - 559_082_264.028_717_4).abs() < 1e-6, "{}", z0.scale_denominator);
        assert!((z0.cell_size - 156_543.033_928_041).abs() < 1e-6, "{}", z0.cell_size);
        assert_eq!(z0.point_of_origin, [-20_037_508.342_789_244, 20_037_508.342_789_244]);
        let z24 = &tms.tile_matrices[24];
        assert_eq!((z24.id.as_str(), z24.matrix_width, z24.matrix_height), ("24", 1 << 24, 1 << 24));
    }

    #[test]
    fn limits_hold_the_extent_and_the_tiles_over_it() {
        let (lon, lat) = (crate::demo::HQ_LON, crate::demo::HQ_LAT);
        let l = limits(Some([lon - 0.01, lat - 0.01, lon + 0.01, lat + 0.01]), 0..=16);
        assert_eq!(l.len(), 17);
        assert_eq!((l[0].min_tile_row, l[0].max_tile_row, l[0].min_tile_col, l[0].max_tile_col), (0, 0, 0, 0));
        // The HQ is in z14 tile 2808/6542 (see the module tests of `tiles`).
        let hq = TileId { z: 14, x: 2808, y: 6542 };
        assert!(l[14].contains(hq) && !l[13].contains(hq));
        assert!(l[16].max_tile_col > l[16].min_tile_col && l[16].max_tile_row > l[16].min_tile_row);
        assert!(limits(None, 0..=16).is_empty());
        let text = serde_json::to_value(l[14]).unwrap();
        assert_eq!(text["tileMatrix"], "14");
    }
}
