//! Vector tiles over the router: tiles cut from the demo catchment are decoded by an independent
//! implementation (@mapbox/vector-tile, the decoder MapLibre builds on, run with Node.js from
//! `web/node_modules`), checked against the OGC API's own answers, and checked for MVT 2.1
//! validity; plus caching, invalidation, compression and every bad request we could think of.
#![allow(clippy::unwrap_used)]

mod http_support;
mod mvt_check;

use std::io::Read;
use std::path::Path;
use std::process::Command;

use axum::http::{Method, StatusCode, header};
use belong::tiles::{TileId, unit_to_lonlat};
use geozero::mvt::{Message, Tile};
use http_support::{demo_app, get, req};
use serde_json::{Value, json};

/// The z14 tile holding the demo HQ (1910 Magnolia Ave): `TileId::range` of the HQ, checked
/// against the slippy-map formula in the unit tests.
const HQ_Z14: (u8, u32, u32) = (14, 2808, 6542);

/// Decode tiles with @mapbox/vector-tile; fails (unless BELONG_SKIP_NODE_TESTS=1) when Node.js
/// or the web/ packages are missing, since the decoder is what these tests are about.
fn decode(tiles: &[&[u8]]) -> Option<Vec<Value>> {
    let web = Path::new(env!("CARGO_MANIFEST_DIR")).join("web");
    let ready = web.join("node_modules/@mapbox/vector-tile").exists()
        && Command::new("node").arg("--version").output().is_ok_and(|o| o.status.success());
    if !ready {
        if std::env::var_os("BELONG_SKIP_NODE_TESTS").is_some() {
            eprintln!("skipping the independent decoder check: BELONG_SKIP_NODE_TESTS is set");
            return None;
        }
        panic!(
            "Node.js and web/node_modules are needed to decode tiles independently: install Node.js \
             (Debian: nodejs npm) and run `npm ci` in web/ (the build does this), or set BELONG_SKIP_NODE_TESTS=1"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<_> = tiles
        .iter()
        .enumerate()
        .map(|(i, bytes)| {
            let p = dir.path().join(format!("{i}.mvt"));
            std::fs::write(&p, bytes).unwrap();
            p
        })
        .collect();
    let out = Command::new("node").arg(web.join("test/decode-tile.mjs")).args(&files).output().unwrap();
    assert!(out.status.success(), "decoder failed: {}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    Some(v.as_array().unwrap().clone())
}

/// `[west, south, east, north]` of a tile grown by `buffer` tile units (of 4096) on each side.
fn bounds(t: TileId, buffer: f64) -> [f64; 4] {
    let n = f64::from(1u32 << t.z);
    let b = buffer / 4096.0;
    let [w, north] = unit_to_lonlat([(f64::from(t.x) - b) / n, (f64::from(t.y) - b) / n]);
    let [e, s] = unit_to_lonlat([(f64::from(t.x) + 1.0 + b) / n, (f64::from(t.y) + 1.0 + b) / n]);
    [w, s, e, north]
}

/// The independent decoder's rings for a feature, as `mvt_check` rings.
fn json_rings(feature: &Value) -> Vec<mvt_check::Ring> {
    assert_eq!(feature["type"], 3, "{feature}");
    let ring =
        |r: &Value| r.as_array().unwrap().iter().map(|p| (p[0].as_f64().unwrap(), p[1].as_f64().unwrap())).collect();
    feature["geometry"].as_array().unwrap().iter().map(ring).collect()
}

async fn count_blocks(t: &http_support::TestApp, b: [f64; 4]) -> u64 {
    let url = format!("/collections/blocks/items?limit=10000&bbox={},{},{},{}", b[0], b[1], b[2], b[3]);
    get(t, &url).await.json()["numberMatched"].as_u64().unwrap()
}

#[tokio::test]
async fn a_tile_over_the_hq_decodes_independently_with_the_blocks_the_api_reports() {
    let t = demo_app().await;
    let (z, x, y) = HQ_Z14;
    let tile = TileId::new(z.into(), x, y).unwrap();
    let r = get(&t, &format!("/tiles/blocks,resources,school-readiness/{z}/{x}/{y}.mvt")).await.expect(StatusCode::OK);
    assert_eq!(r.header(header::CONTENT_TYPE), "application/vnd.mapbox-vector-tile");
    mvt_check::decode_raw(&r.body);
    let Some(decoded) = decode(&[&r.body]) else { return };
    let layers = decoded[0]["layers"].as_array().unwrap();
    let names: Vec<&str> = layers.iter().map(|l| l["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["blocks", "resources", "school-readiness"]);
    for l in layers {
        assert_eq!((l["version"].as_u64(), l["extent"].as_u64()), (Some(2), Some(4096)), "layer {}", l["name"]);
        let keys: Vec<&str> = l["keys"].as_array().unwrap().iter().map(|k| k.as_str().unwrap()).collect();
        let mut unique = keys.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), keys.len(), "keys are deduplicated");
    }
    // Values are deduplicated by type and value (the decoder above turns 53 and 53.0 into the
    // same JavaScript number, so this is checked on the raw protobuf values).
    for l in Tile::decode(&r.body[..]).unwrap().layers {
        for (i, a) in l.values.iter().enumerate() {
            assert!(!l.values[i + 1..].contains(a), "value {a:?} appears twice in layer {}", l.name);
        }
    }

    // Every block meeting the tile is in it; none beyond the buffer is.
    let (inner, outer) = (count_blocks(&t, bounds(tile, 0.0)).await, count_blocks(&t, bounds(tile, 64.0)).await);
    let blocks = &layers[0];
    let n = blocks["length"].as_u64().unwrap();
    assert!(inner > 50, "the HQ tile is dense: {inner} blocks");
    assert!(
        (inner..=outer).contains(&n),
        "{n} block features; the API finds {inner} in the tile, {outer} with the buffer"
    );

    // Properties: the block id as a string (for promoteId), and the same counts as the API.
    let items = get(&t, "/collections/blocks/items?limit=10000").await.json();
    let by_id: std::collections::HashMap<&str, &Value> =
        items["features"].as_array().unwrap().iter().map(|f| (f["id"].as_str().unwrap(), &f["properties"])).collect();
    for f in blocks["features"].as_array().unwrap() {
        let p = &f["properties"];
        let id = p["block_id"].as_str().expect("block_id is a string");
        let api = by_id[id];
        for k in ["residents", "ambassadors", "covered", "name"] {
            assert_eq!(p[k], api[k], "{k} of block {id}");
        }
        for (k, v) in p.as_object().unwrap() {
            assert!(!["phone", "email", "first_name", "last_name"].contains(&k.as_str()), "personal field {k}={v}");
        }
        mvt_check::assert_valid_polygon(&json_rings(f), &format!("block {id}"));
    }

    // Resources: points inside the buffered tile, as many as the API finds there.
    let resources = &layers[1];
    let b = bounds(tile, 64.0);
    let url = format!("/collections/resources/items?limit=10000&bbox={},{},{},{}", b[0], b[1], b[2], b[3]);
    assert_eq!(resources["length"], get(&t, &url).await.json()["numberMatched"]);
    for f in resources["features"].as_array().unwrap() {
        assert_eq!(f["type"], 1);
        assert!(f["properties"]["category"].is_string() && f["properties"]["id"].is_string());
    }

    // School readiness: same polygons as the blocks, a value or a no-data flag.
    let readiness = &layers[2];
    assert_eq!(readiness["length"], blocks["length"]);
    for f in readiness["features"].as_array().unwrap() {
        let p = &f["properties"];
        assert_eq!(p["no_data"].as_bool().unwrap(), p.get("value").is_none(), "{p}");
    }
}

#[tokio::test]
async fn rings_stay_valid_at_every_zoom_across_the_catchment() {
    let t = demo_app().await;
    let extent = t.state.layers().tiles().layer("blocks").unwrap().bounds.unwrap();
    let mut bodies: Vec<Vec<u8>> = Vec::new();
    for z in 10..=18u8 {
        let (xs, ys) = TileId::range(z, extent);
        for x in xs {
            for y in ys.clone() {
                let r = get(&t, &format!("/tiles/blocks/{z}/{x}/{y}.mvt")).await;
                if r.status == StatusCode::OK {
                    mvt_check::decode_raw(&r.body);
                    bodies.push(r.body);
                } else {
                    assert_eq!(r.status, StatusCode::NO_CONTENT, "z{z} {x}/{y}");
                }
            }
        }
    }
    assert!(bodies.len() > 300, "{} tiles", bodies.len());
    let refs: Vec<&[u8]> = bodies.iter().map(Vec::as_slice).collect();
    let Some(decoded) = decode(&refs) else { return };
    let mut features = 0;
    for tile in &decoded {
        for f in tile["layers"][0]["features"].as_array().unwrap() {
            mvt_check::assert_valid_polygon(&json_rings(f), &f["properties"]["block_id"].to_string());
            features += 1;
        }
    }
    assert!(features > 1000, "{features} features checked");
}

#[tokio::test]
async fn tiles_are_cached_validated_by_etag_and_invalidated_by_writes() {
    let t = demo_app().await;
    let (block, lon, lat) = http_support::uncovered_block(&t);
    let [x, y] = belong::tiles::lonlat_to_unit(lon, lat);
    let (tx, ty) = ((x * 16384.0) as u32, (y * 16384.0) as u32);
    let url = format!("/tiles/blocks/14/{tx}/{ty}.mvt");
    let first = get(&t, &url).await.expect(StatusCode::OK);
    let etag = first.header(header::ETAG).to_string();
    assert!(etag.starts_with('"') && etag.len() > 10, "{first}");
    assert_eq!(first.header(header::CACHE_CONTROL), "no-cache");
    assert_eq!(t.state.live().unwrap().tile_cache().len(), 1);
    let again = get(&t, &url).await.expect(StatusCode::OK);
    assert_eq!(again.body, first.body);
    req(Method::GET, &url).header("if-none-match", &etag).send(&t).await.expect(StatusCode::NOT_MODIFIED);

    let covered = |bytes: &[u8]| -> bool {
        let tile = Tile::decode(bytes).unwrap();
        let l = &tile.layers[0];
        let key = |name: &str| l.keys.iter().position(|k| k == name).unwrap() as u32;
        let (kid, kcov) = (key("block_id"), key("covered"));
        let f = l
            .features
            .iter()
            .find(|f| {
                f.tags
                    .chunks(2)
                    .any(|kv| kv[0] == kid && l.values[kv[1] as usize].string_value.as_deref() == Some(&block))
            })
            .unwrap();
        let v = f.tags.chunks(2).find(|kv| kv[0] == kcov).unwrap()[1];
        l.values[v as usize].bool_value.unwrap()
    };
    assert!(!covered(&first.body));
    // Tiles elsewhere are cut and cached too: a write over one block must leave them alone.
    let far: Vec<String> = (2..6).map(|d| format!("/tiles/blocks/14/{}/{ty}.mvt", tx + d)).collect();
    let far_etags: Vec<Option<String>> = {
        let mut v = Vec::new();
        for u in &far {
            let r = get(&t, u).await;
            v.push(r.headers.get(header::ETAG).map(|e| e.to_str().unwrap().to_string()));
        }
        v
    };
    let cached_before = t.state.live().unwrap().tile_cache().len();
    assert_eq!(cached_before, 1 + far.len());

    // An ambassador joins the block: the very next tile shows it covered, with a new ETag.
    let body = json!({"id": "tile-test-ambassador", "role": "ambassador", "lon": lon, "lat": lat});
    req(Method::POST, "/people").token(&t.tokens.manager).json(&body).send(&t).await.expect(StatusCode::CREATED);
    let after = get(&t, &url).await.expect(StatusCode::OK);
    assert!(covered(&after.body), "the tile must not be stale");
    assert_ne!(after.header(header::ETAG), etag);
    req(Method::GET, &url).header("if-none-match", &etag).send(&t).await.expect(StatusCode::OK);
    // Only the tile over the changed block was forgotten; the others kept bytes and ETag.
    assert_eq!(t.state.live().unwrap().tile_cache().len(), cached_before, "one forgotten, then cut again");
    for (u, before) in far.iter().zip(&far_etags) {
        let r = get(&t, u).await;
        assert_eq!(r.headers.get(header::ETAG).map(|e| e.to_str().unwrap().to_string()), *before, "{u}");
    }
}

#[tokio::test]
async fn gzip_is_sent_to_clients_that_accept_it() {
    let t = demo_app().await;
    let (z, x, y) = HQ_Z14;
    let url = format!("/tiles/blocks/{z}/{x}/{y}.mvt");
    let plain = get(&t, &url).await.expect(StatusCode::OK);
    let gz = req(Method::GET, &url).header("accept-encoding", "br;q=0, gzip").send(&t).await.expect(StatusCode::OK);
    assert_eq!(gz.header(header::CONTENT_ENCODING), "gzip");
    assert_eq!(gz.header(header::VARY), "Accept-Encoding");
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(&gz.body[..]).read_to_end(&mut out).unwrap();
    assert_eq!(out, plain.body);
    assert_eq!(gz.header(header::ETAG), plain.header(header::ETAG));
    let refused = req(Method::GET, &url).header("accept-encoding", "gzip;q=0").send(&t).await.expect(StatusCode::OK);
    assert_eq!(refused.body, plain.body);
}

#[tokio::test]
async fn empty_tiles_are_204_and_bad_requests_say_what_is_wrong() {
    let t = demo_app().await;
    let r = get(&t, "/tiles/blocks/14/0/0.mvt").await.expect(StatusCode::NO_CONTENT);
    assert!(r.body.is_empty() && !r.header(header::ETAG).is_empty());
    // .pbf is accepted as well (tippecanoe's name for the same thing).
    get(&t, &format!("/tiles/resources/{}/{}/{}.pbf", HQ_Z14.0, HQ_Z14.1, HQ_Z14.2)).await.expect(StatusCode::OK);

    let cases = [
        ("/tiles/roads/14/2808/6542.mvt", StatusCode::NOT_FOUND, "no tile layer \"roads\""),
        (
            "/tiles/blocks,roads/14/2808/6542.mvt",
            StatusCode::NOT_FOUND,
            "the layers are blocks, resources, school-readiness",
        ),
        ("/tiles/blocks/25/0/0.mvt", StatusCode::NOT_FOUND, "zoom 25 is out of range"),
        ("/tiles/blocks/2/4/0.mvt", StatusCode::NOT_FOUND, "x and y must be below 4"),
        ("/tiles/blocks/14/x/6542.mvt", StatusCode::BAD_REQUEST, "tile x \"x\" is not a whole number"),
        ("/tiles/blocks/14/2808/-1.mvt", StatusCode::BAD_REQUEST, "tile y \"-1\""),
        ("/tiles/blocks/14/2808/6542.png", StatusCode::NOT_FOUND, "tiles end in .mvt"),
        ("/tiles/blocks/14/2808/6542.mvt?f=json", StatusCode::BAD_REQUEST, "f"),
        ("/tiles/blocks.xml", StatusCode::NOT_FOUND, "TileJSON is at /tiles/{layers}.json"),
        ("/tiles/nothing.json", StatusCode::NOT_FOUND, "no tile layer \"nothing\""),
    ];
    for (url, status, needle) in cases {
        let v = get(&t, url).await.problem(status);
        let detail = v["detail"].as_str().unwrap();
        assert!(detail.contains(needle), "{url}: {detail:?} should mention {needle:?}");
    }
}

#[tokio::test]
async fn tilejson_describes_the_layers_with_absolute_tile_urls() {
    let t = demo_app().await;
    let v = get(&t, "/tiles/blocks,resources.json").await.expect(StatusCode::OK).json();
    assert_eq!(v["tilejson"], "3.0.0");
    assert_eq!(v["tiles"][0], "http://test.local/tiles/blocks,resources/{z}/{x}/{y}.mvt");
    assert_eq!((v["minzoom"].as_u64(), v["maxzoom"].as_u64()), (Some(0), Some(16)));
    let ids: Vec<&str> = v["vector_layers"].as_array().unwrap().iter().map(|l| l["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["blocks", "resources"]);
    let fields = &v["vector_layers"][0]["fields"];
    assert_eq!((fields["block_id"].as_str(), fields["covered"].as_str()), (Some("String"), Some("Boolean")));
    assert_eq!(fields["residents"], "Number");
    let b: Vec<f64> = v["bounds"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
    let extent = get(&t, "/collections/blocks").await.json()["extent"]["spatial"]["bbox"][0].clone();
    for (i, e) in extent.as_array().unwrap().iter().enumerate() {
        assert!((b[i] - e.as_f64().unwrap()).abs() < 1e-6, "bounds {b:?} vs collection extent {extent}");
    }
    let c = v["center"].as_array().unwrap();
    assert!(b[0] < c[0].as_f64().unwrap() && c[0].as_f64().unwrap() < b[2]);
    // The tile URL it gives works.
    let (z, x, y) = HQ_Z14;
    get(&t, &format!("/tiles/blocks,resources/{z}/{x}/{y}.mvt")).await.expect(StatusCode::OK);
}
