//! Property tests of the geometry importers (issue 12, "property tests for every parser"):
//! GeoJSON and Esri JSON documents and shapefiles — random, truncated or mutated from valid ones —
//! are read or refused with a short reason naming the file, never a panic, and never an
//! allocation the file's size cannot account for (a record claiming 2^31 points is refused, not
//! reserved).
#![allow(clippy::unwrap_used)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use belong::ingest::IngestError;
use belong::ingest::blocks::{BlockReadOptions, read_blocks};
use belong::ingest::geojson::read_points;
use proptest::prelude::*;
use serde_json::{Value, json};
use shapefile::dbase::{self, FieldValue};

/// The system allocator, noting the largest single request made on a thread while it is armed
/// (requests that fail count too: a 32 GiB `try_reserve` is the bug even when refused).
struct Largest;

thread_local! {
    static ARMED: Cell<bool> = const { Cell::new(false) };
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    // `try_with`: the allocator runs during thread teardown too.
    let _ = ARMED.try_with(|armed| {
        if armed.get() {
            let _ = LARGEST.try_with(|l| l.set(l.get().max(size)));
        }
    });
}

// SAFETY: every call is forwarded to `System` unchanged; `note` only touches const-initialised
// thread-locals, which never allocate.
unsafe impl GlobalAlloc for Largest {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: the caller's contract, passed on.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Largest = Largest;

/// `f`'s result and the largest single allocation it asked for, in bytes.
fn largest_allocation<T>(f: impl FnOnce() -> T) -> (T, usize) {
    LARGEST.with(|l| l.set(0));
    ARMED.with(|a| a.set(true));
    let out = f();
    ARMED.with(|a| a.set(false));
    (out, LARGEST.with(Cell::get))
}

/// Most a reader may ask for at once, for input of `bytes`: a parsed document or a list of
/// coordinates is a small multiple of the text, plus the fixed cost of a CRS and a few buffers.
fn allocation_bound(bytes: usize) -> usize {
    32 * bytes + (8 << 20)
}

/// A refusal is short and says which file: every line under 2,000 characters, at most the
/// header, 50 records and a "... and N more" line.
fn assert_brief(err: &IngestError, file: &str) -> Result<(), TestCaseError> {
    let msg = err.to_string();
    prop_assert!(!msg.trim().is_empty(), "empty message: {err:?}");
    prop_assert!(msg.contains(file), "the message does not name {file}: {msg}");
    let longest = msg.lines().map(|l| l.chars().count()).max().unwrap_or(0);
    prop_assert!(longest < 2_000, "a line of {longest} characters: {}", msg.chars().take(3_000).collect::<String>());
    prop_assert!(msg.lines().count() <= 52, "{} lines", msg.lines().count());
    Ok(())
}

/// `cases` per property, or `PROPTEST_CASES` when set (a longer fuzzing run).
fn config(cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(cases);
    ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() }
}

// ----- GeoJSON and Esri JSON -----

/// Numbers as they come in real and broken files: ordinary coordinates, huge, tiny, negative
/// zero, integers past 2^53 and past i64.
fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        (-180.0f64..180.0).prop_map(|f| json!(f)),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f).map(Value::Number)),
        Just(json!(f64::MAX)),
        Just(json!(f64::MIN_POSITIVE)),
        Just(json!(-0.0)),
        Just(json!(u64::MAX)),
        Just(json!(i64::MIN)),
        any::<i32>().prop_map(|i| json!(i)),
    ]
}

/// Short and long text, with control characters and quotes.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9_ ]{0,12}",
        "\\PC{0,40}",
        ".{0,20}",
        (1usize..6).prop_map(|k| "x\u{1}\"".repeat(k * 1_000)),
        Just("GEOID20".to_string()),
        Just("NaN".to_string()),
    ]
}

/// Any JSON value, a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf =
        prop_oneof![Just(Value::Null), any::<bool>().prop_map(Value::Bool), number(), text().prop_map(Value::String),];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((text(), inner), 0..6).prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// Coordinates: positions, rings, lists of rings and of polygons, nested anyhow.
fn coordinates() -> impl Strategy<Value = Value> {
    let position = prop_oneof![
        4 => (number(), number()).prop_map(|(x, y)| json!([x, y])),
        1 => prop::collection::vec(number(), 0..4).prop_map(Value::Array),
        1 => any_json(),
    ];
    position.prop_recursive(4, 64, 8, |inner| prop::collection::vec(inner, 0..8).prop_map(Value::Array))
}

/// A GeoJSON geometry, well-formed or not, with geometry collections nested inside each other.
fn geometry() -> impl Strategy<Value = Value> {
    let kind = prop_oneof![
        Just("Point"),
        Just("MultiPoint"),
        Just("LineString"),
        Just("Polygon"),
        Just("MultiPolygon"),
        Just("GeometryCollection"),
        Just("Feature"),
        Just("polygon"),
    ];
    let simple = (kind, coordinates()).prop_map(|(kind, c)| json!({"type": kind, "coordinates": c}));
    let leaf = prop_oneof![8 => simple, 1 => any_json()];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop::collection::vec(inner, 0..4).prop_map(|g| json!({"type": "GeometryCollection", "geometries": g}))
    })
}

/// An Esri JSON geometry: a point, rings, paths, or something else.
fn esri_geometry() -> impl Strategy<Value = Value> {
    prop_oneof![
        (any_json(), any_json()).prop_map(|(x, y)| json!({"x": x, "y": y})),
        (number(), number()).prop_map(|(x, y)| json!({"x": x, "y": y})),
        coordinates().prop_map(|r| json!({"rings": r})),
        coordinates().prop_map(|p| json!({"paths": p})),
        coordinates().prop_map(|p| json!({"points": p})),
        any_json(),
    ]
}

fn properties() -> impl Strategy<Value = Value> {
    let value = prop_oneof![text().prop_map(Value::String), number(), any_json()];
    prop_oneof![
        prop::collection::vec((text(), value.clone()), 0..5).prop_map(|kv| Value::Object(kv.into_iter().collect())),
        (text(), value).prop_map(|(id, v)| json!({"GEOID20": id, "NAME20": v})),
        any_json(),
    ]
}

fn crs_member() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        text().prop_map(|name| json!({"type": "name", "properties": {"name": name}})),
        "urn:ogc:def:crs:EPSG::[0-9]{1,6}".prop_map(|name| json!({"type": "name", "properties": {"name": name}})),
        any_json().prop_map(|code| json!({"type": "EPSG", "properties": {"code": code}})),
        any_json(),
    ]
}

fn spatial_reference() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<u64>().prop_map(|wkid| json!({"wkid": wkid})),
        prop_oneof![Just(4326u64), Just(102100), Just(2229), Just(3857)].prop_map(|w| json!({"latestWkid": w})),
        text().prop_map(|wkt| json!({"wkt": wkt})),
        any_json(),
    ]
}

/// A GeoJSON FeatureCollection (or a Feature, or a bare geometry) of arbitrary content.
fn geojson_document() -> impl Strategy<Value = Value> {
    let feature = (any_json(), properties(), geometry())
        .prop_map(|(id, props, g)| json!({"type": "Feature", "id": id, "properties": props, "geometry": g}))
        .boxed();
    prop_oneof![
        (prop::collection::vec(feature.clone(), 0..6), crs_member())
            .prop_map(|(f, crs)| json!({"type": "FeatureCollection", "crs": crs, "features": f})),
        feature,
        geometry(),
        any_json().prop_map(|f| json!({"type": "FeatureCollection", "features": f})),
    ]
}

/// An Esri JSON document (ArcGIS REST `f=json`), or GeoJSON with Esri parts mixed in.
fn esri_document() -> impl Strategy<Value = Value> {
    let feature = (properties(), esri_geometry()).prop_map(|(a, g)| json!({"attributes": a, "geometry": g})).boxed();
    prop_oneof![
        (prop::collection::vec(feature.clone(), 0..6), spatial_reference(), any_json()).prop_map(|(f, sr, gt)| {
            json!({"geometryType": gt, "spatialReference": sr, "fields": [], "features": f})
        }),
        prop::collection::vec(feature, 0..6).prop_map(|f| json!({"features": f})),
        (prop::collection::vec(geometry(), 0..4), spatial_reference())
            .prop_map(|(g, sr)| json!({"type": "FeatureCollection", "spatialReference": sr, "features": g})),
    ]
}

/// A valid GeoJSON block file and a valid Esri JSON point file, to truncate and mutate.
fn valid_samples() -> [Vec<u8>; 2] {
    let square = |id: &str, x: f64| {
        json!({"type": "Feature", "properties": {"GEOID20": id, "NAME20": "Block"}, "geometry": {"type": "Polygon",
            "coordinates": [[[x, 34.0], [x + 0.01, 34.0], [x + 0.01, 34.01], [x, 34.01], [x, 34.0]]]}})
    };
    let geojson =
        json!({"type": "FeatureCollection", "features": [square("060371", -118.3), square("060372", -118.29)]});
    let esri = json!({
        "geometryType": "esriGeometryPoint", "spatialReference": {"wkid": 102100, "latestWkid": 3857},
        "fields": [{"name": "name", "type": "esriFieldTypeString"}],
        "features": [
            {"attributes": {"name": "Library"}, "geometry": {"x": -13_168_000.5, "y": 4_035_000.25}},
            {"attributes": {"name": "Park"}, "geometry": {"rings": [[[-13_168_000.0, 4_035_000.0], [-13_167_000.0, 4_035_000.0], [-13_167_000.0, 4_036_000.0], [-13_168_000.0, 4_035_000.0]]]}}
        ]
    });
    [geojson.to_string().into_bytes(), esri.to_string().into_bytes()]
}

/// Read `bytes` as a block file and as a point file, under both extensions; check every refusal.
fn read_json_bytes(bytes: &[u8]) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    for name in ["fuzz.geojson", "fuzz.json"] {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let (blocks, largest) = largest_allocation(|| read_blocks(&path, &BlockReadOptions::default()));
        prop_assert!(largest <= allocation_bound(bytes.len()), "read_blocks asked for {largest} bytes at once");
        if let Err(e) = &blocks {
            assert_brief(e, name)?;
        }
        let (points, largest) = largest_allocation(|| read_points(&path, None));
        prop_assert!(largest <= allocation_bound(bytes.len()), "read_points asked for {largest} bytes at once");
        match &points {
            Err(e) => assert_brief(e, name)?,
            Ok(read) => {
                for r in &read.rejected {
                    prop_assert!(!r.reason.is_empty(), "a rejection without a reason: {r:?}");
                    prop_assert!(r.reason.chars().count() < 2_000, "a reason of {} characters", r.reason.len());
                }
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(128))]

    /// Any GeoJSON-shaped document (wrong types, huge numbers, nested geometry collections,
    /// long keys and ids) is read or refused briefly.
    #[test]
    fn geojson_documents_are_read_or_refused_with_a_short_reason(doc in geojson_document()) {
        read_json_bytes(doc.to_string().as_bytes())?;
    }

    /// Esri JSON, and GeoJSON with Esri members, goes down one path or the other without a
    /// panic; a refusal says why.
    #[test]
    fn esri_json_detection_never_panics_and_gives_a_reason(doc in esri_document()) {
        read_json_bytes(doc.to_string().as_bytes())?;
    }

    /// Valid samples cut anywhere or with bytes replaced: a JSON error with its position, or a
    /// read.
    #[test]
    fn truncated_and_mutated_json_files_are_refused_with_a_reason(
        sample in 0usize..2,
        cut in any::<prop::sample::Index>(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        truncate in any::<bool>(),
    ) {
        let mut bytes = valid_samples()[sample].clone();
        for (at, byte) in edits {
            let i = at.index(bytes.len());
            bytes[i] = byte;
        }
        if truncate {
            bytes.truncate(cut.index(bytes.len()));
        }
        read_json_bytes(&bytes)?;
    }

    /// Bytes that are not JSON at all (or barely): refused, with a reason.
    #[test]
    fn random_bytes_as_json_are_refused_with_a_reason(
        bytes in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..256),
            "[\\[\\]{}\",:0-9a-z ]{0,200}".prop_map(String::into_bytes),
        ]
    ) {
        read_json_bytes(&bytes)?;
    }
}

/// Deep nesting does not overflow the stack: serde_json's recursion limit refuses it.
#[test]
fn deeply_nested_geojson_is_refused_without_overflowing_the_stack() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("deep.geojson");
    let deep = format!(
        r#"{{"type":"FeatureCollection","features":[{{"type":"Feature","properties":{{}},"geometry":{{"type":"Polygon","coordinates":{}0{}}}}}]}}"#,
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    std::fs::write(&path, deep).unwrap();
    let err = read_blocks(&path, &BlockReadOptions::default()).unwrap_err().to_string();
    assert!(err.contains("deep.geojson") && err.contains("not valid JSON"), "{err}");
}

/// Found by `esri_json_detection_never_panics_and_gives_a_reason`: a malformed position was
/// quoted whole in its rejection (a 9,000-character line per feature).
#[test]
fn a_malformed_position_is_quoted_briefly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("long.geojson");
    let long = "x".repeat(100_000);
    let doc = json!({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"GEOID20": "1"}, "geometry": {"type": "Polygon", "coordinates": [[[long, 1], [0, 0]]]}},
        {"type": "Feature", "properties": {"GEOID20": "2"}, "geometry": {"type": "Polygon", "coordinates": [[long]]}}
    ]});
    std::fs::write(&path, doc.to_string()).unwrap();
    let err = read_blocks(&path, &BlockReadOptions::default()).unwrap_err().to_string();
    assert!(
        err.contains("feature 1")
            && err.contains("feature 2")
            && err.contains("(100006 characters)")
            && err.contains("(100002 characters)"),
        "{err}"
    );
    assert!(err.len() < 1_000, "{} bytes", err.len());
}

/// Found by `geojson_documents_are_read_or_refused_with_a_short_reason`: with no id field, the
/// message listed every property name in full (GeoJSON names have no length or number limit).
#[test]
fn a_file_with_huge_field_names_lists_them_briefly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fields.geojson");
    let properties: serde_json::Map<String, Value> =
        (0..2_000).map(|i| (format!("{i}{}", "k".repeat(5_000)), json!(1))).collect();
    let doc = json!({"type": "FeatureCollection", "features": [{"type": "Feature", "properties": properties,
        "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]}}]});
    std::fs::write(&path, doc.to_string()).unwrap();
    let err = read_blocks(&path, &BlockReadOptions::default()).unwrap_err().to_string();
    assert!(err.contains("no block id field") && err.contains("(2000 in all)"), "{}", &err[..err.len().min(500)]);
    assert!(err.len() < 4_000, "{} bytes", err.len());
    let opts = BlockReadOptions { id_field: Some("k".repeat(10_000)), ..BlockReadOptions::default() };
    let err = read_blocks(&path, &opts).unwrap_err().to_string();
    assert!(err.contains("(10000 characters)") && err.len() < 4_000, "{} bytes", err.len());
}

// ----- Shapefiles -----

/// A valid three-block shapefile in lon/lat with a `.prj`: (.shp, .shx, .dbf, .prj) bytes.
fn valid_shapefile() -> &'static [Vec<u8>; 4] {
    static FILES: OnceLock<[Vec<u8>; 4]> = OnceLock::new();
    FILES.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let shp = dir.path().join("blocks.shp");
        {
            let table = dbase::TableWriterBuilder::new()
                .add_character_field("GEOID20".try_into().unwrap(), 15)
                .add_character_field("NAME20".try_into().unwrap(), 10);
            let mut writer = shapefile::Writer::from_path(&shp, table).unwrap();
            let square = |x: f64, y: f64, d: f64| {
                // Shapefile exteriors are clockwise.
                [(x, y), (x, y + d), (x + d, y + d), (x + d, y), (x, y)]
                    .iter()
                    .map(|&(x, y)| shapefile::Point::new(x, y))
                    .collect::<Vec<_>>()
            };
            let hole: Vec<shapefile::Point> = square(-118.296, 34.004, 0.002).into_iter().rev().collect();
            let shapes = [
                shapefile::Polygon::with_rings(vec![
                    shapefile::PolygonRing::Outer(square(-118.3, 34.0, 0.01)),
                    shapefile::PolygonRing::Inner(hole),
                ]),
                shapefile::Polygon::with_rings(vec![shapefile::PolygonRing::Outer(square(-118.29, 34.0, 0.01))]),
                shapefile::Polygon::with_rings(vec![
                    shapefile::PolygonRing::Outer(square(-118.28, 34.0, 0.01)),
                    shapefile::PolygonRing::Outer(square(-118.26, 34.0, 0.01)),
                ]),
            ];
            for (i, shape) in shapes.iter().enumerate() {
                let mut record = dbase::Record::default();
                record.insert("GEOID20".into(), FieldValue::Character(Some(format!("06037000000{i}"))));
                record.insert("NAME20".into(), FieldValue::Character(Some(format!("Block {i}"))));
                writer.write_shape_and_record(shape, &record).unwrap();
            }
        }
        let prj = r#"GEOGCS["GCS_North_American_1983",DATUM["D_North_American_1983",SPHEROID["GRS_1980",6378137,298.257222101]],PRIMEM["Greenwich",0],UNIT["Degree",0.017453292519943295]]"#;
        let read = |ext: &str| std::fs::read(shp.with_extension(ext)).unwrap();
        [read("shp"), read("shx"), read("dbf"), prj.as_bytes().to_vec()]
    })
}

/// Byte offsets of each record of the valid `.shp` (from its `.shx`).
fn record_offsets(shx: &[u8]) -> Vec<usize> {
    shx[100..].chunks_exact(8).map(|e| 2 * i32::from_be_bytes([e[0], e[1], e[2], e[3]]) as usize).collect()
}

/// A 32-bit field of the shapefile set to a chosen value.
#[derive(Debug, Clone, Copy)]
enum Field {
    /// A record's content length in the `.shp` (big-endian, 16-bit words).
    RecordLength,
    /// A polygon record's part count.
    NumParts,
    /// A polygon record's point count.
    NumPoints,
    /// A polygon record's first part index.
    FirstPart,
    /// A record's shape type.
    ShapeType,
    /// A `.shx` entry's offset.
    IndexOffset,
    /// The file length in the `.shp` header.
    ShpLength,
    /// The file length in the `.shx` header.
    ShxLength,
    /// The record count in the `.dbf` header.
    DbfRecords,
}

#[derive(Debug, Clone)]
enum Mutation {
    /// Set one field of one record.
    Set(Field, usize, i32),
    /// Overwrite a byte of one of the files.
    Byte(usize, prop::sample::Index, u8),
    /// Cut one of the files short.
    Truncate(usize, prop::sample::Index),
}

fn field() -> impl Strategy<Value = Field> {
    prop_oneof![
        Just(Field::RecordLength),
        Just(Field::NumParts),
        Just(Field::NumPoints),
        Just(Field::FirstPart),
        Just(Field::ShapeType),
        Just(Field::IndexOffset),
        Just(Field::ShpLength),
        Just(Field::ShxLength),
        Just(Field::DbfRecords),
    ]
}

/// Counts as a corrupt or hostile file has them.
fn count() -> impl Strategy<Value = i32> {
    prop_oneof![
        Just(i32::MAX),
        Just(i32::MIN),
        Just(-1),
        Just(0),
        Just(1 << 30),
        Just(1 << 28),
        Just(1 << 24),
        0..64i32,
        any::<i32>(),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (field(), 0usize..3, count()).prop_map(|(f, r, v)| Mutation::Set(f, r, v)),
        2 => (0usize..3, any::<prop::sample::Index>(), any::<u8>()).prop_map(|(f, at, b)| Mutation::Byte(f, at, b)),
        1 => (0usize..4, any::<prop::sample::Index>()).prop_map(|(f, at)| Mutation::Truncate(f, at)),
    ]
}

fn put(bytes: &mut [u8], at: usize, value: [u8; 4]) {
    if at + 4 <= bytes.len() {
        bytes[at..at + 4].copy_from_slice(&value);
    }
}

fn apply(files: &mut [Vec<u8>; 4], offsets: &[usize], m: &Mutation) {
    match m {
        Mutation::Set(field, record, v) => {
            let rec = offsets[record % offsets.len()];
            let (le, be) = (v.to_le_bytes(), v.to_be_bytes());
            match field {
                Field::RecordLength => put(&mut files[0], rec + 4, be),
                Field::ShapeType => put(&mut files[0], rec + 8, le),
                Field::NumParts => put(&mut files[0], rec + 44, le),
                Field::NumPoints => put(&mut files[0], rec + 48, le),
                Field::FirstPart => put(&mut files[0], rec + 52, le),
                Field::IndexOffset => put(&mut files[1], 100 + 8 * (record % offsets.len()), be),
                Field::ShpLength => put(&mut files[0], 24, be),
                Field::ShxLength => put(&mut files[1], 24, be),
                Field::DbfRecords => put(&mut files[2], 4, le),
            }
        }
        Mutation::Byte(file, at, byte) => {
            let f = &mut files[*file];
            if !f.is_empty() {
                let i = at.index(f.len());
                f[i] = *byte;
            }
        }
        Mutation::Truncate(file, at) => {
            let f = &mut files[*file];
            let len = at.index(f.len() + 1);
            f.truncate(len);
        }
    }
}

/// Write the four files as `blocks.*` (or into `blocks.zip`) and return what to import.
fn write_shapefile(dir: &Path, files: &[Vec<u8>; 4], zipped: bool) -> PathBuf {
    const EXTS: [&str; 4] = ["shp", "shx", "dbf", "prj"];
    if !zipped {
        for (bytes, ext) in files.iter().zip(EXTS) {
            std::fs::write(dir.join(format!("blocks.{ext}")), bytes).unwrap();
        }
        return dir.join("blocks.shp");
    }
    let path = dir.join("blocks.zip");
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
    for (bytes, ext) in files.iter().zip(EXTS) {
        zip.start_file(format!("blocks.{ext}"), zip::write::SimpleFileOptions::default()).unwrap();
        std::io::Write::write_all(&mut zip, bytes).unwrap();
    }
    zip.finish().unwrap();
    path
}

fn read_shapefile(files: &[Vec<u8>; 4], zipped: bool) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let path = write_shapefile(dir.path(), files, zipped);
    let bytes: usize = files.iter().map(Vec::len).sum();
    let (read, largest) = largest_allocation(|| read_blocks(&path, &BlockReadOptions::default()));
    prop_assert!(
        largest <= allocation_bound(bytes),
        "read_blocks asked for {largest} bytes at once ({bytes} bytes of files)"
    );
    if let Err(e) = &read {
        assert_brief(e, "blocks.")?;
    }
    Ok(())
}

#[test]
fn the_valid_shapefile_reads() {
    let dir = tempfile::tempdir().unwrap();
    for zipped in [false, true] {
        let path = write_shapefile(dir.path(), valid_shapefile(), zipped);
        let read = read_blocks(&path, &BlockReadOptions::default()).unwrap();
        assert_eq!(read.blocks.len(), 3, "{:?}", read.rejected);
    }
}

proptest! {
    #![proptest_config(config(192))]

    /// Shapefiles with flipped bytes, cut short, or with record lengths, part and point counts,
    /// index offsets and header lengths set to huge, negative or wrong values: read or refused
    /// naming the file, and nothing reserved beyond what the files could hold.
    #[test]
    fn shapefile_records_with_huge_counts_are_rejected_without_allocating(
        mutations in prop::collection::vec(mutation(), 1..4),
        zipped in any::<bool>(),
    ) {
        let mut files = valid_shapefile().clone();
        let offsets = record_offsets(&files[1]);
        for m in &mutations {
            apply(&mut files, &offsets, m);
        }
        read_shapefile(&files, zipped)?;
    }
}

/// A polygon record claiming 2^31 - 1 points (and one claiming 2^30 parts) is refused by
/// record number, before anything is reserved for the points.
#[test]
fn a_record_claiming_two_billion_points_is_refused_by_number() {
    let offsets = record_offsets(&valid_shapefile()[1]);
    for (field, value) in [
        (Field::NumPoints, i32::MAX),
        (Field::NumParts, 1 << 30),
        (Field::RecordLength, i32::MAX),
        (Field::FirstPart, i32::MIN),
    ] {
        let mut files = valid_shapefile().clone();
        apply(&mut files, &offsets, &Mutation::Set(field, 1, value));
        let dir = tempfile::tempdir().unwrap();
        let path = write_shapefile(dir.path(), &files, false);
        let (read, largest) = largest_allocation(|| read_blocks(&path, &BlockReadOptions::default()));
        let err = read.unwrap_err().to_string();
        assert!(err.contains("blocks.shp") && err.contains("record 2"), "{field:?}: {err}");
        assert!(largest < 1 << 20, "{field:?}: asked for {largest} bytes at once");
    }
}

/// A `.shx` header claiming a 4 GiB index (2^31 words) is refused before the index is reserved.
#[test]
fn an_index_claiming_four_gigabytes_is_refused() {
    let mut files = valid_shapefile().clone();
    let offsets = record_offsets(&files[1]);
    apply(&mut files, &offsets, &Mutation::Set(Field::ShxLength, 0, i32::MAX));
    let dir = tempfile::tempdir().unwrap();
    let path = write_shapefile(dir.path(), &files, true);
    let (read, largest) = largest_allocation(|| read_blocks(&path, &BlockReadOptions::default()));
    let err = read.unwrap_err().to_string();
    assert!(err.contains("blocks.shp") && err.contains(".shx header says"), "{err}");
    assert!(largest < 1 << 20, "asked for {largest} bytes at once");
}
