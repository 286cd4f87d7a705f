//! Encoded tiles of one snapshot, kept in memory. The cache belongs to the snapshot: when people,
//! blocks or indicators change a new snapshot is published with an empty cache, so no request
//! can see a tile cut from older data.

use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, RwLock};

use bytes::Bytes;
use sha2::{Digest, Sha256};

use super::TileId;

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
    fn new(bytes: Vec<u8>) -> CachedTile {
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

/// Tiles by layer list and tile id, up to a byte budget.
#[derive(Debug)]
pub struct TileCache {
    tiles: RwLock<HashMap<Key, Arc<CachedTile>>>,
    bytes: AtomicUsize,
    budget: usize,
}

impl Default for TileCache {
    fn default() -> Self {
        TileCache::new(256 * 1024 * 1024)
    }
}

impl TileCache {
    /// An empty cache holding up to `budget` bytes of tiles.
    pub fn new(budget: usize) -> TileCache {
        TileCache { tiles: RwLock::default(), bytes: AtomicUsize::new(0), budget }
    }

    /// The cached tile, if there is one.
    pub fn get(&self, layers: &str, tile: TileId) -> Option<Arc<CachedTile>> {
        // The key is built only to look up: a borrowed key type would need a custom Borrow.
        self.tiles.read().ok().and_then(|m| m.get(&(Box::<str>::from(layers), tile)).cloned())
    }

    /// The cached tile, or `render` it and keep it. Two requests racing for the same missing
    /// tile may both render it; the tiles are identical.
    pub fn get_or_render(&self, layers: &str, tile: TileId, render: impl FnOnce() -> Vec<u8>) -> Arc<CachedTile> {
        let key = (Box::<str>::from(layers), tile);
        if let Some(hit) = self.tiles.read().ok().and_then(|m| m.get(&key).cloned()) {
            return hit;
        }
        let fresh = Arc::new(CachedTile::new(render()));
        let size = fresh.bytes.len() + 64;
        if let Ok(mut map) = self.tiles.write() {
            // Past the budget, start over: simple, and a snapshot rarely lives long enough for
            // the whole pyramid to be requested.
            if self.bytes.load(Ordering::Relaxed) + size > self.budget {
                map.clear();
                self.bytes.store(0, Ordering::Relaxed);
            }
            if let Some(existing) = map.get(&key) {
                return existing.clone();
            }
            map.insert(key, fresh.clone());
            self.bytes.fetch_add(size, Ordering::Relaxed);
        }
        fresh
    }

    /// Tiles held.
    pub fn len(&self) -> usize {
        self.tiles.read().map(|m| m.len()).unwrap_or(0)
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
    fn renders_once_and_keeps_to_the_budget() {
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
        cache.get_or_render("blocks", TileId { z: 1, x: 1, y: 0 }, || vec![3; 900]);
        assert_eq!(cache.len(), 1, "the budget was exceeded, so the cache started over");
        assert!(cache.get_or_render("resources", t, Vec::new).is_empty());
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
