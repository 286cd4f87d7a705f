//! Command-line arguments (clap derive). Every flag documented; `--db` is global.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// belong: census-block coverage for community-ambassador campaigns.
///
/// Load block boundaries, import residents and ambassadors, and see which blocks lack an
/// ambassador. Data lives in one SQLite file, or in a PostgreSQL/PostGIS database shared by several
/// service instances (--db).
#[derive(Debug, Parser)]
#[command(name = "belong", version, propagate_version = true, max_term_width = 100)]
pub struct Cli {
    /// SQLite database file (created when missing), or a PostgreSQL/PostGIS URL
    /// `postgres://USER[:PASS]@HOST[:PORT]/DBNAME` (schema created on first use).
    /// `?sslmode=` disable, prefer (default), require, verify-ca or verify-full, as in libpq;
    /// `?sslrootcert=FILE` (PEM) or `system` for the CA to verify the server against.
    #[arg(
        long,
        global = true,
        env = "BELONG_DB",
        default_value = "belong.db",
        value_name = "PATH|URL",
        value_parser = DbTargetParser
    )]
    pub db: belong::store::DbTarget,

    /// No progress bars or summaries; errors and rejected rows are still printed.
    #[arg(long, short, global = true)]
    pub quiet: bool,

    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// What clap cannot check alone: flags that contradict each other.
    pub fn check(&self) -> Result<(), String> {
        if let Command::Serve(s) = &self.command
            && s.idle_timeout > s.header_timeout
        {
            // hyper's header timer also runs while a kept-alive connection waits for its next
            // request, so a longer idle timeout could never apply: say so rather than ignore it.
            return Err(format!(
                "--idle-timeout {} is longer than --header-timeout {}: a connection waiting for its next request \
                 is closed after the header timeout; raise --header-timeout too, or lower --idle-timeout",
                s.idle_timeout, s.header_timeout
            ));
        }
        Ok(())
    }
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Import blocks, people, resources or indicators into the database.
    #[command(subcommand)]
    Import(Import),
    /// Add a block_id column to a CSV of points (id,lon,lat,...) and write it to stdout.
    Assign(AssignArgs),
    /// Per-block coverage and the summary.
    Coverage(CoverageArgs),
    /// Write a public layer (blocks, resources, indicators) to stdout.
    Export(ExportArgs),
    /// Generate or load the demo catchment.
    #[command(subcommand)]
    Demo(Demo),
    /// Create, list or revoke bearer tokens for the HTTP service.
    #[command(subcommand)]
    Token(Token),
    /// Serve the public layers over HTTP: OGC API – Features, coverage and health.
    Serve(ServeArgs),
    /// Vector tiles of the public layers.
    #[command(subcommand)]
    Tiles(Tiles),
    /// Uncovered blocks ranked for recruiting: priority and why (its components), the nearest
    /// active ambassadors, covered neighbouring blocks and the opted-in residents inside;
    /// --format csv writes the walk list.
    Recruit(RecruitArgs),
    /// Access to community resources: blocks whose residents are far from a category, or
    /// access rolled up by tract or area (distances geodesic, 2SFCA scores; see README).
    #[command(subcommand)]
    Access(Access),
    /// Change one person: let an ambassador adopt a block.
    #[command(subcommand)]
    People(People),
    /// Database maintenance: copy a whole campaign between SQLite and PostgreSQL.
    #[command(subcommand)]
    Db(Db),
}

/// `db`.
#[derive(Debug, Subcommand)]
pub enum Db {
    /// Copy a whole campaign into another, empty database and verify it.
    ///
    /// Moves blocks, area layers, areas, people, resources, indicator values, tokens (their
    /// hashes) and the full history, every column as stored (history sequence numbers and
    /// token ids included), SQLite to PostgreSQL, back, or between two of a kind. The source
    /// is read in one consistent snapshot, so it may stay in service; the destination is
    /// written in one transaction: after an error or an interruption it holds nothing new.
    /// Afterwards the counts of every table, the change-feed position and the catchment
    /// version are compared on both sides and printed; any difference is an error (exit 1).
    ///
    /// Example: belong db copy --from belong.db --to postgres://belong@db.example/belong
    Copy(DbCopy),
}

/// `db copy`.
#[derive(Debug, Args)]
pub struct DbCopy {
    /// The database to copy from: an SQLite file or `postgres://USER[:PASS]@HOST[:PORT]/DBNAME`.
    /// Only read. (The `--db` option plays no part.)
    #[arg(long, env = "BELONG_COPY_FROM", hide_env_values = true, value_name = "PATH|URL")]
    pub from: belong::store::DbTarget,
    /// The database to copy into, in the same forms. It must be empty: an SQLite file that does
    /// not exist yet, or a PostgreSQL database without belong's tables (or only just created
    /// by belong). Its schema is created when missing.
    #[arg(long, env = "BELONG_COPY_TO", hide_env_values = true, value_name = "PATH|URL")]
    pub to: belong::store::DbTarget,
}

/// `tiles`.
#[derive(Debug, Subcommand)]
pub enum Tiles {
    /// Write a static `{z}/{x}/{y}.mvt` pyramid with `tiles.json` (TileJSON 3.0, for MapLibre) and
    /// `metadata.json` (for GDAL: `ogrinfo MVT:tiles/14`, one zoom level), optionally also a PMTiles
    /// archive.
    Export(TilesExport),
}

/// `tiles export`.
#[derive(Debug, Args)]
pub struct TilesExport {
    /// Folder to write the pyramid into. Its previous pyramid is replaced; other files stay.
    #[arg(long, default_value = "tiles", value_name = "DIR")]
    pub out: PathBuf,
    /// Lowest zoom level written.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u8).range(0..=24))]
    pub minzoom: u8,
    /// Highest zoom level written.
    #[arg(long, default_value_t = 17, value_parser = clap::value_parser!(u8).range(0..=24))]
    pub maxzoom: u8,
    /// Layers in every tile, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "blocks,resources,school-readiness", value_name = "LIST")]
    pub layers: Vec<String>,
    /// Write gzip-compressed tiles (same file names); a web server must then send them with
    /// `Content-Encoding: gzip`. GDAL reads them either way.
    #[arg(long)]
    pub gzip: bool,
    /// Also write a single-file PMTiles v3 archive (tiles gzip-compressed inside).
    #[arg(long, value_name = "FILE")]
    pub pmtiles: Option<PathBuf>,
    /// URL the folder will be served from, for the tile URLs in tiles.json (default: a relative
    /// `{z}/{x}/{y}.mvt` template).
    #[arg(long, value_name = "URL")]
    pub base_url: Option<String>,
    /// Active ambassadors a block needs to count as covered.
    #[arg(long, env = "BELONG_TARGET", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub target: u32,
}

/// What to import.
#[derive(Debug, Subcommand)]
pub enum Import {
    /// Replace the catchment with the blocks of a shapefile (.shp or .zip) or GeoJSON file, and
    /// reassign everyone already stored. All or nothing.
    Blocks(ImportBlocks),
    /// Upsert residents from a CSV (id, lon, lat or x, y, name, phone, email, interested, active).
    Residents(ImportPeople),
    /// Upsert ambassadors from a CSV (as residents, plus block_id to adopt a block).
    Ambassadors(ImportPeople),
    /// Upsert community resources from a CSV or GeoJSON file of points.
    Resources(ImportResources),
    /// Upsert per-block indicator values (block_id,indicator,value[,date]).
    Indicators(ImportIndicators),
    /// Replace (or create) a named layer of areas — neighbourhoods, council districts... — from
    /// a shapefile (.shp or .zip) or GeoJSON file, to roll coverage up by (`coverage --by`).
    /// All or nothing.
    Areas(ImportAreas),
}

/// `--db`, parsed so that a rejected URL is shown without its password (clap's own message
/// repeats the value as given).
#[derive(Debug, Clone)]
struct DbTargetParser;

impl clap::builder::TypedValueParser for DbTargetParser {
    type Value = belong::store::DbTarget;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        _arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<Self::Value, clap::Error> {
        let invalid = |msg: String| clap::Error::raw(clap::error::ErrorKind::ValueValidation, msg).with_cmd(cmd);
        let text = value.to_str().ok_or_else(|| invalid("--db is not valid UTF-8\n".to_string()))?;
        text.parse().map_err(|e: String| invalid(format!("invalid value for --db: {e}\n")))
    }
}

/// `import areas`.
#[derive(Debug, Args)]
pub struct ImportAreas {
    /// A .shp (with .shx, .dbf, .prj beside it), a .zip holding one shapefile, or a GeoJSON
    /// FeatureCollection of polygons, in any CRS.
    pub path: PathBuf,
    /// Layer name: lowercase letters, digits, - or _ (`tract` is built in). Importing a name
    /// again replaces that layer.
    #[arg(long, value_name = "LAYER", value_parser = parse_layer_name)]
    pub name: String,
    /// Field holding the area id (default: GEOID20, GEOID10, GEOID, block_id, id).
    #[arg(long, value_name = "NAME")]
    pub id_field: Option<String>,
    /// Field holding the area name (default: NAME20, NAME10, NAME, name).
    #[arg(long, value_name = "NAME")]
    pub name_field: Option<String>,
    /// CRS of the coordinates, overriding the .prj / GeoJSON crs member (e.g. EPSG:2229).
    #[arg(long, value_name = "EPSG:NNNN")]
    pub source_crs: Option<String>,
    /// Import the valid features and list the rejected ones instead of refusing the file.
    #[arg(long)]
    pub skip_invalid: bool,
    /// Which features to keep.
    #[command(flatten)]
    pub region: RegionArgs,
    /// Limits on zipped shapefiles.
    #[command(flatten)]
    pub zip: ZipArgs,
}

/// How much a zipped shapefile may inflate to (a small zip of zeros must not take the memory).
/// Checked while inflating, whatever sizes the zip declares.
#[derive(Debug, Args, Clone, Copy)]
pub struct ZipArgs {
    /// Largest uncompressed size of one file of a .zip, in bytes (default 512 MiB, ~10x the .shp
    /// of Los Angeles County's census blocks).
    #[arg(long, default_value_t = belong::ingest::ZipLimits::ENTRY, value_name = "BYTES")]
    pub max_unzipped_entry: u64,
    /// Largest uncompressed size of all the files read from a .zip together, in bytes.
    #[arg(long, default_value_t = belong::ingest::ZipLimits::TOTAL, value_name = "BYTES")]
    pub max_unzipped: u64,
}

impl Default for ZipArgs {
    fn default() -> Self {
        let d = belong::ingest::ZipLimits::default();
        ZipArgs { max_unzipped_entry: d.entry, max_unzipped: d.total }
    }
}

impl ZipArgs {
    /// As the importers take them.
    pub fn limits(&self) -> belong::ingest::ZipLimits {
        belong::ingest::ZipLimits { entry: self.max_unzipped_entry, total: self.max_unzipped }
    }
}

/// Picking a region out of a bigger file (`import blocks`, `import areas`). Filters run before
/// validation; the report says how many features each one dropped. A filter that keeps nothing
/// is an error and nothing is imported.
#[derive(Debug, Args, Default)]
pub struct RegionArgs {
    /// Keep only features whose attribute FIELD equals VALUE, e.g. `--where spa=7`. Repeatable:
    /// different fields must all match (AND); the same field given again adds an alternative
    /// value (OR: `--where spa=7 --where spa=8`). FIELD ignores case; VALUE is compared as a
    /// number when both sides are numbers (7 matches 7.0), else as text after trimming (case
    /// matters). `FIELD=` keeps features where it is empty. No comma lists: a comma is part of
    /// VALUE.
    #[arg(long = "where", value_name = "FIELD=VALUE")]
    pub wheres: Vec<belong::ingest::WhereClause>,
    /// Keep only features whose interior point lies inside (or on the edge of) a polygon of
    /// this file: a shapefile (.shp/.zip, CRS from its .prj) or GeoJSON (lon/lat, or a legacy
    /// `crs` member); validity of its polygons is not required.
    #[arg(long, value_name = "AREA")]
    pub within: Option<PathBuf>,
}

impl RegionArgs {
    /// The filter for the reader.
    pub fn filter(&self) -> belong::ingest::FeatureFilter {
        belong::ingest::FeatureFilter { wheres: self.wheres.clone(), within: self.within.clone() }
    }
}

fn parse_layer_name(name: &str) -> Result<String, String> {
    belong::core::area::check_layer_name(name).map(|()| name.to_string())
}

/// `import blocks`.
#[derive(Debug, Args)]
pub struct ImportBlocks {
    /// A .shp (with .shx, .dbf, .prj beside it), a .zip holding one shapefile, or a GeoJSON
    /// FeatureCollection.
    pub path: PathBuf,
    /// Field holding the block id (default: GEOID20, GEOID10, GEOID, block_id, id).
    #[arg(long, value_name = "NAME")]
    pub id_field: Option<String>,
    /// Field holding the block name (default: NAME20, NAME10, NAME, name).
    #[arg(long, value_name = "NAME")]
    pub name_field: Option<String>,
    /// CRS of the coordinates, overriding the .prj / GeoJSON crs member (e.g. EPSG:2229).
    #[arg(long, value_name = "EPSG:NNNN")]
    pub source_crs: Option<String>,
    /// Import the valid features and list the rejected ones instead of refusing the file.
    #[arg(long)]
    pub skip_invalid: bool,
    /// Which features to keep.
    #[command(flatten)]
    pub region: RegionArgs,
    /// Limits on zipped shapefiles.
    #[command(flatten)]
    pub zip: ZipArgs,
}

/// `import residents|ambassadors`.
#[derive(Debug, Args)]
pub struct ImportPeople {
    /// CSV file with a header row.
    pub path: PathBuf,
    /// CRS of x,y columns (e.g. EPSG:2229); lon,lat columns are WGS84 unless this is given.
    #[arg(long, value_name = "EPSG:NNNN")]
    pub crs: Option<String>,
}

/// `import resources`.
#[derive(Debug, Args)]
pub struct ImportResources {
    /// CSV (id,name,category,lon,lat,address,phone,email,url,...) or GeoJSON points.
    pub path: PathBuf,
    /// CRS of the coordinates (CSV x,y columns, or overriding a GeoJSON file's).
    #[arg(long, alias = "source-crs", value_name = "EPSG:NNNN")]
    pub crs: Option<String>,
    /// Category for every resource in the file (e.g. school), overriding any category column.
    #[arg(long, value_name = "NAME")]
    pub category: Option<String>,
    /// Field holding a stable id (default: id, or the GeoJSON feature id).
    #[arg(long, value_name = "NAME")]
    pub id_field: Option<String>,
}

/// `import indicators`.
#[derive(Debug, Args)]
pub struct ImportIndicators {
    /// CSV: block_id,indicator,value[,date], or block_id followed by one column per indicator.
    pub path: PathBuf,
}

/// `assign`.
#[derive(Debug, Args)]
pub struct AssignArgs {
    /// CSV with a header row and lon,lat (or x,y with --crs) columns; `-` reads stdin.
    pub path: PathBuf,
    /// CRS of x,y columns (e.g. EPSG:2229).
    #[arg(long, value_name = "EPSG:NNNN")]
    pub crs: Option<String>,
}

/// Output formats for `coverage`.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum CoverageFormat {
    /// Aligned columns for people.
    Table,
    /// `{"summary": {...}, "blocks": [...]}`; with --history or --by, an array of rows (as
    /// `GET /coverage/history` and `GET /coverage/rollup`).
    Json,
    /// One row per block (summary on stderr), per period (--history) or per group (--by).
    Csv,
}

/// Reporting periods of `coverage --history`.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum HistoryInterval {
    /// One row per day (UTC).
    Day,
    /// One row per ISO week, labelled by its Monday: the state at the end of its Sunday.
    Week,
}

/// `coverage`.
#[derive(Debug, Args)]
pub struct CoverageArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = CoverageFormat::Table)]
    pub format: CoverageFormat,
    /// Coverage over time instead: one row per day (or --interval week) from the first recorded
    /// change to today, replayed from the history.
    #[arg(long, conflicts_with = "by")]
    pub history: bool,
    /// Period of --history rows.
    #[arg(long, value_enum, default_value_t = HistoryInterval::Day, requires = "history")]
    pub interval: HistoryInterval,
    /// Coverage per group instead: `tract` (first 11 characters of 15-digit block ids) or an
    /// area layer imported with `belong import areas --name LAYER`. Blocks in no group are
    /// reported on a last row, "(none)" (an empty group in CSV, null in JSON).
    #[arg(long, value_name = "tract|LAYER")]
    pub by: Option<String>,
    /// Active ambassadors a block needs to count as covered.
    #[arg(long, env = "BELONG_TARGET", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub target: u32,
}

/// Layers that can be exported.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum Layer {
    /// Block polygons with residents, ambassadors, covered and indicator values.
    Blocks,
    /// Resource points.
    Resources,
    /// Indicator values (GeoJSON: block polygons of one indicator; CSV: every value).
    Indicators,
}

/// Export formats.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum ExportFormat {
    /// RFC 7946 GeoJSON FeatureCollection.
    Geojson,
    /// CSV with a header row.
    Csv,
    /// GeoPackage (one SQLite file with an R-tree index; needs --out or a redirected stdout).
    Gpkg,
    /// FlatGeobuf, with its spatial index (needs --out or a redirected stdout).
    Fgb,
    /// Zipped shapefile: .shp, .shx, .dbf, .prj and .cpg (needs --out or a redirected stdout).
    Shp,
}

impl ExportFormat {
    /// The file format, for the binary ones.
    pub fn download(self) -> Option<belong::export::DownloadFormat> {
        use belong::export::DownloadFormat;
        match self {
            ExportFormat::Geojson | ExportFormat::Csv => None,
            ExportFormat::Gpkg => Some(DownloadFormat::GeoPackage),
            ExportFormat::Fgb => Some(DownloadFormat::FlatGeobuf),
            ExportFormat::Shp => Some(DownloadFormat::Shapefile),
        }
    }
}

/// `export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Which layer.
    #[arg(value_enum)]
    pub layer: Layer,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ExportFormat::Geojson)]
    pub format: ExportFormat,
    /// Active ambassadors a block needs to count as covered (blocks layer).
    #[arg(long, env = "BELONG_TARGET", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub target: u32,
    /// Indicator for the GeoJSON indicators layer (gpkg, fgb and shp have school_readiness,
    /// the school-readiness collection).
    #[arg(long, default_value = "school_readiness", value_name = "NAME")]
    pub indicator: String,
    /// Write to this file instead of stdout (replaced if it exists; written whole or not at all
    /// for gpkg, fgb and shp).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// CRS of the gpkg, fgb and shp files: EPSG:4326 (default), 3857, 2229, 2230, 3310 or the
    /// catchment's UTM zone, as `EPSG:2229` or an OGC URI (GeoJSON and CSV stay WGS84, as
    /// RFC 7946 says; over HTTP `crs=` reprojects those too).
    #[arg(long, value_name = "CRS")]
    pub crs: Option<String>,
}

/// `demo`.
#[derive(Debug, Subcommand)]
pub enum Demo {
    /// Write a deterministic synthetic catchment (EPSG:2229 shapefile and CSVs).
    Generate(DemoGenerate),
    /// Import the demo catchment from a folder (default data/) into the database.
    Load(DemoLoad),
}

/// `demo generate`.
#[derive(Debug, Args)]
pub struct DemoGenerate {
    /// Output folder (created if missing).
    #[arg(long, default_value = "data", value_name = "DIR")]
    pub out: PathBuf,
    /// Number of blocks.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u64).range(1..=2_000_000))]
    pub blocks: u64,
    /// Random seed; the same seed gives byte-identical files.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Residents (default: 40 per block).
    #[arg(long)]
    pub residents: Option<usize>,
    /// Ambassadors (default: 2 per 5 blocks).
    #[arg(long)]
    pub ambassadors: Option<usize>,
    /// Resources (default: 3 per 10 blocks, 20 to 5,000).
    #[arg(long)]
    pub resources: Option<usize>,
}

/// `demo load`.
#[derive(Debug, Args)]
pub struct DemoLoad {
    /// Folder written by `belong demo generate`.
    #[arg(long, default_value = "data", value_name = "DIR")]
    pub dir: PathBuf,
}

/// `serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free port; the chosen address is printed).
    #[arg(long, env = "BELONG_ADDR", default_value = "127.0.0.1:8080", value_name = "HOST:PORT")]
    pub addr: std::net::SocketAddr,
    /// Origin allowed by CORS (repeatable); default: any origin, since the layers are public.
    #[arg(long = "cors-origin", value_name = "ORIGIN")]
    pub cors_origins: Vec<String>,
    /// Cancel requests that take longer than this, in seconds (408).
    #[arg(long, default_value_t = 30, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
    pub request_timeout: u64,
    /// Largest request body accepted, in bytes (413).
    #[arg(long, default_value_t = 64 * 1024 * 1024, value_name = "BYTES")]
    pub max_body: usize,
    /// Threads for blocking work (tile cuts, rankings, imports, database calls); more work
    /// waits for one. Default: 8 per core, at least 16.
    #[arg(long, env = "BELONG_BLOCKING_THREADS", value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub blocking_threads: Option<u16>,
    /// Limits on uploaded zipped shapefiles (`POST /imports/blocks`, `/imports/areas`).
    #[command(flatten)]
    pub zip: ZipArgs,
    /// Connections open at once; more wait in the listen backlog until one closes. Keep it
    /// below the open-file limit (`ulimit -n`), which the database files share.
    #[arg(long, env = "BELONG_MAX_CONNECTIONS", default_value_t = 1024, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_connections: u32,
    /// Close a connection whose request head (request line and headers) has not fully arrived
    /// this many seconds after the connection started waiting for it; this also bounds how long
    /// a kept-alive connection may wait for its next request.
    #[arg(long, env = "BELONG_HEADER_TIMEOUT", default_value_t = 10, value_name = "SECS",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub header_timeout: u64,
    /// Close a connection that has no request in flight and has sent or received nothing for
    /// this many seconds (idle keep-alive). At most --header-timeout, which bounds it anyway.
    #[arg(long, env = "BELONG_IDLE_TIMEOUT", default_value_t = 5, value_name = "SECS",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub idle_timeout: u64,
    /// Active ambassadors a block needs to count as covered.
    #[arg(long, env = "BELONG_TARGET", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub target: u32,
    /// Public base URL for links, e.g. https://maps.example.org/belong when behind a proxy
    /// (default: http://{Host header}).
    #[arg(long, value_name = "URL")]
    pub base_url: Option<String>,
    /// Folder with the demo catchment, loaded when the database has no blocks.
    #[arg(long, default_value = "data", value_name = "DIR")]
    pub demo_dir: PathBuf,
    /// Require a bearer token (any role) on every endpoint but /health, public layers included.
    #[arg(long, env = "BELONG_PRIVATE")]
    pub private: bool,
    /// Raster XYZ tile URL template drawn under the blocks on /map, e.g.
    /// https://tile.openstreetmap.org/{z}/{x}/{y}.png (default: a plain background).
    #[arg(long, env = "BELONG_BASEMAP", value_name = "URL", value_parser = parse_basemap)]
    pub basemap: Option<String>,
}

/// A basemap URL must be http(s) and hold the `{z}`, `{x}` and `{y}` placeholders.
fn parse_basemap(url: &str) -> Result<String, String> {
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return Err("expected an http:// or https:// URL".into());
    }
    match ["{z}", "{x}", "{y}"].into_iter().find(|p| !url.contains(p)) {
        Some(missing) => Err(format!("expected an XYZ template with {{z}}, {{x}} and {{y}}; {missing} is missing")),
        None => Ok(url.to_string()),
    }
}

/// `token`.
#[derive(Debug, Subcommand)]
pub enum Token {
    /// Create a token; it is printed once, alone on the last line of stdout, and only its hash
    /// is stored.
    Create {
        /// What the token may do: viewer (public layers), recruiter (also reads people),
        /// manager (also writes people and imports).
        #[arg(long, value_parser = clap::value_parser!(belong::core::AccessRole))]
        role: belong::core::AccessRole,
        /// A label to recognise it by in `belong token list`.
        #[arg(long)]
        name: Option<String>,
    },
    /// List tokens (ids, roles, names, dates; never the secrets).
    List,
    /// Revoke a token by id.
    Revoke {
        /// The id shown by `belong token list`.
        id: i64,
    },
}

/// Output formats for `recruit`.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum RecruitFormat {
    /// Aligned columns for people.
    Table,
    /// An array of rows, as `GET /coverage/uncovered` gives a recruiter.
    Json,
    /// The walk list: one line per opted-in resident (one per block without any), UTF-8 with a
    /// byte-order mark for spreadsheets.
    Csv,
}

/// `recruit`.
#[derive(Debug, Args)]
pub struct RecruitArgs {
    /// Only the N highest-priority blocks.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub top: Option<u64>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = RecruitFormat::Table)]
    pub format: RecruitFormat,
    /// Nearest active ambassadors listed per block.
    #[arg(long, value_name = "K", default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=50))]
    pub nearest: u16,
    /// A weight of the priority, NAME=VALUE (repeatable; names: residents, need, children,
    /// distance; values 0 to 1000; defaults 1, 1, 0.5, 0.25). Applied after --weights.
    #[arg(long = "weight", value_name = "NAME=VALUE")]
    pub weight: Vec<String>,
    /// A JSON file of weights, e.g. {"residents": 2, "need": 0.5}; weights it does not name
    /// keep their defaults.
    #[arg(long, value_name = "FILE")]
    pub weights: Option<PathBuf>,
    /// The need indicator: lower values mean more need.
    #[arg(long, value_name = "NAME")]
    pub indicator: Option<String>,
    /// Metres beyond which the distance to the nearest ambassador counts no more.
    #[arg(long, value_name = "METRES", default_value_t = 2000.0)]
    pub distance_cap: f64,
    /// Active ambassadors a block needs to count as covered.
    #[arg(long, env = "BELONG_TARGET", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub target: u32,
}

/// `people`.
#[derive(Debug, Subcommand)]
pub enum People {
    /// Let an ambassador adopt a block (cover it instead of their home block), until a date, for
    /// some days, or until further notice; after that the adoption lapses by itself.
    Adopt {
        /// The ambassador's id.
        id: String,
        /// The block to adopt.
        block: String,
        /// When the adoption lapses: a date (through its end, UTC) or an RFC 3339 date-time.
        #[arg(long, value_name = "DATE", conflicts_with = "days")]
        until: Option<String>,
        /// Or: lapses this many days from now.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(i64).range(1..=3650))]
        days: Option<i64>,
    },
}

/// `access`.
#[derive(Debug, Subcommand)]
pub enum Access {
    /// Blocks with residents whose nearest resource of the category is far: most residents
    /// first, each row saying why (as `GET /access/gaps`).
    ///
    /// Example: belong access gaps --category food_bank --min-distance-m 1500 --format csv
    Gaps(AccessGaps),
    /// Access to a category per census tract or per area of an imported layer: residents-
    /// weighted mean distance, residents beyond the walking radius, resources, 2SFCA score (as
    /// `GET /access/rollup`).
    ///
    /// Example: belong access rollup --by tract --category homeless_shelters
    Rollup(AccessRollup),
}

/// What both `access` commands take.
#[derive(Debug, Args)]
pub struct AccessArgs {
    /// Resource category (as imported, e.g. food_bank, school).
    #[arg(long)]
    pub category: String,
    /// Walking radius in metres: resources within it count as within reach.
    #[arg(long, default_value_t = belong::core::reach::WALK_M)]
    pub walk_m: f64,
    /// Catchment radius of the 2SFCA score, metres.
    #[arg(long, default_value_t = belong::core::reach::CATCHMENT_M)]
    pub catchment_m: f64,
    /// Demand of the 2SFCA score: `residents` (registered residents per block) or a numeric
    /// attribute of the blocks, e.g. a census population column.
    #[arg(long, default_value = "residents")]
    pub demand: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = CoverageFormat::Table)]
    pub format: CoverageFormat,
}

/// `access gaps`.
#[derive(Debug, Args)]
pub struct AccessGaps {
    #[command(flatten)]
    pub access: AccessArgs,
    /// List blocks whose nearest resource of the category is at least this far, metres
    /// (default: the walking radius).
    #[arg(long)]
    pub min_distance_m: Option<f64>,
    /// Rows to list.
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
}

/// `access rollup`.
#[derive(Debug, Args)]
pub struct AccessRollup {
    #[command(flatten)]
    pub access: AccessArgs,
    /// `tract` or an area layer imported with `belong import areas --name LAYER`.
    #[arg(long)]
    pub by: String,
}
