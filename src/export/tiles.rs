//! A static vector-tile pyramid: `{z}/{x}/{y}.mvt` files with a TileJSON `tiles.json` (for
//! MapLibre) and an MBTiles-style `metadata.json` (for GDAL's MVT driver and tippecanoe tools),
//! and optionally a single-file PMTiles v3 archive.
//!
//! Nothing is half-written: the pyramid is built in a temporary folder beside the output and
//! moved in when complete; the PMTiles archive is written to a temporary file and renamed.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

use crate::tiles::{TileId, TileSource};

/// What to export.
#[derive(Debug, Clone)]
pub struct TileExport {
    /// Folder of the pyramid.
    pub out: PathBuf,
    /// Lowest zoom written.
    pub minzoom: u8,
    /// Highest zoom written.
    pub maxzoom: u8,
    /// Layers in every tile, in this order.
    pub layers: Vec<String>,
    /// Write gzip-compressed tiles (same names; serve them with `Content-Encoding: gzip`).
    pub gzip: bool,
    /// Also write a PMTiles v3 archive here.
    pub pmtiles: Option<PathBuf>,
    /// URL the folder will be served from, for `tiles.json`; `None` writes a relative template.
    pub base_url: Option<String>,
}

/// What was written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TileExportSummary {
    /// Tiles with features, written.
    pub tiles: u64,
    /// Tiles over the data's bounds with nothing visible, not written.
    pub empty: u64,
    /// Bytes of tile data written (as stored: compressed with `gzip`).
    pub bytes: u64,
    /// Tiles written per zoom.
    pub per_zoom: BTreeMap<u8, u64>,
}

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum TileExportError {
    /// The options make no sense.
    #[error("{0}")]
    Invalid(String),
    /// Writing failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// The PMTiles writer failed.
    #[error("{path}: writing PMTiles: {message}")]
    Pmtiles {
        /// The archive.
        path: PathBuf,
        /// The cause.
        message: String,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> TileExportError + '_ {
    move |source| TileExportError::Io { path: path.to_path_buf(), source }
}

/// The tiles the export covers: every tile of every zoom that meets the layers' bounds.
pub fn plan(source: &TileSource, opts: &TileExport) -> Result<Vec<TileId>, TileExportError> {
    if opts.minzoom > opts.maxzoom || opts.maxzoom > crate::tiles::MAX_ZOOM {
        return Err(TileExportError::Invalid(format!(
            "zoom range {}..{} is invalid: need minzoom <= maxzoom <= {}",
            opts.minzoom,
            opts.maxzoom,
            crate::tiles::MAX_ZOOM
        )));
    }
    let mut bounds: Option<[f64; 4]> = None;
    for name in &opts.layers {
        let layer = source.layer(name).ok_or_else(|| {
            let known: Vec<&str> = source.layers().iter().map(|l| l.name.as_str()).collect();
            TileExportError::Invalid(format!("no tile layer {name:?}; the layers are {}", known.join(", ")))
        })?;
        if let Some(b) = layer.bounds {
            bounds = Some(bounds.map_or(b, |a| [a[0].min(b[0]), a[1].min(b[1]), a[2].max(b[2]), a[3].max(b[3])]));
        }
    }
    let Some(bounds) = bounds else { return Ok(Vec::new()) };
    let mut tiles = Vec::new();
    for z in opts.minzoom..=opts.maxzoom {
        let (xs, ys) = TileId::range(z, bounds);
        for x in xs {
            for y in ys.clone() {
                tiles.push(TileId { z, x, y });
            }
        }
    }
    Ok(tiles)
}

/// Render `tiles` (from [`plan`]) on every core and write the pyramid; `progress` is called
/// with the number of tiles done so far.
pub fn export_tiles(
    source: &TileSource,
    live: &dyn crate::tiles::LiveValues,
    opts: &TileExport,
    tiles: &[TileId],
    progress: &(dyn Fn(u64) + Sync),
) -> Result<TileExportSummary, TileExportError> {
    let names: Vec<&str> = opts.layers.iter().map(String::as_str).collect();
    fs::create_dir_all(&opts.out).map_err(io_err(&opts.out))?;
    let staging = opts.out.join(format!(".belong-export-{}", std::process::id()));
    let _ = fs::remove_dir_all(&staging);
    fs::create_dir_all(&staging).map_err(io_err(&staging))?;
    let result = write_pyramid(source, live, opts, &names, tiles, &staging, progress);
    let summary = match result {
        Ok(s) => s,
        Err(e) => {
            let _ = fs::remove_dir_all(&staging);
            if let Some(p) = &opts.pmtiles {
                let _ = fs::remove_file(partial(p));
            }
            return Err(e);
        }
    };
    publish(&staging, &opts.out)?;
    if let Some(p) = &opts.pmtiles {
        fs::rename(partial(p), p).map_err(io_err(p))?;
    }
    Ok(summary)
}

fn partial(p: &Path) -> PathBuf {
    let mut name = p.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".partial");
    p.with_file_name(name)
}

fn write_pyramid(
    source: &TileSource,
    live: &dyn crate::tiles::LiveValues,
    opts: &TileExport,
    names: &[&str],
    tiles: &[TileId],
    staging: &Path,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<TileExportSummary, TileExportError> {
    let mut pmtiles = match &opts.pmtiles {
        Some(path) => {
            let file = fs::File::create(partial(path)).map_err(io_err(path))?;
            let meta = metadata_json(source, names, opts);
            let tj = source.tilejson(names, String::new(), opts.minzoom, opts.maxzoom);
            let writer = pmtiles::PmTilesWriter::new(pmtiles::TileType::Mvt)
                .min_zoom(opts.minzoom)
                .max_zoom(opts.maxzoom)
                .bounds(tj.bounds[0], tj.bounds[1], tj.bounds[2], tj.bounds[3])
                .center(tj.center[0], tj.center[1])
                .center_zoom(tj.center[2] as u8)
                .metadata(serde_json::json!({ "vector_layers": tj.vector_layers, "name": meta["name"] }).to_string())
                .create(io::BufWriter::new(file))
                .map_err(|e| TileExportError::Pmtiles { path: path.clone(), message: e.to_string() })?;
            Some((path.clone(), writer))
        }
        None => None,
    };

    let mut summary = TileExportSummary::default();
    let next = AtomicUsize::new(0);
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    std::thread::scope(|scope| -> Result<(), TileExportError> {
        let (tx, rx) = mpsc::sync_channel::<(TileId, Vec<u8>)>(256);
        for _ in 0..workers {
            let tx = tx.clone();
            let next = &next;
            scope.spawn(move || {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&tile) = tiles.get(i) else { break };
                    if tx.send((tile, source.render_with(names, tile, live))).is_err() {
                        break; // the writer stopped on an error
                    }
                }
            });
        }
        drop(tx);
        let mut done = 0u64;
        for (tile, bytes) in rx {
            done += 1;
            if done.is_multiple_of(64) {
                progress(done);
            }
            if bytes.is_empty() {
                summary.empty += 1;
                continue;
            }
            if let Some((path, w)) = &mut pmtiles {
                let coord = pmtiles::TileCoord::new(tile.z, tile.x, tile.y)
                    .map_err(|e| TileExportError::Pmtiles { path: path.clone(), message: e.to_string() })?;
                w.add_tile(coord, &bytes)
                    .map_err(|e| TileExportError::Pmtiles { path: path.clone(), message: e.to_string() })?;
            }
            let data = if opts.gzip { gzip(&bytes) } else { bytes };
            let dir = staging.join(tile.z.to_string()).join(tile.x.to_string());
            fs::create_dir_all(&dir).map_err(io_err(&dir))?;
            let file = dir.join(format!("{}.mvt", tile.y));
            fs::write(&file, &data).map_err(io_err(&file))?;
            summary.tiles += 1;
            summary.bytes += data.len() as u64;
            *summary.per_zoom.entry(tile.z).or_default() += 1;
        }
        progress(done);
        Ok(())
    })?;

    if let Some((path, w)) = pmtiles {
        w.finalize().map_err(|e| TileExportError::Pmtiles { path: path.clone(), message: e.to_string() })?;
    }
    let template = match &opts.base_url {
        Some(base) => format!("{}/{{z}}/{{x}}/{{y}}.mvt", base.trim_end_matches('/')),
        None => "{z}/{x}/{y}.mvt".to_string(),
    };
    let tilejson = source.tilejson(names, template, opts.minzoom, opts.maxzoom);
    write_json(&staging.join("tiles.json"), &serde_json::to_value(&tilejson).unwrap_or_default())?;
    write_json(&staging.join("metadata.json"), &metadata_json(source, names, opts))?;
    Ok(summary)
}

/// MBTiles-style metadata, as tippecanoe writes beside a pyramid and GDAL's MVT driver reads:
/// strings throughout, and the layer list as JSON text in `json`.
fn metadata_json(source: &TileSource, names: &[&str], opts: &TileExport) -> serde_json::Value {
    let tj = source.tilejson(names, String::new(), opts.minzoom, opts.maxzoom);
    let b = tj.bounds;
    serde_json::json!({
        "name": format!("belong {}", names.join(",")),
        "description": tj.description,
        "version": "2",
        "type": "overlay",
        "format": "pbf",
        "compression": if opts.gzip { "gzip" } else { "none" },
        "minzoom": opts.minzoom.to_string(),
        "maxzoom": opts.maxzoom.to_string(),
        "bounds": format!("{},{},{},{}", b[0], b[1], b[2], b[3]),
        "center": format!("{},{},{}", tj.center[0], tj.center[1], tj.center[2]),
        "generator": format!("belong {}", env!("CARGO_PKG_VERSION")),
        "json": serde_json::json!({ "vector_layers": tj.vector_layers, "tilestats": tilestats(source, names) }).to_string(),
    })
}

/// tippecanoe-style layer statistics: GDAL takes each layer's geometry type from them.
fn tilestats(source: &TileSource, names: &[&str]) -> serde_json::Value {
    let layers: Vec<serde_json::Value> = names
        .iter()
        .filter_map(|n| source.layer(n))
        .map(|l| {
            let attributes: Vec<serde_json::Value> = l
                .fields
                .iter()
                .map(|(name, ty)| serde_json::json!({ "attribute": name, "type": ty.to_lowercase() }))
                .collect();
            serde_json::json!({
                "layer": l.name,
                "count": l.len(),
                "geometry": l.geometry,
                "attributeCount": attributes.len(),
                "attributes": attributes,
            })
        })
        .collect();
    serde_json::json!({ "layerCount": layers.len(), "layers": layers })
}

fn write_json(path: &Path, v: &serde_json::Value) -> Result<(), TileExportError> {
    let mut text = serde_json::to_string_pretty(v).unwrap_or_default();
    text.push('\n');
    fs::write(path, text).map_err(io_err(path))
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    // Writing to a Vec cannot fail.
    let _ = enc.write_all(bytes);
    enc.finish().unwrap_or_default()
}

/// Replace the previous pyramid (its numbered zoom folders and JSON files) with the staged one;
/// anything else in the output folder (a README) stays.
fn publish(staging: &Path, out: &Path) -> Result<(), TileExportError> {
    for entry in fs::read_dir(out).map_err(io_err(out))? {
        let entry = entry.map_err(io_err(out))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let ours = (!name.is_empty() && name.bytes().all(|b| b.is_ascii_digit()) && entry.path().is_dir())
            || name == "tiles.json"
            || name == "metadata.json";
        if ours {
            let p = entry.path();
            if p.is_dir() { fs::remove_dir_all(&p) } else { fs::remove_file(&p) }.map_err(io_err(&p))?;
        }
    }
    for entry in fs::read_dir(staging).map_err(io_err(staging))? {
        let entry = entry.map_err(io_err(staging))?;
        let to = out.join(entry.file_name());
        fs::rename(entry.path(), &to).map_err(io_err(&to))?;
    }
    fs::remove_dir(staging).map_err(io_err(staging))
}
