//! `belong db copy`: move a whole campaign from one store to another (SQLite to PostgreSQL,
//! back, or same kind). The source's [`Store::dump`] runs on a thread of its own and hands its
//! batches through a small bounded channel to the destination's [`Store::restore`] on this one,
//! so at most a few batches are in memory however big the campaign; the destination commits
//! once, at the end. Afterwards the counts of both sides are compared.

use std::cell::Cell;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::time::{Duration, Instant};

use super::AppError;
use crate::store::{self, DbTarget, DumpBatch, Store, StoreError, TableCounts};

/// Batches in flight between the dump and the restore: enough to keep both threads busy, few
/// enough to bound memory (a batch is at most a few thousand rows).
const IN_FLIGHT: usize = 4;

/// How far a copy is, for a progress bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CopyProgress {
    /// What is being written: a table (`blocks`, `people`, `history`...), then `finishing`
    /// (indexes rebuilt, sequences set, commit).
    pub stage: &'static str,
    /// Rows handed to the destination so far, all tables.
    pub rows: u64,
    /// Rows the source held when the copy began (an estimate: the dump reads its own snapshot).
    pub total: u64,
}

/// One line of the verification: a count on both sides.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CountCheck {
    /// What is counted (`blocks`, `residents`, `areas in layer hoods`...).
    pub what: String,
    /// In the snapshot the source dumped.
    pub source: i64,
    /// In the destination, read back after the commit.
    pub destination: i64,
}

impl CountCheck {
    /// Both sides agree.
    pub fn ok(&self) -> bool {
        self.source == self.destination
    }
}

/// What a copy did.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CopyReport {
    /// Counts of the snapshot the source dumped.
    pub source: TableCounts,
    /// Counts of the destination after the commit.
    pub destination: TableCounts,
    /// History rows the source gained while the copy ran (written after its snapshot, so not
    /// in the destination).
    pub source_moved_on: i64,
    /// Time from the first read to the verification.
    #[serde(skip)]
    pub elapsed: Duration,
}

impl CopyReport {
    /// Every count compared, in a fixed order.
    pub fn checks(&self) -> Vec<CountCheck> {
        let (s, d) = (&self.source, &self.destination);
        let check = |what: &str, source: u64, destination: u64| CountCheck {
            what: what.to_string(),
            source: source as i64,
            destination: destination as i64,
        };
        let mut out = vec![check("blocks", s.blocks, d.blocks)];
        let layers: std::collections::BTreeSet<&String> = s.area_layers.keys().chain(d.area_layers.keys()).collect();
        for layer in layers {
            let (ls, ld) = (s.area_layers.get(layer).copied(), d.area_layers.get(layer).copied());
            let areas = |l: Option<store::dump::LayerCounts>| l.map_or(-1, |l| l.areas as i64);
            let version = |l: Option<store::dump::LayerCounts>| l.map_or(-1, |l| l.version);
            out.push(CountCheck { what: format!("areas in layer {layer}"), source: areas(ls), destination: areas(ld) });
            out.push(CountCheck {
                what: format!("version of layer {layer}"),
                source: version(ls),
                destination: version(ld),
            });
        }
        out.extend([
            check("residents", s.residents, d.residents),
            check("ambassadors", s.ambassadors, d.ambassadors),
            check("resources", s.resources, d.resources),
            check("indicator values", s.indicators, d.indicators),
            check("tokens", s.tokens, d.tokens),
            check("history rows", s.history, d.history),
            CountCheck { what: "last change (history seq)".into(), source: s.last_change, destination: d.last_change },
            CountCheck {
                what: "catchment version".into(),
                source: s.catchment_version,
                destination: d.catchment_version,
            },
        ]);
        out
    }

    /// The checks that failed (empty when the copy is verified).
    pub fn mismatches(&self) -> Vec<CountCheck> {
        self.checks().into_iter().filter(|c| !c.ok()).collect()
    }
}

/// Whether `a` and `b` name the same database (the same SQLite file, or the same URL), which a
/// copy must refuse: it would find its destination full, or wait on its own lock.
pub fn same_database(a: &DbTarget, b: &DbTarget) -> bool {
    match (a, b) {
        (DbTarget::Sqlite(a), DbTarget::Sqlite(b)) => {
            a == b || matches!((a.canonicalize(), b.canonicalize()), (Ok(a), Ok(b)) if a == b)
        }
        (a, b) => a == b,
    }
}

/// Copy everything `source` holds into `destination`, which must be empty: all or nothing,
/// then verified (see [`CopyReport::mismatches`]; a mismatch is reported, not an error).
pub fn copy(
    source: &dyn Store,
    destination: &dyn Store,
    progress: &mut dyn FnMut(CopyProgress),
) -> Result<CopyReport, AppError> {
    let started = Instant::now();
    // Checked again inside the restore's transaction; this only saves reading the source.
    let found = destination.table_counts()?;
    if !found.is_empty() {
        return Err(AppError::DestinationNotEmpty(found.holdings()));
    }
    let total = source.table_counts()?.rows();
    let (send, receive) = sync_channel::<Option<DumpBatch>>(IN_FLIGHT);
    let source_stopped = Cell::new(false);
    let (dumped, restored) = std::thread::scope(|scope| {
        let dumper = scope.spawn(move || dump_into(source, send));
        let restored = restore_from(destination, receive, total, &source_stopped, progress);
        let dumped = dumper.join().unwrap_or_else(|_| Err(StoreError::Unavailable("the source dump panicked".into())));
        (dumped, restored)
    });
    let snapshot = match (dumped, restored) {
        (Ok(snapshot), Ok(())) => snapshot,
        // The dump failed first; the restore only saw its channel close.
        (Err(e), Err(_)) if source_stopped.get() => return Err(e.into()),
        (_, Err(StoreError::NotEmpty { holds })) => return Err(AppError::DestinationNotEmpty(holds)),
        (_, Err(e)) => return Err(e.into()),
        (Err(e), Ok(())) => return Err(e.into()),
    };
    let after = destination.table_counts()?;
    let source_moved_on = source.last_change()? - snapshot.last_change;
    Ok(CopyReport { source: snapshot, destination: after, source_moved_on, elapsed: started.elapsed() })
}

/// The source's side: every batch into the channel, then `None` to say the dump is complete.
/// On an error the channel just closes, so the restore rolls back.
fn dump_into(source: &dyn Store, send: SyncSender<Option<DumpBatch>>) -> Result<TableCounts, StoreError> {
    let counts = source.dump(&mut |batch| {
        send.send(Some(batch)).map_err(|_| StoreError::Unavailable("the destination stopped reading".into()))
    })?;
    send.send(None).map_err(|_| StoreError::Unavailable("the destination stopped reading".into()))?;
    Ok(counts)
}

/// The destination's side: batches from the channel until the dump says it is complete.
fn restore_from(
    destination: &dyn Store,
    receive: Receiver<Option<DumpBatch>>,
    total: u64,
    source_stopped: &Cell<bool>,
    progress: &mut dyn FnMut(CopyProgress),
) -> Result<(), StoreError> {
    let mut rows = 0u64;
    let result = destination.restore(&mut || match receive.recv() {
        Ok(Some(batch)) => {
            rows += batch.len() as u64;
            progress(CopyProgress { stage: batch.table(), rows, total: total.max(rows) });
            Ok(Some(batch))
        }
        Ok(None) => {
            progress(CopyProgress { stage: "finishing", rows, total: total.max(rows) });
            Ok(None)
        }
        Err(_) => {
            source_stopped.set(true);
            Err(StoreError::Unavailable("the source dump stopped before its end".into()))
        }
    });
    // Dropping the receiver here (on error) unblocks a dump waiting to send.
    drop(receive);
    result
}
