//! `belong db copy`: a progress bar while the campaign moves, then the verification table.

use std::io::{self, Write};

use anyhow::{Context, Result, bail};
use belong::app::copy::{self, CopyProgress, CopyReport};
use indicatif::{ProgressBar, ProgressStyle};

use super::Outcome;
use super::args::DbCopy;

pub fn copy(args: &DbCopy, quiet: bool) -> Result<Outcome> {
    if copy::same_database(&args.from, &args.to) {
        bail!("--from and --to name the same database ({}): copy into another, empty one", args.from);
    }
    // `DbTarget` displays PostgreSQL URLs with the password masked.
    let source =
        belong::store::open(&args.from).with_context(|| format!("opening the source database {}", args.from))?;
    let destination =
        belong::store::open(&args.to).with_context(|| format!("opening the destination database {}", args.to))?;
    // indicatif draws only when stderr is a terminal, so pipes and CI logs stay clean.
    let bar = if quiet { ProgressBar::hidden() } else { ProgressBar::new(0) };
    if let Ok(style) =
        ProgressStyle::with_template("{msg:<20} [{bar:40}] {human_pos}/{human_len} rows ({per_sec}, eta {eta})")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message("reading the source");
    let mut on_progress = |p: CopyProgress| {
        bar.set_length(p.total);
        bar.set_position(p.rows);
        if p.stage == "finishing" {
            bar.set_message("indexes, commit");
        } else {
            bar.set_message(format!("copying {}", p.stage));
        }
    };
    let report = copy::copy(&*source, &*destination, &mut on_progress);
    bar.finish_and_clear();
    let report = report.with_context(|| format!("copying {} to {}", args.from, args.to))?;
    let mismatches = report.mismatches();
    if !quiet || !mismatches.is_empty() {
        print_report(&mut io::stdout().lock(), args, &report)?;
    }
    if !mismatches.is_empty() {
        let list: Vec<String> =
            mismatches.iter().map(|m| format!("{} ({} vs {})", m.what, m.source, m.destination)).collect();
        bail!(
            "copy verification failed: {} differ between {} and {} ({}); the destination was committed \
             but is not a faithful copy: empty it and copy again",
            if mismatches.len() == 1 { "one count".to_string() } else { format!("{} counts", mismatches.len()) },
            args.from,
            args.to,
            list.join(", ")
        );
    }
    Ok(Outcome::Done)
}

fn print_report(out: &mut impl Write, args: &DbCopy, report: &CopyReport) -> io::Result<()> {
    writeln!(
        out,
        "copied {} to {} in {:.1} s ({} rows)",
        args.from,
        args.to,
        report.elapsed.as_secs_f64(),
        report.source.rows()
    )?;
    let checks = report.checks();
    let w = checks.iter().map(|c| c.what.len()).max().unwrap_or(0).max(5);
    writeln!(out, "{:<w$}  {:>12}  {:>12}", "", "source", "destination")?;
    for c in &checks {
        let show = |n: i64| if n < 0 { "-".to_string() } else { n.to_string() };
        let flag = if c.ok() { "ok" } else { "MISMATCH" };
        writeln!(out, "{:<w$}  {:>12}  {:>12}  {flag}", c.what, show(c.source), show(c.destination))?;
    }
    if report.source_moved_on > 0 {
        writeln!(
            out,
            "note: the source recorded {} more change(s) while the copy ran; they are not in the copy \
             (it holds the source as of history seq {})",
            report.source_moved_on, report.source.last_change
        )?;
    }
    Ok(())
}
