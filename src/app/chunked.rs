//! A vector shared between snapshots (of the live layers, of the recruiting data) in
//! fixed-size chunks: cloning it copies one pointer per
//! chunk, and changing an element copies only its chunk. A write at county scale (110,000
//! blocks) then costs a few hundred pointer copies plus the chunks it touches, never the
//! whole table.

use std::sync::Arc;

/// Elements per chunk: small enough that copying one is cheap, large enough that the table of
/// chunks stays short (108 chunks for 110,000 blocks).
const CHUNK: usize = 1024;

/// A copy-on-write vector of `T` in chunks of 1,024.
#[derive(Debug)]
pub struct Chunked<T> {
    chunks: Vec<Arc<Vec<T>>>,
    len: usize,
}

impl<T> Clone for Chunked<T> {
    fn clone(&self) -> Self {
        Chunked { chunks: self.chunks.clone(), len: self.len }
    }
}

impl<T> Default for Chunked<T> {
    fn default() -> Self {
        Chunked { chunks: Vec::new(), len: 0 }
    }
}

impl<T: Clone> Chunked<T> {
    /// The elements of `items`, in chunks.
    pub fn new(items: Vec<T>) -> Chunked<T> {
        items.into_iter().collect()
    }

    /// Element `i` to change, copying its chunk first if another snapshot shares it.
    pub fn get_mut(&mut self, i: usize) -> Option<&mut T> {
        if i >= self.len {
            return None;
        }
        Arc::make_mut(&mut self.chunks[i / CHUNK]).get_mut(i % CHUNK)
    }

    /// Append an element (copying the last chunk if it is shared).
    pub fn push(&mut self, item: T) {
        match self.chunks.last_mut() {
            Some(last) if last.len() < CHUNK => Arc::make_mut(last).push(item),
            _ => {
                let mut chunk = Vec::with_capacity(CHUNK);
                chunk.push(item);
                self.chunks.push(Arc::new(chunk));
            }
        }
        self.len += 1;
    }

    /// Whether element `i` is shared with `other` (tests: what an update copied).
    #[cfg(test)]
    pub fn shares_chunk(&self, other: &Chunked<T>, i: usize) -> bool {
        match (self.chunks.get(i / CHUNK), other.chunks.get(i / CHUNK)) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }

    /// Replace element `i` (which must exist), copying its chunk if another snapshot shares it.
    pub fn set(&mut self, i: usize, value: T) {
        assert!(i < self.len, "index {i} out of bounds ({})", self.len);
        Arc::make_mut(&mut self.chunks[i / CHUNK])[i % CHUNK] = value;
    }
}

impl<T> Chunked<T> {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Element `i`, if there is one.
    pub fn get(&self, i: usize) -> Option<&T> {
        (i < self.len).then(|| &self.chunks[i / CHUNK][i % CHUNK])
    }

    /// Every element in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &T> + '_ {
        ChunkedIter { chunks: &self.chunks, chunk: 0, at: 0, left: self.len }
    }
}

struct ChunkedIter<'a, T> {
    chunks: &'a [Arc<Vec<T>>],
    chunk: usize,
    at: usize,
    left: usize,
}

impl<'a, T> Iterator for ChunkedIter<'a, T> {
    type Item = &'a T;
    fn next(&mut self) -> Option<&'a T> {
        loop {
            let c = self.chunks.get(self.chunk)?;
            if let Some(v) = c.get(self.at) {
                self.at += 1;
                self.left -= 1;
                return Some(v);
            }
            self.chunk += 1;
            self.at = 0;
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl<T> ExactSizeIterator for ChunkedIter<'_, T> {}

impl<T> std::ops::Index<usize> for Chunked<T> {
    type Output = T;
    fn index(&self, i: usize) -> &T {
        assert!(i < self.len, "index {i} out of bounds ({})", self.len);
        &self.chunks[i / CHUNK][i % CHUNK]
    }
}

impl<T> FromIterator<T> for Chunked<T> {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        let mut chunks = Vec::new();
        let mut current = Vec::with_capacity(CHUNK);
        let mut len = 0;
        for v in iter {
            current.push(v);
            len += 1;
            if current.len() == CHUNK {
                chunks.push(Arc::new(std::mem::replace(&mut current, Vec::with_capacity(CHUNK))));
            }
        }
        if !current.is_empty() {
            chunks.push(Arc::new(current));
        }
        Chunked { chunks, len }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_copies_only_its_chunk() {
        let a: Chunked<u32> = (0..3000).collect();
        let mut b = a.clone();
        b.set(2500, 7);
        assert_eq!((a[2500], b[2500], b.len()), (2500, 7, 3000));
        assert!(Arc::ptr_eq(&a.chunks[0], &b.chunks[0]) && !Arc::ptr_eq(&a.chunks[2], &b.chunks[2]));
        assert_eq!(b.iter().copied().filter(|&v| v == 7).count(), 2);
        assert_eq!(b.iter().len(), 3000);
        assert_eq!(a.get(3000), None);
        assert!(Chunked::<u8>::default().is_empty());
    }
}
