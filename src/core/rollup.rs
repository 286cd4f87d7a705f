//! Coverage rolled up to groups of blocks: census tracts (the first 11 characters of a 15-digit
//! block GEOID) or the areas of an imported layer. Every block of the catchment is in exactly one
//! row, so the rows add up to the catchment totals; blocks in no group share one row whose
//! `group` is `None` (JSON `null`), listed last.

use std::collections::BTreeMap;

use serde::Serialize;

use super::coverage::{BlockCoverage, percent};

/// Coverage of one group of blocks.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct RollupRow {
    /// Tract or area id; `null` for the blocks in no tract or area.
    #[schema(nullable)]
    pub group: Option<String>,
    /// Area name, when the layer has one (`null` for tracts and the `null` group).
    #[schema(nullable)]
    pub name: Option<String>,
    /// Blocks of the catchment in the group.
    pub blocks: u64,
    /// Of those, blocks with at least `target` active ambassadors.
    pub covered_blocks: u64,
    /// `100 * covered_blocks / blocks`, two decimals.
    pub coverage_pct: f64,
    /// Residents living in the group's blocks.
    pub residents: u64,
    /// Residents whose block is not covered.
    pub residents_in_uncovered_blocks: u64,
    /// Active ambassadors covering the group's blocks.
    pub ambassadors: u64,
}

impl RollupRow {
    /// Column names of the CSV and table forms, in field order.
    pub const COLUMNS: &[&str] = &[
        "group",
        "name",
        "blocks",
        "covered_blocks",
        "coverage_pct",
        "residents",
        "residents_in_uncovered_blocks",
        "ambassadors",
    ];
}

/// The census tract of a block: the first 11 characters of a 15-digit GEOID (state, county,
/// tract). Other ids have no tract.
pub fn tract_of(block_id: &str) -> Option<&str> {
    (block_id.len() == 15 && block_id.bytes().all(|b| b.is_ascii_digit())).then(|| &block_id[..11])
}

#[derive(Default)]
struct Sums {
    blocks: u64,
    covered: u64,
    residents: u64,
    uncovered_residents: u64,
    ambassadors: u64,
}

impl Sums {
    fn add(&mut self, b: &BlockCoverage) {
        self.blocks += 1;
        self.residents += b.residents;
        self.ambassadors += b.ambassadors;
        if b.covered {
            self.covered += 1;
        } else {
            self.uncovered_residents += b.residents;
        }
    }

    fn row(self, group: Option<String>, name: Option<String>) -> RollupRow {
        RollupRow {
            group,
            name,
            blocks: self.blocks,
            covered_blocks: self.covered,
            coverage_pct: percent(self.covered, self.blocks),
            residents: self.residents,
            residents_in_uncovered_blocks: self.uncovered_residents,
            ambassadors: self.ambassadors,
        }
    }
}

/// Roll per-block coverage up by `group_of(block_id)` (`(group, name)`, or `None` for no group).
/// Rows come sorted by group (byte-wise), the `None` group last; groups without blocks have no
/// row.
pub fn rollup<'a, 'g>(
    blocks: impl IntoIterator<Item = &'a BlockCoverage>,
    mut group_of: impl FnMut(&'a str) -> Option<(&'g str, Option<&'g str>)>,
) -> Vec<RollupRow> {
    let mut groups: BTreeMap<&'g str, (Option<&'g str>, Sums)> = BTreeMap::new();
    let mut none = Sums::default();
    for b in blocks {
        match group_of(&b.block_id) {
            Some((g, name)) => groups.entry(g).or_insert_with(|| (name, Sums::default())).1.add(b),
            None => none.add(b),
        }
    }
    let mut rows: Vec<RollupRow> =
        groups.into_iter().map(|(g, (name, s))| s.row(Some(g.to_string()), name.map(str::to_string))).collect();
    if none.blocks > 0 {
        rows.push(none.row(None, None));
    }
    rows
}

/// Roll up by census tract ([`tract_of`]).
pub fn by_tract<'a>(blocks: impl IntoIterator<Item = &'a BlockCoverage>) -> Vec<RollupRow> {
    rollup(blocks, |id| tract_of(id).map(|t| (t, None)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(id: &str, residents: u64, ambassadors: u64) -> BlockCoverage {
        BlockCoverage { block_id: id.into(), residents, ambassadors, covered: ambassadors >= 1 }
    }

    #[test]
    fn tracts_add_up_to_the_catchment() {
        let blocks = vec![
            b("060372091021000", 10, 1),
            b("060372091021001", 5, 0),
            b("060372091031000", 7, 2),
            b("custom-block", 3, 0),
        ];
        let rows = by_tract(&blocks);
        type Row<'a> = (Option<&'a str>, u64, u64, f64, u64, u64, u64);
        let summary: Vec<Row<'_>> = rows
            .iter()
            .map(|r| {
                (
                    r.group.as_deref(),
                    r.blocks,
                    r.covered_blocks,
                    r.coverage_pct,
                    r.residents,
                    r.residents_in_uncovered_blocks,
                    r.ambassadors,
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                (Some("06037209102"), 2, 1, 50.0, 15, 5, 1),
                (Some("06037209103"), 1, 1, 100.0, 7, 0, 2),
                (None, 1, 0, 0.0, 3, 3, 0),
            ]
        );
        assert_eq!(rows.iter().map(|r| r.blocks).sum::<u64>(), 4);
        assert_eq!(rows.iter().map(|r| r.residents).sum::<u64>(), 25);
        assert!(by_tract(&[]).is_empty());
        assert_eq!(tract_of("06037209102100"), None);
        assert_eq!(tract_of("06037209102100A"), None);
    }
}
