//! The `resource-access` collection: every block with, per resource category, the distance to
//! the nearest resource, the number within the walking radius and the 2SFCA score (see
//! [`crate::core::reach`]), with the default radii and the blocks' residents as demand.
//!
//! Built on first use (a county's table takes about a second), in two parts:
//! - [`AccessBase`], what blocks and resources determine — the finder, the table of distances
//!   and pairs, the pairs reversed — shared by every snapshot until an import;
//! - [`AccessLayer`], what residents change — the demand within reach of every site, the scores
//!   and the served features — carried from snapshot to snapshot by
//!   [`AccessLayer::with_residents`], in time proportional to the blocks within two catchment
//!   radii of the blocks a write changed.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use serde_json::Value;

use super::props::{PropKeys, Props};
use super::{Collection, Feature, GeometryKind, Property, PropertyKind, par_map};
use crate::app::chunked::Chunked;
use crate::core::reach::{AccessTable, Finder, Radii, Site, SitePairs};
use crate::core::resource::CAPACITY;
use crate::tiles::{SourceFeature, SourceLayer};

/// Id of the resource-access collection (and its tile layer).
pub const RESOURCE_ACCESS: &str = "resource-access";

const TITLE: &str = "Resource access";
const DESCRIPTION: &str = "Access to resources per block and category, from the block's interior point: \
     `<category>_nearest_m` (geodesic metres to the nearest resource of the category, null when \
     there is none), `<category>_within_walk` (resources within 800 m) and \
     `<category>_access_score` (2SFCA: capacity per 1,000 residents within 1,600 m; see \
     /access/gaps for other radii).";

/// Suffixes of the per-category properties.
const NEAREST: &str = "_nearest_m";
const WITHIN: &str = "_within_walk";
const SCORE: &str = "_access_score";

/// Metres rounded to a decimetre, for output.
pub(crate) fn metres(m: f64) -> f64 {
    (m * 10.0).round() / 10.0
}

/// A 2SFCA score rounded for output.
pub(crate) fn score(x: f64) -> f64 {
    (x * 1e4).round() / 1e4
}

/// The finder over a resources collection (site `i` is the collection's feature `i`).
pub fn finder_of(resources: Option<&Collection>) -> Finder {
    let Some(resources) = resources else { return Finder::new(Vec::new()) };
    let sites = resources
        .features
        .iter()
        .map(|f| {
            let p = f.properties();
            let (lon, lat) = f.location().unwrap_or((f64::NAN, f64::NAN));
            Site {
                id: f.id.as_str().into(),
                category: p.get("category").and_then(Value::as_str).unwrap_or_default().to_string(),
                lon,
                lat,
                supply: p.get(CAPACITY).and_then(Value::as_f64).unwrap_or(1.0),
            }
        })
        .collect();
    Finder::new(sites)
}

/// Which per-category value a property holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Nearest,
    Within,
    Score,
}

/// What blocks and resources determine, with the default radii.
#[derive(Debug)]
pub struct AccessBase {
    /// The finder over the resources.
    pub finder: Arc<Finder>,
    /// Distances and pairs of every block (blocks collection order) and category.
    pub table: Arc<AccessTable>,
    /// Per category: the blocks within the catchment radius of each site.
    near_sites: Vec<SitePairs>,
    /// Per site: its supply.
    supply: Vec<f64>,
    /// Per block: its name.
    names: Vec<Option<Box<str>>>,
    /// Property name → (category, field).
    fields: HashMap<String, (usize, Field)>,
    /// The served properties' keys: block id, name, residents, then each category's three.
    keys: Arc<PropKeys>,
}

impl AccessBase {
    /// Measure the blocks of `blocks` against the resources of `finder`.
    pub(super) fn build(finder: Arc<Finder>, blocks: Option<&Collection>) -> AccessBase {
        let features: Vec<&Arc<Feature>> = blocks.map(|b| b.features.iter().collect()).unwrap_or_default();
        let points: Vec<Option<(f64, f64)>> = features.iter().map(|f| f.point).collect();
        let table = AccessTable::new(&finder, &points, Radii::default());
        let sites = finder.sites().len();
        let near_sites = (0..table.categories().len()).map(|c| table.blocks_near_sites(c, sites)).collect();
        let names = par_map(&features, |f| {
            f.properties().get("name").and_then(Value::as_str).map(|s| s.to_string().into_boxed_str())
        });
        let mut fields = HashMap::new();
        for (c, name) in table.categories().iter().enumerate() {
            fields.insert(format!("{name}{NEAREST}"), (c, Field::Nearest));
            fields.insert(format!("{name}{WITHIN}"), (c, Field::Within));
            fields.insert(format!("{name}{SCORE}"), (c, Field::Score));
        }
        let mut key_names = vec!["block_id".to_string(), "name".to_string(), "residents".to_string()];
        for c in table.categories() {
            key_names.extend([format!("{c}{NEAREST}"), format!("{c}{WITHIN}"), format!("{c}{SCORE}")]);
        }
        let keys = PropKeys::new(key_names);
        let supply = finder.sites().iter().map(|s| s.supply).collect();
        AccessBase { finder, table: Arc::new(table), near_sites, supply, names, fields, keys }
    }
}

/// What residents change: the served collection and the sums it is computed from.
#[derive(Debug, Clone)]
pub struct AccessLayer {
    /// The `resource-access` collection.
    pub collection: Collection,
    /// Per category, per site: residents within the catchment radius (whole numbers, kept
    /// exact by adding each change).
    site_demand: Vec<Vec<f64>>,
    /// Per category, per block: the 2SFCA score.
    scores: Vec<Chunked<f64>>,
}

impl AccessLayer {
    /// The layer for `residents` (per block, blocks collection order) on the blocks of `blocks`.
    pub(super) fn build(
        base: &AccessBase,
        blocks: Option<&Collection>,
        residents: &(dyn Fn(usize) -> u64 + Sync),
    ) -> AccessLayer {
        let t = &base.table;
        let demand: Vec<f64> = (0..t.blocks()).map(|i| residents(i) as f64).collect();
        let site_demand: Vec<Vec<f64>> =
            (0..t.categories().len()).map(|c| t.site_demand(c, &demand, base.supply.len())).collect();
        let scores: Vec<Chunked<f64>> = site_demand
            .iter()
            .enumerate()
            .map(|(c, sd)| (0..t.blocks()).map(|i| t.score(c, i, sd, &base.supply)).collect())
            .collect();
        let block_features: Vec<&Arc<Feature>> = blocks.map(|b| b.features.iter().collect()).unwrap_or_default();
        let positions: Vec<usize> = (0..block_features.len()).collect();
        let features = par_map(&positions, |&i| {
            let f = block_features[i];
            Arc::new(f.with_props(props(base, &scores, &f.id, i, residents(i))))
        });
        let mut schema = vec![
            Property { name: "block_id".into(), kind: PropertyKind::String },
            Property { name: "name".into(), kind: PropertyKind::String },
            Property { name: "residents".into(), kind: PropertyKind::Integer },
        ];
        for c in t.categories() {
            schema.push(Property { name: format!("{c}{NEAREST}"), kind: PropertyKind::Number });
            schema.push(Property { name: format!("{c}{WITHIN}"), kind: PropertyKind::Integer });
            schema.push(Property { name: format!("{c}{SCORE}"), kind: PropertyKind::Number });
        }
        let collection = Collection::with_schema(
            RESOURCE_ACCESS,
            TITLE,
            DESCRIPTION,
            GeometryKind::MultiPolygon,
            features,
            schema,
            &[],
            blocks,
        );
        AccessLayer { collection, site_demand, scores }
    }

    /// The layer after the residents of some blocks changed by `deltas` (block position,
    /// change); `residents` gives every block's new count. Returns the positions of the blocks
    /// whose served values changed (their tiles are stale): residents, or a score as rounded.
    pub(super) fn with_residents(
        &self,
        base: &AccessBase,
        deltas: &[(usize, i64)],
        residents: &dyn Fn(usize) -> u64,
    ) -> (AccessLayer, Vec<usize>) {
        let t = &base.table;
        let mut next = self.clone();
        let mut affected: BTreeSet<usize> = deltas.iter().filter(|(_, d)| *d != 0).map(|(i, _)| *i).collect();
        for c in 0..t.categories().len() {
            let mut sites: Vec<u32> = Vec::new();
            for &(b, delta) in deltas {
                if delta == 0 {
                    continue;
                }
                for &j in t.pairs(c, b) {
                    next.site_demand[c][j as usize] += delta as f64;
                    sites.push(j);
                }
            }
            sites.sort_unstable();
            sites.dedup();
            let mut near: Vec<u32> =
                sites.iter().flat_map(|&j| base.near_sites[c].blocks(j as usize)).copied().collect();
            near.sort_unstable();
            near.dedup();
            for i in near {
                let i = i as usize;
                let s = t.score(c, i, &next.site_demand[c], &base.supply);
                let Some(&old) = next.scores[c].get(i) else { continue };
                if old.to_bits() != s.to_bits() {
                    next.scores[c].set(i, s);
                    // Far from the change the score moves below the served rounding: the
                    // block's JSON and tiles stay as they are.
                    if score(old).to_bits() != score(s).to_bits() {
                        affected.insert(i);
                    }
                }
            }
        }
        for &i in &affected {
            if let Some(old) = next.collection.features.get(i).cloned() {
                let props = props(base, &next.scores, &old.id, i, residents(i));
                next.collection.features.set(i, Arc::new(old.with_props(props)));
            }
        }
        if !affected.is_empty() {
            // Equality indexes were built from the old values.
            next.collection.forget_indexes();
        }
        (next, affected.into_iter().collect())
    }

    /// A live value of the tile layer (see [`tile_layer`]).
    pub(super) fn value(&self, base: &AccessBase, block: usize, property: &str, residents: u64) -> Option<Value> {
        match property {
            "name" => base.names.get(block)?.as_deref().map(Value::from),
            "residents" => Some(residents.into()),
            _ => {
                let &(c, field) = base.fields.get(property)?;
                Some(field_value(base, &self.scores, c, field, block))
            }
        }
    }
}

fn field_value(base: &AccessBase, scores: &[Chunked<f64>], c: usize, field: Field, block: usize) -> Value {
    let reach = base.table.reach(c, block);
    match field {
        Field::Nearest => reach.nearest.map_or(Value::Null, |(_, d)| crate::export::json_number(metres(d))),
        Field::Within => reach.within_walk.into(),
        Field::Score => crate::export::json_number(score(scores[c].get(block).copied().unwrap_or(0.0))),
    }
}

/// The served properties of block `i`, their values written directly: a write re-serialises
/// every block within two catchment radii (hundreds to thousands at county density), so no map
/// of values is built per block. (Writing [`field_value`]'s `Value`s instead measured 5.1 ms
/// per county write against 4.2 ms: the rounding is shared, the formatting kept here.) The
/// keys are the base's, shared by every block.
fn props(base: &AccessBase, scores: &[Chunked<f64>], id: &str, i: usize, residents: u64) -> Props {
    use std::fmt::Write;
    let t = &base.table;
    let mut out = String::with_capacity(48 + 24 * t.categories().len());
    let string = |out: &mut String, s: &str| {
        // Serializing a string cannot fail.
        out.push_str(&serde_json::to_string(s).unwrap_or_default());
    };
    let number = |out: &mut String, x: f64| match serde_json::Number::from_f64(x) {
        Some(n) => {
            let _ = write!(out, "{n}");
        }
        None => out.push_str("null"),
    };
    string(&mut out, id);
    out.push(',');
    match base.names.get(i).and_then(|n| n.as_deref()) {
        Some(name) => string(&mut out, name),
        None => out.push_str("null"),
    }
    let _ = write!(out, ",{residents}");
    for (c, score_of) in scores.iter().enumerate().take(t.categories().len()) {
        let reach = t.reach(c, i);
        out.push(',');
        match reach.nearest {
            Some((_, d)) => number(&mut out, metres(d)),
            None => out.push_str("null"),
        }
        let _ = write!(out, ",{},", reach.within_walk);
        number(&mut out, score(score_of.get(i).copied().unwrap_or(0.0)));
    }
    Props::from_values(base.keys.clone(), out)
}

/// The tile layer: the blocks' tile geometry (shared with the blocks layer), the block id, and
/// every other property live ([`AccessLayer::value`]), so the table is measured only when a
/// tile of this layer is cut.
pub(super) fn tile_layer(blocks: &SourceLayer, ids: &Collection, finder: &Finder) -> SourceLayer {
    let features = (0..blocks.len())
        .filter_map(|i| {
            Some(SourceFeature {
                geometry: blocks.geometry(i)?.clone(),
                properties: vec![("block_id".into(), ids.features.get(i)?.id.clone().into())],
            })
        })
        .collect();
    let mut live: Vec<(String, &'static str)> = vec![("name".into(), "String"), ("residents".into(), "Number")];
    for (c, _) in finder.categories() {
        for suffix in [NEAREST, WITHIN, SCORE] {
            live.push((format!("{c}{suffix}"), "Number"));
        }
    }
    let live: Vec<(&str, &'static str)> = live.iter().map(|(n, t)| (n.as_str(), *t)).collect();
    SourceLayer::with_live(RESOURCE_ACCESS, DESCRIPTION, features, &live)
}
