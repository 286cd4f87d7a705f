//! The live state of the service: what it serves, kept current by following the store's change
//! feed (the history table).
//!
//! Two kinds of state, kept apart:
//! - what changes only with an import — the catchment (blocks, their point index) and the
//!   layers' geometry, JSON and indexes — is built once and shared (`Arc`) by every snapshot;
//! - what people change — per-block residents, ambassadors and coverage, the headline numbers —
//!   is kept by a [`Tally`] and published per write with [`Layers::with_counts`], in time
//!   proportional to the blocks the write touched.
//!
//! Every change reaches the state the same way, whoever made it: [`Live::catch_up`] reads the
//! history rows after its cursor and applies them. A write by this process calls it before
//! answering (read-your-writes); a write by another process on the same database (`belong
//! import` while serving) is found by [`Live::watch`], which polls the feed's head; adoptions
//! lapse on the clock ([`Live::tick`]). Readers never wait: they load the published snapshot
//! (`arc-swap`), while one writer at a time advances it.

mod feed;
mod recruit;
pub mod tally;

pub use feed::{DbState, FeedStatus};

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use arc_swap::ArcSwap;
use chrono::{DateTime, Utc};

use self::recruit::{Changes, Recruiting};
use self::tally::{PersonFacts, PersonKeys, Tally, parse_ms};
use super::layers::{BLOCKS, LayerInputs, Layers};
use super::recruit::RecruitData;
use super::{AppError, Catchment};
use crate::core::coverage::{BlockCounts, CoverageSummary, percent};
use crate::store::Store;
use crate::tiles::{CachedTile, TileCache, TileId};

/// History rows read per query while catching up: bounded memory for a million-row import.
const BATCH: usize = 50_000;

/// The served state and the means to advance it. Share it with `Arc`.
pub struct Live {
    store: Arc<dyn Store>,
    target: u32,
    layers: ArcSwap<Layers>,
    catchment: ArcSwap<Catchment>,
    engine: Mutex<Engine>,
    /// The recruiting data, carried forward by every publication once built.
    recruiting: Recruiting,
    /// Encoded tiles, kept across snapshots: a write forgets only the tiles over the blocks it
    /// changed, an import forgets them all.
    tiles: TileCache,
    /// Whether the database answered the watcher's last look at the feed.
    feed: FeedStatus,
    /// The tally's person keys, for other tallies of the same people (the history replay).
    person_keys: PersonKeys,
}

/// What only the writer of the live state touches.
struct Engine {
    tally: Tally,
    /// The last history `seq` applied.
    cursor: i64,
    /// Block key (of the tally) → position in the served catchment; `u32::MAX`: not in it.
    positions: Vec<u32>,
}

/// What a batch of history rows changed besides counts.
#[derive(Debug, Default, Clone, Copy)]
struct Touched {
    /// Blocks were imported: catchment, index and every layer are rebuilt.
    blocks: bool,
    /// Resources or indicators were imported: the layers are rebuilt (the catchment is kept).
    layers: bool,
    /// Rows applied.
    rows: usize,
}

impl Live {
    /// Read the store and build the first state. CPU- and I/O-heavy: run it off the async
    /// workers.
    pub fn open(store: Arc<dyn Store>, target: u32) -> Result<Live, AppError> {
        let (engine, catchment, layers) = Self::load(&*store, target)?;
        let person_keys = engine.tally.person_keys();
        let live = Live {
            person_keys,
            store,
            target,
            layers: ArcSwap::from_pointee(layers),
            catchment: ArcSwap::new(catchment),
            engine: Mutex::new(engine),
            tiles: TileCache::default(),
            feed: FeedStatus::default(),
            recruiting: Recruiting::default(),
        };
        // Anything committed while the first state was built is applied now.
        live.catch_up()?;
        Ok(live)
    }

    /// How the live tally numbers people: a history replay given them keeps no second copy of
    /// every id ([`crate::app::history::HistoryCache::share_person_keys`]).
    pub fn person_keys(&self) -> PersonKeys {
        self.person_keys.clone()
    }

    /// The store behind the state.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Active ambassadors a block needs.
    pub fn target(&self) -> u32 {
        self.target
    }

    /// The current snapshot of the public layers.
    pub fn layers(&self) -> Arc<Layers> {
        self.layers.load_full()
    }

    /// The current catchment (blocks and point index), to place people without reading the
    /// store.
    pub fn catchment(&self) -> Arc<Catchment> {
        self.catchment.load_full()
    }

    /// The recruiting data of the current snapshot (`/coverage/uncovered`): built from the store
    /// on first use, then kept current by every write. CPU- and I/O-heavy the first time.
    pub fn recruit(&self) -> Result<Arc<RecruitData>, AppError> {
        self.recruiting.data(&*self.store, &|| {
            let (catchment, layers) = (self.catchment(), self.layers());
            Ok(recruit::Inputs { catchment, layers })
        })
    }

    /// The tile cache (see [`Live::tile`]).
    pub fn tile_cache(&self) -> &TileCache {
        &self.tiles
    }

    /// A tile of the named layers (`key` is them comma-joined), from the cache or cut now.
    /// The snapshot is loaded inside the render, after the cache noted its generation: a
    /// write that lands meanwhile invalidates the tile, and the stale cut is not kept.
    pub fn tile(&self, key: &str, tile: TileId) -> Arc<CachedTile> {
        self.tiles.get_or_render(key, tile, || {
            let names: Vec<&str> = key.split(',').collect();
            self.layers().render_tile(&names, tile)
        })
    }

    fn engine(&self) -> MutexGuard<'_, Engine> {
        // A panic mid-update leaves at worst a snapshot behind the store: the next catch_up
        // re-reads from the cursor, which only advances after a publish.
        self.engine.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Load everything from scratch: the catchment, the tally of every person, the layers.
    fn load(store: &dyn Store, target: u32) -> Result<(Engine, Arc<Catchment>, Layers), AppError> {
        loop {
            let started = std::time::Instant::now();
            let version = store.catchment_version()?;
            // Blocks (geometry to decode) and people (a million rows to tally) are read on
            // two connections at once.
            let (blocks, counted) = std::thread::scope(|scope| {
                let blocks = scope.spawn(|| {
                    let mut blocks = store.blocks()?;
                    blocks.sort_by(|a, b| a.id.cmp(&b.id));
                    Ok::<_, AppError>(blocks)
                });
                let counted = tally_from(store, target);
                (blocks.join().unwrap_or_else(|e| std::panic::resume_unwind(e)), counted)
            });
            let (blocks, (mut tally, cursor)) = (blocks?, counted?);
            // A block import between reading the blocks and the people: read both again, so
            // the catchment and the counts describe the same blocks.
            if store.catchment_version()? != version {
                continue;
            }
            tally.advance(Utc::now().timestamp_millis());
            tally.place_adopters();
            tally.track();
            let counted = started.elapsed();
            let indicators = store.indicators()?;
            let resources = store.resources()?;
            let mut engine = Engine { tally, cursor, positions: Vec::new() };
            // The layers (on every core but one) beside the catchment's index and facts.
            let (layers, catchment) = std::thread::scope(|scope| {
                let catchment = scope.spawn(|| Catchment::served(&blocks, version));
                let layers = engine.layers_for(&blocks, &indicators, &resources, target);
                (layers, catchment.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            });
            tracing::info!(
                blocks = blocks.len(),
                counted = ?counted,
                layers_and_index = ?(started.elapsed() - counted),
                "live state loaded"
            );
            drop(blocks);
            return Ok((engine, Arc::new(catchment), layers));
        }
    }

    /// Apply every change committed since the last call and publish the result. Returns whether
    /// anything changed. Cheap when nothing did (one indexed query).
    pub fn catch_up(&self) -> Result<bool, AppError> {
        let mut engine = self.engine();
        let mut touched = Touched::default();
        loop {
            let mut last = engine.cursor;
            let e = &mut *engine;
            let n = self.store.visit_history(e.cursor, BATCH, &mut |row| {
                last = row.seq;
                touched.rows += 1;
                match row.entity {
                    "block" => touched.blocks = true,
                    "resource" => touched.layers = true,
                    "import" if matches!(row.entity_id, "resources" | "indicators") => touched.layers = true,
                    _ => {}
                }
                e.tally.apply_row(row);
            })?;
            e.cursor = last;
            if n < BATCH {
                break;
            }
        }
        let now = Utc::now().timestamp_millis();
        engine.tally.advance(now);
        engine.tally.place_adopters();
        let (dirty, people) = engine.tally.take_dirty();
        if touched.blocks || touched.layers {
            self.rebuild(&mut engine, touched.blocks)?;
            return Ok(true);
        }
        if dirty.is_empty() && touched.rows == 0 {
            return Ok(false);
        }
        self.publish_counts(&engine, &dirty, people);
        Ok(true)
    }

    /// Lapse the adoptions due by `now` and publish what that changed (no store access).
    pub fn tick(&self, now: DateTime<Utc>) -> bool {
        let mut engine = self.engine();
        let due = engine.tally.next_expiry().is_some_and(|t| t <= now.timestamp_millis());
        // The clock moves either way: an adoption written later is judged at this instant.
        engine.tally.advance(now.timestamp_millis());
        if !due {
            return false;
        }
        let (dirty, people) = engine.tally.take_dirty();
        if dirty.is_empty() {
            return false;
        }
        self.publish_counts(&engine, &dirty, people);
        true
    }

    /// Publish a snapshot with the new counts of the tally keys `dirty` (and the people of the
    /// keys `people` changed).
    fn publish_counts(&self, engine: &Engine, dirty: &[u32], people: Vec<u32>) {
        let old = self.layers.load();
        let changed: Vec<(usize, BlockCounts)> = dirty
            .iter()
            .filter_map(|&k| {
                let pos = *engine.positions.get(k as usize)?;
                let b = engine.tally.block(k);
                (pos != u32::MAX)
                    .then_some((pos as usize, BlockCounts { residents: b.residents, ambassadors: b.ambassadors }))
            })
            .collect();
        let now = engine.clock();
        let started = std::time::Instant::now();
        let (layers, touched) = old.with_counts(&changed, engine.summary(self.target), engine.cursor, now);
        tracing::debug!(
            blocks = changed.len(),
            touched = touched.len(),
            micros = started.elapsed().as_micros() as u64,
            "published new counts"
        );
        // Publish first, then forget the tiles over the blocks whose values changed: a tile cut
        // in between is from the new counts already, and one cut before is refused by the cache.
        let envelopes: Vec<[f64; 4]> = match layers.tiles_if_built().and_then(|t| t.layer(BLOCKS)) {
            Some(blocks) => touched.iter().filter_map(|i| blocks.envelope(*i)).collect(),
            None => Vec::new(),
        };
        let rows = changed.iter().filter_map(|(i, _)| layers.coverage.blocks.get(*i).cloned()).collect();
        self.layers.store(Arc::new(layers));
        if !envelopes.is_empty() {
            self.tiles.invalidate(&envelopes);
        }
        // Past the limit the recruiting data is rebuilt anyway: the ids are not even listed.
        let people = (people.len() <= recruit::MAX_INCREMENTAL_PEOPLE)
            .then(|| people.iter().map(|&k| engine.tally.person_id(k)).collect());
        self.recruiting.publish(&*self.store, Changes { rows, people, now });
    }

    /// Re-read what an import changed and publish new layers (and a new catchment).
    fn rebuild(&self, engine: &mut Engine, blocks_changed: bool) -> Result<(), AppError> {
        // Read before the blocks: a later import only makes the version look older, which
        // costs a recomputation of the facts, never wrong facts.
        let version = self.store.catchment_version()?;
        // The layers need the blocks' attributes, which the catchment does not keep: read the
        // blocks again whatever the import was.
        let mut blocks = self.store.blocks()?;
        blocks.sort_by(|a, b| a.id.cmp(&b.id));
        let indicators = self.store.indicators()?;
        let resources = self.store.resources()?;
        let layers = engine.layers_for(&blocks, &indicators, &resources, self.target);
        let catchment =
            if blocks_changed { Arc::new(Catchment::served(&blocks, version)) } else { self.catchment.load_full() };
        self.catchment.store(catchment);
        self.layers.store(Arc::new(layers));
        self.tiles.clear();
        self.recruiting.reset();
        Ok(())
    }
}

/// A tally of every block and person in the store, and the cursor it is current to.
fn tally_from(store: &dyn Store, target: u32) -> Result<(Tally, i64), AppError> {
    // Both callbacks write the one tally; they are never called at the same time. Untracked:
    // what it is seeded with is the starting point, not a change.
    let tally = std::cell::RefCell::new(Tally::new(target, false));
    let cursor = store.coverage_state(&mut |id| tally.borrow_mut().set_live(id, true), &mut |p| {
        let facts = PersonFacts {
            role: p.role,
            active: p.active,
            home: p.home_block,
            adopted: p.adopted_block,
            until: p.adopted_until.and_then(parse_ms),
        };
        tally.borrow_mut().upsert_person(p.id, facts);
    })?;
    Ok((tally.into_inner(), cursor))
}

impl Engine {
    /// The tally's clock as an instant.
    fn clock(&self) -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp_millis(self.tally.clock()).unwrap_or_else(Utc::now)
    }

    /// Headline numbers from the tally.
    fn summary(&self, target: u32) -> CoverageSummary {
        let t = self.tally.totals();
        CoverageSummary {
            blocks: t.blocks,
            covered_blocks: t.covered,
            coverage_pct: percent(t.covered, t.blocks),
            target: target.max(1),
            residents: t.residents,
            ambassadors: t.ambassadors,
            residents_in_uncovered_blocks: t.residents_uncovered,
            people_outside: t.outside,
        }
    }

    /// Layers for `blocks` (id order) with the tally's counts; notes each block's position.
    fn layers_for(
        &mut self,
        blocks: &[crate::core::Block],
        indicators: &[crate::core::IndicatorValue],
        resources: &[crate::core::Resource],
        target: u32,
    ) -> Layers {
        self.positions = vec![u32::MAX; self.tally.block_keys()];
        let mut counts = HashMap::with_capacity(blocks.len());
        for (i, b) in blocks.iter().enumerate() {
            if let Some(k) = self.tally.key_of(&b.id) {
                self.positions[k as usize] = i as u32;
                let t = self.tally.block(k);
                counts.insert(b.id.clone(), BlockCounts { residents: t.residents, ambassadors: t.ambassadors });
            }
        }
        let mut layers = Layers::from_parts(LayerInputs {
            blocks,
            counts: &counts,
            outside: self.tally.totals().outside,
            indicators,
            resources,
            target,
            cursor: self.cursor,
        });
        // The tally's numbers are the ones every later snapshot is derived from.
        layers.coverage.summary = self.summary(target);
        layers.judged_at = self.clock();
        layers
    }
}
