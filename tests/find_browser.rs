//! The resource finder (`/find`) in a real browser: the real `belong serve` on the demo
//! catchment, and `node web/test/find.mjs` driving headless Chromium (playwright-core) against
//! it on a phone-size screen and a desktop, in English and Spanish (`?lang=es` and
//! Accept-Language), with geolocation emulated: the nearest places in the right order, `tel:`
//! and directions links, block-id and map-tap origins, axe-core WCAG 2.1 AA in both languages;
//! then the server is stopped and the page, reloaded from its service worker, says it is offline
//! and still lists the nearest places.
//!
//! Needs what `tests/map_browser.rs` needs (Node.js, `npm ci` in `web/`, Chromium), plus
//! axe-core from `web/node_modules`; `./scripts/test` installs them. Skipped with
//! `BELONG_SKIP_BROWSER=1`.

mod e2e;

use std::path::Path;
use std::time::Duration;

/// The checks take ~40 s on two cores; allow for a loaded machine.
const LIMIT: Duration = Duration::from_secs(300);

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn find_page_works_in_headless_chromium_in_english_spanish_and_offline() {
    if std::env::var("BELONG_SKIP_BROWSER").is_ok_and(|v| v == "1") {
        eprintln!("skipped: BELONG_SKIP_BROWSER=1 (the finder page was not tested in a browser)");
        return;
    }
    let chromium = e2e::chromium();
    let missing = e2e::missing_browser_tools(&chromium, &["playwright-core", "axe-core"]);
    assert!(
        missing.is_empty(),
        "the browser test of /find needs: {}.\n./scripts/test installs these; set BELONG_SKIP_BROWSER=1 to skip it",
        missing.join("; ")
    );
    let dir = tempfile::tempdir().unwrap();
    let (db, log) = (dir.path().join("belong.db"), dir.path().join("serve.log"));
    // A manager token lets the script add a place with the optional fields (hours, languages,
    // capacity) that the demo resources lack.
    let token = e2e::manager_token(&db, "find browser test");
    let server = e2e::serve(&db, "info", &log);
    e2e::assert_maplibre_embedded(server.port);

    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("find-browser");
    // The script stops the server itself (by its pid) before the offline checks.
    let pid = server.child.id().to_string();
    let run = e2e::run_node(
        &root().join("web/test/find.mjs"),
        &[format!("http://127.0.0.1:{}", server.port)],
        &[
            ("CHROMIUM", chromium.as_os_str()),
            ("FIND_TEST_SCREENSHOTS", shots.as_os_str()),
            ("BELONG_SERVER_PID", pid.as_ref()),
            ("BELONG_TOKEN", token.as_ref()),
        ],
        LIMIT,
    );
    println!("{}", run.stdout);
    eprintln!("{}", run.stderr);
    println!("screenshots: {}", shots.display());
    let tail = e2e::log_tail(&log, 40);
    match run.status {
        None => panic!("web/test/find.mjs did not finish within {LIMIT:?}\nserver log (end):\n{tail}"),
        Some(s) => assert!(s.success(), "web/test/find.mjs failed ({s}):\n{}\nserver log (end):\n{tail}", run.stderr),
    }
}
