//! Router tests of the people API, imports over HTTP and `/coverage/history`, each over its own
//! copy of the demo database; plus one end-to-end test against the real binary.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod e2e;
mod http_support;

use axum::http::{Method, StatusCode, header};
use belong::http::ServeConfig;
use http_support::*;
use serde_json::{Value, json};

fn covered_blocks(v: &Value) -> u64 {
    v["covered_blocks"].as_u64().unwrap()
}

#[tokio::test]
async fn an_ambassador_posted_into_an_uncovered_block_covers_it_at_once() {
    let t = demo_app().await;
    let m = t.tokens.manager.clone();
    let (block, lon, lat) = uncovered_block(&t);
    let before = get(&t, "/coverage").await.expect(StatusCode::OK).json();
    let item = get(&t, &format!("/collections/blocks/items/{block}")).await.expect(StatusCode::OK).json();
    assert_eq!(item["properties"]["covered"], false);

    let body = json!({"role": "ambassador", "lon": lon, "lat": lat, "name": "Test Ambassador",
                      "email": "test.ambassador@example.org", "phone": "(213) 555-9999"});
    let r = req(Method::POST, "/people").token(&m).json(&body).send(&t).await.expect(StatusCode::CREATED);
    let p = r.json();
    let id = p["id"].as_str().unwrap().to_string();
    assert_eq!(p["home_block"], block.as_str(), "{r}");
    assert_eq!((p["interested"].as_bool(), p["active"].as_bool()), (Some(true), Some(true)));
    assert_eq!(r.header(header::LOCATION), format!("http://test.local/people/{id}"));

    let after = get(&t, "/coverage").await.expect(StatusCode::OK).json();
    assert_eq!(covered_blocks(&after), covered_blocks(&before) + 1);
    let item = get(&t, &format!("/collections/blocks/items/{block}")).await.expect(StatusCode::OK).json();
    assert_eq!(item["properties"]["covered"], true, "{item:#}");
    assert_eq!(item["properties"]["ambassadors"], 1);

    // Read back, move out of the block, then delete: coverage follows every step.
    let got = get_as(&t, &format!("/people/{id}"), &t.tokens.recruiter).await.expect(StatusCode::OK).json();
    assert_eq!(got["name"], "Test Ambassador");
    let patch = json!({"lon": lon + 5.0, "name": null});
    let moved = req(Method::PATCH, &format!("/people/{id}"))
        .token(&m)
        .body("application/merge-patch+json", patch.to_string())
        .send(&t)
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!((moved["home_block"].clone(), moved["name"].clone()), (Value::Null, Value::Null), "{moved:#}");
    assert_eq!(moved["email"], "test.ambassador@example.org");
    assert_eq!(covered_blocks(&get(&t, "/coverage").await.json()), covered_blocks(&before));
    req(Method::PATCH, &format!("/people/{id}"))
        .token(&m)
        .json(&json!({"lon": lon}))
        .send(&t)
        .await
        .expect(StatusCode::OK);
    assert_eq!(covered_blocks(&get(&t, "/coverage").await.json()), covered_blocks(&before) + 1);
    req(Method::DELETE, &format!("/people/{id}")).token(&m).send(&t).await.expect(StatusCode::NO_CONTENT);
    assert_eq!(covered_blocks(&get(&t, "/coverage").await.json()), covered_blocks(&before));
    req(Method::DELETE, &format!("/people/{id}")).token(&m).send(&t).await.problem(StatusCode::NOT_FOUND);
    get_as(&t, &format!("/people/{id}"), &m).await.problem(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn adoption_covers_the_adopted_block_and_unknown_blocks_are_422() {
    let t = demo_app().await;
    let m = t.tokens.manager.clone();
    let (block, _, _) = uncovered_block(&t);
    let body = json!({"id": "adopter-1", "role": "ambassador", "lon": -118.28, "lat": 34.04, "block_id": block});
    let p = req(Method::POST, "/people").token(&m).json(&body).send(&t).await.expect(StatusCode::CREATED).json();
    assert_eq!(p["block_id"], block.as_str());
    assert_eq!(p["covering_block"], block.as_str());
    let item = get(&t, &format!("/collections/blocks/items/{block}")).await.json();
    assert_eq!(item["properties"]["covered"], true);

    let bad = json!({"role": "ambassador", "lon": -118.28, "lat": 34.04, "block_id": block.trim_start_matches('0')});
    let v = req(Method::POST, "/people").token(&m).json(&bad).send(&t).await.problem(StatusCode::UNPROCESSABLE_ENTITY);
    let detail = v["detail"].as_str().unwrap();
    assert!(detail.starts_with("block_id:") && detail.contains("did you mean"), "{detail}");
    // The same id again is a conflict.
    req(Method::POST, "/people").token(&m).json(&body).send(&t).await.problem(StatusCode::CONFLICT);
}

#[tokio::test]
async fn bad_bodies_are_problems_that_echo_no_personal_data() {
    let t = demo_app().await;
    let m = t.tokens.manager.clone();
    let post = |body: Req| async { body.token(&m).send(&t).await };
    let secret_name = "Zelda Quintanilla-Secret";
    let secret_email = "zelda.secret@example.org";

    // Malformed JSON: 400 with the parser's message.
    let v = post(req(Method::POST, "/people").body("application/json", "{\"role\": "))
        .await
        .problem(StatusCode::BAD_REQUEST);
    assert!(v["detail"].as_str().unwrap().contains("EOF"), "{v}");
    // A name where a number belongs is not echoed.
    let body = json!({"role": "resident", "lon": secret_name, "lat": 34.0});
    let r = post(req(Method::POST, "/people").json(&body)).await;
    assert!(!r.text().contains("Zelda"), "{r}");
    r.problem(StatusCode::BAD_REQUEST);
    // Wrong content type, unknown field.
    post(req(Method::POST, "/people").body("text/plain", "role=resident"))
        .await
        .problem(StatusCode::UNSUPPORTED_MEDIA_TYPE);
    post(req(Method::POST, "/people").body("", "{}")).await.problem(StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let v = post(
        req(Method::POST, "/people").json(&json!({"role": "resident", "lon": -118.28, "lat": 34.04, "nmae": "x"})),
    )
    .await
    .problem(StatusCode::BAD_REQUEST);
    assert!(v["detail"].as_str().unwrap().contains("nmae"), "{v}");
    // Invalid values: 422 naming the field, never the value.
    for (body, field) in [
        (
            json!({"role": "resident", "lon": -118.28, "lat": 34.04, "name": secret_name, "email": "zelda-at-example.org"}),
            "email",
        ),
        (json!({"role": "resident", "lon": -118.28, "lat": 134.04, "name": secret_name, "email": secret_email}), "lat"),
        (json!({"role": "resident", "name": secret_name, "email": secret_email}), "lon"),
        (json!({"lon": -118.28, "lat": 34.04, "name": secret_name}), "role"),
        (json!({"role": "resident", "x": 6480000, "y": 1840000, "name": secret_name}), "crs"),
    ] {
        let r = post(req(Method::POST, "/people").json(&body)).await;
        let text = r.text();
        let v = r.problem(StatusCode::UNPROCESSABLE_ENTITY);
        assert!(v["detail"].as_str().unwrap().starts_with(&format!("{field}:")), "{field}: {v}");
        for secret in ["Zelda", "zelda", "134.04"] {
            assert!(!text.contains(secret), "{field}: {text}");
        }
    }
    // Nothing of the above was stored.
    let list = get_as(&t, "/people?limit=10000&role=resident", &m).await.text();
    assert!(!list.contains("Zelda"));
}

#[tokio::test]
async fn x_y_with_a_crs_and_injection_looking_text_are_stored_verbatim() {
    let t = demo_app().await;
    let m = t.tokens.manager.clone();
    let evil = "Robert'); DROP TABLE people;-- <script>";
    let body = json!({"id": "x'; --", "role": "resident", "x": 6480000, "y": 1840000, "crs": "EPSG:2229",
                      "name": evil, "interested": true});
    let p = req(Method::POST, "/people").token(&m).json(&body).send(&t).await.expect(StatusCode::CREATED).json();
    assert!((p["lon"].as_f64().unwrap() + 118.2695921).abs() < 1e-6, "{p}");
    assert_eq!(p["name"], evil);
    let got = get_as(&t, "/people/x'%3B%20--", &m).await.expect(StatusCode::OK).json();
    assert_eq!(got["name"], evil);
    // The people table is still there and filters with odd values are just values.
    let v = get_as(&t, "/people?block_id=%27%20OR%201%3D1%20--", &m).await.expect(StatusCode::OK).json();
    assert_eq!(v["numberMatched"], 0);
}

#[tokio::test]
async fn an_invalid_patch_changes_nothing() {
    let t = demo_app().await;
    let m = t.tokens.manager.clone();
    let before = get_as(&t, "/people/A0002", &m).await.expect(StatusCode::OK).json();
    for (patch, status) in [
        (json!({"email": "not-an-email"}), StatusCode::UNPROCESSABLE_ENTITY),
        (json!({"lat": 95.0}), StatusCode::UNPROCESSABLE_ENTITY),
        (json!({"active": null}), StatusCode::UNPROCESSABLE_ENTITY),
        (json!({"block_id": "nope"}), StatusCode::UNPROCESSABLE_ENTITY),
        (json!({"role": "resident", "block_id": "060372091021000"}), StatusCode::UNPROCESSABLE_ENTITY),
        (json!({"colour": "red"}), StatusCode::BAD_REQUEST),
    ] {
        let r = req(Method::PATCH, "/people/A0002").token(&m).json(&patch).send(&t).await;
        assert!(!r.text().contains("not-an-email"), "{r}");
        r.problem(status);
        assert_eq!(get_as(&t, "/people/A0002", &m).await.json(), before, "{patch}");
    }
    req(Method::PATCH, "/people/nobody")
        .token(&m)
        .json(&json!({"active": false}))
        .send(&t)
        .await
        .problem(StatusCode::NOT_FOUND);
    // A valid one: deactivate.
    let v = req(Method::PATCH, "/people/A0002")
        .token(&m)
        .json(&json!({"active": false}))
        .send(&t)
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(v["active"], false);
    assert_eq!(v["name"], before["name"]);
}

#[tokio::test]
async fn listing_filters_and_pages() {
    let t = demo_app().await;
    let r = t.tokens.recruiter.clone();
    let v = get_as(&t, "/people?role=ambassador&limit=50", &r).await.expect(StatusCode::OK).json();
    assert_eq!(v["numberMatched"], 200);
    assert_eq!(v["numberReturned"], 50);
    assert_eq!(v["people"].as_array().unwrap().len(), 50);
    assert!(v["people"].as_array().unwrap().iter().all(|p| p["role"] == "ambassador"));
    let next = v["links"].as_array().unwrap().iter().find(|l| l["rel"] == "next").unwrap()["href"].as_str().unwrap();
    assert!(next.starts_with("http://test.local/people?") && next.contains("offset=50"), "{next}");
    let page2 = get_as(&t, next.strip_prefix("http://test.local").unwrap(), &r).await.expect(StatusCode::OK).json();
    assert_ne!(page2["people"][0]["id"], v["people"][0]["id"]);
    assert!(page2["links"].as_array().unwrap().iter().any(|l| l["rel"] == "prev"));
    let last = get_as(&t, "/people?role=ambassador&limit=50&offset=150", &r).await.json();
    assert!(!last["links"].as_array().unwrap().iter().any(|l| l["rel"] == "next"), "{last}");

    let all = get_as(&t, "/people", &r).await.json();
    assert_eq!(all["numberMatched"], 20_200);
    assert_eq!(all["numberReturned"], 100);
    let first = &all["people"][0];
    let block = first["home_block"].as_str().unwrap();
    let in_block = get_as(&t, &format!("/people?block_id={block}&limit=10000"), &r).await.json();
    assert!(in_block["people"].as_array().unwrap().iter().all(|p| p["home_block"] == block || p["block_id"] == block));
    let interested = get_as(&t, "/people?interested=true&role=resident&limit=10000", &r).await.json();
    assert!(interested["people"].as_array().unwrap().iter().all(|p| p["interested"] == true));
    assert!(interested["numberMatched"].as_u64().unwrap() < 20_000);

    for bad in ["limit=0", "limit=10001", "limit=-1", "offset=x", "role=admin", "interested=maybe", "colour=red"] {
        get_as(&t, &format!("/people?{bad}"), &r).await.problem(StatusCode::BAD_REQUEST);
    }
}

#[tokio::test]
async fn people_import_takes_good_rows_and_lists_bad_ones() {
    let t = demo_app().await;
    let m = t.tokens.manager.clone();
    let (block, lon, lat) = uncovered_block(&t);
    let before = covered_blocks(&get(&t, "/coverage").await.json());
    let csv = format!(
        "id,name,email,lon,lat,active\nN1,New One,new.one@example.org,{lon},{lat},true\nN2,New Two,bad-email,{lon},{lat},true\nN3,,,-100,40,\n"
    );
    let v = req(Method::POST, "/people/import?role=ambassador")
        .token(&m)
        .body("text/csv", csv.clone())
        .send(&t)
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(v["imported"], json!({"inserted": 2, "updated": 0, "unchanged": 0}), "{v}");
    assert_eq!(v["outside"], 1);
    assert_eq!(v["rejected"], json!([{"line": 3, "field": "email", "reason": v["rejected"][0]["reason"]}]), "{v}");
    assert_eq!(covered_blocks(&get(&t, "/coverage").await.json()), before + 1);
    let item = get(&t, &format!("/collections/blocks/items/{block}")).await.json();
    assert_eq!(item["properties"]["covered"], true);
    // Again: unchanged.
    let v = req(Method::POST, "/people/import?role=ambassador").token(&m).body("text/csv", csv).send(&t).await.json();
    assert_eq!(v["imported"]["unchanged"], 2);

    req(Method::POST, "/people/import")
        .token(&m)
        .body("text/csv", "id,lon,lat\n")
        .send(&t)
        .await
        .problem(StatusCode::BAD_REQUEST);
    req(Method::POST, "/people/import?role=resident")
        .token(&m)
        .json(&json!({}))
        .send(&t)
        .await
        .problem(StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let v = req(Method::POST, "/people/import?role=resident")
        .token(&m)
        .body("text/csv", "id,name\n1,x\n")
        .send(&t)
        .await
        .problem(StatusCode::UNPROCESSABLE_ENTITY);
    let detail = v["detail"].as_str().unwrap();
    assert!(detail.contains("no location columns") && !detail.contains("/tmp"), "{detail}");
}

/// Two square blocks as GeoJSON; `bad` makes the second one's ring unclosable.
fn blocks_geojson(bad: bool) -> String {
    let square = |x: f64| json!([[[x, 34.0], [x + 0.01, 34.0], [x + 0.01, 34.01], [x, 34.01], [x, 34.0]]]);
    let second = if bad { json!([[[-118.0, 34.0], [-118.0, 34.0]]]) } else { square(-118.28) };
    json!({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"GEOID20": "060370000000001"}, "geometry": {"type": "Polygon", "coordinates": square(-118.30)}},
        {"type": "Feature", "properties": {"GEOID20": "060370000000002"}, "geometry": {"type": "Polygon", "coordinates": second}}
    ]})
    .to_string()
}

#[tokio::test]
async fn a_failed_block_import_is_422_and_keeps_the_catchment() {
    let t = demo_app().await;
    let m = t.tokens.manager.clone();
    let before = get(&t, "/coverage").await.json();
    let v = req(Method::POST, "/imports/blocks")
        .token(&m)
        .body("application/geo+json", blocks_geojson(true))
        .send(&t)
        .await
        .problem(StatusCode::UNPROCESSABLE_ENTITY);
    let rejected = v["rejected"].as_array().unwrap_or_else(|| panic!("{v:#}"));
    assert_eq!(rejected.len(), 1, "{v:#}");
    assert_eq!(rejected[0]["file"], "upload.geojson");
    assert!(!v.to_string().contains("belong-upload"), "{v}");
    assert_eq!(get(&t, "/coverage").await.json(), before);

    for (ct, body) in [("text/plain", blocks_geojson(false)), ("application/zip", "not a zip".to_string())] {
        let status =
            if ct == "text/plain" { StatusCode::UNSUPPORTED_MEDIA_TYPE } else { StatusCode::UNPROCESSABLE_ENTITY };
        req(Method::POST, "/imports/blocks").token(&m).body(ct, body).send(&t).await.problem(status);
    }
    assert_eq!(get(&t, "/coverage").await.json(), before);

    // skip_invalid imports the good one; a good file replaces the catchment.
    let v = req(Method::POST, "/imports/blocks?skip_invalid=true")
        .token(&m)
        .body("application/geo+json", blocks_geojson(true))
        .send(&t)
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(v["replaced"]["blocks"], 1, "{v:#}");
    assert_eq!(v["rejected"].as_array().unwrap().len(), 1);
    let v = req(Method::POST, "/imports/blocks?id_field=GEOID20")
        .token(&m)
        .body("application/geo+json", blocks_geojson(false))
        .send(&t)
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(v["replaced"]["blocks"], 2, "{v:#}");
    assert_eq!(get(&t, "/coverage").await.json()["blocks"], 2);
    let items = get(&t, "/collections/blocks/items").await.json();
    assert_eq!(items["numberMatched"], 2);
}

#[tokio::test]
async fn zipped_shapefile_upload_replaces_the_catchment() {
    use std::io::Write;
    let t = demo_app().await;
    let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data");
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for ext in ["shp", "shx", "dbf", "prj"] {
        zip.start_file(format!("blocks.{ext}"), zip::write::SimpleFileOptions::default()).unwrap();
        zip.write_all(&std::fs::read(data.join(format!("blocks.{ext}"))).unwrap()).unwrap();
    }
    let bytes = zip.finish().unwrap().into_inner();
    let before = get(&t, "/coverage").await.json();
    let v = req(Method::POST, "/imports/blocks")
        .token(&t.tokens.manager)
        .body("application/zip", bytes)
        .send(&t)
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(v["replaced"]["blocks"], before["blocks"], "{v:#}");
    assert_eq!(v["replaced"]["added"], 0);
    assert_eq!(get(&t, "/coverage").await.json(), before);
}

/// Issue 12: a zip of zeros uploaded to `/imports/blocks` is refused while inflating, with the
/// limit named, and the catchment is unchanged.
#[tokio::test]
async fn uploaded_zip_bomb_is_refused_naming_the_limit() {
    use std::io::Write;
    let config =
        ServeConfig { zip: belong::ingest::ZipLimits { entry: 4 << 20, total: 8 << 20 }, ..Default::default() };
    let t = demo_app_with(config).await;
    let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data");
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let deflated = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    zip.start_file("blocks.shp", deflated).unwrap();
    zip.write_all(&vec![0u8; 32 << 20]).unwrap();
    for ext in ["shx", "dbf", "prj"] {
        zip.start_file(format!("blocks.{ext}"), deflated).unwrap();
        zip.write_all(&std::fs::read(data.join(format!("blocks.{ext}"))).unwrap()).unwrap();
    }
    let bytes = zip.finish().unwrap().into_inner();
    assert!(bytes.len() < 200_000, "{} bytes", bytes.len());
    let before = get(&t, "/coverage").await.json();
    let detail = req(Method::POST, "/imports/blocks")
        .token(&t.tokens.manager)
        .body("application/zip", bytes)
        .send(&t)
        .await
        .problem_detail(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(detail.contains("blocks.shp inflates to 32 MiB, more than the limit of 4 MiB"), "{detail}");
    assert!(detail.contains("--max-unzipped-entry"), "{detail}");
    assert_eq!(get(&t, "/coverage").await.json(), before);
}

#[tokio::test]
async fn resource_and_indicator_imports() {
    let t = demo_app().await;
    let m = t.tokens.manager.clone();
    let csv = "id,name,category,lon,lat\nNEW1,New Pantry,food bank,-118.28,34.04\nNEW2,Broken,clinic,abc,34.04\n";
    let v = req(Method::POST, "/imports/resources")
        .token(&m)
        .body("text/csv", csv)
        .send(&t)
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(v["upserted"]["inserted"], 1, "{v:#}");
    assert_eq!(v["rejected"][0]["file"], "upload.csv");
    let item = get(&t, "/collections/resources/items/NEW1").await.expect(StatusCode::OK).json();
    assert_eq!(item["properties"]["name"], "New Pantry");

    let block = http_support::most_populous_uncovered(&t);
    let csv = format!(
        "block_id,indicator,value,date\n{block},school_readiness,77.5,2026-01-01\n999,school_readiness,1,2026-01-01\n"
    );
    let v = req(Method::POST, "/imports/indicators")
        .token(&m)
        .body("text/csv", csv)
        .send(&t)
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(v["upserted"]["inserted"], 1, "{v:#}");
    assert_eq!(v["rejected"][0]["field"], "block_id");
    req(Method::POST, "/imports/indicators")
        .token(&m)
        .json(&json!({}))
        .send(&t)
        .await
        .problem(StatusCode::UNSUPPORTED_MEDIA_TYPE);
    req(Method::POST, "/imports/resources?colour=red")
        .token(&m)
        .body("text/csv", "a\n")
        .send(&t)
        .await
        .problem(StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn oversized_bodies_are_413() {
    let t = demo_app_with(ServeConfig { max_body: 1024, ..ServeConfig::default() }).await;
    let big = "x".repeat(4096);
    for uri in ["/people", "/people/import?role=resident", "/imports/blocks", "/imports/indicators"] {
        let ct = if uri == "/people" { "application/json" } else { "text/csv" };
        req(Method::POST, uri)
            .token(&t.tokens.manager)
            .body(ct, big.clone())
            .send(&t)
            .await
            .problem(StatusCode::PAYLOAD_TOO_LARGE);
    }
}

#[tokio::test]
async fn coverage_history_follows_the_changes() {
    let t = demo_app().await;
    let v = get(&t, "/coverage/history").await.expect(StatusCode::OK).json();
    let rows = v.as_array().unwrap();
    let last = rows.last().unwrap();
    let now = get(&t, "/coverage").await.json();
    assert_eq!(last["covered_blocks"], now["covered_blocks"], "{last} vs {now}");
    assert_eq!(last["blocks"], now["blocks"]);
    assert_eq!(last["residents"], now["residents"]);
    assert_eq!(last["coverage_pct"], now["coverage_pct"]);
    assert!(last["date"].as_str().unwrap().len() == 10);

    let (_, lon, lat) = uncovered_block(&t);
    let body = json!({"role": "ambassador", "lon": lon, "lat": lat});
    req(Method::POST, "/people").token(&t.tokens.manager).json(&body).send(&t).await.expect(StatusCode::CREATED);
    let v = get(&t, "/coverage/history?interval=week").await.expect(StatusCode::OK).json();
    let last = v.as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["covered_blocks"], now["covered_blocks"].as_u64().unwrap() + 1);
    get(&t, "/coverage/history?interval=month").await.problem(StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn public_responses_carry_no_personal_data() {
    let t = demo_app().await;
    for uri in [
        "/",
        "/api",
        "/collections",
        "/collections/blocks/items?limit=10000",
        "/collections/blocks/items?limit=10000&f=csv",
        "/collections/resources/items?limit=10000",
        "/collections/school-readiness/items?limit=10000",
        "/coverage",
        "/coverage/uncovered",
        "/coverage/uncovered?f=csv",
        "/coverage/history",
        "/people",
        "/people/R000001",
    ] {
        let text = get(&t, uri).await.text();
        for secret in [RESIDENT_NAME, RESIDENT_EMAIL, AMBASSADOR_NAME, AMBASSADOR_EMAIL, "Jimenez", "R000001"] {
            assert!(!text.contains(secret), "{uri} leaks {secret}");
        }
    }
    // A recruiter does see them.
    let v = get_as(&t, "/people/R000001", &t.tokens.recruiter).await.expect(StatusCode::OK).json();
    assert_eq!((v["name"].as_str(), v["email"].as_str()), (Some(RESIDENT_NAME), Some(RESIDENT_EMAIL)));
}

mod end_to_end {
    //! The real binary on a free port, driven over TCP.
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::process::Command;
    use std::time::Duration;

    use serde_json::{Value, json};

    fn request(port: u16, method: &str, path: &str, token: &str, body: Option<&Value>) -> (u16, String) {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let body = body.map(Value::to_string).unwrap_or_default();
        let auth = if token.is_empty() { String::new() } else { format!("Authorization: Bearer {token}\r\n") };
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n{auth}\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).unwrap();
        let raw = String::from_utf8_lossy(&raw).into_owned();
        let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
        let status = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
        let body = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
            unchunk(body)
        } else {
            body.to_string()
        };
        (status, body)
    }

    fn unchunk(mut body: &str) -> String {
        let mut out = String::new();
        while let Some((size, rest)) = body.split_once("\r\n") {
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            if n == 0 {
                break;
            }
            out.push_str(&rest[..n]);
            body = &rest[n + 2..];
        }
        out
    }

    fn json(port: u16, method: &str, path: &str, token: &str, body: Option<&Value>) -> (u16, Value) {
        let (status, text) = request(port, method, path, token, body);
        (
            status,
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{method} {path}: {status} not JSON ({e}): {text}")),
        )
    }

    #[cfg(unix)]
    #[test]
    fn post_an_ambassador_to_the_running_server() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("belong.db");
        let bin = env!("CARGO_BIN_EXE_belong");
        let out = Command::new(bin)
            .arg("--db")
            .arg(&db)
            .args(["token", "create", "--role", "manager"])
            .env_remove("BELONG_DB")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let token = String::from_utf8_lossy(&out.stdout).lines().last().unwrap().trim().to_string();

        let log = dir.path().join("serve.log");
        let mut server = crate::e2e::serve(&db, "debug", &log);
        let port = server.port;

        let (_, uncovered) = json(port, "GET", "/coverage/uncovered", "", None);
        let block = uncovered[0]["block_id"].as_str().unwrap().to_string();
        let (status, before) = json(port, "GET", "/coverage", &token, None);
        assert_eq!(status, 200, "{before}");
        let (_, item) = json(port, "GET", &format!("/collections/blocks/items/{block}"), &token, None);
        assert_eq!(item["properties"]["covered"], false);
        // An ambassador living inside the uncovered block (a point found from its served geometry).
        let geometry: geojson::Geometry = serde_json::from_value(item["geometry"].clone()).unwrap();
        let geometry: geo::Geometry<f64> = geometry.try_into().unwrap();
        let inside = geo::InteriorPoint::interior_point(&geometry).unwrap();
        let body = json!({"role": "ambassador", "lon": inside.x(), "lat": inside.y(),
                          "name": "Esperanza Testcase", "email": "esperanza.testcase@example.org"});
        let (status, person) = json(port, "POST", "/people", &token, Some(&body));
        assert_eq!(status, 201, "{person}");
        assert_eq!(person["home_block"], block.as_str(), "{person}");
        let bad = json!({"role": "ambassador", "lon": -118.28, "lat": 34.04, "name": "Esperanza Testcase",
                         "email": "esperanza.testcase-at-example.org"});
        let (status, problem) = json(port, "POST", "/people", &token, Some(&bad));
        assert_eq!(status, 422, "{problem}");
        let (_, after) = json(port, "GET", "/coverage", &token, None);
        assert_eq!(after["covered_blocks"].as_u64().unwrap(), before["covered_blocks"].as_u64().unwrap() + 1);
        let (_, item) = json(port, "GET", &format!("/collections/blocks/items/{block}"), &token, None);
        assert_eq!(item["properties"]["covered"], true, "{item}");
        let (status, _) = json(port, "GET", "/people", "blg_not_a_token", None);
        assert_eq!(status, 401);

        let _ = Command::new("kill").args(["-TERM", &server.child.id().to_string()]).status();
        let _ = server.child.wait();
        let log = std::fs::read_to_string(&log).unwrap();
        assert!(log.contains("/people"), "requests are logged:\n{log}");
        for secret in ["Esperanza", "esperanza", &token, "Mario Jimenez", "mario.jimenez"] {
            assert!(!log.contains(secret), "the log holds personal data or a token ({secret}):\n{log}");
        }
    }
}

/// Issue 12: errors quoted their input whole — a 10 KB feature id in a 404 (now a 414 first), a 5 M-character
/// GeoJSON `crs` name twice in a 422. Every quoted value is cut short with its length.
#[tokio::test]
async fn errors_do_not_echo_their_input() {
    let t = demo_app().await;
    // 5,000 characters: longer request targets are a 414 (8 KiB) before any handler.
    let id = "Z".repeat(5_000);
    let detail = get(&t, &format!("/collections/blocks/items/{id}")).await.problem_detail(StatusCode::NOT_FOUND);
    assert!(detail.len() < 400 && detail.contains("(5000 characters)"), "{} bytes: {detail}", detail.len());
    let detail = get(&t, &format!("/people/{id}")).await.problem(StatusCode::UNAUTHORIZED);
    assert!(detail.to_string().len() < 400);
    let detail = get_as(&t, &format!("/people/{id}"), &t.tokens.recruiter).await.problem_detail(StatusCode::NOT_FOUND);
    assert!(detail.len() < 400 && detail.contains("(5000 characters)"), "{detail}");
    let detail = get(&t, &format!("/collections/blocks/items?bbox={id}")).await.problem_detail(StatusCode::BAD_REQUEST);
    assert!(detail.len() < 400, "{detail}");

    let name = "urn:ogc:def:crs:EPSG::".to_string() + &"9".repeat(5_000_000);
    let body =
        json!({"type": "FeatureCollection", "crs": {"type": "name", "properties": {"name": name}}, "features": []});
    let r = req(Method::POST, "/imports/blocks")
        .token(&t.tokens.manager)
        .body("application/geo+json", body.to_string())
        .send(&t)
        .await;
    assert!(r.body.len() < 2_000, "{} bytes", r.body.len());
    let detail = r.problem_detail(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(detail.contains("(5000022 characters)"), "{detail}");
}

/// Issue 12.4: `POST /people/import` applies the rules of `POST /people`: an over-long name, a
/// control character, a row wider than the header and a quote that never closes are rejected
/// rows with their lines, and the good rows are kept.
#[tokio::test]
async fn one_validation_for_every_door_http_people_import() {
    let t = demo_app().await;
    let m = t.tokens.manager.clone();
    let (_, lon, lat) = uncovered_block(&t);
    let mut csv = format!(
        "id,name,phone,lon,lat\nV1,Ana,555-0100,{lon},{lat}\nV2,{},,{lon},{lat}\nV3,Bo,555\u{1}0101,{lon},{lat}\nV4,Cy,,{lon},{lat},extra\nV5,\"Di,,{lon},{lat}\n",
        "N".repeat(1001)
    );
    for i in 0..50 {
        csv.push_str(&format!("W{i},Swallowed,,{lon},{lat}\n"));
    }
    let v = req(Method::POST, "/people/import?role=resident")
        .token(&m)
        .body("text/csv", csv)
        .send(&t)
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(v["imported"]["inserted"], 1, "{v}");
    let got: Vec<(u64, Value)> =
        v["rejected"].as_array().unwrap().iter().map(|j| (j["line"].as_u64().unwrap(), j["field"].clone())).collect();
    assert_eq!(got, [(3, json!("name")), (4, json!("phone")), (5, Value::Null), (6, Value::Null)], "{v}");
    assert!(v["rejected"][3]["reason"].as_str().unwrap().contains("never closed"), "{v}");
    let list = get_as(&t, "/people?limit=10000&role=resident", &m).await.text();
    assert!(!list.contains("Swallowed") && !list.contains("NNNN"), "nothing of the bad rows was stored");
}

/// Issue 12.5: x/y far outside their CRS are 422 from the API and rejected rows from the import.
#[tokio::test]
async fn projected_coordinates_outside_their_crs_http() {
    let t = demo_app().await;
    let m = t.tokens.manager.clone();
    for (crs, x, y) in [("EPSG:2229", 1e9, 1e9), ("EPSG:3857", -1e12, 1e12)] {
        let body = json!({"role": "resident", "x": x, "y": y, "crs": crs});
        let v =
            req(Method::POST, "/people").token(&m).json(&body).send(&t).await.problem(StatusCode::UNPROCESSABLE_ENTITY);
        assert!(v["detail"].as_str().unwrap().starts_with("x:"), "{v}");
    }
    let v = req(Method::POST, "/people/import?role=resident&crs=EPSG:3857")
        .token(&m)
        .body("text/csv", "id,x,y\nX1,-1000000000000,1000000000000\n")
        .send(&t)
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(v["imported"]["inserted"], 0, "{v}");
    assert_eq!(v["rejected"][0]["field"], "x", "{v}");
}

/// Issue 12.6: `/people/import` never quotes a contact value in its `rejected` list.
#[tokio::test]
async fn personal_data_echoed_not_in_http_import_rejections() {
    let t = demo_app().await;
    let m = t.tokens.manager.clone();
    let (_, lon, lat) = uncovered_block(&t);
    let csv = format!(
        "id,name,phone,email,lon,lat,interested\nZ1,Zelda Secret,555-0199,zelda.secret@example,{lon},{lat},\nZ2,Zelda Secret,555-0199,zelda.secret@example.org,{lon},{lat},zelda.secret@example.org\nZ3,Zelda Secret,zelda.secret@example.org,{lon},{lat},,\n"
    );
    let r = req(Method::POST, "/people/import?role=resident").token(&m).body("text/csv", csv).send(&t).await;
    let text = r.text();
    let v = r.expect(StatusCode::OK).json();
    assert_eq!(v["rejected"].as_array().unwrap().len(), 3, "{v}");
    assert_eq!(v["rejected"][0]["field"], "email", "{v}");
    for secret in ["zelda", "Zelda", "555-0199"] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
}

/// The z`z` slippy-map tile holding a WGS84 point.
fn tile_of(lon: f64, lat: f64, z: u8) -> (u32, u32) {
    let n = f64::from(1u32 << z);
    let x = ((lon + 180.0) / 360.0 * n).floor() as u32;
    let lat = lat.to_radians();
    let y = ((1.0 - (lat.tan() + 1.0 / lat.cos()).ln() / std::f64::consts::PI) / 2.0 * n).floor() as u32;
    (x, y)
}

/// `datetime=` on the blocks: each block's counts at the end of a day, adding up to that day's
/// `/coverage/history` point; today's equal the live layer (features, filters and tile bytes).
#[tokio::test]
async fn blocks_as_of_a_day_add_up_to_that_days_history_point() {
    let t = demo_app().await;
    let (block, lon, lat) = uncovered_block(&t);
    let body = json!({"role": "ambassador", "lon": lon, "lat": lat});
    req(Method::POST, "/people").token(&t.tokens.manager).json(&body).send(&t).await.expect(StatusCode::CREATED);

    let points = get(&t, "/coverage/history").await.expect(StatusCode::OK).json();
    let points = points.as_array().unwrap();
    let day = |p: &Value| p["date"].as_str().unwrap().to_string();
    let first = chrono::NaiveDate::parse_from_str(&day(&points[0]), "%Y-%m-%d").unwrap();
    let before = (first - chrono::Days::new(1)).to_string();
    let mut checked = 0;
    for p in [&points[0], &points[points.len() / 2], points.last().unwrap()] {
        let d = day(p);
        let v =
            get(&t, &format!("/collections/blocks/items?datetime={d}&limit=10000")).await.expect(StatusCode::OK).json();
        let features = v["features"].as_array().unwrap();
        assert_eq!(v["numberMatched"], p["blocks"], "{d}");
        let sum = |k: &str| features.iter().map(|f| f["properties"][k].as_u64().unwrap()).sum::<u64>();
        let covered = features.iter().filter(|f| f["properties"]["covered"] == true).count() as u64;
        assert_eq!(
            (sum("residents"), sum("ambassadors"), covered),
            (
                p["residents"].as_u64().unwrap(),
                p["ambassadors"].as_u64().unwrap(),
                p["covered_blocks"].as_u64().unwrap()
            ),
            "{d}: {p}"
        );
        // Filters see that day's counts.
        let c = get(&t, &format!("/collections/blocks/items?datetime={d}&covered=true&limit=1")).await.json();
        assert_eq!(c["numberMatched"], p["covered_blocks"], "{d}");
        assert!(c["links"][0]["href"].as_str().unwrap().contains(&format!("datetime={d}")), "{c}");
        checked += 1;
    }
    assert_eq!(checked, 3);

    // Before the first change nothing was counted.
    let v = get(&t, &format!("/collections/blocks/items?datetime={before}&limit=10000")).await.json();
    assert!(v["features"].as_array().unwrap().iter().all(|f| f["properties"]["residents"] == 0
        && f["properties"]["ambassadors"] == 0
        && f["properties"]["covered"] == false));

    // Today: the single feature and its tile are the live ones, byte for byte.
    let today = day(points.last().unwrap());
    let live = get(&t, &format!("/collections/blocks/items/{block}")).await.expect(StatusCode::OK).json();
    let as_of =
        get(&t, &format!("/collections/blocks/items/{block}?datetime={today}")).await.expect(StatusCode::OK).json();
    assert_eq!(live["properties"], as_of["properties"]);
    assert_eq!(as_of["properties"]["covered"], true);
    assert!(as_of["links"][0]["href"].as_str().unwrap().ends_with(&format!("?datetime={today}")), "{as_of}");
    let then = get(&t, &format!("/collections/blocks/items/{block}?datetime={before}")).await.json();
    assert_eq!(then["properties"]["ambassadors"], 0);
    let (x, y) = tile_of(lon, lat, 15);
    for (plain, dated) in [
        (format!("/tiles/blocks/15/{x}/{y}.mvt"), format!("/tiles/blocks/15/{x}/{y}.mvt?datetime={today}")),
        (
            format!("/collections/blocks/tiles/WebMercatorQuad/15/{y}/{x}"),
            format!("/collections/blocks/tiles/WebMercatorQuad/15/{y}/{x}?datetime={today}"),
        ),
    ] {
        let a = get(&t, &plain).await.expect(StatusCode::OK);
        let b = get(&t, &dated).await.expect(StatusCode::OK);
        assert_eq!(a.body, b.body, "{dated}");
        assert_eq!(a.header(header::ETAG), b.header(header::ETAG));
        let old = get(&t, &dated.replace(&today, &before)).await.expect(StatusCode::OK);
        assert_ne!(old.body, a.body, "the day before the history shows no coverage");
    }

    // One day only; a bad date names what is expected.
    let p = get(&t, "/collections/blocks/items?datetime=2025-01-01/2025-02-01")
        .await
        .problem_detail(StatusCode::BAD_REQUEST);
    assert!(p.contains("one day"), "{p}");
    get(&t, &format!("/tiles/blocks/15/{x}/{y}.mvt?datetime=yesterday")).await.problem(StatusCode::BAD_REQUEST);
    get(&t, &format!("/collections/resources/items/x?datetime={today}")).await.problem(StatusCode::BAD_REQUEST);
}
