//! Several `belong serve` processes on one PostgreSQL/PostGIS database behave as one service:
//! a write acknowledged by one instance reaches every other (coverage, features, tiles, the
//! ranking), concurrent writers on both never lose or double-count, a block import and a token
//! revocation reach every instance, and a PostgreSQL restart costs writes for its duration only
//! while reads go on from memory. Real processes, real PostgreSQL (see `tests/pg`).

#![allow(clippy::unwrap_used)]

mod common;
mod e2e;
mod pg;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use e2e::{Server, http_get};
use serde_json::{Value, json};

/// Status, lower-cased headers and body of one request.
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

fn request(port: u16, method: &str, path: &str, token: Option<&str>, body: Option<(&str, &str)>) -> Reply {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
    if let Some(t) = token {
        head.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    let (ct, payload) = body.unwrap_or(("text/plain", ""));
    if body.is_some() {
        head.push_str(&format!("Content-Type: {ct}\r\nContent-Length: {}\r\n", payload.len()));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(payload.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let mut lines = head.lines();
    let status = lines.next().and_then(|l| l.split_whitespace().nth(1)).and_then(|c| c.parse().ok()).unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Reply { status, headers, body: body.to_string() }
}

fn get_json(port: u16, path: &str) -> Value {
    let (status, body) = http_get(port, path);
    assert_eq!(status, 200, "GET {path}: {body}");
    serde_json::from_str(&body).unwrap()
}

fn post_person(port: u16, token: &str, person: &Value) -> Reply {
    request(port, "POST", "/people", Some(token), Some(("application/json", &person.to_string())))
}

/// Poll `check` on a fresh reading until it holds; `what` names it when it never does. The
/// deadline is generous (debug builds, a loaded CI machine): the 1 s propagation figure is
/// measured by `scripts/bench-pg`, not asserted here.
fn eventually(what: &str, mut check: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < Duration::from_secs(30), "never happened: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
    start.elapsed()
}

fn token(db: &str, role: &str) -> String {
    let out = common::run_ok(db, &["token", "create", "--role", role, "--name", "multi-instance test"], 0);
    common::stdout(&out).lines().rfind(|l| !l.trim().is_empty()).unwrap().trim().to_string()
}

/// The committed demo loaded into `db` once, then two instances on it.
fn two_instances(db: &str, dir: &std::path::Path) -> (Server, Server) {
    common::run_ok(db, &["--quiet", "demo", "load", "--dir", common::demo_dir().to_str().unwrap()], 0);
    let a = e2e::serve(db, "info", &dir.join("a.log"));
    let b = e2e::serve(db, "info", &dir.join("b.log"));
    (a, b)
}

/// The interior point of `block` (lon, lat), from its CSV row.
fn interior_point(port: u16, block: &str) -> (f64, f64) {
    let (_, csv) = http_get(port, &format!("/collections/blocks/items/{block}?f=csv"));
    let mut rows = csv::Reader::from_reader(csv.as_bytes());
    let headers = rows.headers().unwrap().clone();
    let row = rows.records().next().unwrap().unwrap();
    let get = |name: &str| row[headers.iter().position(|h| h == name).unwrap()].parse::<f64>().unwrap();
    (get("lon"), get("lat"))
}

fn etag(port: u16, path: &str) -> String {
    let r = request(port, "GET", path, None, None);
    assert_eq!(r.status, 200, "GET {path}");
    r.header("etag").unwrap().to_string()
}

fn cursor(port: u16) -> i64 {
    get_json(port, "/health")["cursor"].as_i64().unwrap()
}

#[test]
fn a_write_on_one_instance_reaches_the_other() {
    let Some(db) = pg::fresh_db() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = two_instances(db.url(), dir.path());
    let manager = token(db.url(), "manager");

    let before = get_json(b.port, "/coverage")["covered_blocks"].as_u64().unwrap();
    let target = get_json(b.port, "/coverage/uncovered?limit=1")[0]["block_id"].as_str().unwrap().to_string();
    let (lon, lat) = interior_point(b.port, &target);
    let [ux, uy] = belong::tiles::lonlat_to_unit(lon, lat);
    let tile = format!("/tiles/blocks/15/{}/{}.mvt", (ux * 32768.0) as u32, (uy * 32768.0) as u32);
    let tile_before = etag(b.port, &tile);

    let amb = json!({"id": "MI-AMB-1", "role": "ambassador", "lon": lon, "lat": lat, "name": "Ana"});
    let r = post_person(a.port, &manager, &amb);
    assert_eq!(r.status, 201, "{}", r.body);

    let took = eventually("B counts A's ambassador", || {
        get_json(b.port, "/coverage")["covered_blocks"].as_u64().unwrap() == before + 1
    });
    eprintln!("A's write reached B's /coverage after {took:?}");
    let item = get_json(b.port, &format!("/collections/blocks/items/{target}"));
    assert_eq!(item["properties"]["covered"], true, "{item}");
    assert_eq!(item["properties"]["ambassadors"], 1, "{item}");
    assert_ne!(etag(b.port, &tile), tile_before, "B cut the tile over the changed block again");
    let ranking = get_json(b.port, "/coverage/uncovered?limit=500");
    assert!(
        ranking.as_array().unwrap().iter().all(|r| r["block_id"] != target.as_str()),
        "B's ranking no longer lists the covered block"
    );

    // And back: a delete on B reaches A.
    let r = request(b.port, "DELETE", "/people/MI-AMB-1", Some(&manager), None);
    assert!(r.status == 204 || r.status == 200, "{} {}", r.status, r.body);
    eventually("A sees B's delete", || get_json(a.port, "/coverage")["covered_blocks"].as_u64().unwrap() == before);
    let log = std::fs::read_to_string(&b.log).unwrap();
    assert!(log.contains("changed by another process"), "B followed the feed: {log}");
}

#[test]
fn concurrent_writes_on_two_instances_end_exact_and_alike() {
    let Some(db) = pg::fresh_db() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = two_instances(db.url(), dir.path());
    let manager = token(db.url(), "manager");
    let start = get_json(a.port, "/coverage");
    let bbox = get_json(a.port, "/collections/blocks")["extent"]["spatial"]["bbox"][0].clone();
    let (x0, y0, x1, y1) =
        (bbox[0].as_f64().unwrap(), bbox[1].as_f64().unwrap(), bbox[2].as_f64().unwrap(), bbox[3].as_f64().unwrap());
    const EACH: usize = 500;
    const CONTESTED: usize = 40;

    // Each side writes its own 500 people; both sides race for 40 shared ids.
    let results: Vec<(usize, Vec<(String, u16)>)> = std::thread::scope(|s| {
        let sides = [(a.port, "A"), (b.port, "B")].map(|(port, side)| {
            let manager = manager.clone();
            s.spawn(move || {
                let mut created = 0;
                let mut contested = Vec::new();
                for i in 0..EACH {
                    // Spread over the catchment, deterministic per id.
                    let f = (i as f64 * 0.618_033_988_7).fract();
                    let g = (i as f64 * 0.414_213_562_4).fract();
                    let role = if i % 7 == 0 { "ambassador" } else { "resident" };
                    let p = json!({"id": format!("{side}-{i:04}"), "role": role,
                        "lon": x0 + f * (x1 - x0), "lat": y0 + g * (y1 - y0)});
                    let r = post_person(port, &manager, &p);
                    assert_eq!(r.status, 201, "{side} {i}: {}", r.body);
                    created += 1;
                    if i < CONTESTED {
                        let p = json!({"id": format!("BOTH-{i:03}"), "role": "resident",
                            "lon": x0 + g * (x1 - x0), "lat": y0 + f * (y1 - y0)});
                        contested.push((format!("BOTH-{i:03}"), post_person(port, &manager, &p).status));
                    }
                }
                (created, contested)
            })
        });
        sides.map(|h| h.join().unwrap()).into_iter().collect()
    });
    assert_eq!(results[0].0 + results[1].0, 2 * EACH);
    for i in 0..CONTESTED {
        let mut statuses = [results[0].1[i].1, results[1].1[i].1];
        statuses.sort_unstable();
        assert_eq!(statuses, [201, 409], "exactly one instance created {}", results[0].1[i].0);
    }

    // Both converge on the database's own count, and on the same history.
    let expected = common::coverage(db.url());
    let people_added = (2 * EACH + CONTESTED) as u64;
    let total = |c: &Value| {
        c["residents"].as_u64().unwrap() + c["ambassadors"].as_u64().unwrap() + c["people_outside"].as_u64().unwrap()
    };
    let want = total(&start) + people_added;
    for port in [a.port, b.port] {
        eventually("each instance counts every write once", || total(&get_json(port, "/coverage")) == want);
    }
    eventually("both at the same cursor", || cursor(a.port) == cursor(b.port));
    let (ca, cb) = (get_json(a.port, "/coverage"), get_json(b.port, "/coverage"));
    assert_eq!(ca, cb, "A and B serve the same coverage");
    for key in ["covered_blocks", "residents", "ambassadors", "people_outside"] {
        assert_eq!(ca[key], expected["summary"][key], "{key}: served vs the database");
    }
    let ha = get_json(a.port, "/coverage/history?interval=day");
    let hb = get_json(b.port, "/coverage/history?interval=day");
    assert_eq!(ha, hb, "both instances replay the same history");
    // The features, not the page (its links name each instance's port, its timeStamp the
    // moment of the request).
    let features = |port: u16| get_json(port, "/collections/blocks/items?limit=1000")["features"].clone();
    assert_eq!(features(a.port), features(b.port), "same per-block counts");
}

#[test]
fn a_block_import_and_a_token_revocation_reach_every_instance() {
    let Some(db) = pg::fresh_db() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = two_instances(db.url(), dir.path());
    let manager = token(db.url(), "manager");
    let recruiter = token(db.url(), "recruiter");
    assert_eq!(request(b.port, "GET", "/people?limit=1", Some(&recruiter), None).status, 200);

    let blocks =
        common::squares_geojson(&[("SQ1", -118.30, 34.00, -118.29, 34.01), ("SQ2", -118.29, 34.00, -118.28, 34.01)]);
    let r = request(a.port, "POST", "/imports/blocks", Some(&manager), Some(("application/geo+json", &blocks)));
    assert_eq!(r.status, 200, "{}", r.body);
    eventually("B serves A's new catchment", || get_json(b.port, "/health")["blocks"] == 2);
    let items = get_json(b.port, "/collections/blocks/items");
    let mut ids: Vec<&str> = items["features"].as_array().unwrap().iter().map(|f| f["id"].as_str().unwrap()).collect();
    ids.sort_unstable();
    assert_eq!(ids, ["SQ1", "SQ2"]);

    // Tokens are checked against the database on every request: a revocation is immediate.
    let listed = common::stdout(&common::run_ok(db.url(), &["token", "list"], 0));
    let id =
        listed.lines().find(|l| l.contains("recruiter")).and_then(|l| l.split_whitespace().next()).unwrap().to_string();
    common::run_ok(db.url(), &["token", "revoke", &id], 0);
    assert_eq!(request(a.port, "GET", "/people?limit=1", Some(&recruiter), None).status, 401);
    assert_eq!(request(b.port, "GET", "/people?limit=1", Some(&recruiter), None).status, 401);
}

#[test]
fn postgres_restarted_mid_test_costs_only_writes_meanwhile() {
    let Some(cluster) = pg::Cluster::start() else { return };
    let db = pg::PgDb::create(&cluster.admin_url());
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = two_instances(db.url(), dir.path());
    let manager = token(db.url(), "manager");
    let p = |id: &str| json!({"id": id, "role": "resident", "lon": -118.25, "lat": 34.05});
    assert_eq!(post_person(a.port, &manager, &p("BEFORE")).status, 201);
    let served = get_json(a.port, "/coverage");

    cluster.stop();
    // Reads go on from memory, on both instances.
    for port in [a.port, b.port] {
        assert_eq!(get_json(port, "/coverage"), get_json(a.port, "/coverage"));
        assert_eq!(http_get(port, "/collections/blocks/items?limit=2").0, 200);
    }
    assert_eq!(get_json(a.port, "/coverage"), served);
    // Writes are refused with 503, Retry-After and a message that says why.
    let r = post_person(a.port, &manager, &p("DURING"));
    assert_eq!(r.status, 503, "{}", r.body);
    assert!(r.header("retry-after").is_some());
    assert!(r.header("content-type").unwrap().starts_with("application/problem+json"));
    assert!(r.body.contains("database is unavailable"), "{}", r.body);
    eventually("/health says the database is away", || get_json(b.port, "/health")["database"] == "unavailable");

    cluster.restart();
    // Both reconnect by themselves; a write on one reaches the other again.
    let mut created = 0;
    eventually("A accepts writes again", || {
        let status = post_person(a.port, &manager, &p("AFTER")).status;
        if status == 201 {
            created += 1;
        }
        status == 201 || status == 409
    });
    assert_eq!(created, 1, "the write made after the restart was acknowledged once");
    eventually("/health says the database is back", || get_json(b.port, "/health")["database"] == "ok");
    eventually("B caught up", || cursor(b.port) == cursor(a.port));
    // Committed by another process while neither instance listened: found from the cursor.
    let file = common::write(dir.path(), "late.csv", "id,lon,lat\nLATE-1,-118.25,34.05\n");
    common::run_ok(db.url(), &["import", "residents", file.to_str().unwrap()], 0);
    let want = served["residents"].as_u64().unwrap() + served["people_outside"].as_u64().unwrap() + 2;
    for port in [a.port, b.port] {
        eventually("every write counted once", || {
            let c = get_json(port, "/coverage");
            c["residents"].as_u64().unwrap() + c["people_outside"].as_u64().unwrap() == want
        });
    }
    let _ = cluster.log();
}

#[test]
fn kill_9_of_one_instance_leaves_the_other_serving() {
    let Some(db) = pg::fresh_db() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (mut a, b) = two_instances(db.url(), dir.path());
    let manager = token(db.url(), "manager");
    let before = get_json(b.port, "/coverage");
    let mut acked = 0u64;
    for i in 0..20 {
        let r = post_person(
            a.port,
            &manager,
            &json!({"id": format!("K{i}"), "role": "resident", "lon": -118.25, "lat": 34.05}),
        );
        if r.status == 201 {
            acked += 1;
        }
    }
    a.child.kill().unwrap(); // SIGKILL
    let _ = a.child.wait();
    let total = |c: &Value| c["residents"].as_u64().unwrap() + c["people_outside"].as_u64().unwrap();
    eventually("B counts every write A acknowledged", || {
        total(&get_json(b.port, "/coverage")) == total(&before) + acked
    });
    let r = post_person(b.port, &manager, &json!({"id": "K-B", "role": "resident", "lon": -118.25, "lat": 34.05}));
    assert_eq!(r.status, 201, "B still takes writes: {}", r.body);
}
