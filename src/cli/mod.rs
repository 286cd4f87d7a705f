//! The command line: parse, call the use cases in `belong::app`, print, choose the exit code.

mod access;
pub mod args;
mod dashboard;
mod db;
mod recruit;
mod report;

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use anyhow::{Context, Result, bail};
use belong::app::{self, HasRejections};
use belong::core::Role;
use belong::ingest::Crs;
use belong::ingest::blocks::BlockReadOptions;
use belong::ingest::resources::ResourceOptions;
use belong::store::Store;
use indicatif::{ProgressBar, ProgressStyle};

use args::{Cli, Command, CoverageFormat, Demo, ExportFormat, Import, Layer, Tiles};

/// How a successful run ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Everything done.
    Done,
    /// Done, but some input rows were rejected (exit code 3).
    Partial,
}

fn parse_crs(text: Option<&str>) -> Result<Option<Crs>> {
    text.map(|t| Crs::parse(t).with_context(|| format!("invalid CRS '{t}'"))).transpose()
}

fn open_store(cli: &Cli) -> Result<std::sync::Arc<dyn Store>> {
    belong::store::open(&cli.db).with_context(|| format!("opening database {}", cli.db))
}

/// Run a parsed command line.
pub fn run(cli: Cli) -> Result<Outcome> {
    match &cli.command {
        Command::Import(what) => {
            let store = open_store(&cli)?;
            import(&*store, what, cli.quiet)
        }
        Command::Assign(a) => {
            let store = open_store(&cli)?;
            let crs = parse_crs(a.crs.as_deref())?;
            let catchment = app::load_catchment(&*store)?;
            if catchment.index.is_empty() {
                bail!("no blocks in {}: run `belong import blocks PATH` first", cli.db);
            }
            let stdout = io::stdout().lock();
            let name = a.path.display().to_string();
            let report = if a.path == Path::new("-") {
                app::assign_csv(&catchment.index, io::stdin(), "stdin", BufWriter::new(stdout), crs.as_ref())?
            } else {
                let file = File::open(&a.path).with_context(|| format!("opening {name}"))?;
                app::assign_csv(
                    &catchment.index,
                    io::BufReader::new(file),
                    &name,
                    BufWriter::new(stdout),
                    crs.as_ref(),
                )?
            };
            for r in &report.rejected {
                eprintln!("rejected: {r}");
            }
            if !cli.quiet {
                eprintln!(
                    "{} rows: {} in a block, {} outside the catchment, {} with an unreadable location",
                    report.rows,
                    report.assigned,
                    report.outside,
                    report.rejected.len()
                );
            }
            Ok(if report.rejected.is_empty() { Outcome::Done } else { Outcome::Partial })
        }
        Command::Coverage(c) => {
            let store = open_store(&cli)?;
            if c.history {
                return dashboard::history(&*store, c);
            }
            if let Some(by) = &c.by {
                return dashboard::rollup(&*store, c, by);
            }
            let cov = app::coverage(&*store, c.target)?;
            let mut out = BufWriter::new(io::stdout().lock());
            match c.format {
                CoverageFormat::Json => {
                    serde_json::to_writer_pretty(&mut out, &cov)?;
                    writeln!(out)?;
                }
                CoverageFormat::Csv => {
                    let mut w = csv::Writer::from_writer(&mut out);
                    for b in &cov.blocks {
                        w.serialize(b)?;
                    }
                    w.flush()?;
                    drop(w);
                    report::summary_to_stderr(&cov.summary);
                }
                CoverageFormat::Table => report::coverage_table(&mut out, &cov)?,
            }
            out.flush()?;
            Ok(Outcome::Done)
        }
        Command::Export(e) => {
            let store = open_store(&cli)?;
            match e.format.download() {
                Some(format) => export_file(&*store, e, format, cli.quiet)?,
                None => export(&*store, e)?,
            }
            Ok(Outcome::Done)
        }
        Command::Demo(Demo::Generate(g)) => {
            let spec = belong::demo::DemoSpec {
                blocks: g.blocks as usize,
                residents: g.residents,
                ambassadors: g.ambassadors,
                resources: g.resources,
                seed: g.seed,
            };
            let summary = belong::demo::generate(&spec, &g.out)
                .with_context(|| format!("generating the demo into {}", g.out.display()))?;
            if !cli.quiet {
                println!(
                    "wrote {} blocks, {} residents, {} ambassadors, {} resources, {} indicator values to {}",
                    summary.blocks,
                    summary.residents,
                    summary.ambassadors,
                    summary.resources,
                    summary.indicators,
                    g.out.display()
                );
            }
            Ok(Outcome::Done)
        }
        Command::Token(t) => {
            let store = open_store(&cli)?;
            token(&*store, t)
        }
        Command::Demo(Demo::Load(l)) => {
            let store = open_store(&cli)?;
            demo_load(&*store, &l.dir, cli.quiet)
        }
        Command::Serve(s) => serve(&cli, s),
        Command::Tiles(Tiles::Export(t)) => {
            let store = open_store(&cli)?;
            tiles_export(&*store, t, cli.quiet)
        }
        Command::Recruit(r) => recruit::recruit(&*open_store(&cli)?, r),
        Command::Access(args::Access::Gaps(g)) => access::gaps(&*open_store(&cli)?, g),
        Command::Access(args::Access::Rollup(r)) => access::rollup(&*open_store(&cli)?, r),
        Command::People(args::People::Adopt { id, block, until, days }) => {
            recruit::adopt(&*open_store(&cli)?, id, block, until.as_deref(), *days)
        }
        Command::Db(args::Db::Copy(c)) => db::copy(c, cli.quiet),
    }
}

/// `belong serve`: load the demo into an empty database, then serve until SIGINT/SIGTERM.
fn serve(cli: &Cli, s: &args::ServeArgs) -> Result<Outcome> {
    // Imports over HTTP share the machine with the live state: 16 MiB of page cache for them.
    belong::store::SqliteStore::limit_bulk_cache(16_384);
    let store = open_store(cli)?;
    if store.block_ids()?.is_empty() {
        if s.demo_dir.join("blocks.shp").exists() {
            eprintln!("{} has no blocks: loading the demo from {}", cli.db, s.demo_dir.display());
            demo_load(&*store, &s.demo_dir, true)?;
        } else {
            eprintln!(
                "warning: {} has no blocks and {} holds no demo; serving an empty catchment",
                cli.db,
                s.demo_dir.display()
            );
        }
    }
    let removed = belong::http::clean_uploads();
    if removed > 0 {
        eprintln!("removed {removed} upload(s) left by a service that was stopped mid-import");
    }
    let config = belong::http::ServeConfig {
        target: s.target,
        base_url: s.base_url.clone(),
        cors_origins: s.cors_origins.clone(),
        request_timeout: std::time::Duration::from_secs(s.request_timeout),
        max_body: s.max_body,
        zip: s.zip.limits(),
        max_connections: s.max_connections as usize,
        header_timeout: std::time::Duration::from_secs(s.header_timeout),
        idle_timeout: std::time::Duration::from_secs(s.idle_timeout),
        private: s.private,
        basemap: s.basemap.clone(),
    };
    // A bounded blocking pool: tile cuts, rankings, imports and store calls queue for it instead
    // of growing it to hundreds of threads (tokio's default is 512), whose stacks and caches
    // each write then touches, so memory grows with concurrency (issue 12, item 7).
    let blocking = s.blocking_threads.map(usize::from).unwrap_or_else(|| {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        (8 * cores).max(16)
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .max_blocking_threads(blocking)
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(async {
        let state = belong::http::AppState::starting_shared(store, config);
        belong::http::serve(state, s.addr, |addr| {
            println!("listening on http://{addr}");
            let _ = io::stdout().flush();
        })
        .await
        .with_context(|| format!("serving on {}", s.addr))
    })?;
    Ok(Outcome::Done)
}

/// Import everything `belong demo generate` wrote in `dir`.
pub fn demo_load(store: &dyn Store, dir: &Path, quiet: bool) -> Result<Outcome> {
    let steps: [(&str, Import); 5] = [
        (
            "blocks.shp",
            Import::Blocks(args::ImportBlocks {
                path: dir.join("blocks.shp"),
                id_field: None,
                name_field: None,
                source_crs: None,
                skip_invalid: false,
                region: args::RegionArgs::default(),
                zip: args::ZipArgs::default(),
            }),
        ),
        ("residents.csv", Import::Residents(args::ImportPeople { path: dir.join("residents.csv"), crs: None })),
        ("ambassadors.csv", Import::Ambassadors(args::ImportPeople { path: dir.join("ambassadors.csv"), crs: None })),
        (
            "resources.csv",
            Import::Resources(args::ImportResources {
                path: dir.join("resources.csv"),
                crs: None,
                category: None,
                id_field: None,
            }),
        ),
        ("indicators.csv", Import::Indicators(args::ImportIndicators { path: dir.join("indicators.csv") })),
    ];
    let mut outcome = Outcome::Done;
    for (file, step) in &steps {
        if !dir.join(file).exists() {
            bail!(
                "{} not found: generate the demo with `belong demo generate --out {}`",
                dir.join(file).display(),
                dir.display()
            );
        }
        if import(store, step, quiet)? == Outcome::Partial {
            outcome = Outcome::Partial;
        }
    }
    if !quiet {
        let cov = app::coverage(store, 1)?;
        report::summary_to_stderr(&cov.summary);
    }
    Ok(outcome)
}

fn bytes_bar(path: &Path, quiet: bool) -> ProgressBar {
    let len = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    if quiet {
        return ProgressBar::hidden();
    }
    // indicatif draws only when stderr is a terminal, so pipes and CI logs stay clean.
    let bar = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template("{msg} [{bar:40}] {bytes}/{total_bytes} ({eta})") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(format!("importing {}", path.display()));
    bar
}

fn finish<T: HasRejections + serde::Serialize>(
    result: &T,
    quiet: bool,
    summary: String,
    warnings: &[String],
) -> Outcome {
    use belong::core::text::{MESSAGE_LINE, clip_lines};
    for w in warnings {
        eprintln!("warning: {}", clip_lines(w, MESSAGE_LINE));
    }
    let rejected = result.rejections();
    for r in rejected {
        eprintln!("rejected: {}", clip_lines(&r.to_string(), MESSAGE_LINE));
    }
    if !quiet {
        println!("{summary}");
    }
    if rejected.is_empty() {
        Outcome::Done
    } else {
        eprintln!("{} record(s) rejected; the others were imported", rejected.len());
        Outcome::Partial
    }
}

/// `PATH: N things imported (a new, b updated, c unchanged), k <extra>, r rejected`.
fn upsert_summary(
    path: &Path,
    what: &str,
    u: &belong::store::Upserted,
    extra: &str,
    k: usize,
    rejected: usize,
) -> String {
    format!(
        "{}: {} {what} imported ({} new, {} updated, {} unchanged), {k} {extra}, {rejected} rejected",
        path.display(),
        u.inserted + u.updated + u.unchanged,
        u.inserted,
        u.updated,
        u.unchanged
    )
}

/// The summary line, then what `--where` / `--within` kept (`kept 187 of 2495 features (...)`).
fn with_filter_report(summary: String, filtered: Option<&belong::ingest::FilterReport>) -> String {
    match filtered {
        Some(f) => format!("{summary}\n{f}"),
        None => summary,
    }
}

fn import(store: &dyn Store, what: &Import, quiet: bool) -> Result<Outcome> {
    match what {
        Import::Blocks(b) => {
            let opts = BlockReadOptions {
                id_field: b.id_field.clone(),
                name_field: b.name_field.clone(),
                source_crs: parse_crs(b.source_crs.as_deref())?,
                skip_invalid: b.skip_invalid,
                filter: b.region.filter(),
                zip: b.zip.limits(),
            };
            let spinner = if quiet { ProgressBar::hidden() } else { ProgressBar::new_spinner() };
            spinner.set_message(format!("reading {}", b.path.display()));
            spinner.enable_steady_tick(std::time::Duration::from_millis(120));
            let r = app::import_blocks(store, &b.path, &opts);
            spinner.finish_and_clear();
            let r = r?;
            let s = &r.replaced;
            let summary = format!(
                "imported {} blocks from {} (CRS {}, id field {}): {} added, {} removed, {} changed; {} people and {} resources reassigned",
                s.blocks,
                b.path.display(),
                r.crs,
                r.id_field,
                s.added,
                s.removed,
                s.changed,
                s.people_reassigned,
                s.resources_reassigned
            );
            let summary = with_filter_report(summary, r.filtered.as_ref());
            Ok(finish(&r, quiet, summary, &r.warnings))
        }
        Import::Residents(p) | Import::Ambassadors(p) => {
            let role = if matches!(what, Import::Residents(_)) { Role::Resident } else { Role::Ambassador };
            let crs = parse_crs(p.crs.as_deref())?;
            let bar = bytes_bar(&p.path, quiet);
            let r = app::import_people(store, &p.path, role, crs.as_ref(), |pos| bar.set_position(pos));
            bar.finish_and_clear();
            let r = r?;
            let summary = upsert_summary(
                &p.path,
                &format!("{role}s"),
                &r.upserted,
                "outside the catchment",
                r.outside,
                r.rejected.len(),
            );
            Ok(finish(&r, quiet, summary, &r.warnings))
        }
        Import::Resources(res) => {
            let crs = parse_crs(res.crs.as_deref())?;
            let opts = ResourceOptions { category: res.category.clone(), id_field: res.id_field.clone() };
            let r = app::import_resources(store, &res.path, crs.as_ref(), &opts)?;
            let summary = upsert_summary(
                &res.path,
                "resources",
                &r.upserted,
                "outside the catchment",
                r.outside,
                r.rejected.len(),
            );
            Ok(finish(&r, quiet, summary, &r.warnings))
        }
        Import::Indicators(i) => {
            let r = app::import_indicators(store, &i.path)?;
            let summary =
                upsert_summary(&i.path, "indicator values", &r.upserted, "no-data cells", r.no_data, r.rejected.len());
            Ok(finish(&r, quiet, summary, &[]))
        }
        Import::Areas(a) => {
            let opts = BlockReadOptions {
                id_field: a.id_field.clone(),
                name_field: a.name_field.clone(),
                source_crs: parse_crs(a.source_crs.as_deref())?,
                skip_invalid: a.skip_invalid,
                filter: a.region.filter(),
                zip: a.zip.limits(),
            };
            let r = app::rollup::import_areas(store, &a.path, &a.name, &opts)?;
            let summary = format!(
                "imported {} areas into layer '{}' from {} (CRS {}, id field {}, name field {}), replacing {}; \
                 roll up with `belong coverage --by {}`",
                r.replaced.areas,
                r.replaced.layer,
                a.path.display(),
                r.crs,
                r.id_field,
                r.name_field.as_deref().unwrap_or("none"),
                r.replaced.previous,
                r.replaced.layer
            );
            let summary = with_filter_report(summary, r.filtered.as_ref());
            Ok(finish(&r, quiet, summary, &r.warnings))
        }
    }
}

fn export(store: &dyn Store, e: &args::ExportArgs) -> Result<()> {
    if e.crs.is_some() {
        bail!("--crs applies to --format gpkg, fgb and shp; GeoJSON (RFC 7946) and CSV are written in WGS84");
    }
    let out: Box<dyn Write> = match &e.out {
        Some(path) => Box::new(File::create(path).with_context(|| format!("creating {}", path.display()))?),
        None => Box::new(io::stdout().lock()),
    };
    let out = BufWriter::new(out);
    match (e.layer, e.format) {
        (_, ExportFormat::Gpkg | ExportFormat::Fgb | ExportFormat::Shp) => {
            bail!("{:?} is a file format: written by export_file", e.format)
        }
        (Layer::Blocks, format) => {
            let blocks = store.blocks()?;
            let cov = app::coverage(store, e.target)?;
            let indicators = store.indicators()?;
            match format {
                ExportFormat::Geojson => {
                    drop(belong::export::write_blocks_geojson(out, &blocks, &cov.blocks, e.target, &indicators)?)
                }
                _ => drop(belong::export::write_blocks_csv(out, &blocks, &cov.blocks, e.target, &indicators)?),
            }
        }
        (Layer::Resources, ExportFormat::Geojson) => {
            drop(belong::export::write_resources_geojson(out, &store.resources()?)?)
        }
        (Layer::Resources, ExportFormat::Csv) => drop(belong::export::write_resources_csv(out, &store.resources()?)?),
        (Layer::Indicators, ExportFormat::Geojson) => {
            drop(belong::export::write_indicator_geojson(out, &store.blocks()?, &e.indicator, &store.indicators()?)?)
        }
        (Layer::Indicators, ExportFormat::Csv) => {
            drop(belong::export::write_indicators_csv(out, &store.indicators()?)?)
        }
    }
    Ok(())
}

/// `export --format gpkg|fgb|shp`: the layer as the service serves it (same columns and
/// values as `/collections/{id}/items?f=...`), to `--out` or to a stdout that is not a
/// terminal.
fn export_file(
    store: &dyn Store,
    e: &args::ExportArgs,
    format: belong::export::DownloadFormat,
    quiet: bool,
) -> Result<()> {
    use belong::app::layers::{self, BLOCKS, Layers, RESOURCES, SCHOOL_READINESS, SCHOOL_READINESS_INDICATOR};
    use belong::export::OutputCrs;
    use std::io::IsTerminal;

    let id = match e.layer {
        Layer::Blocks => BLOCKS,
        Layer::Resources => RESOURCES,
        Layer::Indicators if e.indicator == SCHOOL_READINESS_INDICATOR => SCHOOL_READINESS,
        Layer::Indicators => bail!(
            "--format {} has the {SCHOOL_READINESS_INDICATOR} indicator only (the school-readiness collection); \
             every indicator is a column of `belong export blocks --format {}`",
            format.extension(),
            format.extension()
        ),
    };
    // Refuse before the work, not after it.
    if e.out.is_none() && io::stdout().is_terminal() {
        bail!(
            "--format {} writes a binary file: give --out FILE (e.g. --out {id}.{}) or redirect stdout",
            format.extension(),
            format.extension()
        );
    }
    let snapshot = Layers::build(store, e.target)?;
    let c = snapshot.collection(id).with_context(|| format!("no collection {id}"))?;
    let all: Vec<usize> = (0..c.features.len()).collect();
    let crs = match &e.crs {
        None => OutputCrs::wgs84(),
        Some(text) => belong::app::output_crs::CrsList::for_layers(&snapshot)
            .resolve(text)
            .map_err(|e| anyhow::anyhow!("--crs: {e}"))?
            .for_download()
            .map_err(|e| anyhow::anyhow!("--crs: {e}"))?,
    };
    match &e.out {
        Some(path) => layers::write_download_at(c, &all, format, &crs, path)
            .with_context(|| format!("writing {}", path.display()))?,
        None => {
            let mut file = layers::download_file(c, &all, format, &crs)?;
            let mut out = io::stdout().lock();
            io::copy(&mut file, &mut out).context("writing to stdout")?;
            out.flush()?;
        }
    }
    if !quiet {
        let to = e.out.as_ref().map_or("stdout".to_string(), |p| p.display().to_string());
        eprintln!("wrote {} {id} features as {} to {to}", all.len(), format.title());
    }
    Ok(())
}

fn token(store: &dyn Store, t: &args::Token) -> Result<Outcome> {
    match t {
        args::Token::Create { role, name } => {
            let new = app::tokens::create_token(store, *role, name.as_deref())?;
            println!("created token {} with role {} (shown once; only its hash is stored):", new.id, new.role);
            println!("{}", new.token);
        }
        args::Token::List => {
            let tokens = store.tokens()?;
            println!("{:>4}  {:<9}  {:<24}  {:<24}  name", "id", "role", "created", "revoked");
            for t in tokens {
                println!(
                    "{:>4}  {:<9}  {:<24}  {:<24}  {}",
                    t.id,
                    t.role,
                    t.created_at,
                    t.revoked_at.as_deref().unwrap_or("-"),
                    t.name.as_deref().unwrap_or("")
                );
            }
        }
        args::Token::Revoke { id } => {
            if !store.revoke_token(*id)? {
                bail!("no live token with id {id} (see `belong token list`)");
            }
            println!("revoked token {id}");
        }
    }
    Ok(Outcome::Done)
}

fn tiles_export(store: &dyn Store, t: &args::TilesExport, quiet: bool) -> Result<Outcome> {
    use belong::export::tiles::{TileExport, export_tiles, plan};
    let layers = belong::app::layers::Layers::build(store, t.target)?;
    if layers.tiles().layer(belong::app::layers::BLOCKS).is_none_or(|l| l.is_empty()) {
        bail!("no blocks in the database: run `belong import blocks PATH` (or `belong demo load`) first");
    }
    let opts = TileExport {
        out: t.out.clone(),
        minzoom: t.minzoom,
        maxzoom: t.maxzoom,
        layers: t.layers.iter().map(|l| l.trim().to_string()).filter(|l| !l.is_empty()).collect(),
        gzip: t.gzip,
        pmtiles: t.pmtiles.clone(),
        base_url: t.base_url.clone(),
    };
    let tiles = plan(layers.tiles(), &opts)?;
    let bar = if quiet { ProgressBar::hidden() } else { ProgressBar::new(tiles.len() as u64) };
    bar.set_style(
        ProgressStyle::with_template("{spinner} cutting tiles {bar:30} {pos}/{len} ({per_sec}, eta {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let summary = export_tiles(layers.tiles(), &layers, &opts, &tiles, &|done| bar.set_position(done))?;
    bar.finish_and_clear();
    if !quiet {
        let zooms: Vec<String> = summary.per_zoom.iter().map(|(z, n)| format!("z{z}: {n}")).collect();
        println!(
            "wrote {} tiles ({:.1} MB{}) to {} [{}]; {} empty tiles skipped",
            summary.tiles,
            summary.bytes as f64 / 1e6,
            if opts.gzip { ", gzip" } else { "" },
            opts.out.display(),
            zooms.join(", "),
            summary.empty
        );
        if let Some(p) = &opts.pmtiles {
            println!("wrote the PMTiles archive {}", p.display());
        }
    }
    Ok(Outcome::Done)
}
