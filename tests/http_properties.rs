//! Property tests of the HTTP doors (issue 12, "property tests for every parser"): tile paths
//! with any `z`/`x`/`y`/layer text, and the JSON bodies of the people API with any value, any
//! bytes or deep nesting, through the router. Never a 5xx; every refusal is problem+json with a
//! short reason.
#![allow(clippy::unwrap_used)]

mod http_support;

use std::sync::OnceLock;

use axum::http::{Method, StatusCode, header};
use http_support::*;
use proptest::prelude::*;
use serde_json::{Value, json};

/// One runtime and one demo app for every case (each case is a request, not a new database).
fn rt() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap())
}

fn test_app() -> &'static TestApp {
    static APP: OnceLock<TestApp> = OnceLock::new();
    // Boxed, as `#[tokio::test]` does: a debug build's futures are large for a test thread's stack.
    APP.get_or_init(|| rt().block_on(Box::pin(demo_app())))
}

/// `cases` per property, or `PROPTEST_CASES` when set (a longer fuzzing run).
fn config(cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(cases);
    ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() }
}

/// Not a 5xx; a 4xx is problem+json whose detail is non-empty and short.
fn assert_answered(r: &Reply, what: &str) -> Result<(), TestCaseError> {
    prop_assert!(!r.status.is_server_error(), "{what}\n{r}");
    if r.status.is_client_error() {
        prop_assert_eq!(r.content_type(), "application/problem+json", "{}\n{}", what, r);
        let v: Value = serde_json::from_slice(&r.body).map_err(|e| TestCaseError::fail(format!("{e}\n{r}")))?;
        let detail = v["detail"].as_str().unwrap_or("");
        prop_assert!(!detail.trim().is_empty(), "no reason\n{what}\n{r}");
        prop_assert!(detail.chars().count() < 2_000, "a reason of {} characters\n{what}", detail.chars().count());
        prop_assert_eq!(v["status"].as_u64(), Some(u64::from(r.status.as_u16())));
    }
    Ok(())
}

/// Percent-encode everything but unreserved characters, so any text makes a valid path segment.
fn segment(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b',') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Tile coordinates as clients and attackers write them.
fn coordinate() -> impl Strategy<Value = String> {
    prop_oneof![
        (0u32..20).prop_map(|n| n.to_string()),
        any::<u32>().prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        Just("99999999999999999999999999999999".to_string()),
        Just(String::new()),
        Just("0x10".to_string()),
        Just("+1".to_string()),
        Just("1e3".to_string()),
        Just("007".to_string()),
        Just("1.5".to_string()),
        Just("NaN".to_string()),
        "\\PC{0,12}",
        ".{0,8}",
        (1usize..4).prop_map(|k| "9".repeat(k * 3_000)),
    ]
}

/// `(z, x, y)`: any text in each, or a real tile over the demo catchment (or next to it).
fn tile_coordinates() -> impl Strategy<Value = (String, String, String)> {
    let near_demo = (0u32..=18, -1i64..=1, -1i64..=1).prop_map(|(z, dx, dy)| {
        // The demo's tile 14/2808/6542, at zoom z.
        let at = |v: i64| if z <= 14 { v >> (14 - z) } else { v << (z - 14) };
        (z.to_string(), (at(2808) + dx).to_string(), (at(6542) + dy).to_string())
    });
    prop_oneof![3 => (coordinate(), coordinate(), coordinate()), 2 => near_demo]
}

fn layers() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => Just("blocks".to_string()),
        2 => Just("resources".to_string()),
        2 => Just("blocks,resources,school-readiness".to_string()),
        1 => Just("blocks,blocks".to_string()),
        1 => Just(",".to_string()),
        1 => Just("blocks,".to_string()),
        1 => "[a-z,-]{0,30}",
        1 => "\\PC{0,20}",
        1 => (1usize..4).prop_map(|k| "blocks,".repeat(k * 500)),
    ]
}

fn y_suffix() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => Just(".mvt".to_string()),
        1 => Just(".pbf".to_string()),
        1 => Just(String::new()),
        1 => Just(".png".to_string()),
        1 => Just(".mvt.mvt".to_string()),
        1 => "\\.[a-z]{0,4}",
    ]
}

fn query() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => Just(String::new()),
        1 => "[a-z=&%0-9]{0,20}".prop_map(|q| format!("?{q}")),
        1 => Just("?f=json".to_string()),
    ]
}

proptest! {
    #![proptest_config(config(256))]

    /// `/tiles/{layers}/{z}/{x}/{y}.mvt` with any text in any place: a tile, 204, or a 400/404
    /// problem that says what is wrong — never a 5xx.
    #[test]
    fn tile_paths_with_any_coordinates_are_answered_without_a_5xx(
        list in layers(), (z, x, y) in tile_coordinates(), suffix in y_suffix(), q in query(),
    ) {
        let uri = format!("/tiles/{}/{}/{}/{}{}{q}", segment(&list), segment(&z), segment(&x), segment(&y), segment(&suffix));
        let r = rt().block_on(Box::pin(get(test_app(), &uri)));
        assert_answered(&r, &uri)?;
        if r.status.is_success() {
            prop_assert!(matches!(r.status, StatusCode::OK | StatusCode::NO_CONTENT), "{uri}\n{r}");
        }
        // TileJSON of the same layer text.
        let uri = format!("/tiles/{}{q}", segment(&format!("{list}{suffix}")));
        let r = rt().block_on(Box::pin(get(test_app(), &uri)));
        assert_answered(&r, &uri)?;
    }
}

/// Any JSON value, with the people API's own field names among the keys so bodies get past
/// the first unknown field.
fn any_json() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        Just("id"),
        Just("role"),
        Just("lon"),
        Just("lat"),
        Just("x"),
        Just("y"),
        Just("crs"),
        Just("name"),
        Just("phone"),
        Just("email"),
        Just("interested"),
        Just("active"),
        Just("block_id"),
        Just("adopted_until"),
        Just("until"),
        Just("days"),
        Just("nmae"),
    ]
    .prop_map(str::to_string);
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-200.0f64..200.0).prop_map(|f| json!(f)),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f).map(Value::Number)),
        any::<i64>().prop_map(|i| json!(i)),
        Just(json!(u64::MAX)),
        prop_oneof![
            Just("ambassador".to_string()),
            Just("resident".to_string()),
            Just("EPSG:2229".to_string()),
            Just("2030-01-01".to_string()),
            "\\PC{0,30}",
            (1usize..3).prop_map(|k| "n\u{1}".repeat(k * 1_000)),
        ]
        .prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 32, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((key.clone(), inner), 0..8).prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// A person's fields with the right JSON types and any values: what gets past the parser to
/// the validation (lengths, control characters, coordinates, roles, dates).
fn typed_fields() -> BoxedStrategy<Value> {
    let text = prop_oneof![
        "[a-zA-Z .@()0-9-]{0,20}",
        "\\PC{0,20}",
        (1usize..3).prop_map(|k| "n".repeat(k * 1_000)),
        Just("a\u{1}b".to_string()),
        Just("2030-01-01".to_string()),
        Just("2000-01-01T00:00:00Z".to_string()),
        Just("EPSG:2229".to_string()),
        Just("EPSG:3857".to_string()),
    ];
    let text = prop_oneof![3 => text.prop_map(Value::String), 1 => Just(Value::Null)];
    let lon = prop_oneof![
        (-118.35f64..-118.2).prop_map(|f| json!(f)),
        (-1e12f64..1e12).prop_map(|f| json!(f)),
        Just(Value::Null)
    ];
    let lat = prop_oneof![
        (33.95f64..34.1).prop_map(|f| json!(f)),
        (-1e12f64..1e12).prop_map(|f| json!(f)),
        Just(Value::Null)
    ];
    let role =
        prop_oneof![Just(json!("ambassador")), Just(json!("resident")), Just(json!("Ambassador")), Just(Value::Null)];
    let flag = prop_oneof![Just(json!(true)), Just(json!(false)), Just(Value::Null)];
    let days =
        prop_oneof![any::<i64>().prop_map(|d| json!(d)), (-2i64..4000).prop_map(|d| json!(d)), Just(Value::Null)];
    (
        (text.clone(), role, lon.clone(), lat.clone(), lon, lat, text.clone()),
        (text.clone(), text.clone(), text.clone(), flag.clone(), flag, text.clone(), text.clone(), days),
        prop::collection::vec(any::<bool>(), 15),
    )
        .prop_map(
            |((id, role, lon, lat, x, y, crs), (name, phone, email, interested, active, block, until, days), keep)| {
                let fields = [
                    ("id", id),
                    ("role", role),
                    ("lon", lon),
                    ("lat", lat),
                    ("x", x),
                    ("y", y),
                    ("crs", crs),
                    ("name", name),
                    ("phone", phone),
                    ("email", email),
                    ("interested", interested),
                    ("active", active),
                    ("block_id", block),
                    ("until", until.clone()),
                    ("days", days),
                ];
                let mut out = serde_json::Map::new();
                for ((k, v), keep) in fields.into_iter().zip(keep) {
                    if keep {
                        out.insert(k.to_string(), v);
                    }
                }
                Value::Object(out)
            },
        )
        // Boxed: the unboxed tuple of strategies is large for a test thread's stack in a debug build.
        .boxed()
}

/// A body: a JSON value, bytes, or deep nesting, under a JSON content type or another.
fn body() -> impl Strategy<Value = (String, Vec<u8>)> {
    let json_type = prop_oneof![
        4 => Just("application/json".to_string()),
        1 => Just("application/merge-patch+json".to_string()),
        1 => Just("text/plain".to_string()),
        1 => Just("application/json; charset=latin1".to_string()),
    ];
    let bytes = prop_oneof![
        6 => any_json().prop_map(|v| v.to_string().into_bytes()),
        6 => typed_fields().prop_map(|v| v.to_string().into_bytes()),
        2 => prop::collection::vec(any::<u8>(), 0..128),
        1 => (1usize..20_000).prop_map(|n| format!("{}{}", "[".repeat(n), "]".repeat(n)).into_bytes()),
        1 => (1usize..20_000).prop_map(|n| format!("{}1", r#"{"name":"#.repeat(n)).into_bytes()),
        1 => Just(Vec::new()),
    ];
    (json_type, bytes)
}

fn endpoint() -> impl Strategy<Value = (Method, &'static str)> {
    prop_oneof![
        Just((Method::POST, "/people")),
        Just((Method::PATCH, "/people/A0002")),
        Just((Method::PATCH, "/people/nobody")),
        Just((Method::POST, "/people/A0003/adopt")),
    ]
}

proptest! {
    #![proptest_config(config(192))]

    /// The JSON bodies of `POST /people`, `PATCH /people/{id}` and `POST /people/{id}/adopt`:
    /// any value, any bytes, nesting 20,000 deep — accepted, or a 4xx problem with a reason.
    #[test]
    fn json_bodies_of_any_shape_get_a_4xx_with_a_reason_never_a_5xx(
        (method, path) in endpoint(), (content_type, bytes) in body(),
    ) {
        let t = test_app();
        let what = format!("{method} {path} ({content_type}): {}", String::from_utf8_lossy(&bytes[..bytes.len().min(300)]));
        let r = rt().block_on(Box::pin(req(method, path).token(&t.tokens.manager).body(&content_type, bytes).send(t)));
        assert_answered(&r, &what)?;
        prop_assert!(r.status.is_success() || r.status.is_client_error(), "{what}\n{r}");
        if r.status.is_success() {
            prop_assert!(r.header(header::CONTENT_TYPE).starts_with("application/json"), "{what}\n{r}");
        }
    }
}
