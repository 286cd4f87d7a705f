//! OGC API – Features Part 2 (CRS by reference) on the router, without a socket: the demo
//! catchment read in other CRSs (`crs`), selected by bboxes in other CRSs (`bbox-crs`), the
//! `Content-Crs` header, the `crs` lists and `storageCrs` of the collections, and the 400 for a
//! CRS that is not offered. Coordinates are checked against `belong::ingest::Crs` here (the
//! plumbing: axis order, every vertex, links); against PROJ in `tests/crs_reference.rs`.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod http_support;

use http_support::Reply;

use std::sync::OnceLock;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use belong::http::{AppState, ServeConfig, app};
use belong::ingest::Crs;
use belong::store::SqliteStore;
use geo::{Coord, Intersects, LineString, MapCoords, MultiPolygon, Polygon, Rect};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

const CRS84: &str = "http://www.opengis.net/def/crs/OGC/1.3/CRS84";
const EPSG: &str = "http://www.opengis.net/def/crs/EPSG/0/";
/// Every CRS issue 13 asks for, for the Los Angeles demo catchment (UTM zone 11N on WGS84).
const OFFERED: [&str; 7] = [
    CRS84,
    "http://www.opengis.net/def/crs/EPSG/0/4326",
    "http://www.opengis.net/def/crs/EPSG/0/3857",
    "http://www.opengis.net/def/crs/EPSG/0/2229",
    "http://www.opengis.net/def/crs/EPSG/0/2230",
    "http://www.opengis.net/def/crs/EPSG/0/3310",
    "http://www.opengis.net/def/crs/EPSG/0/32611",
];

fn demo_state() -> AppState {
    static STATE: OnceLock<AppState> = OnceLock::new();
    STATE
        .get_or_init(|| {
            std::thread::spawn(|| {
                let store = SqliteStore::open_in_memory().unwrap();
                http_support::load_demo(&store);
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                rt.block_on(AppState::new(store, ServeConfig::default())).unwrap()
            })
            .join()
            .unwrap()
        })
        .clone()
}

async fn get(uri: &str) -> Reply {
    let req = Request::get(uri).header(header::HOST, "test.local").body(Body::empty()).unwrap();
    let res = app(demo_state()).oneshot(req).await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let body = res.into_body().collect().await.unwrap().to_bytes().to_vec();
    Reply { status, headers, body }
}

fn content_crs(r: &Reply) -> &str {
    r.headers.get("content-crs").and_then(|v| v.to_str().ok()).unwrap_or_else(|| panic!("no Content-Crs\n{r}"))
}

fn link<'a>(doc: &'a Value, rel: &str) -> &'a str {
    doc["links"].as_array().unwrap().iter().find(|l| l["rel"] == rel).and_then(|l| l["href"].as_str()).unwrap()
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array().unwrap_or_else(|| panic!("not an array: {v}")).iter().map(|s| s.as_str().unwrap()).collect()
}

/// Every position of a GeoJSON Point or MultiPolygon, in order.
fn positions(g: &Value) -> Vec<[f64; 2]> {
    fn walk(v: &Value, out: &mut Vec<[f64; 2]>) {
        let a = v.as_array().unwrap();
        if a.first().is_some_and(Value::is_number) {
            out.push([a[0].as_f64().unwrap(), a[1].as_f64().unwrap()]);
        } else {
            a.iter().for_each(|c| walk(c, out));
        }
    }
    let mut out = Vec::new();
    walk(&g["coordinates"], &mut out);
    out
}

fn multipolygon(g: &Value) -> MultiPolygon<f64> {
    let ring = |r: &Value| -> LineString<f64> {
        r.as_array().unwrap().iter().map(|c| Coord { x: c[0].as_f64().unwrap(), y: c[1].as_f64().unwrap() }).collect()
    };
    let polygon = |p: &Value| {
        let rings = p.as_array().unwrap();
        Polygon::new(ring(&rings[0]), rings[1..].iter().map(ring).collect())
    };
    MultiPolygon(g["coordinates"].as_array().unwrap().iter().map(polygon).collect())
}

#[tokio::test]
async fn conformance_declares_part_2() {
    let v = get("/conformance").await.expect(StatusCode::OK).json();
    assert!(strings(&v["conformsTo"]).contains(&"http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs"), "{v:#}");
}

#[tokio::test]
async fn collections_list_their_crs_and_storage_crs() {
    let v = get("/collections").await.expect(StatusCode::OK).json();
    assert_eq!(strings(&v["crs"]), OFFERED, "the global list");
    for c in v["collections"].as_array().unwrap() {
        assert_eq!(strings(&c["crs"]), OFFERED, "{}", c["id"]);
        assert_eq!(c["storageCrs"], CRS84, "{}", c["id"]);
        let id = c["id"].as_str().unwrap();
        let one = get(&format!("/collections/{id}")).await.expect(StatusCode::OK).json();
        assert_eq!(strings(&one["crs"]), OFFERED, "{id}");
        assert_eq!(one["storageCrs"], CRS84, "{id}");
        assert_eq!(one["extent"]["spatial"]["crs"], CRS84, "{id}: the extent stays in CRS84");
    }
}

#[tokio::test]
async fn crs84_is_the_default_and_says_so() {
    for uri in ["/collections/blocks/items?limit=2", &format!("/collections/blocks/items?limit=2&crs={CRS84}")] {
        let r = get(uri).await.expect(StatusCode::OK);
        assert_eq!(content_crs(&r), format!("<{CRS84}>"), "{uri}");
    }
    let plain = get("/collections/blocks/items?limit=2").await.text();
    let explicit = get("/collections/blocks/items?limit=2&crs=OGC:CRS84").await.text();
    let cut = |s: &str| s[s.find("\"features\"").unwrap()..].to_string();
    assert_eq!(cut(&plain), cut(&explicit), "CRS84 asked for is the stored JSON as it is");
}

#[tokio::test]
async fn epsg_4326_is_latitude_first() {
    for collection in ["blocks", "resources"] {
        let lon_lat = get(&format!("/collections/{collection}/items?limit=20")).await.expect(StatusCode::OK).json();
        for name in ["http://www.opengis.net/def/crs/EPSG/0/4326", "EPSG:4326", "urn:ogc:def:crs:EPSG::4326"] {
            let r = get(&format!("/collections/{collection}/items?limit=20&crs={name}")).await.expect(StatusCode::OK);
            assert_eq!(content_crs(&r), format!("<{EPSG}4326>"), "{name}");
            let lat_lon = r.json();
            for (a, b) in lon_lat["features"].as_array().unwrap().iter().zip(lat_lon["features"].as_array().unwrap()) {
                assert_eq!(a["id"], b["id"]);
                assert_eq!(a["properties"], b["properties"]);
                let (pa, pb) = (positions(&a["geometry"]), positions(&b["geometry"]));
                assert_eq!(pa.len(), pb.len(), "{}: same vertices, in the same order", a["id"]);
                for (p, q) in pa.iter().zip(&pb) {
                    assert!((p[0] - q[1]).abs() < 2e-7 && (p[1] - q[0]).abs() < 2e-7, "{p:?} vs {q:?}");
                    assert!((33.0..35.0).contains(&q[0]) && (-119.0..-118.0).contains(&q[1]), "lat first: {q:?}");
                }
            }
        }
    }
}

#[tokio::test]
async fn state_plane_coordinates_are_every_vertex_reprojected() {
    let sp = Crs::parse("EPSG:2229").unwrap();
    let lon_lat = get("/collections/blocks/items?limit=30").await.expect(StatusCode::OK).json();
    let r = get(&format!("/collections/blocks/items?limit=30&crs={EPSG}2229")).await.expect(StatusCode::OK);
    assert_eq!(r.content_type(), "application/geo+json");
    assert_eq!(content_crs(&r), format!("<{EPSG}2229>"));
    let feet = r.json();
    assert_eq!(feet["numberMatched"], lon_lat["numberMatched"]);
    for (a, b) in lon_lat["features"].as_array().unwrap().iter().zip(feet["features"].as_array().unwrap()) {
        assert_eq!(b["geometry"]["type"], "MultiPolygon");
        let (pa, pb) = (positions(&a["geometry"]), positions(&b["geometry"]));
        assert_eq!(pa.len(), pb.len(), "{}", a["id"]);
        for (p, q) in pa.iter().zip(&pb) {
            // Easting then northing, in US feet (LA is ~6.48e6, 1.84e6).
            assert!((6.2e6..6.8e6).contains(&q[0]) && (1.5e6..2.2e6).contains(&q[1]), "{q:?}");
            let (lon, lat) = sp.to_wgs84(q[0], q[1]).unwrap();
            // The CRS84 JSON is rounded to 1e-7°, the feet to 1e-3 ft.
            assert!((lon - p[0]).abs() < 2e-7 && (lat - p[1]).abs() < 2e-7, "{p:?} vs ({lon}, {lat})");
        }
    }
    // Points too, and every offered CRS answers.
    for crs in &OFFERED[1..] {
        let v = get(&format!("/collections/resources/items?limit=5&crs={crs}")).await.expect(StatusCode::OK).json();
        assert_eq!(v["features"][0]["geometry"]["type"], "Point", "{crs}");
    }
}

#[tokio::test]
async fn links_keep_crs_and_bbox_crs() {
    let crs = format!("{EPSG}3310");
    let v = get("/collections/blocks/items?limit=5&crs=EPSG:3310").await.expect(StatusCode::OK).json();
    let encoded = "crs=http%3A%2F%2Fwww.opengis.net%2Fdef%2Fcrs%2FEPSG%2F0%2F3310";
    for rel in ["self", "next", "alternate"] {
        assert!(link(&v, rel).contains(encoded), "{rel}: {}", link(&v, rel));
    }
    // Following next stays in the CRS.
    let next = link(&v, "next").strip_prefix("http://test.local").unwrap().to_string();
    let r = get(&next).await.expect(StatusCode::OK);
    assert_eq!(content_crs(&r), format!("<{crs}>"));
    let prev = link(&r.json(), "prev").to_string();
    assert!(prev.contains(encoded), "{prev}");

    let sp = Crs::parse("EPSG:2229").unwrap();
    let (x, y) = sp.from_wgs84(-118.2856, 34.0409).unwrap();
    let bbox = format!("{},{},{},{}", x - 2_000.0, y - 2_000.0, x + 2_000.0, y + 2_000.0);
    let v = get(&format!("/collections/blocks/items?limit=2&bbox={bbox}&bbox-crs=EPSG:2229"))
        .await
        .expect(StatusCode::OK)
        .json();
    let next = link(&v, "next");
    assert!(next.contains("bbox-crs=http%3A%2F%2Fwww.opengis.net%2Fdef%2Fcrs%2FEPSG%2F0%2F2229"), "{next}");
    let given = serde_urlencoded::to_string([("bbox", &bbox)]).unwrap();
    assert!(next.contains(&given), "the bbox as given, not its WGS84 envelope: {next}");
    let page2 = get(next.strip_prefix("http://test.local").unwrap()).await.expect(StatusCode::OK).json();
    assert_eq!(page2["numberMatched"], v["numberMatched"]);

    // One feature: the self and CSV links keep the CRS, the header names it.
    let id = v["features"][0]["id"].as_str().unwrap();
    let r = get(&format!("/collections/blocks/items/{id}?crs=EPSG:2229")).await.expect(StatusCode::OK);
    assert_eq!(content_crs(&r), format!("<{EPSG}2229>"));
    let one = r.json();
    assert!(link(&one, "self").contains("crs=http%3A%2F%2Fwww.opengis.net%2Fdef%2Fcrs%2FEPSG%2F0%2F2229"), "{one:#}");
    assert!(link(&one, "alternate").contains("f=csv&crs="), "{one:#}");
    assert!(positions(&one["geometry"])[0][0] > 6e6, "{one:#}");
}

/// The blocks whose geometry, reprojected into `code`, intersects `rect` (in that CRS): what
/// PostGIS's ST_Intersects(ST_Transform(geom, code), envelope) answers.
fn expected_in(code: u32, all: &Value, rect: Rect<f64>) -> Vec<String> {
    let crs = Crs::from_epsg(code).unwrap();
    let mut ids: Vec<String> = all["features"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| {
            let projected = multipolygon(&f["geometry"]).map_coords(|c| {
                let (x, y) = crs.from_wgs84(c.x, c.y).unwrap();
                Coord { x, y }
            });
            projected.intersects(&rect)
        })
        .map(|f| f["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

fn ids(v: &Value) -> Vec<String> {
    let mut ids: Vec<String> =
        v["features"].as_array().unwrap().iter().map(|f| f["id"].as_str().unwrap().into()).collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn a_projected_bbox_selects_what_intersects_it_in_its_crs() {
    let all = get("/collections/blocks/items?limit=10000").await.expect(StatusCode::OK).json();
    let total = all["features"].as_array().unwrap().len();
    // Zone VI's central meridian is 116.25°W, two degrees east of LA: there its grid is turned
    // about 1.1° from the meridians, so the rectangle is visibly not a lon/lat one.
    for code in [2229, 2230, 3310, 32611] {
        let crs = Crs::from_epsg(code).unwrap();
        let (x, y) = crs.from_wgs84(-118.2856, 34.0409).unwrap();
        let half = if matches!(code, 2229 | 2230) { 2_500.0 } else { 760.0 }; // feet or metres
        let rect = Rect::new(Coord { x: x - half, y: y - half }, Coord { x: x + half, y: y + half });
        let expected = expected_in(code, &all, rect);
        assert!(!expected.is_empty() && expected.len() < total, "EPSG:{code}: a strict subset");
        let bbox = format!("{},{},{},{}", x - half, y - half, x + half, y + half);
        let r = get(&format!("/collections/blocks/items?limit=10000&bbox={bbox}&bbox-crs={EPSG}{code}")).await;
        let v = r.expect(StatusCode::OK).json();
        assert_eq!(ids(&v), expected, "EPSG:{code} bbox {bbox}");
        assert_eq!(v["numberMatched"].as_u64().unwrap() as usize, expected.len());
        // The same features come back in the CRS asked for, whatever the bbox's.
        let r =
            get(&format!("/collections/blocks/items?limit=10000&bbox={bbox}&bbox-crs=EPSG:{code}&crs=EPSG:4326")).await;
        assert_eq!(ids(&r.expect(StatusCode::OK).json()), expected);
    }
    // A lon/lat rectangle holding zone VI's rectangle selects more than the rectangle does.
    let crs = Crs::from_epsg(2230).unwrap();
    let (x, y) = crs.from_wgs84(-118.2856, 34.0409).unwrap();
    let half = 2_500.0;
    let corners = [(x - half, y - half), (x + half, y - half), (x + half, y + half), (x - half, y + half)];
    let lonlat: Vec<(f64, f64)> = corners.iter().map(|&(a, b)| crs.to_wgs84(a, b).unwrap()).collect();
    let w = lonlat.iter().map(|p| p.0).fold(f64::INFINITY, f64::min);
    let e = lonlat.iter().map(|p| p.0).fold(f64::NEG_INFINITY, f64::max);
    let s = lonlat.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
    let n = lonlat.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
    let envelope = get(&format!("/collections/blocks/items?limit=10000&bbox={w},{s},{e},{n}")).await.json();
    let exact = get(&format!(
        "/collections/blocks/items?limit=10000&bbox={},{},{},{}&bbox-crs=EPSG:2230",
        x - half,
        y - half,
        x + half,
        y + half
    ))
    .await
    .json();
    assert!(ids(&envelope).len() > ids(&exact).len(), "the envelope's extra corners hold blocks");
    assert!(ids(&exact).iter().all(|id| ids(&envelope).contains(id)));

    // EPSG:4326 bboxes are latitude first.
    let v = get("/collections/blocks/items?limit=10000&bbox=34.035,-118.29,34.045,-118.28&bbox-crs=EPSG:4326").await;
    let lat_lon = v.expect(StatusCode::OK).json();
    let lon_lat = get("/collections/blocks/items?limit=10000&bbox=-118.29,34.035,-118.28,34.045").await.json();
    assert_eq!(ids(&lat_lon), ids(&lon_lat));
    assert!(!ids(&lat_lon).is_empty());
}

#[tokio::test]
async fn csv_follows_the_crs() {
    let r = get("/collections/resources/items?f=csv&limit=3&crs=EPSG:2229").await.expect(StatusCode::OK);
    assert_eq!(content_crs(&r), format!("<{EPSG}2229>"));
    let text = r.text();
    let header: Vec<&str> = text.lines().next().unwrap().split(',').collect();
    assert_eq!(header[header.len() - 2..], ["x", "y"], "{text}");
    let row: Vec<&str> = text.lines().nth(1).unwrap().split(',').collect();
    let x: f64 = row[row.len() - 2].parse().unwrap();
    assert!((6.2e6..6.8e6).contains(&x), "{text}");
    let r = get("/collections/resources/items?f=csv&limit=3&crs=EPSG:4326").await.expect(StatusCode::OK);
    let text = r.text();
    assert!(text.lines().next().unwrap().ends_with(",lat,lon"), "{text}");
    let r = get("/collections/resources/items?f=csv&limit=3").await.expect(StatusCode::OK);
    assert_eq!(content_crs(&r), format!("<{CRS84}>"));
    assert!(r.text().lines().next().unwrap().ends_with(",lon,lat"));
}

#[tokio::test]
async fn unsupported_crs_is_a_400_naming_the_supported_ones() {
    let id = get("/collections/blocks/items?limit=1").await.json()["features"][0]["id"].as_str().unwrap().to_string();
    for uri in [
        "/collections/blocks/items?crs=EPSG:4269".to_string(),
        "/collections/blocks/items?crs=http://www.opengis.net/def/crs/EPSG/0/32612".to_string(),
        "/collections/blocks/items?crs=banana".to_string(),
        "/collections/blocks/items?bbox=0,0,1,1&bbox-crs=EPSG:27700".to_string(),
        "/collections/blocks/items?bbox-crs=CRS83".to_string(),
        format!("/collections/blocks/items/{id}?crs=EPSG:9999"),
        format!("/collections/blocks/items?crs={}", "9".repeat(5000)),
    ] {
        let d = get(&uri).await.problem_detail(StatusCode::BAD_REQUEST);
        assert!(d.contains("not a supported CRS"), "{uri}: {d}");
        for crs in OFFERED {
            assert!(d.contains(crs), "{uri}: {d} should list {crs}");
        }
        assert!(d.len() < 1_000, "{uri}: {} bytes", d.len());
    }
    // A bbox outside what its CRS represents, or upside down in it.
    let d = get("/collections/blocks/items?bbox=1e12,1e12,2e12,2e12&bbox-crs=EPSG:3857")
        .await
        .problem_detail(StatusCode::BAD_REQUEST);
    assert!(d.contains("EPSG:3857"), "{d}");
    let d = get("/collections/blocks/items?bbox=6480000,1840000,6470000,1850000&bbox-crs=EPSG:2229")
        .await
        .problem_detail(StatusCode::BAD_REQUEST);
    assert!(d.contains("minX is greater than maxX"), "{d}");
    let d = get("/collections/blocks/items?bbox=-118.3,34,-118.2,34.1&bbox-crs=EPSG:4326")
        .await
        .problem_detail(StatusCode::BAD_REQUEST);
    assert!(d.contains("latitudes"), "{d}");
}

#[tokio::test]
async fn openapi_documents_crs_and_bbox_crs() {
    let doc = get("/api").await.expect(StatusCode::OK).json();
    for name in ["crs", "bbox-crs"] {
        let p = &doc["components"]["parameters"][name];
        assert_eq!(p["in"], "query", "{name}");
        assert_eq!(strings(&p["schema"]["enum"]), OFFERED, "{name}");
    }
    let items = &doc["paths"]["/collections/blocks/items"]["get"];
    let refs: Vec<&str> = items["parameters"].as_array().unwrap().iter().filter_map(|p| p["$ref"].as_str()).collect();
    assert!(refs.contains(&"#/components/parameters/crs") && refs.contains(&"#/components/parameters/bbox-crs"));
    assert!(items["responses"]["200"]["headers"]["Content-Crs"].is_object());
    let one = &doc["paths"]["/collections/blocks/items/{featureId}"]["get"];
    assert!(one["parameters"].as_array().unwrap().iter().any(|p| p["$ref"] == "#/components/parameters/crs"));
}

/// `def` of the committed OGC API – Features Part 1 and 2 schemas, formats asserted.
fn ogc_schema(def: &str) -> jsonschema::Validator {
    let mut schema: Value = serde_json::from_str(include_str!("schemas/ogcapi-features-1-2.json")).unwrap();
    schema["$ref"] = Value::from(format!("#/$defs/{def}"));
    jsonschema::options().should_validate_formats(true).build(&schema).unwrap()
}

#[track_caller]
fn assert_valid(def: &str, doc: &Value, what: &str) {
    let errors: Vec<String> =
        ogc_schema(def).iter_errors(doc).take(10).map(|e| format!("{e} (at {})", e.instance_path)).collect();
    assert!(errors.is_empty(), "{what} is not a valid {def}:\n{}", errors.join("\n"));
}

#[tokio::test]
async fn documents_validate_against_the_ogc_schemas() {
    assert_valid("confClasses", &get("/conformance").await.expect(StatusCode::OK).json(), "/conformance");
    let all = get("/collections").await.expect(StatusCode::OK).json();
    assert_valid("collections", &all, "/collections");
    for id in ["blocks", "resources", "school-readiness", "resource-access"] {
        let uri = format!("/collections/{id}");
        assert_valid("collection", &get(&uri).await.expect(StatusCode::OK).json(), &uri);
    }
    for collection in ["blocks", "resources"] {
        for crs in [
            "",
            "&crs=EPSG:4326",
            "&crs=EPSG:2229",
            "&crs=EPSG:32611",
            "&bbox-crs=EPSG:3310&bbox=155000,-443000,160000,-438000",
        ] {
            let uri = format!("/collections/{collection}/items?limit=50{crs}");
            let page = get(&uri).await.expect(StatusCode::OK).json();
            assert!(page["numberReturned"].as_u64().unwrap() > 0, "{uri}");
            assert_valid("featureCollectionGeoJSON", &page, &uri);
            let id = page["features"][0]["id"].as_str().unwrap();
            let uri = format!("/collections/{collection}/items/{id}?crs=EPSG:3857");
            assert_valid("featureGeoJSON", &get(&uri).await.expect(StatusCode::OK).json(), &uri);
        }
    }
    // The schemas can fail: a storageCrs that is no URI, a crs list of numbers.
    let mut bad = get("/collections/blocks").await.json();
    bad["storageCrs"] = Value::from("not a uri");
    assert!(!ogc_schema("collection").is_valid(&bad));
    let mut bad = all.clone();
    bad["crs"] = serde_json::json!([4326]);
    assert!(!ogc_schema("collections").is_valid(&bad));
}
