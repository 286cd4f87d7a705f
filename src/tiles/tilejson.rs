//! TileJSON 3.0.0 documents (also the shape of the `json` member of MBTiles-style metadata that
//! GDAL reads next to a static pyramid).

use std::collections::BTreeMap;

use serde::Serialize;

use super::{DATA_MAX_ZOOM, TileSource};

/// A TileJSON 3.0.0 document.
#[derive(Debug, Clone, Serialize)]
pub struct TileJson {
    /// Always `3.0.0`.
    pub tilejson: &'static str,
    /// Short name.
    pub name: String,
    /// What the tiles show.
    pub description: String,
    /// Tileset version.
    pub version: String,
    /// Always `xyz`.
    pub scheme: &'static str,
    /// Tile URL templates (`{z}/{x}/{y}`).
    pub tiles: Vec<String>,
    /// Lowest zoom with data.
    pub minzoom: u8,
    /// Highest zoom with data; clients over-zoom beyond it.
    pub maxzoom: u8,
    /// `[west, south, east, north]`.
    pub bounds: [f64; 4],
    /// `[lon, lat, zoom]` to open at.
    pub center: [f64; 3],
    /// One entry per MVT layer.
    pub vector_layers: Vec<VectorLayer>,
}

/// A TileJSON `vector_layers` entry.
#[derive(Debug, Clone, Serialize)]
pub struct VectorLayer {
    /// Layer name in the tiles.
    pub id: String,
    /// What the layer shows.
    pub description: String,
    /// Property name → `String`, `Number` or `Boolean`.
    pub fields: BTreeMap<String, &'static str>,
    /// Lowest zoom with data.
    pub minzoom: u8,
    /// Highest zoom with data.
    pub maxzoom: u8,
}

impl TileSource {
    /// TileJSON for the named layers (unknown names are skipped), served from `tiles_url`
    /// (a `{z}/{x}/{y}` template), over zooms `minzoom..=maxzoom`.
    pub fn tilejson(&self, names: &[&str], tiles_url: String, minzoom: u8, maxzoom: u8) -> TileJson {
        let layers: Vec<_> = names.iter().filter_map(|n| self.layer(n)).collect();
        let bounds = layers
            .iter()
            .filter_map(|l| l.bounds)
            .reduce(|a, b| [a[0].min(b[0]), a[1].min(b[1]), a[2].max(b[2]), a[3].max(b[3])]);
        let bounds = bounds.unwrap_or([-180.0, -85.051_128_779_806_59, 180.0, 85.051_128_779_806_59]);
        // Open at the zoom where the whole extent fits a ~1000-pixel view.
        let span = (bounds[2] - bounds[0]).max(bounds[3] - bounds[1]).max(1e-9);
        let fit = (360.0 * 1000.0 / 512.0 / span).log2().floor().clamp(0.0, f64::from(DATA_MAX_ZOOM));
        let center = [(bounds[0] + bounds[2]) / 2.0, (bounds[1] + bounds[3]) / 2.0, fit.max(f64::from(minzoom))];
        TileJson {
            tilejson: "3.0.0",
            name: names.join(","),
            description: layers.iter().map(|l| l.description.as_str()).collect::<Vec<_>>().join(" "),
            version: "1.0.0".into(),
            scheme: "xyz",
            tiles: vec![tiles_url],
            minzoom,
            maxzoom,
            bounds,
            center,
            vector_layers: layers
                .iter()
                .map(|l| VectorLayer {
                    id: l.name.clone(),
                    description: l.description.clone(),
                    fields: l.fields.clone(),
                    minzoom,
                    maxzoom,
                })
                .collect(),
        }
    }
}
