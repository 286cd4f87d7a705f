use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use geo::algorithm::winding_order::{Winding, WindingOrder};
use geo::{Area, Contains, Coord, Distance, Euclidean, MultiPolygon, Validation, unary_union};

use super::catchment::{BlockKind, Catchment};
use super::*;
use crate::core::BlockIndex;

fn spec(blocks: usize, seed: u64) -> DemoSpec {
    DemoSpec { blocks, residents: None, ambassadors: None, resources: None, seed }
}

fn crs() -> Crs {
    blocks_crs().unwrap()
}

fn catchment(blocks: usize, seed: u64) -> Catchment {
    Catchment::build(blocks, seed, &crs()).unwrap()
}

/// Every file of a generated folder, by name.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let path = e.unwrap().path();
            (path.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&path).unwrap())
        })
        .collect()
}

fn csv_rows(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let mut reader = csv::Reader::from_path(path).unwrap();
    let header = reader.headers().unwrap().iter().map(str::to_string).collect();
    let rows = reader.records().map(|r| r.unwrap().iter().map(str::to_string).collect()).collect();
    (header, rows)
}

#[test]
fn generates_demo_into_tempdir() {
    let dir = tempfile::tempdir().unwrap();
    let summary = generate(&spec(500, 1), dir.path()).unwrap();
    assert_eq!((summary.blocks, summary.residents, summary.ambassadors, summary.resources), (500, 20_000, 200, 150));
    let names: Vec<String> =
        summary.files.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
    assert_eq!(
        names,
        [
            "blocks.shp",
            "blocks.shx",
            "blocks.dbf",
            "blocks.prj",
            "residents.csv",
            "ambassadors.csv",
            "resources.csv",
            "indicators.csv",
            "README.md"
        ]
    );
    let total: u64 = summary.files.iter().map(|p| std::fs::metadata(p).unwrap().len()).sum();
    assert!(total < 3_000_000, "demo is {total} bytes");
    assert_eq!(std::fs::read_to_string(dir.path().join("blocks.prj")).unwrap(), BLOCKS_PRJ);

    // The shapefile reads back with text ids (leading zero kept) and numeric counts.
    let mut reader = shapefile::Reader::from_path(dir.path().join("blocks.shp")).unwrap();
    let records: Vec<_> = reader.iter_shapes_and_records().map(|r| r.unwrap()).collect();
    assert_eq!(records.len(), 500);
    for (shape, record) in &records {
        assert!(matches!(shape, shapefile::Shape::Polygon(_)));
        let Some(shapefile::dbase::FieldValue::Character(Some(geoid))) = record.get("GEOID20") else {
            panic!("GEOID20 missing: {record:?}")
        };
        assert!(geoid.starts_with("06037") && geoid.len() == 15, "{geoid}");
        assert!(matches!(record.get("POP20"), Some(shapefile::dbase::FieldValue::Numeric(Some(_)))));
        let Some(shapefile::dbase::FieldValue::Character(Some(name))) = record.get("NAME20") else { panic!() };
        assert!(name.starts_with("Block 1") || name.starts_with("Block "), "{name}");
    }

    let (header, residents) = csv_rows(&dir.path().join("residents.csv"));
    assert_eq!(header, ["id", "name", "phone", "email", "lon", "lat", "interested"]);
    assert_eq!(residents.len(), 20_000);
    assert_eq!(residents[0][0], "R000001");
    let interested = residents.iter().filter(|r| r[6] == "true").count() as f64 / 20_000.0;
    assert!((0.06..0.10).contains(&interested), "{interested}");
    assert!(residents.iter().any(|r| r[2].is_empty()) && residents.iter().any(|r| r[3].is_empty()));
    assert!(residents.iter().all(|r| r[4].split('.').nth(1).is_some_and(|d| d.len() == 7)));

    let (header, ambassadors) = csv_rows(&dir.path().join("ambassadors.csv"));
    assert_eq!(header, ["id", "name", "phone", "email", "lon", "lat", "interested", "active", "block_id"]);
    assert_eq!(ambassadors[0][0], "A0001");
    let (header, resources) = csv_rows(&dir.path().join("resources.csv"));
    assert_eq!(header, ["id", "name", "category", "lon", "lat", "address", "phone", "email", "url"]);
    assert_eq!(resources[0][0], "RES001");
    let (header, indicators) = csv_rows(&dir.path().join("indicators.csv"));
    assert_eq!(header, ["block_id", "indicator", "value", "date"]);
    assert_eq!(indicators.len(), summary.indicators);
    let readme = std::fs::read_to_string(dir.path().join("README.md")).unwrap();
    assert!(readme.contains("belong demo generate --out data/ --blocks 500 --seed 1"));
    assert!(readme.contains("EPSG:2229"));
}

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    let spec_a = DemoSpec { blocks: 300, residents: Some(3000), ambassadors: None, resources: None, seed: 7 };
    let (a, b, c) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    generate(&spec_a, a.path()).unwrap();
    generate(&spec_a, b.path()).unwrap();
    generate(&DemoSpec { seed: 8, ..spec_a.clone() }, c.path()).unwrap();
    let (fa, fb, fc) = (files(a.path()), files(b.path()), files(c.path()));
    assert_eq!(fa.len(), 9);
    for (name, bytes) in &fa {
        assert!(bytes == &fb[name], "{name} differs between two runs with the same seed");
    }
    for name in ["blocks.shp", "blocks.dbf", "residents.csv", "ambassadors.csv", "resources.csv", "indicators.csv"] {
        assert!(fa[name] != fc[name], "{name} is the same for seeds 7 and 8");
    }
}

#[test]
fn residents_count_does_not_change_the_blocks() {
    let few = DemoSpec { residents: Some(10), ..spec(120, 3) };
    assert_eq!(blocks_wgs84(&few), blocks_wgs84(&spec(120, 3)));
}

#[test]
fn block_count_is_exact() {
    for n in [1, 2, 3, 7, 20, 59, 500, 1234, 4321] {
        let c = catchment(n, 1);
        assert_eq!(c.blocks.len(), n, "asked for {n}");
    }
    assert_eq!(blocks_wgs84(&spec(1234, 99)).len(), 1234);
    assert!(blocks_wgs84(&spec(0, 1)).is_empty());
    assert!(matches!(generate(&spec(0, 1), Path::new("/nonexistent")), Err(DemoError::InvalidSpec(_))));
}

#[test]
fn tiny_and_odd_specs_generate() {
    for (blocks, residents, ambassadors, resources) in [
        (1, None, None, None),
        (2, Some(0), Some(0), Some(0)),
        (3, Some(5), Some(9), Some(1)),
        (40, None, Some(100), None),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let s = DemoSpec { blocks, residents, ambassadors, resources, seed: 5 };
        let summary = generate(&s, dir.path()).unwrap();
        assert_eq!(summary.blocks, blocks);
        assert_eq!(summary.residents, s.resident_count());
        assert_eq!(summary.ambassadors, s.ambassador_count());
        assert_eq!(summary.resources, s.resource_count());
    }
}

#[test]
fn ids_are_unique_census_geoids_in_contiguous_tracts() {
    for n in [500, 1234] {
        let c = catchment(n, 1);
        let ids: HashSet<&str> = c.blocks.iter().map(|b| b.geoid.as_str()).collect();
        assert_eq!(ids.len(), n);
        let mut per_tract: BTreeMap<&str, usize> = BTreeMap::new();
        for b in &c.blocks {
            assert_eq!(b.geoid.len(), 15);
            assert!(b.geoid.starts_with("06037") && b.geoid.bytes().all(|c| c.is_ascii_digit()), "{}", b.geoid);
            assert_eq!(b.geoid, format!("06037{}{}", b.tract, b.code));
            assert!(b.code.starts_with('1') && b.code.len() == 4);
            *per_tract.entry(b.tract.as_str()).or_default() += 1;
        }
        let sizes: Vec<usize> = per_tract.values().copied().collect();
        let typical = sizes.iter().filter(|&&s| (30..=60).contains(&s)).count();
        assert!(typical * 10 >= sizes.len() * 7, "tract sizes {sizes:?}");
        assert!(sizes.iter().all(|&s| s <= 80), "tract sizes {sizes:?}");
        // The headquarters' real tract comes first.
        assert!(per_tract.contains_key("221120"));
    }
}

#[test]
fn polygons_are_valid_and_wound_for_shapefiles() {
    for n in [500, 1234] {
        for b in &catchment(n, 1).blocks {
            assert!(b.geometry.is_valid(), "{} is invalid: {:?}", b.geoid, b.geometry.validation_errors());
            for p in &b.geometry.0 {
                assert_eq!(p.exterior().winding_order(), Some(WindingOrder::Clockwise), "{}", b.geoid);
                assert!(p.exterior().is_closed());
                for hole in p.interiors() {
                    assert_eq!(hole.winding_order(), Some(WindingOrder::CounterClockwise), "{}", b.geoid);
                }
            }
        }
    }
}

#[test]
fn blocks_tile_the_catchment_without_gaps_or_overlaps() {
    let c = catchment(500, 1);
    let sum: f64 = c.blocks.iter().map(|b| b.geometry.unsigned_area()).sum();
    let union: MultiPolygon<f64> = unary_union(c.blocks.iter().map(|b| &b.geometry));
    let area = union.unsigned_area();
    assert!((sum - area).abs() < 1e-6 * area, "sum of areas {sum} vs union {area}: blocks overlap");
    assert_eq!(union.0.len(), 1, "the catchment falls apart");
    assert!(union.0[0].interiors().is_empty(), "the catchment has gaps");
}

#[test]
fn has_a_block_with_a_hole_and_a_multipolygon_block() {
    for n in [500, 1234] {
        let c = catchment(n, 1);
        let holed: Vec<_> =
            c.blocks.iter().filter(|b| b.geometry.0.iter().any(|p| !p.interiors().is_empty())).collect();
        assert!(!holed.is_empty());
        for b in holed {
            // The hole is exactly filled by another block.
            let hole = &b.geometry.0[0].interiors()[0];
            let reversed: Vec<Coord<f64>> = hole.0.iter().rev().copied().collect();
            let inner = c.blocks.iter().filter(|o| o.kind == BlockKind::Enclosed);
            assert!(inner.clone().any(|o| o.geometry.0[0].exterior().0 == reversed), "{}", b.geoid);
        }
        let multi: Vec<_> = c.blocks.iter().filter(|b| b.geometry.0.len() > 1).collect();
        assert!(!multi.is_empty());
        for b in multi {
            let gap = Euclidean.distance(&b.geometry.0[0], &b.geometry.0[1]);
            assert!(gap > 100.0, "{} parts are {gap} ft apart", b.geoid);
        }
        assert!(c.blocks.iter().any(|b| b.kind == BlockKind::Street && b.geometry.0[0].exterior().0.len() > 7));
    }
}

#[test]
fn catchment_is_within_3_km_of_hq() {
    let c = catchment(500, 1);
    let feet = 3000.0 / 0.304_800_609_601_219;
    let mut farthest: f64 = 0.0;
    for b in &c.blocks {
        for p in &b.geometry.0 {
            for q in &p.exterior().0 {
                farthest = farthest.max(((q.x - c.frame.hq.x).powi(2) + (q.y - c.frame.hq.y).powi(2)).sqrt());
            }
        }
    }
    assert!(farthest < feet, "a vertex is {farthest} ft from HQ");
    assert!(farthest > feet / 3.0, "catchment suspiciously small: {farthest} ft");
    // HQ itself is in the catchment.
    assert!(c.blocks.iter().any(|b| b.geometry.contains(&geo::Point::from(c.frame.hq))));
}

#[test]
fn residents_lie_in_their_block_or_deliberately_outside() {
    let c = catchment(500, 1);
    let crs = crs();
    let rows = people::residents(&c, 20_000, 1, &crs).unwrap();
    let outside: Vec<_> = rows.iter().filter(|r| r.home.is_none()).collect();
    assert!((20..=60).contains(&outside.len()), "{} outside", outside.len());
    for r in &rows {
        match r.home {
            Some(b) => assert!(c.blocks[b].geometry.contains(&geo::Point::from(r.xy)), "{} not in its block", r.id()),
            None => assert!(!c.blocks.iter().any(|b| b.geometry.contains(&geo::Point::from(r.xy))), "{}", r.id()),
        }
    }
    // End to end: the written lon/lat (7 decimals) lands in the same block through the index.
    let blocks = blocks_wgs84(&spec(500, 1));
    let index = BlockIndex::new(&blocks);
    for r in &rows {
        let (lon, lat) = (format!("{:.7}", r.lon).parse().unwrap(), format!("{:.7}", r.lat).parse().unwrap());
        assert_eq!(index.locate(lon, lat), r.home.map(|b| c.blocks[b].geoid.as_str()), "{}", r.id());
    }
    // Population weighting: no one lives on the freeway or in a park.
    assert!(rows.iter().filter_map(|r| r.home).all(|b| c.blocks[b].population > 0));
}

#[test]
fn coverage_is_about_a_third_and_grows_from_hq() {
    for (n, seed) in [(500, 1), (500, 2), (1234, 1)] {
        let s = spec(n, seed);
        let c = catchment(n, seed);
        let rows = people::ambassadors(&c, s.ambassador_count(), s.resident_count(), seed, &crs()).unwrap();
        assert_eq!(rows.len(), n * 2 / 5);
        let mut covered = vec![0u32; n];
        for a in rows.iter().filter(|a| a.active) {
            covered[a.adopted.or(a.home).unwrap()] += 1;
        }
        let share = covered.iter().filter(|&&k| k > 0).count() as f64 / n as f64;
        assert!((0.28..=0.38).contains(&share), "coverage {share}");
        assert!(covered.iter().any(|&k| k >= 2));
        assert!(covered.iter().all(|&k| k <= 3));
        let inactive = rows.iter().filter(|a| !a.active).count();
        let adopters: Vec<_> = rows.iter().filter(|a| a.adopted.is_some()).collect();
        assert!(inactive > 0 && !adopters.is_empty());
        for a in adopters {
            assert_ne!(a.adopted, a.home);
            assert!(c.blocks[a.home.unwrap()].neighbours.contains(&(a.adopted.unwrap() as u32)));
        }
        for a in &rows {
            assert!(c.blocks[a.home.unwrap()].geometry.contains(&geo::Point::from(a.xy)));
        }
        // Clustered around HQ: covered blocks are nearer than uncovered ones on average.
        let mean = |want: bool| {
            let d: Vec<f64> = (0..n)
                .filter(|&b| (covered[b] > 0) == want && c.blocks[b].population > 0)
                .map(|b| Euclidean.distance(geo::Point::from(c.blocks[b].inside), geo::Point::from(c.frame.hq)))
                .collect();
            d.iter().sum::<f64>() / d.len() as f64
        };
        assert!(mean(true) * 1.5 < mean(false));
    }
}

#[test]
fn resources_are_inside_and_mostly_partners() {
    let c = catchment(500, 1);
    let rows = resources::resources(&c, 150, 1, &crs()).unwrap();
    assert_eq!(rows.len(), 150);
    let partners = rows.iter().filter(|r| r.category == "partner").count();
    assert_eq!(partners, 75);
    let names: HashSet<&str> = rows.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names.len(), 150, "resource names repeat");
    for r in &rows {
        assert!(c.blocks[r.block].geometry.contains(&geo::Point::new(
            crs().from_wgs84(r.lon, r.lat).unwrap().0,
            crs().from_wgs84(r.lon, r.lat).unwrap().1
        )));
        assert!(r.address.ends_with(", Los Angeles, CA 90006") || r.address.contains(", Los Angeles, CA 900"));
    }
    assert!(rows.iter().any(|r| r.name == "Magnolia Elementary School"));
    assert!(rows.iter().any(|r| r.name == "Pico-Union Family Clinic"));
    // Schools and parks fill the blocks enclosed by other blocks.
    assert!(rows.iter().any(|r| c.blocks[r.block].kind == BlockKind::Enclosed));
}

#[test]
fn school_readiness_covers_about_ninety_percent_smoothly() {
    let c = catchment(500, 1);
    let rows = indicators::school_readiness(&c, 1);
    let share = rows.len() as f64 / 500.0;
    assert!((0.85..=0.95).contains(&share), "{share}");
    assert!(rows.iter().all(|r| (0.0..=100.0).contains(&r.value) && c.blocks[r.block].children > 0));
    // Neighbours differ far less than random pairs.
    let value: BTreeMap<usize, f64> = rows.iter().map(|r| (r.block, r.value)).collect();
    let (mut near, mut k) = (0.0, 0.0);
    for (&b, &v) in &value {
        for &o in &c.blocks[b].neighbours {
            if let Some(w) = value.get(&(o as usize)) {
                near += (v - w).abs();
                k += 1.0;
            }
        }
    }
    let values: Vec<f64> = value.values().copied().collect();
    let far: f64 =
        values.iter().zip(values.iter().rev()).map(|(a, b)| (a - b).abs()).sum::<f64>() / values.len() as f64;
    assert!(near / k < far * 0.7, "neighbours differ by {} vs {far}", near / k);
}

#[test]
fn blocks_wgs84_equals_importing_the_shapefile() {
    let dir = tempfile::tempdir().unwrap();
    let s = DemoSpec { residents: Some(10), ..spec(500, 1) };
    generate(&s, dir.path()).unwrap();
    let read = crate::ingest::blocks::read_blocks(&dir.path().join("blocks.shp"), &Default::default()).unwrap();
    let ours = blocks_wgs84(&s);
    assert_eq!(read.blocks.len(), ours.len());
    for (a, b) in read.blocks.iter().zip(&ours) {
        assert_eq!((&a.id, &a.name, &a.attributes), (&b.id, &b.name, &b.attributes));
        assert_eq!(a.geometry.0.len(), b.geometry.0.len(), "{}", a.id);
        for (pa, pb) in a.geometry.0.iter().zip(&b.geometry.0) {
            assert_eq!(pa.interiors().len(), pb.interiors().len());
            for (ra, rb) in std::iter::once(pa.exterior())
                .chain(pa.interiors())
                .zip(std::iter::once(pb.exterior()).chain(pb.interiors()))
            {
                assert_eq!(ra.0.len(), rb.0.len(), "{}", a.id);
                for (ca, cb) in ra.0.iter().zip(&rb.0) {
                    assert!((ca.x - cb.x).abs() < 1e-9 && (ca.y - cb.y).abs() < 1e-9, "{}: {ca:?} vs {cb:?}", a.id);
                }
            }
        }
        assert_eq!(a.tract(), Some(&b.id[..11]));
    }
}

#[test]
fn parallel_jobs_come_back_in_order() {
    let squares = sample::in_parallel(37, |k| k * k);
    assert_eq!(squares, (0..37).map(|k| k * k).collect::<Vec<_>>());
    assert!(sample::in_parallel(0, |k| k).is_empty());
}
