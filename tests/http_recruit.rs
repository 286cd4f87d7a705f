//! Recruiting over HTTP: `GET /coverage/uncovered` (priority, components, nearest ambassadors,
//! adjacent covered blocks, candidates by role, the CSV walk list, bad parameters) and adoptions
//! that expire (`POST /people/{id}/adopt`, `PATCH adopted_until`), in the router and in the
//! real server.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod e2e;
mod http_support;

use std::time::Duration;

use axum::http::{Method, StatusCode, header};
use http_support::*;
use serde_json::{Value, json};

/// An active demo ambassador.
const AMBASSADOR: &str = "A0002";

fn rows(v: &Value) -> &Vec<Value> {
    v.as_array().unwrap_or_else(|| panic!("not an array: {v}"))
}

fn uncovered_ids(v: &Value) -> Vec<String> {
    rows(v).iter().map(|r| r["block_id"].as_str().unwrap().to_string()).collect()
}

/// Parse a walk list with a real CSV parser (after the byte-order mark); header and records.
fn parse_csv(text: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let body = text.strip_prefix('\u{feff}').unwrap_or_else(|| panic!("no byte-order mark: {text:.200}"));
    let mut r = csv::Reader::from_reader(body.as_bytes());
    let header = r.headers().unwrap().iter().map(str::to_string).collect();
    let records = r.records().map(|rec| rec.unwrap().iter().map(str::to_string).collect()).collect();
    (header, records)
}

#[tokio::test]
async fn rows_are_ranked_by_priority_and_explained() {
    let t = demo_app().await;
    let r = get(&t, "/coverage/uncovered").await.expect(StatusCode::OK);
    let v = r.json();
    let rows = rows(&v);
    let summary = get(&t, "/coverage").await.json();
    let uncovered = summary["blocks"].as_u64().unwrap() - summary["covered_blocks"].as_u64().unwrap();
    assert_eq!(rows.len() as u64, uncovered);
    assert_eq!(r.header("x-total-count".parse().unwrap()), uncovered.to_string());
    for (i, w) in rows.windows(2).enumerate() {
        let (pa, pb) = (w[0]["priority"].as_f64().unwrap(), w[1]["priority"].as_f64().unwrap());
        assert!(pa > pb || (pa == pb && w[0]["block_id"].as_str() < w[1]["block_id"].as_str()), "row {i}");
    }
    for (i, row) in rows.iter().enumerate() {
        // The map page reads these.
        for field in ["block_id", "name", "residents", "rank"] {
            assert!(row.get(field).is_some(), "{field} missing: {row}");
        }
        assert_eq!(row["rank"], i as u64 + 1);
        let c = &row["components"];
        let sum: f64 = ["residents", "need", "children", "distance"].iter().map(|k| c[k].as_f64().unwrap()).sum();
        assert!((sum - row["priority"].as_f64().unwrap()).abs() < 1e-5, "{row}");
        assert_eq!(row["inputs"]["need_indicator"], "school_readiness");
        assert_eq!(row["inputs"]["children_field"], "CHILDREN");
        assert_eq!(row["nearest_ambassadors"].as_array().unwrap().len(), 3);
        assert!(row.get("candidates").is_none(), "anonymous callers see no candidates: {row}");
    }
    // The demo has readiness for most blocks; blocks without it say so rather than scoring 0 need
    // silently.
    assert!(rows.iter().any(|r| r["inputs"]["need_value"].is_number()));
    // Adjacent covered blocks are covered and are real neighbours of some uncovered block.
    let covered: std::collections::HashSet<String> = {
        let items = get(&t, "/collections/blocks/items?covered=true&limit=10000").await.json();
        items["features"].as_array().unwrap().iter().map(|f| f["id"].as_str().unwrap().to_string()).collect()
    };
    let adjacent: Vec<&str> = rows
        .iter()
        .flat_map(|r| r["adjacent_covered_blocks"].as_array().unwrap())
        .map(|b| b.as_str().unwrap())
        .collect();
    assert!(!adjacent.is_empty());
    assert!(adjacent.iter().all(|b| covered.contains(*b)));
}

#[tokio::test]
async fn weights_change_the_order_and_bad_ones_are_refused() {
    let t = demo_app().await;
    // Residents only: the order is residents, then block id.
    let v = get(&t, "/coverage/uncovered?weights=residents:1,need:0,children:0,distance:0")
        .await
        .expect(StatusCode::OK)
        .json();
    for w in rows(&v).windows(2) {
        let (a, b) = (w[0]["residents"].as_u64().unwrap(), w[1]["residents"].as_u64().unwrap());
        assert!(a > b || (a == b && w[0]["block_id"].as_str() < w[1]["block_id"].as_str()));
    }
    // Need only: lowest readiness first, normalised over the range; no data counts 0.
    let v = get(&t, "/coverage/uncovered?w_residents=0&w_children=0&w_distance=0&w_need=2").await.json();
    let values: Vec<Option<f64>> = rows(&v).iter().map(|r| r["inputs"]["need_value"].as_f64()).collect();
    assert!(values.iter().any(Option::is_none), "the demo has blocks without readiness data");
    let (lo, hi) = values.iter().flatten().fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
    let needs: Vec<f64> = rows(&v).iter().map(|r| r["components"]["need"].as_f64().unwrap()).collect();
    for (need, value) in needs.iter().zip(&values) {
        let expected = value.map_or(0.0, |v| 2.0 * (hi - v) / (hi - lo));
        assert!((need - expected).abs() < 1e-5, "{need} for {value:?}");
    }
    assert!(needs.windows(2).all(|w| w[0] >= w[1]));
    assert_eq!(needs[0], 2.0);
    let default = uncovered_ids(&get(&t, "/coverage/uncovered").await.json());
    assert_ne!(uncovered_ids(&v), default);

    for (query, needle) in [
        ("weights=people:1", "unknown weight 'people'"),
        ("weights=need", "expected NAME=VALUE"),
        ("w_need=-1", "weight 'need' = -1"),
        ("w_need=NaN", "from 0 to 1000"),
        ("w_distance=1e9", "from 0 to 1000"),
        ("w_people=1", "unknown query parameter 'w_people'"),
        ("nearest=0", "nearest=0"),
        ("nearest=1000", "from 1 to 50"),
        ("nearest=three", "nearest=\"three\""),
        ("indicator=readyness", "unknown indicator 'readyness'; the indicators with data are: school_readiness"),
        ("distance_cap=-5", "distance_cap=-5"),
        ("limit=0", "limit=\"0\""),
        ("f=xlsx", "f=\"xlsx\""),
    ] {
        let p = get(&t, &format!("/coverage/uncovered?{query}")).await.problem(StatusCode::BAD_REQUEST);
        assert!(p["detail"].as_str().unwrap().contains(needle), "{query}: {p}");
    }
}

#[tokio::test]
async fn candidates_and_exact_distances_are_for_recruiters_and_managers() {
    let t = demo_app().await;
    let anonymous = get(&t, "/coverage/uncovered").await.json();
    let viewer = get_as(&t, "/coverage/uncovered", &t.tokens.viewer).await.expect(StatusCode::OK).json();
    let recruiter = get_as(&t, "/coverage/uncovered", &t.tokens.recruiter).await.expect(StatusCode::OK);
    assert_eq!(recruiter.header(header::CACHE_CONTROL), "private, no-store");
    let recruiter = recruiter.json();
    let manager = get_as(&t, "/coverage/uncovered", &t.tokens.manager).await.json();
    assert_eq!(recruiter, manager);
    let distances = |v: &Value| -> Vec<f64> {
        rows(v)
            .iter()
            .flat_map(|r| r["nearest_ambassadors"].as_array().unwrap())
            .map(|n| n["distance_m"].as_f64().unwrap())
            .collect()
    };
    let ambassador_ids = |v: &Value| -> Vec<Value> {
        rows(v).iter().flat_map(|r| r["nearest_ambassadors"].as_array().unwrap()).map(|n| n["id"].clone()).collect()
    };
    assert!(ambassador_ids(&recruiter).iter().all(Value::is_string));
    for public in [&anonymous, &viewer] {
        assert!(rows(public).iter().all(|r| r.get("candidates").is_none()));
        assert!(ambassador_ids(public).iter().all(Value::is_null), "no person ids below recruiter");
        assert!(distances(public).iter().all(|d| d % 100.0 == 0.0), "rounded to 100 m");
        // Same order and same ambassadors: only the precision differs.
        assert_eq!(uncovered_ids(public), uncovered_ids(&recruiter));
        // The score's inputs and components reveal no more than the rounded distance.
        for (p, r) in rows(public).iter().zip(rows(&recruiter)) {
            assert_eq!(
                (&p["priority"], &p["components"], &p["inputs"]),
                (&r["priority"], &r["components"], &r["inputs"])
            );
        }
    }
    let exact = distances(&recruiter);
    assert!(exact.iter().any(|d| d % 100.0 != 0.0));
    for (e, r) in exact.iter().zip(distances(&viewer)) {
        assert_eq!((e / 100.0).round() * 100.0, r);
    }
    let with_candidates = rows(&recruiter).iter().filter(|r| !r["candidates"].as_array().unwrap().is_empty()).count();
    assert!(with_candidates > 0);
    let c = rows(&recruiter).iter().flat_map(|r| r["candidates"].as_array().unwrap()).next().unwrap();
    assert!(
        c["id"].is_string() && c.get("name").is_some() && c.get("phone").is_some() && c.get("email").is_some(),
        "{c}"
    );
    // Nothing personal in the public answers.
    let text = get(&t, "/coverage/uncovered?f=csv").await.text() + &anonymous.to_string();
    for secret in [c["name"].as_str().unwrap(), c["id"].as_str().unwrap()] {
        assert!(!text.contains(secret), "leaks {secret}");
    }
}

#[tokio::test]
async fn the_walk_list_opens_in_a_csv_parser_with_awkward_names() {
    let t = demo_app().await;
    let (block, lon, lat) = uncovered_block(&t);
    let name = "Ana \"Nena\" López, Jr.";
    let body = json!({"id": "R-walk", "role": "resident", "lon": lon, "lat": lat, "name": name,
                      "phone": "(213) 555-0000", "email": "nena@example.org", "interested": true});
    req(Method::POST, "/people").token(&t.tokens.manager).json(&body).send(&t).await.expect(StatusCode::CREATED);

    let r = get_as(&t, "/coverage/uncovered?f=csv", &t.tokens.recruiter).await.expect(StatusCode::OK);
    assert_eq!(r.header(header::CONTENT_TYPE), "text/csv; charset=utf-8");
    assert!(r.header(header::CONTENT_DISPOSITION).contains("walk-list.csv"));
    let (head, records) = parse_csv(&r.text());
    assert_eq!(
        head,
        [
            "rank",
            "block_id",
            "block_name",
            "priority",
            "residents",
            "ambassadors",
            "candidate_id",
            "candidate_name",
            "candidate_phone",
            "candidate_email",
            "nearest_ambassadors",
            "adjacent_covered_blocks"
        ]
    );
    let mine = records.iter().find(|rec| rec[6] == "R-walk").unwrap();
    assert_eq!((mine[1].as_str(), mine[7].as_str(), mine[8].as_str()), (block.as_str(), name, "(213) 555-0000"));
    // One line per candidate, one per block without any; every uncovered block appears.
    let json = get_as(&t, "/coverage/uncovered", &t.tokens.recruiter).await.json();
    let lines: usize = rows(&json).iter().map(|r| r["candidates"].as_array().unwrap().len().max(1)).sum();
    assert_eq!(records.len(), lines);
    let ranks: Vec<u64> = records.iter().map(|r| r[0].parse().unwrap()).collect();
    assert!(ranks.windows(2).all(|w| w[0] <= w[1]));
    assert!(records[0][10].contains(" m"), "nearest ambassadors with distances: {:?}", records[0]);

    // Below recruiter: no personal columns, one line per block.
    let (head, records) = parse_csv(&get_as(&t, "/coverage/uncovered?f=csv", &t.tokens.viewer).await.text());
    assert!(!head.iter().any(|h| h.starts_with("candidate")), "{head:?}");
    assert_eq!(records.len(), rows(&json).len());
    assert!(!records.iter().flatten().any(|cell| cell.contains("Nena")));
}

#[tokio::test]
async fn paging_and_nearest() {
    let t = demo_app().await;
    let all = get(&t, "/coverage/uncovered").await.json();
    let r = get(&t, "/coverage/uncovered?limit=5&offset=10&nearest=1").await.expect(StatusCode::OK);
    assert_eq!(r.header("x-total-count".parse().unwrap()), rows(&all).len().to_string());
    let page = r.json();
    assert_eq!(uncovered_ids(&page), uncovered_ids(&all)[10..15]);
    assert!(rows(&page).iter().all(|r| r["nearest_ambassadors"].as_array().unwrap().len() == 1));
    assert_eq!(rows(&page)[0]["rank"], 11);
    let five = get(&t, "/coverage/uncovered?nearest=5").await.json();
    assert!(rows(&five).iter().all(|r| r["nearest_ambassadors"].as_array().unwrap().len() == 5));
    assert_eq!(rows(&five)[0]["nearest_ambassadors"][0], rows(&all)[0]["nearest_ambassadors"][0]);
}

#[tokio::test]
async fn adoption_endpoint_checks_roles_and_input() {
    let t = demo_app().await;
    let (block, _, _) = uncovered_block(&t);
    let uri = format!("/people/{AMBASSADOR}/adopt");
    let body = json!({"block_id": block, "days": 30});
    req(Method::POST, &uri).json(&body).send(&t).await.problem(StatusCode::UNAUTHORIZED);
    for token in [&t.tokens.viewer, &t.tokens.recruiter] {
        req(Method::POST, &uri).token(token).json(&body).send(&t).await.problem(StatusCode::FORBIDDEN);
    }
    let m = &t.tokens.manager;
    let p = req(Method::POST, &uri).token(m).json(&body).send(&t).await.expect(StatusCode::OK).json();
    assert_eq!((p["block_id"].as_str(), p["covering_block"].as_str()), (Some(block.as_str()), Some(block.as_str())));
    assert!(p["adopted_until"].as_str().unwrap().ends_with('Z'), "{p}");
    assert!(!uncovered_ids(&get(&t, "/coverage/uncovered").await.json()).contains(&block));

    let short = &block[1..];
    for (body, status, needle) in [
        (json!({"block_id": block, "until": "2001-01-01T00:00:00Z"}), 422, "until: must be in the future"),
        (json!({"block_id": block, "until": "tomorrow"}), 422, "until: expected an RFC 3339"),
        (json!({"block_id": block, "until": "2099-01-01", "days": 3}), 422, "days: give until or days"),
        (json!({"block_id": block, "days": 0}), 422, "days: expected a whole number of days from 1 to 3650"),
        (json!({"block_id": short}), 422, "did you mean"),
        (json!({}), 422, "block_id: required"),
        (json!({"block_id": block, "until": 5}), 400, "malformed JSON body"),
        (json!({"block_id": block, "for": 3}), 400, "unknown field"),
    ] {
        let p =
            req(Method::POST, &uri).token(m).json(&body).send(&t).await.problem(StatusCode::from_u16(status).unwrap());
        assert!(p["detail"].as_str().unwrap().contains(needle), "{body}: {p}");
    }
    let p = req(Method::POST, "/people/R000001/adopt").token(m).json(&json!({"block_id": block})).send(&t).await;
    assert!(p.problem(StatusCode::UNPROCESSABLE_ENTITY)["detail"].as_str().unwrap().contains("only ambassadors"));
    req(Method::POST, "/people/nobody/adopt")
        .token(m)
        .json(&json!({"block_id": block}))
        .send(&t)
        .await
        .problem(StatusCode::NOT_FOUND);

    // PATCH sets and clears the expiry; the people API reports it.
    let patch = |body: Value| req(Method::PATCH, &format!("/people/{AMBASSADOR}")).token(m).json(&body).send(&t);
    let p = patch(json!({"adopted_until": "2099-12-31"})).await.expect(StatusCode::OK).json();
    assert_eq!(p["adopted_until"], "2100-01-01T00:00:00Z");
    let p = patch(json!({"adopted_until": null})).await.expect(StatusCode::OK).json();
    assert_eq!((p["adopted_until"].clone(), p["covering_block"].clone()), (Value::Null, Value::from(block.clone())));
    let p = patch(json!({"adopted_until": "2000-01-01"})).await.problem(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(p["detail"].as_str().unwrap().contains("adopted_until: must be in the future"), "{p}");
}

/// An adoption lapses by itself: covered at once, uncovered again after `until`, with no write
/// in between — the service notices the expiry and republishes its snapshot.
#[tokio::test]
async fn an_adoption_lapses_without_a_write() {
    let t = demo_app().await;
    let (block, _, _) = uncovered_block(&t);
    let _watcher = t.state.watch(Duration::from_millis(100));
    let until = chrono::Utc::now() + chrono::Duration::seconds(2);
    let body = json!({"block_id": block, "until": until.to_rfc3339()});
    let uri = format!("/people/{AMBASSADOR}/adopt");
    req(Method::POST, &uri).token(&t.tokens.manager).json(&body).send(&t).await.expect(StatusCode::OK);
    let covered_now = get(&t, &format!("/collections/blocks/items/{block}")).await.json();
    assert_eq!(covered_now["properties"]["covered"], true);
    assert!(!uncovered_ids(&get(&t, "/coverage/uncovered").await.json()).contains(&block));
    let history_len = t.state.store.history_len().unwrap();

    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if uncovered_ids(&get(&t, "/coverage/uncovered").await.json()).contains(&block) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the adoption did not lapse");
    }
    let item = get(&t, &format!("/collections/blocks/items/{block}")).await.json();
    assert_eq!(item["properties"]["covered"], false);
    let p = get_as(&t, &format!("/people/{AMBASSADOR}"), &t.tokens.recruiter).await.json();
    assert_eq!(p["block_id"], block.as_str(), "the adoption is kept, lapsed");
    assert_ne!(p["covering_block"], block.as_str());
    assert_eq!(t.state.store.history_len().unwrap(), history_len, "no write happened");
}

mod end_to_end {
    //! The real binary: `belong people adopt` with an expiry a few seconds ahead, then the
    //! running server shows the block uncovered again once it has passed.
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::process::Command;
    use std::time::{Duration, Instant};

    fn get(port: u16, path: &str) -> serde_json::Value {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").unwrap();
        let mut raw = String::new();
        s.read_to_string(&mut raw).unwrap();
        let (head, body) = raw.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 200"), "{path}: {head}");
        let body = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
            let mut out = String::new();
            let mut rest = body;
            while let Some((size, tail)) = rest.split_once("\r\n") {
                let n = usize::from_str_radix(size.trim(), 16).unwrap();
                if n == 0 {
                    break;
                }
                out.push_str(&tail[..n]);
                rest = &tail[n + 2..];
            }
            out
        } else {
            body.to_string()
        };
        serde_json::from_str(&body).unwrap()
    }

    fn ids(v: &serde_json::Value) -> Vec<String> {
        v.as_array().unwrap().iter().map(|r| r["block_id"].as_str().unwrap().to_string()).collect()
    }

    #[cfg(unix)]
    #[test]
    fn the_server_notices_a_lapsed_adoption() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("belong.db");
        let server = crate::e2e::serve(&db, "info", &dir.path().join("serve.log"));
        let block = ids(&get(server.port, "/coverage/uncovered"))[0].clone();
        // Another process writes the adoption (the CLI); the server picks the write up, then
        // the expiry, with no further write.
        let until = (chrono::Utc::now() + chrono::Duration::seconds(8)).to_rfc3339();
        let out = Command::new(env!("CARGO_BIN_EXE_belong"))
            .arg("--db")
            .arg(&db)
            .args(["people", "adopt", super::AMBASSADOR, &block, "--until", &until])
            .env_remove("BELONG_DB")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut seen_covered = false;
        loop {
            std::thread::sleep(Duration::from_millis(250));
            let uncovered = ids(&get(server.port, "/coverage/uncovered")).contains(&block);
            seen_covered |= !uncovered;
            if seen_covered && uncovered {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "covered seen: {seen_covered}; log:\n{}",
                std::fs::read_to_string(&server.log).unwrap_or_default()
            );
        }
        let log = std::fs::read_to_string(&server.log).unwrap();
        assert!(log.contains("an adoption lapsed"), "{log}");
    }
}

#[tokio::test]
async fn the_api_document_describes_recruiting() {
    let t = demo_app().await;
    let v = get(&t, "/api").await.expect(StatusCode::OK).json();
    let adopt = &v["paths"]["/people/{id}/adopt"]["post"];
    assert_eq!(adopt["operationId"], "adoptBlock", "{adopt}");
    let params: Vec<&str> = v["paths"]["/coverage/uncovered"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for name in ["weights", "w_residents", "w_need", "w_children", "w_distance", "nearest", "indicator", "limit"] {
        assert!(params.contains(&name), "{name} not in {params:?}");
    }
    let row = &v["components"]["schemas"]["UncoveredRow"]["properties"];
    for field in ["priority", "components", "inputs", "nearest_ambassadors", "adjacent_covered_blocks", "candidates"] {
        assert!(row.get(field).is_some(), "{field} missing from {row}");
    }
}

/// Issue 12: the ranked page is answered once per recruiting data and shared by concurrent
/// askers; a write must still show at once.
#[tokio::test]
async fn the_shared_ranked_page_follows_every_write() {
    let t = demo_app().await;
    let top = |v: &Value| rows(v)[0]["block_id"].as_str().unwrap().to_string();
    let (a, b) = tokio::join!(get(&t, "/coverage/uncovered?limit=1"), get(&t, "/coverage/uncovered?limit=1"));
    assert_eq!(a.body, b.body);
    let first = top(&a.json());
    let point = t.state.layers().collection("blocks").unwrap().feature(&first).unwrap().point.unwrap();
    for i in 0..3 {
        let body =
            serde_json::json!({"id": format!("shared-{i}"), "role": "ambassador", "lon": point.0, "lat": point.1});
        req(Method::POST, "/people").token(&t.tokens.manager).json(&body).send(&t).await.expect(StatusCode::CREATED);
    }
    let after = get(&t, "/coverage/uncovered?limit=1").await.json();
    assert_ne!(top(&after), first, "the block has ambassadors now");
    let all = get(&t, "/coverage/uncovered").await.json();
    assert!(rows(&all).iter().all(|r| r["block_id"] != first.as_str()));
}
