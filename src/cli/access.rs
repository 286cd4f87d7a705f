//! `belong access gaps|rollup`: the questions of `/access/gaps` and `/access/rollup`, on a
//! snapshot built from the database.

use std::io::{self, BufWriter, Write};

use anyhow::{Result, anyhow};
use belong::app::access::{self, AccessCache, AccessQuery, AccessRollupRow, Demand, GapRow};
use belong::app::layers::Layers;
use belong::app::rollup::MembershipCache;
use belong::core::area::TRACT;
use belong::core::reach::Radii;
use belong::core::rollup::tract_of;
use belong::store::Store;

use super::Outcome;
use super::args::{AccessArgs, AccessGaps, AccessRollup, CoverageFormat};

fn query(a: &AccessArgs) -> Result<AccessQuery> {
    let radii = Radii::new(a.walk_m, a.catchment_m)
        .map_err(|e| anyhow!(e.replace("walk_m", "--walk-m").replace("catchment_m", "--catchment-m")))?;
    let demand = if a.demand == "residents" { Demand::Residents } else { Demand::Attribute(a.demand.clone()) };
    Ok(AccessQuery { category: a.category.clone(), radii, demand })
}

fn write_rows<T: serde::Serialize>(
    format: CoverageFormat,
    rows: &[T],
    columns: &[&str],
    table: impl Fn(&mut dyn Write) -> io::Result<()>,
) -> Result<Outcome> {
    let mut out = BufWriter::new(io::stdout().lock());
    match format {
        CoverageFormat::Table => table(&mut out)?,
        CoverageFormat::Json => {
            serde_json::to_writer_pretty(&mut out, rows)?;
            writeln!(out)?;
        }
        CoverageFormat::Csv => {
            let mut w = csv::WriterBuilder::new().has_headers(false).from_writer(&mut out);
            w.write_record(columns)?;
            for r in rows {
                w.serialize(r)?;
            }
            w.flush()?;
        }
    }
    out.flush()?;
    Ok(Outcome::Done)
}

fn opt_m(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_string(), |m| format!("{m:.0}"))
}

/// `access gaps`.
pub fn gaps(store: &dyn Store, g: &AccessGaps) -> Result<Outcome> {
    let q = query(&g.access)?;
    let layers = Layers::build(store, 1)?;
    let rows = access::gaps(&AccessCache::default(), &layers, &q, g.min_distance_m, g.limit)?;
    write_rows(g.access.format, &rows, GapRow::COLUMNS, |out| {
        let iw = rows.iter().map(|r| r.block_id.len()).max().unwrap_or(0).max(8);
        writeln!(
            out,
            "{:>4}  {:<iw$}  {:>9}  {:>9}  {:>6}  why",
            "rank", "block_id", "residents", "nearest_m", "score"
        )?;
        for r in &rows {
            writeln!(
                out,
                "{:>4}  {:<iw$}  {:>9}  {:>9}  {:>6.1}  {}",
                r.rank,
                r.block_id,
                r.residents,
                opt_m(r.nearest_m),
                r.access_score,
                r.why
            )?;
        }
        Ok(())
    })
}

/// `access rollup`.
pub fn rollup(store: &dyn Store, r: &AccessRollup) -> Result<Outcome> {
    let q = query(&r.access)?;
    let layers = Layers::build(store, 1)?;
    let cache = AccessCache::default();
    let rows = if r.by == TRACT {
        access::rollup(&cache, &layers, &q, |id| tract_of(id).map(|t| (t.to_string(), None)))?
    } else {
        let membership = MembershipCache::default().membership(store, &r.by)?;
        access::rollup(&cache, &layers, &q, |id| {
            membership.area_of(id).map(|(a, n)| (a.to_string(), n.map(str::to_string)))
        })?
    };
    write_rows(r.access.format, &rows, AccessRollupRow::COLUMNS, |out| {
        let group = |x: &AccessRollupRow| x.group.clone().unwrap_or_else(|| "(none)".to_string());
        let gw = rows.iter().map(|x| group(x).chars().count()).max().unwrap_or(0).max(5);
        writeln!(
            out,
            "{:<gw$}  {:>6}  {:>9}  {:>15}  {:>21}  {:>9}  {:>12}",
            "group", "blocks", "residents", "mean_distance_m", "residents_beyond_walk", "resources", "access_score"
        )?;
        for x in &rows {
            writeln!(
                out,
                "{:<gw$}  {:>6}  {:>9}  {:>15}  {:>21}  {:>9}  {:>12}",
                group(x),
                x.blocks,
                x.residents,
                opt_m(x.mean_distance_m),
                x.residents_beyond_walk,
                x.resources,
                x.access_score.map_or_else(|| "-".to_string(), |s| format!("{s:.2}"))
            )?;
        }
        Ok(())
    })
}
