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

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The browser checks take ~15 s on two cores; allow for a loaded machine.
const LIMIT: Duration = Duration::from_secs(300);

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// What is missing to run the browser test, each with how to install it.
fn missing_tools(chromium: &Path) -> Vec<String> {
    let mut missing = Vec::new();
    if Command::new("node").arg("--version").output().map(|o| !o.status.success()).unwrap_or(true) {
        missing.push("Node.js (`node`; Debian: apt-get install nodejs npm)".to_string());
    }
    if !root().join("web/node_modules/playwright-core").is_dir() || !root().join("web/node_modules/pngjs").is_dir() {
        missing.push("the web test dependencies (run `npm ci` in web/)".to_string());
    }
    if !chromium.exists() {
        missing.push(format!("Chromium at {} (Debian: apt-get install chromium; or set CHROMIUM)", chromium.display()));
    }
    missing
}

#[test]
fn map_page_works_in_headless_chromium() {
    if std::env::var("BELONG_SKIP_BROWSER").is_ok_and(|v| v == "1") {
        eprintln!("skipped: BELONG_SKIP_BROWSER=1 (the coverage map was not tested in a browser)");
        return;
    }
    let chromium = std::env::var_os("CHROMIUM").map(PathBuf::from).unwrap_or_else(|| "/usr/bin/chromium".into());
    let missing = missing_tools(&chromium);
    assert!(
        missing.is_empty(),
        "the browser test of /map needs: {}.\n./scripts/test installs these; set BELONG_SKIP_BROWSER=1 to skip it",
        missing.join("; ")
    );

    let dir = tempfile::tempdir().unwrap();
    let (db, log) = (dir.path().join("belong.db"), dir.path().join("serve.log"));
    // A manager token lets the script check that the page follows a change made through the API.
    let created = Command::new(env!("CARGO_BIN_EXE_belong"))
        .arg("--db")
        .arg(&db)
        .args(["token", "create", "--role", "manager", "--name", "map browser test"])
        .env_remove("BELONG_DB")
        .output()
        .unwrap();
    assert!(created.status.success(), "token create: {}", String::from_utf8_lossy(&created.stderr));
    let token = String::from_utf8_lossy(&created.stdout).lines().last().unwrap_or_default().trim().to_string();
    let server = e2e::serve(&db, "info", &log);
    let (status, config) = e2e::http_get(server.port, "/map/config.json");
    assert_eq!(status, 200, "{config}");
    assert!(
        !config.contains("\"maplibre\":null"),
        "this binary was built without MapLibre GL JS (npm was missing or BELONG_SKIP_NPM was set): \
         install Node.js with npm and rebuild, or set BELONG_SKIP_BROWSER=1"
    );

    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("map-browser");
    let mut child = Command::new("node")
        .arg(root().join("web/test/map.mjs"))
        .arg(format!("http://127.0.0.1:{}", server.port))
        .env("CHROMIUM", &chromium)
        .env("MAP_TEST_SCREENSHOTS", &shots)
        .env("BELONG_TOKEN", &token)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting node");
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let stdout = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let stderr = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if start.elapsed() > LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let (stdout, stderr) = (stdout.join().unwrap(), stderr.join().unwrap());
    println!("{stdout}");
    eprintln!("{stderr}");
    println!("screenshots: {}", shots.display());
    let server_log = std::fs::read_to_string(&log).unwrap_or_default();
    let tail: Vec<&str> = server_log.lines().rev().take(40).collect::<Vec<_>>().into_iter().rev().collect();
    match status {
        None => panic!("web/test/map.mjs did not finish within {LIMIT:?}\nserver log (end):\n{}", tail.join("\n")),
        Some(s) => {
            assert!(s.success(), "web/test/map.mjs failed ({s}):\n{stderr}\nserver log (end):\n{}", tail.join("\n"))
        }
    }
}
