//! `belong coverage --history` and `belong coverage --by`: coverage over time and per group, as
//! aligned columns, CSV or JSON — the same rows as `GET /coverage/history` and
//! `GET /coverage/rollup`.

use std::io::{self, BufWriter, Write};

use anyhow::Result;
use belong::app::history::{HistoryPoint, Interval, coverage_history};
use belong::app::rollup::coverage_rollup;
use belong::core::rollup::RollupRow;
use belong::store::Store;

use super::Outcome;
use super::args::{CoverageArgs, CoverageFormat, HistoryInterval};

/// How the group of blocks in no tract or area is shown in a table.
const NO_GROUP: &str = "(none)";

/// Write `rows` as JSON (an array) or CSV (header row always).
fn json_or_csv<T: serde::Serialize>(out: &mut impl Write, rows: &[T], format: CoverageFormat) -> Result<()> {
    if format == CoverageFormat::Json {
        serde_json::to_writer_pretty(&mut *out, rows)?;
        writeln!(out)?;
    } else {
        let mut w = csv::Writer::from_writer(&mut *out);
        for r in rows {
            w.serialize(r)?;
        }
        w.flush()?;
    }
    Ok(())
}

/// `coverage --history`.
pub fn history(store: &dyn Store, c: &CoverageArgs) -> Result<Outcome> {
    let interval = match c.interval {
        HistoryInterval::Day => Interval::Day,
        HistoryInterval::Week => Interval::Week,
    };
    let points = coverage_history(store, interval, c.target, chrono::Utc::now())?;
    if points.is_empty() {
        eprintln!("no changes recorded yet: import blocks and people first");
    }
    let mut out = BufWriter::new(io::stdout().lock());
    match c.format {
        CoverageFormat::Table => history_table(&mut out, &points)?,
        CoverageFormat::Csv if points.is_empty() => writeln!(out, "{}", HistoryPoint::COLUMNS.join(","))?,
        format => json_or_csv(&mut out, &points, format)?,
    }
    out.flush()?;
    Ok(Outcome::Done)
}

fn history_table(out: &mut impl Write, points: &[HistoryPoint]) -> io::Result<()> {
    let c = HistoryPoint::COLUMNS;
    writeln!(out, "{:<10}  {}  {}  {}  {}  {}", c[0], c[1], c[2], c[3], c[4], c[5])?;
    for p in points {
        writeln!(
            out,
            "{:<10}  {:>12.2}  {:>14}  {:>6}  {:>11}  {:>9}",
            p.date, p.coverage_pct, p.covered_blocks, p.blocks, p.ambassadors, p.residents
        )?;
    }
    Ok(())
}

/// `coverage --by tract|LAYER`.
pub fn rollup(store: &dyn Store, c: &CoverageArgs, by: &str) -> Result<Outcome> {
    let rows = coverage_rollup(store, by, c.target)?;
    let mut out = BufWriter::new(io::stdout().lock());
    match c.format {
        CoverageFormat::Table => rollup_table(&mut out, &rows)?,
        CoverageFormat::Csv if rows.is_empty() => writeln!(out, "{}", RollupRow::COLUMNS.join(","))?,
        format => json_or_csv(&mut out, &rows, format)?,
    }
    out.flush()?;
    Ok(Outcome::Done)
}

fn rollup_table(out: &mut impl Write, rows: &[RollupRow]) -> io::Result<()> {
    let group = |r: &RollupRow| r.group.clone().unwrap_or_else(|| NO_GROUP.to_string());
    let gw = rows.iter().map(|r| group(r).chars().count()).max().unwrap_or(0).max(5);
    let nw = rows.iter().map(|r| r.name.as_deref().map_or(0, |n| n.chars().count())).max().unwrap_or(0).max(4);
    let c = RollupRow::COLUMNS;
    writeln!(
        out,
        "{:<gw$}  {:<nw$}  {:>6}  {:>14}  {:>12}  {:>9}  {:>29}  {:>11}",
        c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]
    )?;
    for r in rows {
        writeln!(
            out,
            "{:<gw$}  {:<nw$}  {:>6}  {:>14}  {:>12.2}  {:>9}  {:>29}  {:>11}",
            group(r),
            r.name.as_deref().unwrap_or(""),
            r.blocks,
            r.covered_blocks,
            r.coverage_pct,
            r.residents,
            r.residents_in_uncovered_blocks,
            r.ambassadors
        )?;
    }
    Ok(())
}
