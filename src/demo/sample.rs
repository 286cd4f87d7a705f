//! Random points inside a block, and weighted block picks, in EPSG:2229 feet. Only the chosen
//! block's rings are tested, so placing a million people stays linear.

use geo::{Coord, MultiPolygon};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::catchment::DemoBlock;

/// A uniformly random point of `block` at least `margin` feet from its boundary (rejection
/// sampling in the bounding box); the block's known inside point if that keeps failing.
pub(super) fn point_in_block(block: &DemoBlock, margin: f64, rng: &mut ChaCha8Rng) -> Coord<f64> {
    let (min, max) = (block.bbox.min(), block.bbox.max());
    if max.x > min.x && max.y > min.y {
        for _ in 0..500 {
            let p = Coord { x: rng.random_range(min.x..max.x), y: rng.random_range(min.y..max.y) };
            if contains(&block.geometry, p) && clearance(&block.geometry, p) >= margin {
                return p;
            }
        }
    }
    block.inside
}

/// Even-odd point in (multi)polygon; the parts of a block never overlap, so all rings of all
/// parts can be counted together.
pub(super) fn contains(mp: &MultiPolygon<f64>, p: Coord<f64>) -> bool {
    let mut inside = false;
    for polygon in &mp.0 {
        for ring in std::iter::once(polygon.exterior()).chain(polygon.interiors()) {
            for seg in ring.0.windows(2) {
                let (a, b) = (seg[0], seg[1]);
                if (a.y > p.y) != (b.y > p.y) && p.x < a.x + (p.y - a.y) * (b.x - a.x) / (b.y - a.y) {
                    inside = !inside;
                }
            }
        }
    }
    inside
}

/// Distance from `p` to the nearest edge of any ring.
pub(super) fn clearance(mp: &MultiPolygon<f64>, p: Coord<f64>) -> f64 {
    let mut best = f64::INFINITY;
    for polygon in &mp.0 {
        for ring in std::iter::once(polygon.exterior()).chain(polygon.interiors()) {
            for seg in ring.0.windows(2) {
                best = best.min(segment_distance_sq(p, seg[0], seg[1]));
            }
        }
    }
    best.sqrt()
}

fn segment_distance_sq(p: Coord<f64>, a: Coord<f64>, b: Coord<f64>) -> f64 {
    let (dx, dy) = (b.x - a.x, b.y - a.y);
    let len_sq = dx * dx + dy * dy;
    let t = if len_sq > 0.0 { (((p.x - a.x) * dx + (p.y - a.y) * dy) / len_sq).clamp(0.0, 1.0) } else { 0.0 };
    let (cx, cy) = (a.x + t * dx - p.x, a.y + t * dy - p.y);
    cx * cx + cy * cy
}

/// Picks indices with probability proportional to a weight (cumulative sums + binary search).
pub(super) struct WeightedPick {
    cumulative: Vec<u64>,
}

impl WeightedPick {
    /// `None` when every weight is zero.
    pub fn new(weights: impl IntoIterator<Item = u64>) -> Option<WeightedPick> {
        let mut total = 0u64;
        let cumulative: Vec<u64> = weights
            .into_iter()
            .map(|w| {
                total += w;
                total
            })
            .collect();
        (total > 0).then_some(WeightedPick { cumulative })
    }

    pub fn pick(&self, rng: &mut ChaCha8Rng) -> usize {
        let total = self.cumulative.last().copied().unwrap_or(1);
        let r = rng.random_range(0..total);
        self.cumulative.partition_point(|&c| c <= r)
    }
}

/// Runs `job(0..jobs)` on all cores and returns the results in job order, so the output does
/// not depend on the number of threads.
pub(super) fn in_parallel<T: Send>(jobs: usize, job: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(jobs);
    if threads <= 1 {
        return (0..jobs).map(job).collect();
    }
    let mut slots: Vec<Option<T>> = (0..jobs).map(|_| None).collect();
    std::thread::scope(|scope| {
        let job = &job;
        let workers: Vec<_> = (0..threads)
            .map(|t| scope.spawn(move || (t..jobs).step_by(threads).map(|k| (k, job(k))).collect::<Vec<_>>()))
            .collect();
        for worker in workers {
            match worker.join() {
                Ok(done) => {
                    for (k, out) in done {
                        slots[k] = Some(out);
                    }
                }
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
    });
    slots.into_iter().flatten().collect()
}
