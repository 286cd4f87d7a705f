//! Coverage: a block is covered when it has at least `target` active ambassadors. An ambassador
//! covers the block they adopted, or else the block they live in.

use std::collections::HashMap;

use serde::Serialize;

/// Counts for one block, as they go into [`compute`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BlockCounts {
    /// Residents whose home is in the block.
    pub residents: u64,
    /// Active ambassadors covering the block.
    pub ambassadors: u64,
}

/// One row of the per-block report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BlockCoverage {
    /// Block id.
    pub block_id: String,
    /// Residents living in the block.
    pub residents: u64,
    /// Active ambassadors covering it.
    pub ambassadors: u64,
    /// `ambassadors >= target`.
    pub covered: bool,
}

/// Headline numbers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CoverageSummary {
    /// Blocks in the catchment.
    pub blocks: u64,
    /// Blocks with at least `target` active ambassadors.
    pub covered_blocks: u64,
    /// `100 * covered_blocks / blocks`, rounded to two decimals (0 for an empty catchment).
    pub coverage_pct: f64,
    /// Ambassadors needed for a block to count as covered.
    pub target: u32,
    /// Residents living in the catchment.
    pub residents: u64,
    /// Active ambassadors covering a block of the catchment.
    pub ambassadors: u64,
    /// Residents whose block is not covered.
    pub residents_in_uncovered_blocks: u64,
    /// People (residents and ambassadors) whose location is in no block. Kept, never dropped.
    pub people_outside: u64,
}

/// Summary plus one row per block, in block id order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CoverageReport {
    /// Headline numbers.
    pub summary: CoverageSummary,
    /// Per-block rows.
    pub blocks: Vec<BlockCoverage>,
}

/// Compute coverage for `block_ids` (any order; the report is sorted) from per-block counts.
/// Counts for ids that are not blocks of the catchment are ignored.
pub fn compute<'a>(
    block_ids: impl IntoIterator<Item = &'a str>,
    counts: &HashMap<String, BlockCounts>,
    people_outside: u64,
    target: u32,
) -> CoverageReport {
    let mut ids: Vec<&str> = block_ids.into_iter().collect();
    ids.sort_unstable();
    let target_n = u64::from(target.max(1));
    let mut summary = CoverageSummary {
        blocks: ids.len() as u64,
        covered_blocks: 0,
        coverage_pct: 0.0,
        target: target.max(1),
        residents: 0,
        ambassadors: 0,
        residents_in_uncovered_blocks: 0,
        people_outside,
    };
    let blocks = ids
        .into_iter()
        .map(|id| {
            let c = counts.get(id).copied().unwrap_or_default();
            let covered = c.ambassadors >= target_n;
            summary.residents += c.residents;
            summary.ambassadors += c.ambassadors;
            if covered {
                summary.covered_blocks += 1;
            } else {
                summary.residents_in_uncovered_blocks += c.residents;
            }
            BlockCoverage { block_id: id.to_string(), residents: c.residents, ambassadors: c.ambassadors, covered }
        })
        .collect();
    summary.coverage_pct = percent(summary.covered_blocks, summary.blocks);
    CoverageReport { summary, blocks }
}

/// `100 * covered / blocks`, rounded to two decimals; 0 when there are no blocks. Shared by the
/// summary, roll-ups and history so the same counts always print the same percentage.
pub fn percent(covered: u64, blocks: u64) -> f64 {
    if blocks == 0 { 0.0 } else { (10_000.0 * covered as f64 / blocks as f64).round() / 100.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(rows: &[(&str, u64, u64)]) -> HashMap<String, BlockCounts> {
        rows.iter()
            .map(|&(id, residents, ambassadors)| (id.to_string(), BlockCounts { residents, ambassadors }))
            .collect()
    }

    #[test]
    fn covered_when_target_reached() {
        let c = counts(&[("b1", 10, 1), ("b2", 5, 0), ("b3", 7, 2), ("elsewhere", 99, 9)]);
        let r = compute(["b3", "b1", "b2"], &c, 4, 1);
        assert_eq!(r.summary.blocks, 3);
        assert_eq!(r.summary.covered_blocks, 2);
        assert_eq!(r.summary.coverage_pct, 66.67);
        assert_eq!(r.summary.residents, 22);
        assert_eq!(r.summary.ambassadors, 3);
        assert_eq!(r.summary.residents_in_uncovered_blocks, 5);
        assert_eq!(r.summary.people_outside, 4);
        assert_eq!(r.blocks.iter().map(|b| b.block_id.as_str()).collect::<Vec<_>>(), ["b1", "b2", "b3"]);

        let r2 = compute(["b3", "b1", "b2"], &c, 0, 2);
        assert_eq!(r2.summary.covered_blocks, 1);
        assert_eq!(r2.summary.residents_in_uncovered_blocks, 15);
    }

    #[test]
    fn empty_catchment_is_zero_percent() {
        let r = compute(std::iter::empty(), &HashMap::new(), 3, 1);
        assert_eq!(r.summary.coverage_pct, 0.0);
        assert_eq!(r.summary.people_outside, 3);
    }
}
