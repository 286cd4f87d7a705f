//! The PostgreSQL the test suite provisions is really there and usable: a fresh database on
//! `BELONG_TEST_PG` with PostGIS, and a cluster of a test's own that stops and starts. Runs in
//! CI (`BELONG_REQUIRE_PG=1`: a missing server fails); elsewhere skips loudly.
#![allow(clippy::unwrap_used)]

mod pg;

#[test]
fn a_fresh_database_has_postgis() {
    let Some(db) = pg::fresh_db() else { return };
    pg::psql(db.url(), "CREATE EXTENSION IF NOT EXISTS postgis");
    let version = pg::psql(db.url(), "SELECT postgis_lib_version()");
    assert!(version.starts_with('3'), "PostGIS 3 expected, found {version}");
    // A geometry column with a GiST index, as the store will use.
    pg::psql(
        db.url(),
        "CREATE TABLE t (id text PRIMARY KEY, geom geometry(MultiPolygon, 4326)); \
         CREATE INDEX ON t USING gist (geom); \
         INSERT INTO t VALUES ('a', ST_Multi(ST_MakeEnvelope(-118.3, 34.0, -118.2, 34.1, 4326)))",
    );
    let hit =
        pg::psql(db.url(), "SELECT id FROM t WHERE ST_Intersects(geom, ST_SetSRID(ST_Point(-118.25, 34.05), 4326))");
    assert_eq!(hit, "a");
}

#[test]
fn a_cluster_of_its_own_stops_and_starts() {
    let Some(cluster) = pg::Cluster::start() else { return };
    let url = cluster.admin_url();
    assert_eq!(pg::psql(&url, "SELECT 1"), "1");
    cluster.stop();
    let refused = std::process::Command::new("psql").args([&url, "-qAtc", "SELECT 1"]).output().unwrap();
    assert!(!refused.status.success(), "the server is down after stop");
    cluster.restart();
    assert_eq!(pg::psql(&url, "SELECT 2"), "2", "{}", cluster.log());
}
