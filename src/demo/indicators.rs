//! A synthetic school-readiness indicator: the percentage of children ready for kindergarten,
//! spatially smooth-ish (a north-west/south-east gradient plus smooth value noise on a 4,000 ft
//! lattice plus a little per-block noise). About 10% of blocks have no value ("no data"), among
//! them every block without children.

use rand::Rng;

use super::catchment::{Catchment, rng, stream};

/// The indicator's name in `indicators.csv`.
pub(super) const SCHOOL_READINESS: &str = "school_readiness";
/// The date every value refers to.
pub(super) const DATE: &str = "2025-06-01";

const LATTICE_FT: f64 = 4000.0;

/// One row of `indicators.csv`.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct IndicatorRow {
    /// Index into the catchment's blocks.
    pub block: usize,
    /// Percent, rounded to one decimal.
    pub value: f64,
}

pub(super) fn school_readiness(c: &Catchment, seed: u64) -> Vec<IndicatorRow> {
    let mut rng = rng(seed, stream::INDICATORS);
    let (u0, u1, v0, v1) = c.local_extent();
    let (width, height) = ((u1 - u0).max(1.0), (v1 - v0).max(1.0));
    let gw = (width / LATTICE_FT).ceil() as usize + 2;
    let gh = (height / LATTICE_FT).ceil() as usize + 2;
    let nodes: Vec<f64> = (0..gw * gh).map(|_| rng.random_range(-10.0..10.0)).collect();
    let smooth = |x: f64, y: f64| {
        let (gx, gy) = ((x / LATTICE_FT).clamp(0.0, (gw - 2) as f64), (y / LATTICE_FT).clamp(0.0, (gh - 2) as f64));
        let (ix, iy) = (gx.floor() as usize, gy.floor() as usize);
        let (fx, fy) = (gx - ix as f64, gy - iy as f64);
        // Smoothstep weights: no visible lattice creases.
        let (sx, sy) = (fx * fx * (3.0 - 2.0 * fx), fy * fy * (3.0 - 2.0 * fy));
        let at = |i: usize, j: usize| nodes[j * gw + i];
        let bottom = at(ix, iy) * (1.0 - sx) + at(ix + 1, iy) * sx;
        let top = at(ix, iy + 1) * (1.0 - sx) + at(ix + 1, iy + 1) * sx;
        bottom * (1.0 - sy) + top * sy
    };

    let n = c.blocks.len();
    let without_children = c.blocks.iter().filter(|b| b.children == 0).count();
    let others = n - without_children;
    let extra_gaps = (n / 10).saturating_sub(without_children);
    let p_gap = if others > 0 { extra_gaps as f64 / others as f64 } else { 0.0 };

    let mut rows = Vec::with_capacity(n);
    for (b, block) in c.blocks.iter().enumerate() {
        let gap: f64 = rng.random();
        let noise = (rng.random::<f64>() + rng.random::<f64>() - 1.0) * 5.0;
        if block.children == 0 || gap < p_gap {
            continue;
        }
        let (x, y) = (block.local.x - u0, block.local.y - v0);
        let (nx, ny) = (x / width * 2.0 - 1.0, y / height * 2.0 - 1.0);
        let value = (58.0 + 10.0 * (0.8 * ny - 0.6 * nx) + smooth(x, y) + noise).clamp(3.0, 98.0);
        rows.push(IndicatorRow { block: b, value: (value * 10.0).round() / 10.0 });
    }
    rows
}
