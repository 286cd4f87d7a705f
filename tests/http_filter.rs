//! OGC API – Features Part 3 over the router (no socket): the conformance classes, the
//! queryables documents (checked against the JSON Schema meta-schema and against the features
//! they describe, with Python's `jsonschema` where installed), and `filter` in cql2-text and
//! cql2-json, combined with `bbox`, equality parameters, paging and `numberMatched`, against a
//! count made from the unfiltered features.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod http_support;

use axum::http::{Method, StatusCode};
use http_support::{TestApp, demo_app, get, req, uncovered_block};
use serde_json::{Value, json};

fn q(pairs: &[(&str, &str)]) -> String {
    serde_urlencoded::to_string(pairs).unwrap()
}

/// Every block, unfiltered.
async fn all_blocks(t: &TestApp) -> Vec<Value> {
    let page = get(t, "/collections/blocks/items?limit=10000").await.expect(StatusCode::OK).json();
    page["features"].as_array().unwrap().clone()
}

async fn matched(t: &TestApp, collection: &str, pairs: &[(&str, &str)]) -> u64 {
    let r = get(t, &format!("/collections/{collection}/items?limit=1&{}", q(pairs))).await.expect(StatusCode::OK);
    r.json()["numberMatched"].as_u64().unwrap()
}

#[tokio::test]
async fn conformance_and_links_declare_filtering() {
    let t = demo_app().await;
    let conf = get(&t, "/conformance").await.expect(StatusCode::OK).json();
    let classes: Vec<&str> = conf["conformsTo"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    for c in [
        "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables",
        "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables-query-parameters",
        "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter",
        "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/features-filter",
        "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text",
        "http://www.opengis.net/spec/cql2/1.0/conf/cql2-json",
        "http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2",
        "http://www.opengis.net/spec/cql2/1.0/conf/advanced-comparison-operators",
        "http://www.opengis.net/spec/cql2/1.0/conf/case-insensitive-comparison",
        "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions",
        "http://www.opengis.net/spec/cql2/1.0/conf/property-property",
    ] {
        assert!(classes.contains(&c), "{c} missing: {conf:#}");
    }
    for absent in ["spatial-functions", "temporal-functions", "arithmetic", "functions", "accent-insensitive"] {
        let uri = format!("http://www.opengis.net/spec/cql2/1.0/conf/{absent}");
        assert!(!classes.contains(&uri.as_str()), "{absent} is not implemented");
    }
    for id in ["blocks", "resources", "school-readiness", "resource-access"] {
        let c = get(&t, &format!("/collections/{id}")).await.expect(StatusCode::OK).json();
        let link = c["links"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["rel"] == "http://www.opengis.net/def/rel/ogc/1.0/queryables")
            .unwrap_or_else(|| panic!("{id}: no queryables link: {c:#}"));
        assert_eq!(link["href"], format!("http://test.local/collections/{id}/queryables"));
        assert_eq!(link["type"], "application/schema+json");
    }
    let api = get(&t, "/api").await.expect(StatusCode::OK).json();
    assert!(api["paths"]["/collections/{collectionId}/queryables"]["get"].is_object());
    let params = api["paths"]["/collections/blocks/items"]["get"]["parameters"].to_string();
    for p in ["filter", "filter-lang", "filter-crs"] {
        assert!(params.contains(&format!("#/components/parameters/{p}\"")), "{p}: {params}");
    }
    assert_eq!(
        api["components"]["parameters"]["filter-lang"]["schema"]["enum"],
        json!(["cql2-text", "cql2-json", "cql-text"])
    );
}

#[tokio::test]
async fn queryables_are_json_schemas_of_the_properties() {
    let t = demo_app().await;
    let r = get(&t, "/collections/blocks/queryables").await.expect(StatusCode::OK);
    assert_eq!(r.content_type(), "application/schema+json");
    let doc = r.json();
    assert_eq!(doc["$schema"], "https://json-schema.org/draft/2020-12/schema");
    assert_eq!(doc["$id"], "http://test.local/collections/blocks/queryables");
    assert_eq!(doc["type"], "object");
    assert_eq!(doc["additionalProperties"], false);
    let p = &doc["properties"];
    assert_eq!(p["geometry"]["format"], "geometry-multipolygon");
    assert_eq!((p["residents"]["type"].as_str(), p["covered"]["type"].as_str()), (Some("integer"), Some("boolean")));
    assert_eq!((p["name"]["type"].as_str(), p["block_id"]["type"].as_str()), (Some("string"), Some("string")));
    let readiness = get(&t, "/collections/school-readiness/queryables").await.expect(StatusCode::OK).json();
    assert_eq!(readiness["properties"]["date"], json!({"type": "string", "format": "date", "title": "date"}));
    assert_eq!(readiness["properties"]["value"]["type"], "number");
    let points = get(&t, "/collections/resources/queryables").await.expect(StatusCode::OK).json();
    assert_eq!(points["properties"]["geometry"]["format"], "geometry-point");
    // GDAL 3.6 asks for JSON and refuses any other type.
    let r = req(Method::GET, "/collections/blocks/queryables")
        .header("accept", "application/geo+json, application/json")
        .send(&t)
        .await
        .expect(StatusCode::OK);
    assert_eq!(r.content_type(), "application/json");
    get(&t, "/collections/nope/queryables").await.expect(StatusCode::NOT_FOUND);
    get(&t, "/collections/blocks/queryables?f=csv").await.expect(StatusCode::BAD_REQUEST);

    // Each document is a valid 2020-12 schema, and every feature's non-null properties are
    // instances of it (a missing value is NULL to a filter).
    for id in ["blocks", "resources", "school-readiness", "resource-access"] {
        let schema = get(&t, &format!("/collections/{id}/queryables")).await.expect(StatusCode::OK).json();
        let page = get(&t, &format!("/collections/{id}/items?limit=10000")).await.expect(StatusCode::OK).json();
        let instances: Vec<Value> = page["features"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                let props = f["properties"].as_object().unwrap();
                Value::Object(props.iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k.clone(), v.clone())).collect())
            })
            .collect();
        assert!(!instances.is_empty(), "{id}");
        validate_with_python(id, &schema, &instances);
    }
}

/// `instances` against `schema` with Python's jsonschema (Debian's python3-jsonschema, which
/// `scripts/test` installs); skipped with a message where it is missing.
fn validate_with_python(what: &str, schema: &Value, instances: &[Value]) {
    use std::io::Write;
    let script = r#"
import json, sys
import jsonschema
schema, instances = json.load(sys.stdin)
jsonschema.Draft202012Validator.check_schema(schema)
v = jsonschema.Draft202012Validator(schema)
bad = [e.message for i in instances for e in v.iter_errors(i)]
if bad:
    print("\n".join(bad[:5]))
    sys.exit(1)
"#;
    let have = std::process::Command::new("python3").args(["-c", "import jsonschema"]).output();
    if !have.is_ok_and(|o| o.status.success()) {
        eprintln!(
            "skipping the JSON Schema validation of {what}: python3 with jsonschema not found (apt-get install python3-jsonschema)"
        );
        return;
    }
    let mut child = std::process::Command::new("python3")
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(json!([schema, instances]).to_string().as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{what}: not valid against its queryables:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn filters_select_what_a_scan_selects() {
    let t = demo_app().await;
    let blocks = all_blocks(&t).await;
    let count = |keep: &dyn Fn(&Value) -> bool| blocks.iter().filter(|f| keep(&f["properties"])).count() as u64;
    let residents = |p: &Value| p["residents"].as_u64().unwrap();
    let n = count(&|p| residents(p) > 20 && p["covered"] == false);
    assert!(n > 0 && n < blocks.len() as u64, "a strict subset: {n}");

    let text = "residents > 20 AND covered = FALSE";
    assert_eq!(matched(&t, "blocks", &[("filter", text)]).await, n);
    assert_eq!(matched(&t, "blocks", &[("filter", text), ("filter-lang", "cql2-text")]).await, n);
    assert_eq!(matched(&t, "blocks", &[("filter", text), ("filter-lang", "cql-text")]).await, n);
    let json = json!({"op": "and", "args": [
        {"op": ">", "args": [{"property": "residents"}, 20]},
        {"op": "=", "args": [{"property": "covered"}, false]}]});
    assert_eq!(matched(&t, "blocks", &[("filter", &json.to_string()), ("filter-lang", "cql2-json")]).await, n);

    // Each operator against the scan.
    let max = blocks.iter().map(|f| residents(&f["properties"])).max().unwrap();
    let mid = max / 2;
    for (filter, keep) in [
        (
            format!("residents BETWEEN 10 AND {mid}"),
            Box::new(move |p: &Value| (10..=mid).contains(&residents(p))) as Box<dyn Fn(&Value) -> bool>,
        ),
        (format!("residents NOT BETWEEN 10 AND {mid}"), Box::new(move |p: &Value| !(10..=mid).contains(&residents(p)))),
        ("residents IN (0, 1, 2)".into(), Box::new(move |p: &Value| residents(p) <= 2)),
        (
            "ambassadors >= 1 OR residents = 0".into(),
            Box::new(move |p: &Value| p["ambassadors"].as_u64().unwrap() >= 1 || residents(p) == 0),
        ),
        ("NOT covered = TRUE".into(), Box::new(|p: &Value| p["covered"] == false)),
        ("name IS NULL".into(), Box::new(|p: &Value| p["name"].is_null())),
        ("block_id LIKE '%1'".into(), Box::new(|p: &Value| p["block_id"].as_str().unwrap().ends_with('1'))),
        (
            "CASEI(name) LIKE '%a%'".into(),
            Box::new(|p: &Value| p["name"].as_str().is_some_and(|n| n.to_lowercase().contains('a'))),
        ),
        (
            "ambassadors > residents".into(),
            Box::new(move |p: &Value| p["ambassadors"].as_u64().unwrap() > residents(p)),
        ),
    ] {
        assert_eq!(matched(&t, "blocks", &[("filter", &filter)]).await, count(&keep), "{filter}");
    }
}

#[tokio::test]
async fn filters_combine_with_bbox_equality_and_paging() {
    let t = demo_app().await;
    let bbox = "-118.29,34.035,-118.28,34.045";
    let filter = "residents > 5";
    let both = matched(&t, "blocks", &[("bbox", bbox), ("filter", filter)]).await;
    let in_box = matched(&t, "blocks", &[("bbox", bbox)]).await;
    let anywhere = matched(&t, "blocks", &[("filter", filter)]).await;
    assert!(both > 2 && both < in_box && both < anywhere, "{both} {in_box} {anywhere}");
    // S_INTERSECTS with the same box is the bbox parameter.
    let spatial = "S_INTERSECTS(geometry, BBOX(-118.29, 34.035, -118.28, 34.045)) AND residents > 5";
    assert_eq!(matched(&t, "blocks", &[("filter", spatial)]).await, both);
    let geojson = json!({"op": "and", "args": [
        {"op": "s_intersects", "args": [{"property": "geometry"}, {"type": "Polygon", "coordinates": [[
            [-118.29, 34.035], [-118.28, 34.035], [-118.28, 34.045], [-118.29, 34.045], [-118.29, 34.035]]]}]},
        {"op": ">", "args": [{"property": "residents"}, 5]}]});
    assert_eq!(matched(&t, "blocks", &[("filter", &geojson.to_string()), ("filter-lang", "cql2-json")]).await, both);
    // Equality parameters are ANDed too.
    assert_eq!(
        matched(&t, "blocks", &[("filter", filter), ("covered", "false")]).await,
        matched(&t, "blocks", &[("filter", "residents > 5 AND covered = FALSE")]).await
    );

    // Paging: the next links keep the filter, and the pages add up to numberMatched.
    let mut url = format!(
        "/collections/blocks/items?limit=2&{}",
        q(&[("bbox", bbox), ("filter", filter), ("filter-lang", "cql2-text")])
    );
    let mut seen = Vec::new();
    loop {
        let page = get(&t, &url).await.expect(StatusCode::OK).json();
        assert_eq!(page["numberMatched"].as_u64(), Some(both));
        for f in page["features"].as_array().unwrap() {
            assert!(f["properties"]["residents"].as_u64().unwrap() > 5);
            seen.push(f["id"].as_str().unwrap().to_string());
        }
        let links = page["links"].as_array().unwrap();
        let Some(next) = links.iter().find(|l| l["rel"] == "next") else { break };
        let href = next["href"].as_str().unwrap();
        assert!(href.contains("filter=residents") && href.contains("filter-lang=cql2-text"), "{href}");
        url = href.strip_prefix("http://test.local").unwrap().to_string();
    }
    seen.dedup();
    assert_eq!(seen.len() as u64, both);

    // A point in one block selects that block.
    let (block, lon, lat) = uncovered_block(&t);
    let page = get(
        &t,
        &format!(
            "/collections/blocks/items?{}",
            q(&[("filter", &format!("S_INTERSECTS(geometry, POINT({lon} {lat}))"))])
        ),
    )
    .await
    .expect(StatusCode::OK)
    .json();
    assert_eq!(page["numberMatched"], 1, "{page:#}");
    assert_eq!(page["features"][0]["id"], block.as_str());
    // CSV takes the same filter.
    let csv =
        get(&t, &format!("/collections/blocks/items?f=csv&{}", q(&[("filter", &format!("block_id = '{block}'"))])))
            .await
            .expect(StatusCode::OK);
    assert_eq!(csv.text().lines().count(), 2, "{csv}");
}

#[tokio::test]
async fn filters_see_the_live_counts() {
    let t = demo_app().await;
    let (block, lon, lat) = uncovered_block(&t);
    let filter = format!("block_id = '{block}' AND covered = TRUE AND ambassadors = 1");
    assert_eq!(matched(&t, "blocks", &[("filter", &filter)]).await, 0);
    let covered = matched(&t, "blocks", &[("filter", "covered = TRUE")]).await;
    let body = json!({"role": "ambassador", "lon": lon, "lat": lat});
    req(Method::POST, "/people").token(&t.tokens.manager).json(&body).send(&t).await.expect(StatusCode::CREATED);
    assert_eq!(matched(&t, "blocks", &[("filter", &filter)]).await, 1);
    assert_eq!(matched(&t, "blocks", &[("filter", "covered = TRUE")]).await, covered + 1);
}

#[tokio::test]
async fn bad_filters_are_400_with_where_and_why() {
    let t = demo_app().await;
    let problem = |pairs: Vec<(&'static str, String)>| {
        let t = &t;
        async move {
            let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let r = get(t, &format!("/collections/blocks/items?{}", q(&pairs))).await;
            assert_eq!(r.content_type(), "application/problem+json", "{r}");
            r.problem_detail(StatusCode::BAD_REQUEST)
        }
    };
    let d = problem(vec![("filter", "residents > 5 AMD covered = FALSE".into())]).await;
    assert!(d.contains("character 15 (line 1, column 15)") && d.contains("near \"AMD covered = FALSE\""), "{d}");
    let d = problem(vec![("filter", "resident > 5".into())]).await;
    assert!(d.contains("\"resident\" is not a queryable of collection 'blocks'") && d.contains("residents"), "{d}");
    let d = problem(vec![("filter", "name = 5".into())]).await;
    assert!(d.contains("one type"), "{d}");
    let d = problem(vec![("filter", "{\"op\": \"=\", \"args\": [".into()), ("filter-lang", "cql2-json".into())]).await;
    assert!(d.contains("cql2-json: not JSON") && d.contains("line 1, column"), "{d}");
    let d = problem(vec![
        ("filter", "{\"op\": \"between\", \"args\": [{\"property\": \"residents\"}, 1]}".into()),
        ("filter-lang", "cql2-json".into()),
    ])
    .await;
    assert!(d.contains("at /args"), "{d}");
    let d = problem(vec![("filter", "residents > 1".into()), ("filter-lang", "ecql".into())]).await;
    assert!(d.contains("cql2-text, cql2-json"), "{d}");
    let d = problem(vec![("filter", "residents > 1".into()), ("filter-crs", "EPSG:3857".into())]).await;
    assert!(d.contains("only") && d.contains("CRS84"), "{d}");
    let d = problem(vec![("filter", "S_CONTAINS(geometry, POINT(-118 34))".into())]).await;
    assert!(d.contains("S_INTERSECTS"), "{d}");
    let d = problem(vec![("filter", format!("name = '{}", "x".repeat(3_000)))]).await;
    assert!(d.contains("unterminated") && d.len() < 600, "{} bytes", d.len());
    // A filter-crs of CRS84 is fine.
    let ok = q(&[("filter", "residents > 1"), ("filter-crs", "http://www.opengis.net/def/crs/OGC/1.3/CRS84")]);
    get(&t, &format!("/collections/blocks/items?{ok}")).await.expect(StatusCode::OK);
}
