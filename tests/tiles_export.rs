//! Tiles beyond the demo and the router: `belong tiles export` read back by GDAL's MVT driver
//! (and as PMTiles), bad export options, and ring validity on real census geometry from
//! `../shared/data` (TIGER blocks, LA tracts with coastline and islands) at many zooms.
#![allow(clippy::unwrap_used)]

mod common;
mod mvt_check;

use std::path::Path;
use std::process::Command;

use belong::ingest::blocks::{BlockReadOptions, read_blocks};
use belong::tiles::{Geometry, SourceFeature, SourceLayer, TileId, TileSource};
use common::{demo_dir, run_ok, shared_data, stderr, stdout};

fn load_demo(db: &Path) {
    run_ok(db, &["demo", "load", "--dir", demo_dir().to_str().unwrap()], 0);
}

fn gdal_installed() -> bool {
    let ok = Command::new("ogrinfo").arg("--version").output().is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("skipping the GDAL part: ogrinfo not found (install Debian's gdal-bin; .ci/run does)");
    }
    ok
}

fn ogrinfo(args: &[&str]) -> String {
    let out = Command::new("ogrinfo").args(args).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "ogrinfo {args:?}: {text}\n{}", String::from_utf8_lossy(&out.stderr));
    text
}

#[test]
fn export_writes_a_pyramid_that_gdal_and_pmtiles_readers_open() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("belong.db");
    load_demo(&db);
    let out = dir.path().join("tiles");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("README.md"), "kept").unwrap();
    // A stale zoom from an earlier export must not survive.
    std::fs::create_dir_all(out.join("3/1")).unwrap();
    let pm = dir.path().join("demo.pmtiles");
    let o = run_ok(
        &db,
        &[
            "tiles",
            "export",
            "--out",
            out.to_str().unwrap(),
            "--minzoom",
            "12",
            "--maxzoom",
            "15",
            "--pmtiles",
            pm.to_str().unwrap(),
        ],
        0,
    );
    let text = stdout(&o);
    assert!(text.contains("wrote") && text.contains("z15:"), "{text}");
    assert_eq!(std::fs::read_to_string(out.join("README.md")).unwrap(), "kept");
    assert!(!out.join("3").exists(), "the stale zoom folder was replaced");
    assert!(!std::fs::read_dir(&out).unwrap().any(|e| e.unwrap().file_name().to_string_lossy().starts_with('.')));

    let tj: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("tiles.json")).unwrap()).unwrap();
    assert_eq!(tj["tilejson"], "3.0.0");
    assert_eq!(tj["tiles"][0], "{z}/{x}/{y}.mvt");
    assert_eq!((tj["minzoom"].as_u64(), tj["maxzoom"].as_u64()), (Some(12), Some(15)));
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("metadata.json")).unwrap()).unwrap();
    assert_eq!(meta["format"], "pbf");
    assert!(meta["json"].as_str().unwrap().contains("vector_layers"));

    // Every written tile is valid; the HQ z14 tile is there.
    let mut files = 0;
    for z in 12..=15 {
        for x in std::fs::read_dir(out.join(z.to_string())).unwrap() {
            for y in std::fs::read_dir(x.unwrap().path()).unwrap() {
                let bytes = std::fs::read(y.unwrap().path()).unwrap();
                for f in mvt_check::decode_raw(&bytes) {
                    if f.kind == 3 {
                        mvt_check::assert_valid_polygon(&f.parts, &f.layer);
                    }
                }
                files += 1;
            }
        }
    }
    assert!(files > 20, "{files} tiles");
    assert!(out.join("14/2808/6542.mvt").is_file());

    let head = std::fs::read(&pm).unwrap();
    assert_eq!(&head[..7], b"PMTiles");
    assert_eq!(head[7], 3, "PMTiles version 3");
    assert!(!dir.path().join("demo.pmtiles.partial").exists());

    if !gdal_installed() {
        return;
    }
    // GDAL opens a zoom level of the pyramid (with metadata.json beside it) ...
    let z14 = format!("MVT:{}", out.join("14").display());
    let listing = ogrinfo(&["-ro", "-q", &z14]);
    for layer in ["blocks", "resources", "school-readiness"] {
        assert!(listing.contains(layer), "{listing}");
    }
    let blocks = ogrinfo(&["-ro", "-so", &z14, "blocks"]);
    assert!(blocks.contains("Geometry: Multi Polygon"), "{blocks}");
    assert!(blocks.contains("block_id: String"), "{blocks}");
    let n: u64 = blocks.lines().find_map(|l| l.trim().strip_prefix("Feature Count: ")).unwrap().parse().unwrap();
    assert!(n >= 500, "every demo block is in some z14 tile: {n}");
    // ... and a single tile, which it places in Web Mercator.
    let one = ogrinfo(&["-ro", "-so", out.join("14/2808/6542.mvt").to_str().unwrap(), "blocks"]);
    assert!(one.contains("Pseudo-Mercator"), "{one}");
}

#[test]
fn bad_export_options_are_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("belong.db");
    let out = dir.path().join("tiles");
    let o = run_ok(&db, &["tiles", "export", "--out", out.to_str().unwrap()], 1);
    assert!(stderr(&o).contains("no blocks in the database"), "{}", stderr(&o));
    load_demo(&db);
    let o = run_ok(&db, &["tiles", "export", "--out", out.to_str().unwrap(), "--layers", "blocks,roads"], 1);
    assert!(stderr(&o).contains("no tile layer \"roads\""), "{}", stderr(&o));
    let o = run_ok(&db, &["tiles", "export", "--out", out.to_str().unwrap(), "--minzoom", "15", "--maxzoom", "12"], 1);
    assert!(stderr(&o).contains("minzoom <= maxzoom"), "{}", stderr(&o));
    let o = run_ok(&db, &["tiles", "export", "--maxzoom", "30"], 2);
    assert!(stderr(&o).contains("30"), "{}", stderr(&o));
    assert!(!out.exists() || std::fs::read_dir(&out).unwrap().next().is_none(), "nothing written");
}

/// Every tile over `layer`'s bounds at `zooms` decodes with valid rings; returns features seen.
fn check_pyramid(source: &TileSource, zooms: std::ops::RangeInclusive<u8>) -> usize {
    let bounds = source.layers()[0].bounds.unwrap();
    let mut features = 0;
    for z in zooms {
        let (xs, ys) = TileId::range(z, bounds);
        for x in xs {
            for y in ys.clone() {
                let bytes = source.render(&["areas"], TileId { z, x, y });
                if bytes.is_empty() {
                    continue;
                }
                for f in mvt_check::decode_raw(&bytes) {
                    mvt_check::assert_valid_polygon(&f.parts, &format!("z{z}/{x}/{y}"));
                    features += 1;
                }
            }
        }
    }
    features
}

fn source_of(path: &Path, opts: &BlockReadOptions) -> TileSource {
    let read = read_blocks(path, opts).unwrap();
    let features = read
        .blocks
        .iter()
        .map(|b| SourceFeature {
            geometry: Geometry::area(&b.geometry),
            properties: vec![("id".into(), b.id.clone().into())],
        })
        .collect();
    TileSource::new(vec![SourceLayer::new("areas", "test", features)])
}

#[test]
fn real_tiger_blocks_give_valid_rings_from_z8_to_z14() {
    let Some(data) = shared_data() else { return };
    let source = source_of(
        &data.join("tiger-blocks-osceola-ia-2010/tl_2010_19143_tabblock10.shp"),
        &BlockReadOptions::default(),
    );
    let n = check_pyramid(&source, 8..=14);
    assert!(n > 1259, "{n}");
}

#[test]
fn real_la_tracts_with_coastline_and_islands_give_valid_rings_from_z5_to_z12() {
    let Some(data) = shared_data() else { return };
    let opts = BlockReadOptions { id_field: Some("tract".into()), ..Default::default() };
    let source = source_of(&data.join("la-tracts-2020/la_tracts_2020.shp"), &opts);
    let n = check_pyramid(&source, 5..=12);
    assert!(n > 2495, "{n}");
}
