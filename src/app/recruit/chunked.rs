//! A vector shared between versions of [`super::RecruitData`]: stored in chunks behind `Arc`s,
//! so that a new version copies only the chunks its changes touch and readers of the old one
//! keep theirs (per-block state at county scale is megabytes; a write changes a few entries).

use std::sync::Arc;

/// Entries per chunk: copying one to change it costs microseconds.
const CHUNK: usize = 256;

/// A copy-on-write vector in chunks; `clone` shares every chunk.
#[derive(Debug, Clone)]
pub(super) struct Chunked<T> {
    chunks: Vec<Arc<Vec<T>>>,
    len: usize,
}

impl<T> Default for Chunked<T> {
    fn default() -> Self {
        Chunked { chunks: Vec::new(), len: 0 }
    }
}

impl<T: Clone> Chunked<T> {
    pub(super) fn new(items: Vec<T>) -> Chunked<T> {
        let len = items.len();
        let mut chunks = Vec::with_capacity(len.div_ceil(CHUNK));
        let mut items = items.into_iter();
        loop {
            let chunk: Vec<T> = items.by_ref().take(CHUNK).collect();
            if chunk.is_empty() {
                break;
            }
            chunks.push(Arc::new(chunk));
        }
        Chunked { chunks, len }
    }

    pub(super) fn len(&self) -> usize {
        self.len
    }

    pub(super) fn get(&self, i: usize) -> Option<&T> {
        self.chunks.get(i / CHUNK)?.get(i % CHUNK)
    }

    /// Entry `i` to change, copying its chunk first if another version shares it.
    pub(super) fn get_mut(&mut self, i: usize) -> Option<&mut T> {
        Arc::make_mut(self.chunks.get_mut(i / CHUNK)?).get_mut(i % CHUNK)
    }

    pub(super) fn push(&mut self, item: T) {
        match self.chunks.last_mut() {
            Some(last) if last.len() < CHUNK => Arc::make_mut(last).push(item),
            _ => self.chunks.push(Arc::new(vec![item])),
        }
        self.len += 1;
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = &T> {
        self.chunks.iter().flat_map(|c| c.iter())
    }

    /// Whether entry `i` is shared with `other` (tests: what an update copied).
    #[cfg(test)]
    pub(super) fn shares_chunk(&self, other: &Chunked<T>, i: usize) -> bool {
        match (self.chunks.get(i / CHUNK), other.chunks.get(i / CHUNK)) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_copies_one_chunk_and_leaves_the_original() {
        let old = Chunked::new((0..1000).collect::<Vec<u32>>());
        let mut new = old.clone();
        *new.get_mut(700).unwrap() = 7;
        new.push(1000);
        assert_eq!((old.get(700), new.get(700)), (Some(&700), Some(&7)));
        assert_eq!((old.len(), new.len(), new.get(1000)), (1000, 1001, Some(&1000)));
        assert!(new.shares_chunk(&old, 0) && !new.shares_chunk(&old, 700));
        assert_eq!(new.iter().copied().filter(|&v| v == 7).count(), 2);
        assert!(Chunked::<u8>::new(Vec::new()).get(0).is_none());
    }
}
