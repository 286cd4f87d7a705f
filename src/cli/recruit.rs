//! `belong recruit` (the ranked uncovered blocks and the walk list) and `belong people adopt`.
//! The command line runs with the database's full trust: candidates and exact distances.

use std::io::{self, BufWriter, Write};
use std::sync::Arc;

use anyhow::{Context, Result};
use belong::app::recruit::{CatchmentFacts, RankOptions, RecruitData, RecruitRow, rank, write_walk_list};
use belong::app::{self, people};
use belong::core::person::until_text;
use belong::store::Store;

use super::Outcome;
use super::args::{RecruitArgs, RecruitFormat};

fn options(a: &RecruitArgs) -> Result<RankOptions> {
    let mut opts = RankOptions {
        nearest: usize::from(a.nearest),
        indicator: a.indicator.clone(),
        distance_cap_m: a.distance_cap,
        ..RankOptions::default()
    };
    if let Some(path) = &a.weights {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let json: serde_json::Value =
            serde_json::from_str(&text).with_context(|| format!("{}: not a JSON object of weights", path.display()))?;
        opts.weights.apply_json(&json).with_context(|| format!("in {}", path.display()))?;
    }
    opts.weights.apply(a.weight.iter().map(String::as_str))?;
    opts.check()?;
    Ok(opts)
}

/// `belong recruit`.
pub fn recruit(store: &dyn Store, a: &RecruitArgs) -> Result<Outcome> {
    let opts = options(a)?;
    let coverage = app::coverage(store, a.target)?;
    let facts = Arc::new(CatchmentFacts::new(&store.blocks()?));
    let data = RecruitData::load(store, facts, &coverage, chrono::Utc::now())?;
    let mut rows = rank(&data, &opts)?;
    if let Some(top) = a.top {
        rows.truncate(usize::try_from(top).unwrap_or(usize::MAX));
    }
    let mut out = BufWriter::new(io::stdout().lock());
    match a.format {
        RecruitFormat::Json => {
            serde_json::to_writer_pretty(&mut out, &rows)?;
            writeln!(out)?;
        }
        RecruitFormat::Csv => drop(write_walk_list(&mut out, &rows, true)?),
        RecruitFormat::Table => table(&mut out, &rows)?,
    }
    out.flush()?;
    Ok(Outcome::Done)
}

fn table(out: &mut impl Write, rows: &[RecruitRow<'_>]) -> io::Result<()> {
    writeln!(
        out,
        "{:>5}  {:<16} {:<12} {:>8} {:>9} {:>6} {:>8}  {:<22} {:>10} {:>9}",
        "rank",
        "block",
        "name",
        "priority",
        "residents",
        "need",
        "children",
        "nearest ambassador",
        "candidates",
        "adjacent"
    )?;
    for r in rows {
        let nearest = r
            .nearest_ambassadors
            .first()
            .map_or("-".to_string(), |n| format!("{} {:.0} m", n.id.unwrap_or("-"), n.distance_m));
        let opt = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v}"));
        writeln!(
            out,
            "{:>5}  {:<16} {:<12} {:>8.3} {:>9} {:>6} {:>8}  {:<22} {:>10} {:>9}",
            r.rank,
            r.block_id,
            r.name.unwrap_or(""),
            r.priority,
            r.residents,
            opt(r.inputs.need_value),
            opt(r.inputs.children),
            nearest,
            r.candidates.map_or(0, <[_]>::len),
            r.adjacent_covered_blocks.len()
        )?;
    }
    if rows.is_empty() {
        writeln!(out, "every block is covered")?;
    }
    Ok(())
}

/// `belong people adopt ID BLOCK [--until DATE | --days N]`.
pub fn adopt(store: &dyn Store, id: &str, block: &str, until: Option<&str>, days: Option<i64>) -> Result<Outcome> {
    let adoption = people::Adoption { block_id: Some(block.to_string()), until: until.map(str::to_string), days };
    let catchment = app::load_catchment(store)?;
    let p = people::adopt(store, &catchment.index, id, adoption, "cli")
        .with_context(|| format!("ambassador '{id}' cannot adopt '{block}'"))?;
    match p.adopted_until {
        Some(t) => println!("{} adopts block {block} until {}", p.id, until_text(t)),
        None => println!("{} adopts block {block} (no expiry)", p.id),
    }
    Ok(Outcome::Done)
}
