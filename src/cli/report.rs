//! Human-readable coverage output.

use std::io::{self, Write};

use belong::core::{CoverageReport, CoverageSummary};

/// The summary as `key: value` lines on stderr (used when stdout carries CSV).
pub fn summary_to_stderr(s: &CoverageSummary) {
    eprintln!(
        "coverage: {}/{} blocks covered ({:.2}%), target {} ambassador(s) per block; {} residents ({} in uncovered blocks), {} active ambassadors, {} people outside the catchment",
        s.covered_blocks,
        s.blocks,
        s.coverage_pct,
        s.target,
        s.residents,
        s.residents_in_uncovered_blocks,
        s.ambassadors,
        s.people_outside
    );
}

/// Per-block rows as aligned columns, then the summary.
pub fn coverage_table(out: &mut impl Write, report: &CoverageReport) -> io::Result<()> {
    let w = report.blocks.iter().map(|b| b.block_id.len()).max().unwrap_or(8).max(8);
    writeln!(out, "{:<w$}  {:>9}  {:>11}  covered", "block_id", "residents", "ambassadors")?;
    for b in &report.blocks {
        writeln!(
            out,
            "{:<w$}  {:>9}  {:>11}  {}",
            b.block_id,
            b.residents,
            b.ambassadors,
            if b.covered { "yes" } else { "no" }
        )?;
    }
    let s = &report.summary;
    writeln!(out)?;
    writeln!(out, "blocks                         {}", s.blocks)?;
    writeln!(out, "covered_blocks                 {}", s.covered_blocks)?;
    writeln!(out, "coverage_pct                   {:.2}", s.coverage_pct)?;
    writeln!(out, "target                         {}", s.target)?;
    writeln!(out, "residents                      {}", s.residents)?;
    writeln!(out, "ambassadors                    {}", s.ambassadors)?;
    writeln!(out, "residents_in_uncovered_blocks  {}", s.residents_in_uncovered_blocks)?;
    writeln!(out, "people_outside                 {}", s.people_outside)?;
    Ok(())
}
