//! Router tests for the public read side of `belong serve`, without a socket: the demo
//! catchment in an in-memory database, requests sent with `tower::ServiceExt::oneshot`.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod http_support;

use http_support::Reply;

use std::sync::OnceLock;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use belong::app::{self, layers::Layers};
use belong::http::{AppState, ServeConfig, app};
use belong::store::SqliteStore;
use geo::{Coord, Intersects, LineString, MultiPolygon, Polygon, Rect};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

/// The demo catchment loaded once into an in-memory database, shared by every test.
fn demo_state() -> AppState {
    static STATE: OnceLock<AppState> = OnceLock::new();
    STATE
        .get_or_init(|| {
            // Built on its own thread: a test's runtime cannot block on another one.
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

fn router() -> Router {
    app(demo_state())
}

fn layers() -> std::sync::Arc<Layers> {
    demo_state().layers()
}

async fn send(req: Request<Body>) -> Reply {
    let res = router().oneshot(req).await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let body = res.into_body().collect().await.unwrap().to_bytes().to_vec();
    Reply { status, headers, body }
}

async fn get(uri: &str) -> Reply {
    send(Request::get(uri).header(header::HOST, "test.local").body(Body::empty()).unwrap()).await
}

async fn get_accept(uri: &str, accept: &str) -> Reply {
    send(
        Request::get(uri)
            .header(header::HOST, "test.local")
            .header(header::ACCEPT, accept)
            .body(Body::empty())
            .unwrap(),
    )
    .await
}

fn link<'a>(doc: &'a Value, rel: &str) -> Option<&'a str> {
    doc["links"].as_array()?.iter().find(|l| l["rel"] == rel).and_then(|l| l["href"].as_str())
}

fn path_of(href: &str) -> &str {
    href.strip_prefix("http://test.local").unwrap_or_else(|| panic!("link not on this host: {href}"))
}

fn block_count() -> u64 {
    layers().coverage.summary.blocks
}

#[tokio::test]
async fn landing_page_links_everything() {
    let r = get("/").await.expect(StatusCode::OK);
    assert!(r.content_type().starts_with("application/json"), "{r}");
    let v = r.json();
    for rel in ["self", "service-desc", "service-doc", "conformance", "data"] {
        assert!(link(&v, rel).is_some(), "no {rel} link\n{v:#}");
    }
    let desc = v["links"].as_array().unwrap().iter().find(|l| l["rel"] == "service-desc").unwrap();
    assert_eq!(desc["type"], "application/vnd.oai.openapi+json;version=3.0");
    assert_eq!(link(&v, "data"), Some("http://test.local/collections"));
    get("/api.html").await.expect(StatusCode::OK);
}

#[tokio::test]
async fn conformance_lists_core_geojson_oas30() {
    let v = get("/conformance").await.expect(StatusCode::OK).json();
    let classes: Vec<&str> = v["conformsTo"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    for c in ["core", "geojson", "oas30"] {
        let uri = format!("http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/{c}");
        assert!(classes.contains(&uri.as_str()), "{classes:?}");
    }
}

#[tokio::test]
async fn collections_have_extents_and_items_links() {
    let v = get("/collections").await.expect(StatusCode::OK).json();
    let ids: Vec<&str> = v["collections"].as_array().unwrap().iter().filter_map(|c| c["id"].as_str()).collect();
    assert_eq!(ids, ["blocks", "resources", "school-readiness", "resource-access"]);
    for id in ids {
        let c = get(&format!("/collections/{id}")).await.expect(StatusCode::OK).json();
        let bbox = c["extent"]["spatial"]["bbox"][0].as_array().unwrap_or_else(|| panic!("{c:#}"));
        let b: Vec<f64> = bbox.iter().map(|x| x.as_f64().unwrap()).collect();
        assert!(
            b[0] < b[2] && b[1] < b[3] && (-119.0..-118.0).contains(&b[0]) && (33.0..35.0).contains(&b[1]),
            "{b:?}"
        );
        assert_eq!(link(&c, "items"), Some(format!("http://test.local/collections/{id}/items").as_str()));
    }
}

#[tokio::test]
async fn default_page_and_counts() {
    let r = get("/collections/blocks/items").await.expect(StatusCode::OK);
    assert_eq!(r.content_type(), "application/geo+json", "{r}");
    let v = r.json();
    assert_eq!(v["type"], "FeatureCollection");
    assert_eq!(v["numberMatched"], block_count());
    assert_eq!(v["numberReturned"], 100);
    assert_eq!(v["features"].as_array().unwrap().len(), 100);
    assert!(v["timeStamp"].as_str().is_some_and(|t| t.ends_with('Z')), "{}", v["timeStamp"]);
    assert!(link(&v, "next").is_some() && link(&v, "prev").is_none() && link(&v, "collection").is_some());
    assert!(link(&v, "alternate").is_some_and(|h| h.contains("f=csv")));
    let f = &v["features"][0];
    for p in ["block_id", "name", "residents", "ambassadors", "covered", "target", "school_readiness"] {
        assert!(f["properties"].get(p).is_some(), "no {p} in {f:#}");
    }
    assert!(f["id"].is_string(), "{f:#}");
}

#[tokio::test]
async fn walking_next_visits_every_feature_once() {
    for (collection, limit) in [("blocks", 37), ("resources", 7), ("school-readiness", 250)] {
        let mut seen = std::collections::HashSet::new();
        let mut uri = format!("/collections/{collection}/items?limit={limit}");
        let mut matched = None;
        let mut pages = 0;
        loop {
            let v = get(&uri).await.expect(StatusCode::OK).json();
            pages += 1;
            let m = v["numberMatched"].as_u64().unwrap();
            assert_eq!(*matched.get_or_insert(m), m);
            let feats = v["features"].as_array().unwrap();
            assert_eq!(v["numberReturned"].as_u64().unwrap(), feats.len() as u64);
            assert!(feats.len() <= limit);
            if pages > 1 {
                assert!(link(&v, "prev").is_some(), "no prev on page {pages}\n{v:#}");
            }
            for f in feats {
                assert!(seen.insert(f["id"].as_str().unwrap().to_string()), "feature {} seen twice", f["id"]);
            }
            match link(&v, "next") {
                Some(next) => uri = path_of(next).to_string(),
                None => break,
            }
        }
        assert_eq!(seen.len() as u64, matched.unwrap(), "{collection}");
        let expected = layers().collection(collection).unwrap().features.len();
        assert_eq!(seen.len(), expected, "{collection}");
    }
    assert_eq!(layers().collection("blocks").unwrap().features.len() as u64, block_count());
}

#[tokio::test]
async fn prev_link_goes_back_one_page() {
    let v = get("/collections/blocks/items?limit=10&offset=25").await.expect(StatusCode::OK).json();
    let prev = link(&v, "prev").unwrap();
    assert!(prev.contains("offset=15") && prev.contains("limit=10"), "{prev}");
    let v = get("/collections/blocks/items?limit=10&offset=5").await.expect(StatusCode::OK).json();
    assert!(!link(&v, "prev").unwrap().contains("offset="), "{v:#}");
    let v = get("/collections/blocks/items?offset=100000").await.expect(StatusCode::OK).json();
    assert_eq!(v["numberReturned"], 0);
    assert_eq!(v["numberMatched"], block_count());
    assert!(link(&v, "next").is_none());
}

fn geometry(g: &Value) -> MultiPolygon<f64> {
    let ring = |r: &Value| -> LineString<f64> {
        r.as_array().unwrap().iter().map(|c| Coord { x: c[0].as_f64().unwrap(), y: c[1].as_f64().unwrap() }).collect()
    };
    let polygon = |p: &Value| {
        let rings = p.as_array().unwrap();
        Polygon::new(ring(&rings[0]), rings[1..].iter().map(ring).collect())
    };
    match g["type"].as_str() {
        Some("MultiPolygon") => MultiPolygon(g["coordinates"].as_array().unwrap().iter().map(polygon).collect()),
        Some("Point") => {
            let (x, y) = (g["coordinates"][0].as_f64().unwrap(), g["coordinates"][1].as_f64().unwrap());
            let tiny = LineString::from(vec![(x, y), (x, y), (x, y), (x, y)]);
            MultiPolygon(vec![Polygon::new(tiny, vec![])])
        }
        other => panic!("unexpected geometry {other:?}"),
    }
}

#[tokio::test]
async fn bbox_selects_exactly_the_intersecting_features() {
    for collection in ["blocks", "resources"] {
        let all = get(&format!("/collections/{collection}/items?limit=10000")).await.expect(StatusCode::OK).json();
        let feats = all["features"].as_array().unwrap();
        for bbox in [[-118.29, 34.035, -118.28, 34.045], [-118.3, 34.02, -118.295, 34.03], [0.0, 0.0, 1.0, 1.0]] {
            let rect = Rect::new(Coord { x: bbox[0], y: bbox[1] }, Coord { x: bbox[2], y: bbox[3] });
            let mut expected: Vec<&str> = feats
                .iter()
                .filter(|f| {
                    let g = &f["geometry"];
                    if g["type"] == "Point" {
                        let (x, y) = (g["coordinates"][0].as_f64().unwrap(), g["coordinates"][1].as_f64().unwrap());
                        rect.intersects(&Coord { x, y })
                    } else {
                        geometry(g).intersects(&rect)
                    }
                })
                .map(|f| f["id"].as_str().unwrap())
                .collect();
            expected.sort_unstable();
            let q = bbox.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(",");
            let v = get(&format!("/collections/{collection}/items?limit=10000&bbox={q}"))
                .await
                .expect(StatusCode::OK)
                .json();
            let mut got: Vec<&str> =
                v["features"].as_array().unwrap().iter().map(|f| f["id"].as_str().unwrap()).collect();
            got.sort_unstable();
            assert_eq!(got, expected, "{collection} bbox {q}");
            assert_eq!(v["numberMatched"].as_u64().unwrap() as usize, expected.len());
            if collection == "blocks" && bbox[0] < 0.0 && bbox[0] > -118.295 {
                assert!(!expected.is_empty() && expected.len() < feats.len(), "bbox should select a strict subset");
            }
        }
    }
    // bbox-crs CRS84 is the default; the explicit form is accepted.
    let crs84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84";
    get(&format!("/collections/blocks/items?bbox=-118.29,34.035,-118.28,34.045&bbox-crs={crs84}"))
        .await
        .expect(StatusCode::OK);
}

#[tokio::test]
async fn equality_filters() {
    let summary = layers().coverage.summary.clone();
    let v = get("/collections/blocks/items?covered=false&limit=10000").await.expect(StatusCode::OK).json();
    assert_eq!(v["numberMatched"], summary.blocks - summary.covered_blocks);
    assert!(v["features"].as_array().unwrap().iter().all(|f| f["properties"]["covered"] == false));
    let next = link(&get("/collections/blocks/items?covered=false&limit=5").await.json(), "next").unwrap().to_string();
    assert!(next.contains("covered=false"), "filters must survive paging: {next}");
    // GDAL sends booleans as 1/0.
    let v1 = get("/collections/blocks/items?covered=1&limit=1").await.expect(StatusCode::OK).json();
    assert_eq!(v1["numberMatched"], summary.covered_blocks);

    let v = get("/collections/resources/items?category=school&limit=10000").await.expect(StatusCode::OK).json();
    let n = v["numberMatched"].as_u64().unwrap();
    assert!(n > 0, "the demo has schools");
    assert!(v["features"].as_array().unwrap().iter().all(|f| f["properties"]["category"] == "school"));

    let first = &get("/collections/blocks/items?limit=1").await.json()["features"][0];
    let id = first["properties"]["block_id"].as_str().unwrap();
    let residents = first["properties"]["residents"].as_u64().unwrap();
    let v = get(&format!("/collections/blocks/items?block_id={id}")).await.expect(StatusCode::OK).json();
    assert_eq!(v["numberMatched"], 1);
    assert_eq!(v["features"][0]["id"], id);
    // Numbers compare numerically.
    let a = get(&format!("/collections/blocks/items?residents={residents}&limit=10000")).await.json();
    let b = get(&format!("/collections/blocks/items?residents={residents}.0&limit=10000")).await.json();
    assert_eq!(a["numberMatched"], b["numberMatched"]);
    assert!(a["numberMatched"].as_u64().unwrap() >= 1);
    // Filters and bbox combine.
    let both = get(&format!("/collections/blocks/items?block_id={id}&bbox=0,0,1,1")).await.json();
    assert_eq!(both["numberMatched"], 0);

    let v = get("/collections/school-readiness/items?no_data=true&limit=10000").await.expect(StatusCode::OK).json();
    assert!(v["features"].as_array().unwrap().iter().all(|f| f["properties"]["value"].is_null()));
}

#[tokio::test]
async fn injection_looking_filter_values_match_nothing() {
    for value in ["%27%20OR%201%3D1%20--", "1%3B%20DROP%20TABLE%20blocks", "%3Cscript%3E"] {
        let v = get(&format!("/collections/blocks/items?block_id={value}")).await.expect(StatusCode::OK).json();
        assert_eq!(v["numberMatched"], 0, "{value}");
        assert_eq!(v["features"].as_array().unwrap().len(), 0);
    }
    assert_eq!(layers().coverage.summary.blocks, block_count());
}

#[tokio::test]
async fn csv_by_parameter_and_by_accept() {
    let r = get("/collections/blocks/items?f=csv&limit=10000").await.expect(StatusCode::OK);
    assert!(r.content_type().starts_with("text/csv"), "{r}");
    let text = r.text();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    for col in ["block_id", "residents", "covered", "lon", "lat"] {
        assert!(header.split(',').any(|c| c == col), "{header}");
    }
    assert_eq!(lines.count() as u64, block_count());
    // Block ids keep their leading zero.
    assert!(text.contains(",060"), "{}", &text[..300]);

    let r = get_accept("/collections/resources/items?limit=3", "text/csv").await.expect(StatusCode::OK);
    assert!(r.content_type().starts_with("text/csv"), "{r}");
    assert_eq!(r.text().lines().count(), 4);
}

#[tokio::test]
async fn accept_negotiation() {
    let r = get_accept("/collections/blocks/items?limit=1", "application/json").await.expect(StatusCode::OK);
    assert_eq!(r.content_type(), "application/json");
    let r = get_accept("/collections/blocks/items?limit=1", "text/html,application/xhtml+xml,*/*;q=0.8").await;
    assert_eq!(r.expect(StatusCode::OK).content_type(), "application/geo+json");
    let r = get_accept("/collections/blocks/items?limit=1", "application/geo+json;q=0.5, text/csv").await;
    assert!(r.expect(StatusCode::OK).content_type().starts_with("text/csv"));
    let r = get_accept("/collections/blocks/items?limit=1&f=geojson", "text/csv").await.expect(StatusCode::OK);
    assert_eq!(r.content_type(), "application/geo+json", "f wins over Accept");
    get_accept("/collections/blocks/items", "application/xml").await.problem_detail(StatusCode::NOT_ACCEPTABLE);
}

#[tokio::test]
async fn one_feature() {
    let id = layers().collection("blocks").unwrap().features[3].id.clone();
    let r = get(&format!("/collections/blocks/items/{id}")).await.expect(StatusCode::OK);
    assert_eq!(r.content_type(), "application/geo+json");
    let v = r.json();
    assert_eq!(v["type"], "Feature");
    assert_eq!(v["id"], id.as_str());
    assert!(link(&v, "self").is_some_and(|h| h.ends_with(&id)));
    assert_eq!(link(&v, "collection"), Some("http://test.local/collections/blocks"));
    let res_id = layers().collection("resources").unwrap().features[0].id.clone();
    get(&format!("/collections/resources/items/{res_id}")).await.expect(StatusCode::OK);
    let d = get("/collections/blocks/items/999999999999999").await.problem_detail(StatusCode::NOT_FOUND);
    assert!(d.contains("999999999999999"), "{d}");
}

#[tokio::test]
async fn bad_requests_are_precise_problems() {
    let cases: &[(&str, StatusCode, &str)] = &[
        ("/collections/nope", StatusCode::NOT_FOUND, "nope"),
        ("/collections/nope/items", StatusCode::NOT_FOUND, "nope"),
        ("/collections/blocks/items/nope", StatusCode::NOT_FOUND, "nope"),
        ("/no/such/route", StatusCode::NOT_FOUND, "/no/such/route"),
        ("/collections/blocks/items?bbox=1,2,3", StatusCode::BAD_REQUEST, "4 comma-separated"),
        ("/collections/blocks/items?bbox=a,b,c,d", StatusCode::BAD_REQUEST, "not a number"),
        ("/collections/blocks/items?bbox=-118,34,-119,35", StatusCode::BAD_REQUEST, "minLon is greater"),
        ("/collections/blocks/items?bbox=-119,35,-118,34", StatusCode::BAD_REQUEST, "minLat is greater"),
        ("/collections/blocks/items?bbox=-200,34,-118,35", StatusCode::BAD_REQUEST, "longitudes"),
        ("/collections/blocks/items?bbox=0,0,1,1&bbox-crs=EPSG:4269", StatusCode::BAD_REQUEST, "bbox-crs"),
        ("/collections/blocks/items?limit=-1", StatusCode::BAD_REQUEST, "out of range"),
        ("/collections/blocks/items?limit=0", StatusCode::BAD_REQUEST, "out of range"),
        ("/collections/blocks/items?limit=100000", StatusCode::BAD_REQUEST, "10000"),
        ("/collections/blocks/items?limit=abc", StatusCode::BAD_REQUEST, "not a whole number"),
        ("/collections/blocks/items?offset=-5", StatusCode::BAD_REQUEST, "offset"),
        ("/collections/blocks/items?colour=red", StatusCode::BAD_REQUEST, "'colour'"),
        ("/collections/blocks/items?covered=maybe", StatusCode::BAD_REQUEST, "true or false"),
        ("/collections/blocks/items?residents=many", StatusCode::BAD_REQUEST, "expected a number"),
        ("/collections/blocks/items?f=xml", StatusCode::BAD_REQUEST, "f="),
        ("/collections/blocks/items?limit=1&limit=2", StatusCode::BAD_REQUEST, "more than once"),
        ("/collections/blocks/items?bbox=%ZZ", StatusCode::BAD_REQUEST, ""),
        ("/collections?foo=bar", StatusCode::BAD_REQUEST, "'foo'"),
        ("/coverage/uncovered?f=pdf", StatusCode::BAD_REQUEST, "f="),
    ];
    for (uri, status, needle) in cases {
        let detail = get(uri).await.problem_detail(*status);
        assert!(detail.contains(needle), "{uri}: detail {detail:?} should mention {needle:?}");
    }
}

#[tokio::test]
async fn huge_offset_is_a_400() {
    // Used to be clamped to u64::MAX, and the self link then named an offset nobody asked for.
    for offset in ["1000000000000000000000000000000", "18446744073709551616", &"9".repeat(50)] {
        let uri = format!("/collections/blocks/items?offset={offset}");
        let d = get(&uri).await.problem_detail(StatusCode::BAD_REQUEST);
        assert!(d.contains("offset") && d.contains("too large"), "{uri}: {d}");
    }
    get("/collections/blocks/items?offset=18446744073709551615").await.expect(StatusCode::OK);
}

#[tokio::test]
async fn long_uri_is_a_414_problem() {
    let uri = format!("/collections/blocks/items?bbox={}", "1".repeat(belong::http::MAX_URI));
    let d = get(&uri).await.problem_detail(StatusCode::URI_TOO_LONG);
    assert!(d.contains("path and query") && d.contains(&belong::http::MAX_URI.to_string()), "{d}");
    // Just under the limit reaches the handler, which says what is wrong with the value.
    let uri = format!("/collections/blocks/items?bbox={}", "1".repeat(belong::http::MAX_URI - 100));
    get(&uri).await.problem_detail(StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn huge_headers_are_a_431_problem() {
    let cookie = "c".repeat(belong::http::MAX_HEADERS);
    let req = Request::get("/health").header(header::HOST, "test.local").header(header::COOKIE, cookie);
    let d = send(req.body(Body::empty()).unwrap()).await.problem_detail(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    assert!(d.contains("headers") && d.contains(&belong::http::MAX_HEADERS.to_string()), "{d}");
    let cookie = "c".repeat(belong::http::MAX_HEADERS / 2);
    let req = Request::get("/health").header(header::HOST, "test.local").header(header::COOKIE, cookie);
    send(req.body(Body::empty()).unwrap()).await.expect(StatusCode::OK);
}

#[tokio::test]
async fn wrong_method_is_a_405_problem() {
    for (method, uri) in [(Method::POST, "/collections/blocks/items"), (Method::DELETE, "/"), (Method::PUT, "/health")]
    {
        let r = send(Request::builder().method(method).uri(uri).body(Body::empty()).unwrap()).await;
        assert!(r.headers.contains_key(header::ALLOW), "{r}");
        r.problem_detail(StatusCode::METHOD_NOT_ALLOWED);
    }
}

#[tokio::test]
async fn features_are_rfc7946() {
    let v = get("/collections/blocks/items?limit=10000").await.expect(StatusCode::OK).json();
    for f in v["features"].as_array().unwrap() {
        assert!(f["id"].is_string());
        let g = &f["geometry"];
        assert_eq!(g["type"], "MultiPolygon");
        for poly in g["coordinates"].as_array().unwrap() {
            let ext = poly[0].as_array().unwrap();
            assert_eq!(ext.first(), ext.last(), "closed ring");
            let area: f64 = ext
                .windows(2)
                .map(|w| {
                    w[0][0].as_f64().unwrap() * w[1][1].as_f64().unwrap()
                        - w[1][0].as_f64().unwrap() * w[0][1].as_f64().unwrap()
                })
                .sum();
            assert!(area > 0.0, "exterior ring of {} must be counter-clockwise", f["id"]);
            for c in ext {
                for x in c.as_array().unwrap() {
                    let s = x.to_string();
                    let decimals = s.split('.').nth(1).map_or(0, str::len);
                    assert!(decimals <= 7, "{s} has more than 7 decimals");
                }
            }
        }
    }
}

#[tokio::test]
async fn coverage_matches_the_use_case() {
    let state = demo_state();
    let expected = app::coverage(&*state.store, 1).unwrap().summary;
    let v = get("/coverage").await.expect(StatusCode::OK).json();
    assert_eq!(v, serde_json::to_value(&expected).unwrap());
    let h = get("/health").await.expect(StatusCode::OK).json();
    use serde_json::json;
    assert_eq!((&h["status"], &h["ready"], &h["blocks"]), (&json!("ok"), &json!(true), &json!(expected.blocks)));
    assert_eq!(h["cursor"], json!(state.store.last_change().unwrap()));

    let rows = get("/coverage/uncovered").await.expect(StatusCode::OK).json();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len() as u64, expected.blocks - expected.covered_blocks);
    // Recruiting priority first, then block id (tests/http_recruit.rs covers the rest).
    for (i, w) in rows.windows(2).enumerate() {
        let (a, b) = (&w[0], &w[1]);
        let (pa, pb) = (a["priority"].as_f64().unwrap(), b["priority"].as_f64().unwrap());
        assert!(pa > pb || (pa == pb && a["block_id"].as_str() < b["block_id"].as_str()), "row {i}: {a} then {b}");
        assert_eq!(a["rank"], i as u64 + 1);
    }
    let csv = get("/coverage/uncovered?f=csv").await.expect(StatusCode::OK);
    assert!(csv.content_type().starts_with("text/csv"));
    let text = csv.text();
    assert!(text.starts_with("\u{feff}rank,block_id,block_name,priority,residents,ambassadors,"), "{text}");
    assert_eq!(text.lines().count(), rows.len() + 1);
}

#[tokio::test]
async fn openapi_is_3_0_and_declares_filters() {
    let r = get("/api").await.expect(StatusCode::OK);
    assert!(r.content_type().starts_with("application/vnd.oai.openapi+json"), "{r}");
    let v = r.json();
    assert!(v["openapi"].as_str().unwrap().starts_with("3.0."), "{}", v["openapi"]);
    let limit = &v["components"]["parameters"]["limit"]["schema"];
    assert_eq!(
        (limit["minimum"].as_u64(), limit["maximum"].as_u64(), limit["default"].as_u64()),
        (Some(1), Some(10_000), Some(100))
    );
    for (collection, filters) in [
        ("blocks", &["covered", "block_id", "residents"][..]),
        ("resources", &["category", "block_id"][..]),
        ("school-readiness", &["no_data", "value"][..]),
    ] {
        let params = v["paths"][format!("/collections/{collection}/items")]["get"]["parameters"].as_array().unwrap();
        let names: Vec<&str> = params.iter().filter_map(|p| p["name"].as_str()).collect();
        for f in filters {
            assert!(names.contains(f), "{collection}: {f} not declared in {names:?}");
        }
    }
    for path in [
        "/",
        "/conformance",
        "/collections",
        "/collections/{collectionId}",
        "/coverage",
        "/coverage/uncovered",
        "/health",
        "/api",
    ] {
        assert!(v["paths"].get(path).is_some(), "{path} missing from the OpenAPI document");
    }
    // No OpenAPI 3.1 type arrays left.
    fn no_type_arrays(v: &Value) -> bool {
        match v {
            Value::Object(o) => !o.get("type").is_some_and(Value::is_array) && o.values().all(no_type_arrays),
            Value::Array(a) => a.iter().all(no_type_arrays),
            _ => true,
        }
    }
    assert!(no_type_arrays(&v));
}

#[tokio::test]
async fn refresh_without_a_change_keeps_the_snapshot() {
    let state = demo_state();
    let before = state.layers();
    state.refresh().await.unwrap();
    let after = state.layers();
    assert!(std::sync::Arc::ptr_eq(&before, &after), "nothing changed: nothing to rebuild or republish");
    assert_eq!(after.coverage.report(), app::coverage(&*state.store, 1).unwrap());
}

#[tokio::test]
async fn base_url_overrides_the_host() {
    let config = ServeConfig { base_url: Some("https://maps.example.org/belong/".into()), ..ServeConfig::default() };
    let state = demo_state().with_config(config);
    let res = app(state).oneshot(Request::get("/").body(Body::empty()).unwrap()).await.unwrap();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(link(&v, "data"), Some("https://maps.example.org/belong/collections"));
}

#[tokio::test]
async fn compression_when_asked() {
    let r = send(
        Request::get("/collections/blocks/items?limit=500")
            .header(header::ACCEPT_ENCODING, "gzip")
            .body(Body::empty())
            .unwrap(),
    )
    .await
    .expect(StatusCode::OK);
    assert_eq!(r.headers.get(header::CONTENT_ENCODING).map(|v| v.to_str().unwrap()), Some("gzip"), "{r}");
}

#[tokio::test]
async fn oversized_bodies_are_a_413_problem() {
    let config = ServeConfig { max_body: 16, ..ServeConfig::default() };
    let res = app(demo_state().with_config(config))
        .oneshot(
            Request::get("/health").header(header::CONTENT_LENGTH, "100").body(Body::from(vec![b'x'; 100])).unwrap(),
        )
        .await
        .unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let body = res.into_body().collect().await.unwrap().to_bytes().to_vec();
    Reply { status, headers, body }.problem_detail(StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn datetime_selects_by_date() {
    let all = get("/collections/school-readiness/items?limit=10000").await.expect(StatusCode::OK).json();
    let feats = all["features"].as_array().unwrap();
    let dated: Vec<&str> = feats.iter().filter_map(|f| f["properties"]["date"].as_str()).collect();
    assert!(!dated.is_empty(), "the demo has dated readiness values");
    let day = dated[0];
    let same_day = dated.iter().filter(|d| **d == day).count() as u64;
    let v =
        get(&format!("/collections/school-readiness/items?datetime={day}&limit=1")).await.expect(StatusCode::OK).json();
    assert_eq!(v["numberMatched"], same_day);
    assert!(link(&v, "next").is_none_or(|n| n.contains("datetime=")), "{v:#}");
    let open = get(&format!("/collections/school-readiness/items?datetime=../{day}T23:59:59Z")).await.json();
    assert!(open["numberMatched"].as_u64().unwrap() >= same_day);
    let none = get("/collections/school-readiness/items?datetime=1990-01-01/1990-12-31").await.json();
    assert_eq!(none["numberMatched"], 0);
    // On the blocks, datetime is the day their counts are taken at: every block is served.
    let blocks = get("/collections/blocks/items?limit=1").await.json()["numberMatched"].clone();
    assert_eq!(get(&format!("/collections/blocks/items?datetime={day}")).await.json()["numberMatched"], blocks);
    get("/collections/school-readiness/items?datetime=yesterday").await.problem_detail(StatusCode::BAD_REQUEST);
    get("/collections/school-readiness/items?datetime=2025-02-01/2025-01-01")
        .await
        .problem_detail(StatusCode::BAD_REQUEST);

    let c = get("/collections/school-readiness").await.json();
    let interval = &c["extent"]["temporal"]["interval"][0];
    assert!(interval[0].as_str().is_some_and(|s| s.len() == 20), "{c:#}");
    assert!(get("/collections/blocks").await.json()["extent"].get("temporal").is_none());
}

/// The port opens before the catchment is loaded: `/health` answers at once (not ready yet) and
/// everything else is a 503 problem with Retry-After, never an empty layer passed off as data.
#[tokio::test]
async fn while_starting_only_health_answers() {
    let state = AppState::starting(SqliteStore::open_in_memory().unwrap(), ServeConfig::default());
    let router = app(state.clone());
    let call = |uri: &str| {
        let router = router.clone();
        let req = Request::get(uri).body(Body::empty()).unwrap();
        async move { router.oneshot(req).await.unwrap() }
    };
    let health = call("/health").await;
    assert_eq!(health.status(), StatusCode::OK);
    let body = axum::body::to_bytes(health.into_body(), usize::MAX).await.unwrap();
    let h: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!((h["status"].as_str(), h["ready"].as_bool()), (Some("starting"), Some(false)));
    for uri in ["/coverage", "/collections/blocks/items", "/tiles/blocks/14/2806/6540.mvt", "/people"] {
        let res = call(uri).await;
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE, "{uri}");
        assert_eq!(res.headers()[header::RETRY_AFTER], "2", "{uri}");
        assert_eq!(res.headers()[header::CONTENT_TYPE], "application/problem+json", "{uri}");
    }
    state.load().await.unwrap();
    assert_eq!(call("/coverage").await.status(), StatusCode::OK);
}
