//! The coverage map in a real browser: the real `belong serve` on the demo catchment, and
//! `node web/test/map.mjs` driving headless Chromium (playwright-core, WebGL by SwiftShader)
//! against it: blocks drawn in coverage colours, layer toggles, the recruiting list, block
//! details, the coverage trend chart and the roll-up table against `/coverage/history` and
//! `/coverage/rollup`, a change made through the API showing up, a phone-sized screen, and no
//! console errors or failed requests.
//!
//! Needs Node.js, `web/node_modules` (`npm ci` in `web/`) and Chromium (`/usr/bin/chromium` or
//! env `CHROMIUM`); `./scripts/test` installs them. Without them the test fails and says what to
//! install, unless `BELONG_SKIP_BROWSER=1`.

mod e2e;

use std::path::Path;
use std::time::Duration;

/// The browser checks take ~15 s on two cores; allow for a loaded machine.
const LIMIT: Duration = Duration::from_secs(300);

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn map_page_works_in_headless_chromium() {
    if std::env::var("BELONG_SKIP_BROWSER").is_ok_and(|v| v == "1") {
        eprintln!("skipped: BELONG_SKIP_BROWSER=1 (the coverage map was not tested in a browser)");
        return;
    }
    let chromium = e2e::chromium();
    let missing = e2e::missing_browser_tools(&chromium, &["playwright-core", "pngjs"]);
    assert!(
        missing.is_empty(),
        "the browser test of /map needs: {}.\n./scripts/test installs these; set BELONG_SKIP_BROWSER=1 to skip it",
        missing.join("; ")
    );

    let dir = tempfile::tempdir().unwrap();
    let (db, log) = (dir.path().join("belong.db"), dir.path().join("serve.log"));
    // A manager token lets the script check that the page follows a change made through the API.
    let token = e2e::manager_token(&db, "map browser test");
    let server = e2e::serve(&db, "info", &log);
    e2e::assert_maplibre_embedded(server.port);

    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("map-browser");
    let run = e2e::run_node(
        &root().join("web/test/map.mjs"),
        &[format!("http://127.0.0.1:{}", server.port)],
        &[
            ("CHROMIUM", chromium.as_os_str()),
            ("MAP_TEST_SCREENSHOTS", shots.as_os_str()),
            ("BELONG_TOKEN", token.as_ref()),
        ],
        LIMIT,
    );
    println!("{}", run.stdout);
    eprintln!("{}", run.stderr);
    println!("screenshots: {}", shots.display());
    let tail = e2e::log_tail(&log, 40);
    match run.status {
        None => panic!("web/test/map.mjs did not finish within {LIMIT:?}\nserver log (end):\n{tail}"),
        Some(s) => assert!(s.success(), "web/test/map.mjs failed ({s}):\n{}\nserver log (end):\n{tail}", run.stderr),
    }
}
