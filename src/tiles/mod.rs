//! Mapbox Vector Tiles (MVT 2.1) of the public layers, on the Web Mercator XYZ grid.
//!
//! A [`TileSource`] holds every layer's features projected once to Web Mercator; [`TileSource::render`]
//! cuts one tile: features whose envelope meets the buffered tile are transformed to tile
//! coordinates, simplified for the zoom, snapped to the integer grid, clipped to the buffered
//! tile and made valid (module `clip`), then encoded with geozero's MVT writer and prost (module `encode`).
//! Counts that change with every write can be *live* properties, supplied at render time
//! ([`LiveValues`]) instead of stored with the projected geometry.
//! [`TileCache`] keeps encoded tiles across snapshots and forgets, by area, only those a change
//! touches ([`TileCache::invalidate`] with [`SourceLayer::envelope`]s).
//! Module `ogc` says what OGC API – Tiles needs of the grid: the WebMercatorQuad tile matrix
//! set ([`web_mercator_quad`]), the tiles with data per zoom ([`limits`]) and the layers
//! ([`TileSetLayer`]).
//!
//! Pure: no I/O, no HTTP, no database.

mod cache;
mod clip;
mod encode;
mod ogc;
mod source;
mod tilejson;

pub use cache::{CachedTile, TileCache};
pub use ogc::{
    EPSG_3857, TileMatrixLimits, TileMatrixSet, TileSetLayer, WEB_MERCATOR_QUAD, WEB_MERCATOR_QUAD_URI, limits,
    web_mercator_quad,
};
pub use source::{Geometry, LiveValues, NoLiveValues, SourceFeature, SourceLayer, TileSource};
pub use tilejson::{TileJson, VectorLayer};

/// Tile coordinates per side: the MVT default, which every client expects.
pub const EXTENT: u32 = 4096;
/// Tile units drawn beyond each edge, so that strokes and labels do not stop at tile seams.
pub const BUFFER: u32 = 64;
/// Deepest zoom a tile can be requested at.
pub const MAX_ZOOM: u8 = 24;
/// Deepest zoom announced in TileJSON: clients over-zoom beyond it (a z16 tile resolves
/// 0.15 m at Los Angeles' latitude, finer than any census block edge).
pub const DATA_MAX_ZOOM: u8 = 16;
/// The media type of an encoded tile.
pub const MEDIA_TYPE: &str = "application/vnd.mapbox-vector-tile";

/// Latitude limit of Web Mercator (where the square world ends).
const MAX_LAT: f64 = 85.051_128_779_806_59;

/// A tile on the XYZ grid (origin top left, y growing southward).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TileId {
    /// Zoom level.
    pub z: u8,
    /// Column, `0..2^z`.
    pub x: u32,
    /// Row, `0..2^z`.
    pub y: u32,
}

/// Why tile coordinates were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TileIdError {
    /// Zoom beyond [`MAX_ZOOM`].
    #[error("zoom {0} is out of range: 0 to {MAX_ZOOM}")]
    Zoom(u32),
    /// Column or row outside `0..2^z`.
    #[error("tile {x}/{y} does not exist at zoom {z}: x and y must be below {n}")]
    Outside {
        /// Zoom.
        z: u8,
        /// Column.
        x: u32,
        /// Row.
        y: u32,
        /// Tiles per side at this zoom.
        n: u64,
    },
}

impl TileId {
    /// Checked tile coordinates.
    pub fn new(z: u32, x: u32, y: u32) -> Result<TileId, TileIdError> {
        let z8 = u8::try_from(z).ok().filter(|z| *z <= MAX_ZOOM).ok_or(TileIdError::Zoom(z))?;
        let n = 1u64 << z8;
        if u64::from(x) >= n || u64::from(y) >= n {
            return Err(TileIdError::Outside { z: z8, x, y, n });
        }
        Ok(TileId { z: z8, x, y })
    }

    /// `[west, south, east, north]` in degrees.
    pub fn bounds_lonlat(&self) -> [f64; 4] {
        let n = (1u64 << self.z) as f64;
        let (x0, y0) = (f64::from(self.x) / n, f64::from(self.y) / n);
        let (x1, y1) = ((f64::from(self.x) + 1.0) / n, (f64::from(self.y) + 1.0) / n);
        let [w, n_] = unit_to_lonlat([x0, y0]);
        let [e, s] = unit_to_lonlat([x1, y1]);
        [w, s, e, n_]
    }

    /// The tiles at zoom `z` that meet `[west, south, east, north]`: `(x0..=x1, y0..=y1)`.
    pub fn range(z: u8, bbox: [f64; 4]) -> (std::ops::RangeInclusive<u32>, std::ops::RangeInclusive<u32>) {
        let n = (1u64 << z) as f64;
        let max = (1u64 << z) - 1;
        let cell = |u: f64| ((u * n).floor().max(0.0) as u64).min(max) as u32;
        let [x0, y1] = lonlat_to_unit(bbox[0], bbox[1]);
        let [x1, y0] = lonlat_to_unit(bbox[2], bbox[3]);
        (cell(x0)..=cell(x1), cell(y0)..=cell(y1))
    }
}

impl std::fmt::Display for TileId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}/{}", self.z, self.x, self.y)
    }
}

/// WGS84 longitude/latitude to Web Mercator "unit" coordinates: the world is `[0, 1]²`, x east,
/// y south (the XYZ tile grid at zoom 0). Latitudes beyond Mercator's limit are clamped.
pub fn lonlat_to_unit(lon: f64, lat: f64) -> [f64; 2] {
    let x = (lon + 180.0) / 360.0;
    let phi = lat.clamp(-MAX_LAT, MAX_LAT).to_radians();
    let y = 0.5 - (std::f64::consts::FRAC_PI_4 + phi / 2.0).tan().ln() / (2.0 * std::f64::consts::PI);
    [x, y]
}

/// The inverse of [`lonlat_to_unit`].
pub fn unit_to_lonlat([x, y]: [f64; 2]) -> [f64; 2] {
    let lon = x * 360.0 - 180.0;
    let lat = (std::f64::consts::PI * (1.0 - 2.0 * y)).sinh().atan().to_degrees();
    [lon, lat]
}

/// Unit coordinates to the tile coordinates of one tile (`0..EXTENT` inside the tile).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Transform {
    scale: f64,
    dx: f64,
    dy: f64,
}

impl Transform {
    pub(crate) fn new(tile: TileId) -> Transform {
        let scale = (1u64 << tile.z) as f64 * f64::from(EXTENT);
        Transform { scale, dx: f64::from(tile.x) * f64::from(EXTENT), dy: f64::from(tile.y) * f64::from(EXTENT) }
    }

    pub(crate) fn apply(&self, [x, y]: [f64; 2]) -> [f64; 2] {
        [x * self.scale - self.dx, y * self.scale - self.dy]
    }

    /// The buffered tile as a unit-coordinate envelope `[min, max]`.
    pub(crate) fn buffered_unit_envelope(&self) -> ([f64; 2], [f64; 2]) {
        let b = f64::from(BUFFER);
        let e = f64::from(EXTENT);
        let inv = |v: f64, d: f64| (v + d) / self.scale;
        ([inv(-b, self.dx), inv(-b, self.dy)], [inv(e + b, self.dx), inv(e + b, self.dy)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tile_ids_are_checked() {
        assert!(TileId::new(0, 0, 0).is_ok());
        assert_eq!(TileId::new(25, 0, 0), Err(TileIdError::Zoom(25)));
        assert!(matches!(TileId::new(2, 4, 0), Err(TileIdError::Outside { n: 4, .. })));
        assert!(TileId::new(24, (1 << 24) - 1, 0).is_ok());
    }

    #[test]
    fn mercator_round_trips_and_matches_known_tiles() {
        let (lon0, lat0) = (crate::demo::HQ_LON, crate::demo::HQ_LAT);
        let [lon, lat] = unit_to_lonlat(lonlat_to_unit(lon0, lat0));
        assert!((lon - lon0).abs() < 1e-12 && (lat - lat0).abs() < 1e-12);
        // The demo HQ (1910 Magnolia Ave) is in z14 tile 2808/6542, as the slippy-map formula
        // (OSM wiki, computed with Python's math module) gives.
        let (xs, ys) = TileId::range(14, [lon0, lat0, lon0, lat0]);
        assert_eq!((*xs.start(), *ys.start()), (2808, 6542));
        let b = TileId { z: 14, x: 2808, y: 6542 }.bounds_lonlat();
        assert!(b[0] <= lon0 && lon0 <= b[2] && b[1] <= lat0 && lat0 <= b[3]);
        assert!((TileId { z: 0, x: 0, y: 0 }.bounds_lonlat()[3] - MAX_LAT).abs() < 1e-12);
    }
}
