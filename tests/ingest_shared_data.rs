//! The spatial readers against real third-party data in `../shared/data` (see its README).
//! Each test skips with a message when that folder is absent (a fresh clone) and runs when it
//! is present (CI).
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use belong::ingest::blocks::{BlockReadOptions, read_blocks};
use belong::ingest::geojson::read_points;
use belong::ingest::{Crs, IngestError};
use geo::{Intersects, Rect, coord};

fn shared_data() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data");
    if dir.is_dir() {
        Some(dir)
    } else {
        println!("skipping: ../shared/data not found");
        None
    }
}

/// Los Angeles County, generously.
fn in_la(lon: f64, lat: f64) -> bool {
    (-119.0..=-117.0).contains(&lon) && (33.0..=35.0).contains(&lat)
}

#[test]
fn la_tracts_2020_from_state_plane_feet() {
    let Some(data) = shared_data() else { return };
    let opts = BlockReadOptions { id_field: Some("tract".into()), ..Default::default() };
    let read = read_blocks(&data.join("la-tracts-2020/la_tracts_2020.shp"), &opts).unwrap();
    assert_eq!(read.blocks.len(), 2495);
    assert!(read.rejected.is_empty());
    assert_eq!(read.crs, "NAD_1983_StatePlane_California_V_FIPS_0405_Feet");
    assert_eq!(read.id_field, "tract");
    assert!(read.warnings.is_empty(), "{:?}", read.warnings);
    // The county reaches down to San Clemente Island (tract 06037599100, lat 32.80), so the
    // latitude bound is 32.7 here rather than 33 (the .shp's bbox reprojected with pyproj is
    // lon -118.931..-117.644, lat 32.799..34.823); other tracts start inside lat 33..35.
    let mut southernmost = f64::INFINITY;
    for block in &read.blocks {
        for p in &block.geometry.0 {
            for c in p.exterior().0.iter().chain(p.interiors().iter().flat_map(|r| r.0.iter())) {
                assert!(
                    (-119.0..=-117.0).contains(&c.x) && (32.7..=35.0).contains(&c.y),
                    "tract {} has ({}, {})",
                    block.id,
                    c.x,
                    c.y
                );
                southernmost = southernmost.min(c.y);
            }
        }
    }
    assert!(southernmost < 33.0, "San Clemente Island is missing: {southernmost}");
    let mainland = read.blocks.iter().filter(|b| b.id != "06037599100" && b.id != "06037599000");
    for block in mainland {
        let c = block.geometry.0[0].exterior().0[0];
        assert!(in_la(c.x, c.y), "tract {} starts at ({}, {})", block.id, c.x, c.y);
    }

    // First vertex of the first record (tract 06037101110) is (6470790.84996447,
    // 1916994.68301915) US ft. Reference computed independently with pyproj 3.7.2 / PROJ 9.5.1:
    //   Transformer.from_crs("EPSG:2229", "EPSG:4326", always_xy=True).transform(x, y)
    let tract = read.blocks.iter().find(|b| b.id == "06037101110").unwrap();
    assert_eq!(tract.attributes["below_fpl"], serde_json::json!(476));
    assert_eq!(tract.attributes["bfpl_pct"], serde_json::json!(11.7));
    let (ref_lon, ref_lat) = (-118.30075299952279, 34.25960899977899);
    let nearest = tract.geometry.0[0]
        .exterior()
        .0
        .iter()
        .map(|c| (c.x - ref_lon).abs().max((c.y - ref_lat).abs()))
        .fold(f64::INFINITY, f64::min);
    assert!(nearest < 1e-6, "no vertex within 1e-6 deg of the pyproj reference (closest {nearest})");

    // Tracts meeting the box around Children's Bureau's headquarters. The README says 84;
    // reprojecting this .shp with pyproj and testing with shapely `intersects` gives 83, the
    // same 83 tract ids as here. The headquarters is in tract 06037221120 (README).
    let hq_box = Rect::new(coord! { x: -118.30, y: 34.03 }, coord! { x: -118.26, y: 34.07 });
    assert_eq!(read.blocks.iter().filter(|b| b.geometry.intersects(&hq_box)).count(), 83);
    let hq = geo::Point::new(-118.2856, 34.0409);
    let home: Vec<&str> = read.blocks.iter().filter(|b| b.geometry.intersects(&hq)).map(|b| b.id.as_str()).collect();
    assert_eq!(home, ["06037221120"]);
}

#[test]
fn tiger_2010_blocks_detect_geoid10() {
    let Some(data) = shared_data() else { return };
    let path = data.join("tiger-blocks-osceola-ia-2010/tl_2010_19143_tabblock10.shp");
    let read = read_blocks(&path, &BlockReadOptions::default()).unwrap();
    assert_eq!(read.blocks.len(), 1259);
    assert_eq!(read.id_field, "GEOID10");
    assert_eq!(read.name_field.as_deref(), Some("NAME10"));
    assert!(read.crs.contains("North_American_1983"), "{}", read.crs);
    for block in &read.blocks {
        assert_eq!(block.id.len(), 15, "{}", block.id);
        assert!(block.id.starts_with("19143"), "{}", block.id);
        assert!(block.name.as_deref().is_some_and(|n| n.starts_with("Block ")), "{:?}", block.name);
        let c = block.geometry.0[0].exterior().0[0];
        // Osceola County, Iowa.
        assert!((-96.0..=-95.0).contains(&c.x) && (43.0..=43.6).contains(&c.y), "{c:?}");
        assert!(block.attributes.contains_key("ALAND10"));
    }
}

#[test]
fn esri_json_hospitals_need_their_crs() {
    let Some(data) = shared_data() else { return };
    let path = data.join("quirks/hospitals_esri_json.geojson");
    // Esri JSON without spatialReference, projected numbers: we do not guess.
    match read_points(&path, None) {
        Err(IngestError::Crs { reason, .. }) => {
            assert!(reason.contains("Esri JSON") && reason.contains("--source-crs"), "{reason}")
        }
        other => panic!("expected a CRS error, got {other:?}"),
    }
    let crs = Crs::parse("EPSG:2229").unwrap();
    let read = read_points(&path, Some(&crs)).unwrap();
    assert_eq!(read.points.len(), 23);
    assert!(read.rejected.is_empty(), "{:?}", read.rejected);
    assert!(read.warnings.iter().any(|w| w.contains("Esri JSON")), "{:?}", read.warnings);
    for p in &read.points {
        assert!(in_la(p.lon, p.lat), "{p:?}");
        // The file also carries the geocoder's own lon/lat: an independent check.
        let lon = p.properties["longitude"].as_f64().unwrap();
        let lat = p.properties["latitude"].as_f64().unwrap();
        assert!((p.lon - lon).abs() < 1e-4 && (p.lat - lat).abs() < 1e-4, "{} vs ({lon}, {lat})", p.number);
    }
}

#[test]
fn childcare_with_legacy_crs_member_epsg3310() {
    let Some(data) = shared_data() else { return };
    let read = read_points(&data.join("quirks/childcare_epsg3310_crs_member.geojson"), None).unwrap();
    assert_eq!(read.crs, "EPSG:3310");
    assert_eq!(read.points.len(), 117);
    assert!(read.rejected.is_empty(), "{:?}", read.rejected);
    for p in &read.points {
        assert!(in_la(p.lon, p.lat), "{p:?}");
    }
}

#[test]
fn homeless_shelters_keep_the_far_away_one() {
    let Some(data) = shared_data() else { return };
    let read = read_points(&data.join("la-resources/homeless_shelters.geojson"), None).unwrap();
    assert_eq!(read.crs, "EPSG:4326");
    assert_eq!(read.points.len(), 182);
    assert!(read.rejected.is_empty(), "{:?}", read.rejected);
    assert!(read.points.iter().any(|p| (p.lon - -138.0).abs() < 0.5 && (p.lat - 27.0).abs() < 0.5));
}

#[test]
fn neighborhoods_with_four_invalid_geometries() {
    let Some(data) = shared_data() else { return };
    let path = data.join("la-neighborhoods/la-county-neighborhoods-v6.geojson");
    let strict = BlockReadOptions { id_field: Some("slug".into()), ..Default::default() };
    let rejections = match read_blocks(&path, &strict) {
        Err(IngestError::Invalid { rejections, .. }) => rejections,
        other => panic!("expected Invalid, got {other:?}"),
    };
    // The same four that GEOS (shapely 2.2 `explain_validity`) reports as ring self-intersections.
    let locations: Vec<&str> = rejections.iter().map(|r| r.location.as_str()).collect();
    assert_eq!(locations, ["feature 186", "feature 208", "feature 220", "feature 274"]);
    for r in &rejections {
        assert!(r.reason.starts_with("ring self-intersects near ("), "{r}");
    }

    let lenient = BlockReadOptions { id_field: Some("slug".into()), skip_invalid: true, ..Default::default() };
    let read = read_blocks(&path, &lenient).unwrap();
    assert_eq!(read.blocks.len(), 314);
    assert_eq!(read.rejected, rejections);
    assert_eq!(read.name_field.as_deref(), Some("name"));
    assert!(read.blocks.iter().any(|b| b.name.as_deref() == Some("Westlake")));
}
