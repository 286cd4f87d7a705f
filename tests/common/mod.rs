//! Shared fixtures for the integration tests: the real binary, temp databases, small files.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;

/// The project's committed demo catchment.
pub fn demo_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data")
}

/// `../shared/data`, when present.
pub fn shared_data() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data");
    if p.is_dir() {
        Some(p)
    } else {
        eprintln!("skipping: ../shared/data not found");
        None
    }
}

/// `belong --db DB args...` (not yet run); DB is a file path or a PostgreSQL URL.
pub fn belong(db: impl AsRef<OsStr>) -> Command {
    let mut cmd = Command::cargo_bin("belong").expect("binary built");
    cmd.arg("--db").arg(db.as_ref()).env_remove("BELONG_DB").env_remove("BELONG_TARGET");
    cmd
}

/// Run and return the output, whatever the exit code.
pub fn run(db: impl AsRef<OsStr>, args: &[&str]) -> Output {
    belong(db).args(args).output().expect("belong runs")
}

/// Run, assert the exit code, print everything on failure.
pub fn run_ok(db: impl AsRef<OsStr>, args: &[&str], code: i32) -> Output {
    let out = run(db, args);
    assert_eq!(
        out.status.code(),
        Some(code),
        "belong {args:?} exited {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Stdout as text.
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Stderr as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `belong coverage --format json` as a value.
pub fn coverage(db: impl AsRef<OsStr>) -> serde_json::Value {
    let out = run_ok(db, &["coverage", "--format", "json"], 0);
    serde_json::from_slice(&out.stdout).expect("coverage json")
}

/// Write a file into `dir` and return its path.
pub fn write(dir: &Path, name: &str, content: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, content).expect("write fixture");
    p
}

/// A GeoJSON FeatureCollection of axis-aligned squares: `(id, x0, y0, x1, y1)` in lon/lat.
pub fn squares_geojson(squares: &[(&str, f64, f64, f64, f64)]) -> String {
    let features: Vec<serde_json::Value> = squares
        .iter()
        .map(|&(id, x0, y0, x1, y1)| {
            serde_json::json!({
                "type": "Feature",
                "properties": { "block_id": id, "name": format!("Block {id}") },
                "geometry": { "type": "Polygon", "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]] }
            })
        })
        .collect();
    serde_json::json!({ "type": "FeatureCollection", "features": features }).to_string()
}

/// Two blocks sharing the edge lon = -118.28: "060370000001001" west, "060370000001000" east.
pub fn two_blocks(dir: &Path) -> PathBuf {
    write(
        dir,
        "two.geojson",
        &squares_geojson(&[
            ("060370000001001", -118.29, 34.04, -118.28, 34.05),
            ("060370000001000", -118.28, 34.04, -118.27, 34.05),
        ]),
    )
}
