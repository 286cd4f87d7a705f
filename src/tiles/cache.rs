//! Encoded tiles kept in memory across data snapshots, forgotten by area: a write calls
//! [`TileCache::invalidate`] with the unit envelopes of the features it changed and only the tiles
//! whose buffered extent meets them are dropped; an import calls [`TileCache::clear`]. Every other
//! tile keeps its bytes and its ETag, so clients revalidating it get a 304.
//!
//! **No stale tile is cached.** [`TileCache::get_or_render`] notes the cache's generation before
//! it calls `render`, and keeps the result only if no [`invalidate`](TileCache::invalidate) or
//! [`clear`](TileCache::clear) since then touches the tile. This holds when writers publish the
//! new data *before* they invalidate, and `render` loads the data it cuts from (snapshot, live
//! values) itself, after `get_or_render` was called: a render that read old data then started
//! before the invalidation, and is not kept.

use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use bytes::Bytes;
use rstar::primitives::Rectangle;
use rstar::{AABB, RTree};
use sha2::{Digest, Sha256};

use super::{TileId, Transform};

/// One encoded tile.
#[derive(Debug)]
pub struct CachedTile {
    /// The protobuf bytes; empty when no feature is visible in the tile.
    pub bytes: Bytes,
    /// A strong validator of the bytes (quoted, as sent in `ETag`).
    pub etag: String,
    gzip: OnceLock<Bytes>,
}

impl CachedTile {
    /// The tile of `bytes`, with their digest as its ETag.
    pub fn new(bytes: Vec<u8>) -> CachedTile {
        let digest = Sha256::digest(&bytes);
        let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
        CachedTile { bytes: bytes.into(), etag: format!("\"{hex}\""), gzip: OnceLock::new() }
    }

    /// Whether no feature is visible in the tile.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The bytes gzip-compressed (computed once, on first use).
    pub fn gzip(&self) -> Bytes {
        self.gzip
            .get_or_init(|| {
                let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                // Writing to a Vec cannot fail.
                let _ = enc.write_all(&self.bytes);
                enc.finish().unwrap_or_default().into()
            })
            .clone()
    }
}

/// A cache key: the comma-joined layer list and the tile.
type Key = (Box<str>, TileId);

/// A render in flight: the generation it started at and the tile once cut.
type Flight = (u64, Arc<OnceLock<Arc<CachedTile>>>);

/// Bytes counted per tile on top of its encoding (key, slot, map entry), so empty tiles count too.
const OVERHEAD: usize = 64;
/// What a tile of `len` bytes counts against the budget: itself, its gzip copy (made on demand;
/// MVT compresses to about half) and [`OVERHEAD`].
fn charged(len: usize) -> usize {
    len + len / 2 + OVERHEAD
}

/// Invalidations remembered for renders in flight; a render that started before the oldest one
/// remembered is not kept (renders take milliseconds, so this is ample).
const LOG_ENTRIES: usize = 64;
/// Envelopes remembered over all those invalidations; a larger invalidation is remembered by its
/// bounding box, which only makes the check more cautious.
const LOG_ENVELOPES: usize = 16_384;
/// From this many envelopes on, an invalidation indexes them in an R-tree instead of testing
/// every cached tile against each.
const TREE_FROM: usize = 16;

/// One cached tile and when it was last used (a tick of [`TileCache::tick`]).
#[derive(Debug)]
struct Slot {
    tile: Arc<CachedTile>,
    size: usize,
    used: AtomicU64,
}

/// Unit-coordinate envelopes that changed.
#[derive(Debug)]
struct Areas {
    list: Vec<[f64; 4]>,
    tree: Option<RTree<Rectangle<[f64; 2]>>>,
}

impl Areas {
    fn new(envelopes: &[[f64; 4]]) -> Areas {
        let list: Vec<[f64; 4]> = envelopes.iter().copied().filter(|e| e[0] <= e[2] && e[1] <= e[3]).collect();
        let tree = (list.len() >= TREE_FROM).then(|| {
            RTree::bulk_load(list.iter().map(|e| Rectangle::from_corners([e[0], e[1]], [e[2], e[3]])).collect())
        });
        Areas { list, tree }
    }

    /// The bounding box of all the envelopes, as a one-envelope set.
    fn bounding(&self) -> Areas {
        let b = self.list.iter().fold([f64::MAX, f64::MAX, f64::MIN, f64::MIN], |b, e| {
            [b[0].min(e[0]), b[1].min(e[1]), b[2].max(e[2]), b[3].max(e[3])]
        });
        Areas::new(&[b])
    }

    /// Whether any envelope meets `[lo, hi]` (boundaries included, as the tile source's R-tree
    /// query includes them).
    fn meet(&self, (lo, hi): ([f64; 2], [f64; 2])) -> bool {
        match &self.tree {
            Some(tree) => tree.locate_in_envelope_intersecting(AABB::from_corners(lo, hi)).next().is_some(),
            None => self.list.iter().any(|e| e[0] <= hi[0] && lo[0] <= e[2] && e[1] <= hi[1] && lo[1] <= e[3]),
        }
    }
}

/// What one invalidation touched.
#[derive(Debug)]
enum Region {
    /// Everything ([`TileCache::clear`]).
    All,
    /// These envelopes.
    Areas(Areas),
}

impl Region {
    fn meets(&self, tile: TileId) -> bool {
        match self {
            Region::All => true,
            Region::Areas(a) => a.meet(Transform::new(tile).buffered_unit_envelope()),
        }
    }

    fn envelopes(&self) -> usize {
        match self {
            Region::All => 0,
            Region::Areas(a) => a.list.len(),
        }
    }
}

#[derive(Debug, Default)]
struct Inner {
    tiles: HashMap<Key, Slot>,
    /// Bytes counted for the tiles held.
    bytes: usize,
    /// Invalidations so far.
    generation: u64,
    /// The latest invalidations, oldest first, each with the generation it made.
    log: VecDeque<(u64, Region)>,
    /// Envelopes in `log`.
    log_envelopes: usize,
    /// The newest generation no longer in `log`.
    forgotten: u64,
}

impl Inner {
    /// Whether no invalidation after generation `since` touches `tile`.
    fn untouched_since(&self, since: u64, tile: TileId) -> bool {
        if since == self.generation {
            return true;
        }
        since >= self.forgotten && self.log.iter().filter(|(g, _)| *g > since).all(|(_, r)| !r.meets(tile))
    }

    fn record(&mut self, region: Region) {
        self.generation += 1;
        if matches!(region, Region::All) {
            // Every render older than this one is refused by it: older entries are moot.
            self.log.clear();
            self.log_envelopes = 0;
            self.forgotten = self.generation - 1;
        }
        self.log_envelopes += region.envelopes();
        self.log.push_back((self.generation, region));
        while self.log.len() > LOG_ENTRIES || self.log_envelopes > LOG_ENVELOPES {
            let Some((g, r)) = self.log.pop_front() else { break };
            self.log_envelopes -= r.envelopes();
            self.forgotten = g;
        }
    }

    /// Drop the least recently used tiles, except `keep`, until at most `target` bytes are held.
    fn evict(&mut self, target: usize, keep: &Key) {
        let mut by_use: Vec<(u64, Key)> = self
            .tiles
            .iter()
            .filter(|(k, _)| *k != keep)
            .map(|(k, s)| (s.used.load(Ordering::Relaxed), k.clone()))
            .collect();
        by_use.sort_unstable_by_key(|(used, _)| *used);
        for (_, key) in by_use {
            if self.bytes <= target {
                break;
            }
            if let Some(slot) = self.tiles.remove(&key) {
                self.bytes -= slot.size;
            }
        }
    }
}

/// Tiles by layer list and tile id, up to a byte budget, kept until a change touches them.
#[derive(Debug)]
pub struct TileCache {
    inner: RwLock<Inner>,
    /// Renders in flight, each with the generation it started at: a request for the same tile
    /// at the same generation waits for that render instead of cutting the tile again (after a
    /// write, every client of the map asks for the same few tiles at once).
    inflight: Mutex<HashMap<Key, Flight>>,
    /// A clock for least-recently-used eviction: bumped on every hit and insert.
    tick: AtomicU64,
    budget: usize,
}

/// The default budget: 32 MiB, over a thousand tiles of a county map (~25 KB each at z14) —
/// what a map session touches. A full 64 MiB cache put a county service over 600 MB of
/// resident memory (3,137 distinct tiles z11–z15: +54 MiB). The budget includes each tile's
/// gzip copy (see [`TileCache::render_and_keep`]).
pub const DEFAULT_BUDGET: usize = 32 * 1024 * 1024;

impl Default for TileCache {
    fn default() -> Self {
        TileCache::new(DEFAULT_BUDGET)
    }
}

impl TileCache {
    /// An empty cache holding up to `budget` bytes of tiles.
    pub fn new(budget: usize) -> TileCache {
        TileCache { inner: RwLock::default(), inflight: Mutex::default(), tick: AtomicU64::new(0), budget }
    }

    fn touch(&self, slot: &Slot) -> Arc<CachedTile> {
        slot.used.store(self.tick.fetch_add(1, Ordering::Relaxed), Ordering::Relaxed);
        slot.tile.clone()
    }

    /// The cached tile, if there is one.
    pub fn get(&self, layers: &str, tile: TileId) -> Option<Arc<CachedTile>> {
        // The key is built only to look up: a borrowed key type would need a custom Borrow.
        let key = (Box::<str>::from(layers), tile);
        self.inner.read().ok().and_then(|m| m.tiles.get(&key).map(|s| self.touch(s)))
    }

    /// The cached tile, or `render` it and keep it unless an invalidation since this call
    /// touches the tile (see the module docs: `render` must load the data it cuts from itself).
    /// The fresh tile is returned either way. Concurrent requests for the same missing tile with
    /// no invalidation in between share one render (single flight); a request that comes after
    /// an invalidation starts its own, so it never gets a tile cut before a write it has seen.
    pub fn get_or_render(&self, layers: &str, tile: TileId, render: impl FnOnce() -> Vec<u8>) -> Arc<CachedTile> {
        let key = (Box::<str>::from(layers), tile);
        let since = match self.inner.read() {
            Ok(m) => match m.tiles.get(&key) {
                Some(hit) => return self.touch(hit),
                None => m.generation,
            },
            Err(_) => return Arc::new(CachedTile::new(render())),
        };
        let (cell, mine) = {
            let mut flights = self.inflight.lock().unwrap_or_else(|e| e.into_inner());
            match flights.get(&key) {
                Some((started, cell)) if *started == since => (cell.clone(), false),
                _ => {
                    let cell = Arc::new(OnceLock::new());
                    flights.insert(key.clone(), (since, cell.clone()));
                    (cell, true)
                }
            }
        };
        let fresh = cell.get_or_init(|| self.render_and_keep(&key, tile, since, render)).clone();
        if mine {
            let mut flights = self.inflight.lock().unwrap_or_else(|e| e.into_inner());
            if flights.get(&key).is_some_and(|(_, c)| Arc::ptr_eq(c, &cell)) {
                flights.remove(&key);
            }
        }
        fresh
    }

    /// Cut a tile and keep it unless an invalidation since generation `since` touches it.
    fn render_and_keep(
        &self,
        key: &Key,
        tile: TileId,
        since: u64,
        render: impl FnOnce() -> Vec<u8>,
    ) -> Arc<CachedTile> {
        let key = key.clone();
        let fresh = Arc::new(CachedTile::new(render()));
        let size = charged(fresh.bytes.len());
        let Ok(mut m) = self.inner.write() else { return fresh };
        if !m.untouched_since(since, tile) || size > self.budget {
            return fresh;
        }
        if let Some(existing) = m.tiles.get(&key) {
            return self.touch(existing);
        }
        let used = AtomicU64::new(self.tick.fetch_add(1, Ordering::Relaxed));
        m.tiles.insert(key.clone(), Slot { tile: fresh.clone(), size, used });
        m.bytes += size;
        if m.bytes > self.budget {
            // Down to three quarters, so that eviction (a sort of the keys) is not paid on every
            // insert once the cache is full.
            m.evict(self.budget / 4 * 3, &key);
        }
        fresh
    }

    /// Forget every tile, at every zoom and for every layer list, whose buffered extent (the
    /// tile and its clip buffer) meets one of `unit_envelopes` (`[min x, min y, max x, max y]` in
    /// unit coordinates, see [`SourceLayer::envelope`](super::SourceLayer::envelope)). Renders in
    /// flight that such a tile is cut by are not kept. Costs one pass over the cached tiles, with
    /// an R-tree of the envelopes when there are many.
    pub fn invalidate(&self, unit_envelopes: &[[f64; 4]]) {
        let areas = Areas::new(unit_envelopes);
        if areas.list.is_empty() {
            return;
        }
        let Ok(mut m) = self.inner.write() else { return };
        let m = &mut *m;
        let mut freed = 0;
        m.tiles.retain(|(_, tile), slot| {
            let hit = areas.meet(Transform::new(*tile).buffered_unit_envelope());
            if hit {
                freed += slot.size;
            }
            !hit
        });
        m.bytes -= freed;
        let areas = if areas.list.len() > LOG_ENVELOPES { areas.bounding() } else { areas };
        m.record(Region::Areas(areas));
    }

    /// Forget every tile (an import changed everything); renders in flight are not kept.
    pub fn clear(&self) {
        let Ok(mut m) = self.inner.write() else { return };
        m.tiles.clear();
        m.bytes = 0;
        m.record(Region::All);
    }

    /// Tiles held.
    pub fn len(&self) -> usize {
        self.inner.read().map(|m| m.tiles.len()).unwrap_or(0)
    }

    /// Whether no tile is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_once() {
        let cache = TileCache::new(1000);
        let t = TileId { z: 1, x: 0, y: 0 };
        let mut calls = 0;
        let a = cache.get_or_render("blocks", t, || {
            calls += 1;
            vec![1; 100]
        });
        let b = cache.get_or_render("blocks", t, || {
            calls += 1;
            vec![2; 100]
        });
        assert_eq!(calls, 1);
        assert_eq!(a.etag, b.etag);
        assert_eq!(b.bytes[0], 1);
        assert!(cache.get_or_render("resources", t, Vec::new).is_empty());
        assert_eq!(cache.len(), 2);
    }

    /// Issue 12/14: after a write, every client asks for the same tiles at once; they share one
    /// render, and a request after an invalidation does not join a render from before it.
    #[test]
    fn concurrent_requests_for_a_missing_tile_share_one_render() {
        use std::sync::atomic::AtomicUsize;
        let cache = TileCache::default();
        let t = TileId { z: 14, x: 2808, y: 6542 };
        let renders = AtomicUsize::new(0);
        let render = || {
            renders.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(std::time::Duration::from_millis(200));
            vec![1, 2, 3]
        };
        std::thread::scope(|scope| {
            for _ in 0..8 {
                scope.spawn(|| assert_eq!(cache.get_or_render("blocks", t, render).bytes.as_ref(), [1, 2, 3]));
            }
        });
        assert_eq!(renders.load(Ordering::SeqCst), 1);
        // An invalidation while a render is in flight: a request after it renders anew.
        cache.clear();
        std::thread::scope(|scope| {
            scope.spawn(|| cache.get_or_render("blocks", t, render));
            std::thread::sleep(std::time::Duration::from_millis(50));
            cache.clear();
            assert_eq!(cache.get_or_render("blocks", t, || vec![9]).bytes.as_ref(), [9]);
        });
        assert_eq!(renders.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn past_the_budget_the_least_recently_used_go_first() {
        // Ten tiles of 100 counted bytes each fill the budget exactly.
        assert_eq!(charged(24), 100);
        let cache = TileCache::new(1000);
        let tile = |x| TileId { z: 4, x, y: 0 };
        for x in 0..10 {
            cache.get_or_render("blocks", tile(x), || vec![0; 24]);
        }
        assert_eq!(cache.len(), 10);
        assert!(cache.get("blocks", tile(0)).is_some());
        cache.get_or_render("blocks", tile(10), || vec![0; 24]);
        // Down to 750 bytes: the four least recently used go (tile 0 was just read).
        let held: Vec<u32> = (0..11).filter(|x| cache.get("blocks", tile(*x)).is_some()).collect();
        assert_eq!(held, [0, 5, 6, 7, 8, 9, 10]);
        // A tile bigger than the whole budget is served but not kept.
        assert_eq!(cache.get_or_render("blocks", tile(11), || vec![0; 1000]).bytes.len(), 1000);
        assert!(cache.get("blocks", tile(11)).is_none());
    }

    /// The buffered extent of a tile in unit coordinates, from the definition rather than from
    /// `Transform`: `[x - b, x + 1 + b] / 2^z` with `b` the buffer as a fraction of the tile.
    fn buffered(t: TileId) -> [f64; 4] {
        let n = (1u64 << t.z) as f64;
        let b = f64::from(crate::tiles::BUFFER) / f64::from(crate::tiles::EXTENT);
        let (x, y) = (f64::from(t.x), f64::from(t.y));
        [(x - b) / n, (y - b) / n, (x + 1.0 + b) / n, (y + 1.0 + b) / n]
    }

    fn meets(a: [f64; 4], b: [f64; 4]) -> bool {
        a[0] <= b[2] && b[0] <= a[2] && a[1] <= b[3] && b[1] <= a[3]
    }

    /// A block inside z14 tile 2808/6542, 1% of a tile from its east edge: within the buffer of
    /// the east neighbour, not of the others.
    fn block() -> [f64; 4] {
        let n = 16384.0;
        [(2808.0 + 0.98) / n, (6542.0 + 0.40) / n, (2808.0 + 0.99) / n, (6542.0 + 0.45) / n]
    }

    /// Tiles around the block at zooms 10 to 18, and two far away.
    fn pyramid() -> Vec<TileId> {
        let mut tiles = Vec::new();
        for z in [10u8, 12, 14, 16, 18] {
            let shift = 14i64 - i64::from(z);
            let (cx, cy) = if shift >= 0 { (2808 >> shift, 6542 >> shift) } else { (2808 << -shift, 6542 << -shift) };
            // At deep zooms the block spans several tiles: cover it and a ring around it.
            let span = if shift >= 0 { 2 } else { (1 << -shift) + 2 };
            for x in cx - 2..=cx + span {
                for y in cy - 2..=cy + span {
                    tiles.push(TileId { z, x, y });
                }
            }
        }
        tiles.push(TileId { z: 0, x: 0, y: 0 });
        tiles.push(TileId { z: 14, x: 100, y: 100 });
        tiles
    }

    #[test]
    fn invalidating_a_block_forgets_exactly_the_tiles_that_meet_it() {
        let cache = TileCache::default();
        let tiles = pyramid();
        let lists = ["blocks", "blocks,resources"];
        let mut before = HashMap::new();
        for list in lists {
            for &t in &tiles {
                let cached = cache.get_or_render(list, t, || format!("{list} {t}").into_bytes());
                before.insert((list, t), cached);
            }
        }
        cache.invalidate(&[block()]);

        let mut dropped = 0;
        for list in lists {
            for &t in &tiles {
                let expected_gone = meets(buffered(t), block());
                match cache.get(list, t) {
                    Some(kept) => {
                        assert!(!expected_gone, "{list} {t} meets the block but was kept");
                        assert!(Arc::ptr_eq(&kept, &before[&(list, t)]));
                        assert_eq!(kept.etag, before[&(list, t)].etag);
                    }
                    None => {
                        assert!(expected_gone, "{list} {t} does not meet the block but was dropped");
                        dropped += 1;
                    }
                }
            }
        }
        assert_eq!(cache.len(), lists.len() * tiles.len() - dropped);
        // Spot checks of the rule: the block's own tiles, and the east neighbour through its buffer.
        let gone = |z, x, y| {
            let t = TileId { z, x, y };
            assert!(tiles.contains(&t), "{t} was never cached");
            cache.get("blocks", t).is_none()
        };
        assert!(gone(0, 0, 0) && gone(10, 175, 408) && gone(14, 2808, 6542));
        assert!(gone(14, 2809, 6542), "the east neighbour draws the block in its buffer");
        assert!(!gone(14, 2810, 6542) && !gone(14, 2808, 6541) && !gone(14, 2807, 6542));
        assert!(gone(16, 11235, 26169) && !gone(16, 11236, 26169));
        assert!(!gone(14, 100, 100));
        // Many envelopes take the R-tree path and agree with the plain one.
        let far: Vec<[f64; 4]> = (0..40).map(|i| [0.9, f64::from(i) / 100.0, 0.9, f64::from(i) / 100.0]).collect();
        let held = cache.len();
        cache.invalidate(&far);
        assert_eq!(cache.len(), held);
        cache.invalidate(&[far.as_slice(), &[[0.0, 0.0, 1.0, 1.0]]].concat());
        assert!(cache.is_empty());
    }

    #[test]
    fn a_render_overtaken_by_an_invalidation_of_its_tile_is_not_kept() {
        let cache = TileCache::default();
        let t = TileId { z: 14, x: 2808, y: 6542 };
        let stale = cache.get_or_render("blocks", t, || {
            cache.invalidate(&[block()]);
            b"old".to_vec()
        });
        assert_eq!(&stale.bytes[..], b"old", "the caller still gets its tile");
        assert!(cache.get("blocks", t).is_none());
        // An invalidation elsewhere does not stop the render from being kept.
        let far = TileId { z: 14, x: 100, y: 100 };
        cache.get_or_render("blocks", far, || {
            cache.invalidate(&[block()]);
            b"far".to_vec()
        });
        assert!(cache.get("blocks", far).is_some());
        // Neither does one that happened before the render started.
        cache.get_or_render("blocks", t, || b"new".to_vec());
        assert_eq!(&cache.get("blocks", t).unwrap().bytes[..], b"new");
        // A clear stops every render in flight.
        let other = TileId { z: 3, x: 7, y: 7 };
        cache.get_or_render("blocks", other, || {
            cache.clear();
            b"x".to_vec()
        });
        assert!(cache.is_empty());
        // A render older than every invalidation remembered is not kept either.
        cache.get_or_render("blocks", far, || {
            for _ in 0..=LOG_ENTRIES {
                cache.invalidate(&[[0.0, 0.0, 0.0, 0.0]]);
            }
            b"far".to_vec()
        });
        assert!(cache.get("blocks", far).is_none());
        cache.get_or_render("blocks", far, || b"far".to_vec());
        assert!(cache.get("blocks", far).is_some());
    }

    #[test]
    fn gzip_round_trips() {
        use std::io::Read;
        let tile = CachedTile::new(b"tile bytes tile bytes".to_vec());
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&tile.gzip()[..]).read_to_end(&mut out).unwrap();
        assert_eq!(out, b"tile bytes tile bytes");
    }
}
