//! Resource access for partners and coalitions: the nearest resources to a place
//! (`GET /resources/nearest`), blocks far from a category (`/access/gaps`, `belong access
//! gaps`) and access rolled up by tract or area (`/access/rollup`, `belong access rollup`).
//!
//! Everything is derived from a live snapshot ([`Layers`]): the resources collection gives the
//! sites, the blocks collection the blocks' interior points, the live coverage the residents.
//! What depends only on blocks and resources (the finder's indexes, the distances and the pairs
//! within the catchment radius, see [`crate::core::reach`]) is cached until an import rebuilds
//! those collections; what depends on people (2SFCA scores, demand) is recomputed from the
//! cached pairs per request, in time proportional to the pairs.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use serde_json::{Map, Value};

use super::layers::{BLOCKS, Collection, CollectionKey, Layers, RESOURCES, metres, score};
use crate::core::reach::{AccessTable, Finder, Radii};

/// Largest `limit` of a nearest-resources query.
pub const MAX_NEAREST: usize = 100;
/// Default `limit` of a nearest-resources query.
pub const DEFAULT_NEAREST: usize = 10;

/// Why an access question cannot be answered (a bad parameter).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AccessError {
    /// A parameter is malformed or out of range.
    #[error("{0}")]
    Invalid(String),
    /// No block has this id.
    #[error("no block '{0}' in the catchment")]
    UnknownBlock(String),
    /// No resource has this category.
    #[error("no resources of category '{category}'; categories: {}", if .available.is_empty() { "none imported yet (belong import resources)".to_string() } else { .available.join(", ") })]
    UnknownCategory {
        /// Asked for.
        category: String,
        /// What there is.
        available: Vec<String>,
    },
}

/// Access tables for radii other than the defaults (whose table the snapshot holds: see
/// [`Layers::access_base`]). One per service; cheap to share.
#[derive(Debug, Default)]
pub struct AccessCache {
    /// The most recently asked other radii, per blocks and resources.
    tables: Mutex<Vec<CachedTable>>,
    /// The last block attribute used as demand, read from every block once per import.
    attribute: Mutex<Option<CachedAttribute>>,
}

/// A block attribute's values (blocks collection order) with the build and name they are of.
type CachedAttribute = (CollectionKey, String, Arc<Vec<f64>>);

/// An access table with what it was measured on.
#[derive(Debug)]
struct CachedTable {
    blocks: CollectionKey,
    resources: CollectionKey,
    radii: Radii,
    table: Arc<AccessTable>,
}

/// Tables kept for different radii.
const TABLES_KEPT: usize = 2;

impl AccessCache {
    /// The access table of the snapshot's blocks for `radii` (block `i` is the blocks
    /// collection's feature `i`).
    pub fn table(&self, layers: &Layers, radii: Radii) -> Arc<AccessTable> {
        if radii == Radii::default() {
            return layers.access_base().table.clone();
        }
        let finder = layers.finder();
        let (Some(blocks), Some(resources)) = (layers.collection(BLOCKS), layers.collection(RESOURCES)) else {
            return Arc::new(AccessTable::new(finder, &[], radii));
        };
        {
            let tables = self.tables.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(t) =
                tables.iter().find(|t| t.blocks.matches(blocks) && t.resources.matches(resources) && t.radii == radii)
            {
                return t.table.clone();
            }
        }
        // Built outside the lock: readers of other radii are not held up.
        let points: Vec<Option<(f64, f64)>> = blocks.features.iter().map(|f| f.point).collect();
        let table = Arc::new(AccessTable::new(finder, &points, radii));
        let mut tables = self.tables.lock().unwrap_or_else(|e| e.into_inner());
        tables.retain(|t| t.blocks.matches(blocks) && t.resources.matches(resources));
        tables.insert(0, CachedTable { blocks: blocks.key(), resources: resources.key(), radii, table: table.clone() });
        tables.truncate(TABLES_KEPT);
        table
    }

    /// Every block's value of the numeric attribute `name` (blocks collection order; missing,
    /// non-numeric or negative values count 0).
    fn attribute(&self, blocks: &Collection, name: &str) -> Arc<Vec<f64>> {
        let mut slot = self.attribute.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((key, n, values)) = slot.as_ref()
            && n == name
            && key.matches(blocks)
        {
            return values.clone();
        }
        let values: Arc<Vec<f64>> = Arc::new(
            blocks
                .features
                .iter()
                .map(|f| f.properties().get(name).and_then(number).filter(|x| *x > 0.0).unwrap_or(0.0))
                .collect(),
        );
        *slot = Some((blocks.key(), name.to_string(), values.clone()));
        values
    }
}

/// Where a nearest-resources query starts.
#[derive(Debug, Clone, PartialEq)]
pub enum Origin {
    /// A WGS84 point.
    Point {
        /// Longitude.
        lon: f64,
        /// Latitude.
        lat: f64,
    },
    /// A block's interior point.
    Block(String),
}

/// A nearest-resources query.
#[derive(Debug, Clone, PartialEq)]
pub struct NearestQuery {
    /// From where.
    pub origin: Origin,
    /// Only these categories (all when empty).
    pub categories: Vec<String>,
    /// At most this many.
    pub limit: usize,
    /// Only within this many metres.
    pub within_m: Option<f64>,
}

/// The start point of a nearest-resources answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResolvedOrigin {
    /// Longitude.
    pub lon: f64,
    /// Latitude.
    pub lat: f64,
    /// The block asked for, or the block the point lies in (null outside the catchment).
    pub block_id: Option<String>,
}

/// The answer: resources nearest first, as GeoJSON features with `distance_m`.
#[derive(Debug, Clone, PartialEq)]
pub struct NearestAnswer {
    /// Where distances were measured from.
    pub origin: ResolvedOrigin,
    /// Nearest first.
    pub found: Vec<FoundResource>,
    /// Every category with its number of resources (whole layer).
    pub categories: Vec<(String, usize)>,
}

/// One resource of a [`NearestAnswer`]: a feature of the resources collection.
#[derive(Debug, Clone, PartialEq)]
pub struct FoundResource {
    /// Resource id.
    pub id: String,
    /// WGS84 lon, lat (as in the collection's GeoJSON).
    pub lon_lat: [f64; 2],
    /// Properties as in `/collections/resources/items`.
    pub properties: Map<String, Value>,
    /// Geodesic metres from the origin.
    pub distance_m: f64,
}

/// Answer a nearest-resources query on `layers`; `locate` finds the block a point lies in.
pub fn nearest(
    layers: &Layers,
    q: &NearestQuery,
    locate: impl Fn(f64, f64) -> Option<String>,
) -> Result<NearestAnswer, AccessError> {
    if !(1..=MAX_NEAREST).contains(&q.limit) {
        return Err(AccessError::Invalid(format!("limit={}: expected an integer from 1 to {MAX_NEAREST}", q.limit)));
    }
    if let Some(r) = q.within_m
        && !(r.is_finite() && r >= 0.0)
    {
        return Err(AccessError::Invalid(format!("within_m={r}: expected metres, at least 0")));
    }
    let finder = layers.finder().clone();
    for c in &q.categories {
        if !finder.has_category(c) {
            return Err(AccessError::UnknownCategory { category: c.clone(), available: category_names(&finder) });
        }
    }
    let origin = match &q.origin {
        Origin::Point { lon, lat } => {
            if !(lon.is_finite() && (-180.0..=180.0).contains(lon)) {
                return Err(AccessError::Invalid(format!("lon={lon}: expected degrees from -180 to 180 (WGS84)")));
            }
            if !(lat.is_finite() && (-90.0..=90.0).contains(lat)) {
                return Err(AccessError::Invalid(format!("lat={lat}: expected degrees from -90 to 90 (WGS84)")));
            }
            ResolvedOrigin { lon: *lon, lat: *lat, block_id: locate(*lon, *lat) }
        }
        Origin::Block(id) => {
            let point = layers.collection(BLOCKS).and_then(|b| b.feature(id)).and_then(|f| f.point);
            let Some((lon, lat)) = point else {
                return Err(AccessError::UnknownBlock(crate::core::text::clip(id, 200)));
            };
            ResolvedOrigin { lon, lat, block_id: Some(id.clone()) }
        }
    };
    let categories: Vec<&str> = q.categories.iter().map(String::as_str).collect();
    let resources = layers.collection(RESOURCES);
    let found = finder
        .nearest(origin.lon, origin.lat, &categories, q.limit, q.within_m)
        .into_iter()
        .filter_map(|f| {
            let feature = resources?.features.get(f.site)?;
            let (lon, lat) = feature.point?;
            Some(FoundResource {
                id: feature.id.clone(),
                lon_lat: [lon, lat],
                properties: feature.properties(),
                distance_m: f.distance_m,
            })
        })
        .collect();
    Ok(NearestAnswer {
        origin,
        found,
        categories: finder.categories().into_iter().map(|(c, n)| (c.to_string(), n)).collect(),
    })
}

fn category_names(finder: &Finder) -> Vec<String> {
    finder.categories().into_iter().map(|(c, _)| c.to_string()).collect()
}

/// Demand per block for 2SFCA: where it comes from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Demand {
    /// Residents registered in the block (live).
    #[default]
    Residents,
    /// A numeric attribute of the blocks (e.g. a census population column); missing or
    /// non-numeric values count 0.
    Attribute(String),
}

/// The questions of `/access/gaps` and `/access/rollup`.
#[derive(Debug, Clone, PartialEq)]
pub struct AccessQuery {
    /// The category.
    pub category: String,
    /// Radii of the analysis.
    pub radii: Radii,
    /// Demand for the 2SFCA score.
    pub demand: Demand,
}

/// Everything a caller needs to read the access of one category on one snapshot.
struct Prepared {
    finder: Arc<Finder>,
    table: Arc<AccessTable>,
    category: usize,
    residents: Vec<u64>,
    scores: Vec<f64>,
}

fn prepare(cache: &AccessCache, layers: &Layers, q: &AccessQuery) -> Result<Prepared, AccessError> {
    let table = cache.table(layers, q.radii);
    let finder = layers.finder().clone();
    let Some(category) = table.category(&q.category) else {
        return Err(AccessError::UnknownCategory { category: q.category.clone(), available: category_names(&finder) });
    };
    let residents: Vec<u64> = layers.coverage.blocks.iter().map(|b| b.residents).collect();
    let demand: Arc<Vec<f64>> = match &q.demand {
        Demand::Residents => Arc::new(residents.iter().map(|&r| r as f64).collect()),
        Demand::Attribute(name) => match layers.collection(BLOCKS) {
            Some(blocks) if blocks.property(name).is_none() => {
                return Err(AccessError::Invalid(format!(
                    "demand={}: the blocks have no such attribute",
                    crate::core::text::clip(name, 200)
                )));
            }
            Some(blocks) => cache.attribute(blocks, name),
            None => Arc::default(),
        },
    };
    let supply: Vec<f64> = finder.sites().iter().map(|s| s.supply).collect();
    let scores = table.scores(category, &demand, &supply);
    Ok(Prepared { finder, table, category, residents, scores })
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// One block far from a category, as `/access/gaps` lists it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct GapRow {
    /// 1 for the block with the most residents far from the category.
    pub rank: usize,
    /// Block id.
    pub block_id: String,
    /// Block name.
    pub name: Option<String>,
    /// Residents registered in the block.
    pub residents: u64,
    /// Geodesic metres from the block's interior point to the nearest resource of the
    /// category (null when there is none).
    pub nearest_m: Option<f64>,
    /// Id of that resource.
    pub nearest_id: Option<String>,
    /// Its name.
    pub nearest_name: Option<String>,
    /// Resources of the category within the walking radius.
    pub within_walk: u32,
    /// The block's 2SFCA score (supply per 1,000 demand within the catchment radius).
    pub access_score: f64,
    /// Why the block is listed, in words.
    pub why: String,
}

impl GapRow {
    /// CSV column order.
    pub const COLUMNS: &'static [&'static str] = &[
        "rank",
        "block_id",
        "name",
        "residents",
        "nearest_m",
        "nearest_id",
        "nearest_name",
        "within_walk",
        "access_score",
        "why",
    ];
}

fn distance_words(m: f64) -> String {
    if m >= 1000.0 { format!("{:.1} km", m / 1000.0) } else { format!("{m:.0} m") }
}

/// Blocks with residents whose nearest resource of the category is at least `min_distance_m`
/// away (default: the walking radius), most residents first (then farthest, then id).
pub fn gaps(
    cache: &AccessCache,
    layers: &Layers,
    q: &AccessQuery,
    min_distance_m: Option<f64>,
    limit: usize,
) -> Result<Vec<GapRow>, AccessError> {
    let min = min_distance_m.unwrap_or(q.radii.walk_m);
    if !(min.is_finite() && min >= 0.0) {
        return Err(AccessError::Invalid(format!("min_distance_m={min}: expected metres, at least 0")));
    }
    let p = prepare(cache, layers, q)?;
    let mut far: Vec<(usize, Option<(usize, f64)>)> = (0..p.table.blocks())
        .filter(|&i| p.residents.get(i).copied().unwrap_or(0) > 0)
        .map(|i| (i, p.table.reach(p.category, i).nearest))
        .filter(|(_, n)| n.is_none_or(|(_, d)| d >= min))
        .collect();
    let dist = |n: &Option<(usize, f64)>| n.map_or(f64::INFINITY, |(_, d)| d);
    far.sort_by(|a, b| {
        p.residents[b.0].cmp(&p.residents[a.0]).then(dist(&b.1).total_cmp(&dist(&a.1))).then(a.0.cmp(&b.0))
    });
    far.truncate(limit);
    let blocks = layers.collection(BLOCKS);
    let resources = layers.collection(RESOURCES);
    let label = q.category.replace('_', " ");
    Ok(far
        .into_iter()
        .enumerate()
        .map(|(rank, (i, nearest))| {
            let feature = blocks.and_then(|b| b.features.get(i));
            let name = feature.and_then(|f| f.properties().get("name").and_then(Value::as_str).map(str::to_string));
            let site = nearest.and_then(|(s, _)| resources.and_then(|r| r.features.get(s)));
            let residents = p.residents[i];
            let within = p.table.reach(p.category, i).within_walk;
            let walk = distance_words(q.radii.walk_m);
            let why = match nearest {
                Some((_, d)) => format!(
                    "{residents} resident{}; the nearest {label} is {} away; {within} within {walk}",
                    if residents == 1 { "" } else { "s" },
                    distance_words(d)
                ),
                None => format!("{residents} resident{}; no {label} at all", if residents == 1 { "" } else { "s" }),
            };
            GapRow {
                rank: rank + 1,
                block_id: feature.map(|f| f.id.clone()).unwrap_or_default(),
                name,
                residents,
                nearest_m: nearest.map(|(_, d)| metres(d)),
                nearest_id: site.map(|f| f.id.clone()),
                nearest_name: site.and_then(|f| f.properties().get("name").and_then(Value::as_str).map(str::to_string)),
                within_walk: within,
                access_score: score(p.scores[i]),
                why,
            }
        })
        .collect())
}

/// Access to one category for a tract or an area, as `/access/rollup` lists it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct AccessRollupRow {
    /// Tract or area id; null for the blocks in none.
    pub group: Option<String>,
    /// Area name, when the layer has one.
    pub name: Option<String>,
    /// Blocks in the group.
    pub blocks: u64,
    /// Residents in them.
    pub residents: u64,
    /// Residents-weighted mean distance to the nearest resource of the category (metres; null
    /// without residents or without any resource).
    pub mean_distance_m: Option<f64>,
    /// Residents with no resource of the category within the walking radius.
    pub residents_beyond_walk: u64,
    /// Resources of the category lying in the group's blocks.
    pub resources: u64,
    /// Residents-weighted mean 2SFCA score (null without residents).
    pub access_score: Option<f64>,
}

impl AccessRollupRow {
    /// CSV column order.
    pub const COLUMNS: &'static [&'static str] = &[
        "group",
        "name",
        "blocks",
        "residents",
        "mean_distance_m",
        "residents_beyond_walk",
        "resources",
        "access_score",
    ];
}

/// Access to the category rolled up by `group_of` (block id → group id and name), sorted by
/// group with the blocks in no group last; the rows add up to the catchment's residents.
pub fn rollup(
    cache: &AccessCache,
    layers: &Layers,
    q: &AccessQuery,
    group_of: impl Fn(&str) -> Option<(String, Option<String>)>,
) -> Result<Vec<AccessRollupRow>, AccessError> {
    let p = prepare(cache, layers, q)?;
    #[derive(Default)]
    struct Sum {
        name: Option<String>,
        blocks: u64,
        residents: u64,
        distance: f64,
        measured: u64,
        beyond: u64,
        resources: u64,
        score: f64,
    }
    let mut groups: BTreeMap<Option<String>, Sum> = BTreeMap::new();
    let mut block_group: std::collections::HashMap<&str, Option<String>> = std::collections::HashMap::new();
    let Some(blocks) = layers.collection(BLOCKS) else { return Ok(Vec::new()) };
    for (i, f) in blocks.features.iter().enumerate() {
        let (group, name) = match group_of(&f.id) {
            Some((g, n)) => (Some(g), n),
            None => (None, None),
        };
        block_group.insert(f.id.as_str(), group.clone());
        let s = groups.entry(group).or_default();
        if s.name.is_none() {
            s.name = name;
        }
        let r = p.residents.get(i).copied().unwrap_or(0);
        let reach = p.table.reach(p.category, i);
        s.blocks += 1;
        s.residents += r;
        if let Some((_, d)) = reach.nearest {
            s.distance += d * r as f64;
            s.measured += r;
        }
        if reach.within_walk == 0 {
            s.beyond += r;
        }
        s.score += p.scores[i] * r as f64;
    }
    let category = &p.table.categories()[p.category];
    if let Some(resources) = layers.collection(RESOURCES) {
        for (f, site) in resources.features.iter().zip(p.finder.sites()) {
            if &site.category != category {
                continue;
            }
            let block = f.properties().get("block_id").and_then(Value::as_str).map(str::to_string);
            if let Some(group) = block.and_then(|b| block_group.get(b.as_str()).cloned())
                && let Some(s) = groups.get_mut(&group)
            {
                s.resources += 1;
            }
        }
    }
    let mut rows: Vec<AccessRollupRow> = groups
        .into_iter()
        .map(|(group, s)| AccessRollupRow {
            group,
            name: s.name,
            blocks: s.blocks,
            residents: s.residents,
            mean_distance_m: (s.measured > 0).then(|| metres(s.distance / s.measured as f64)),
            residents_beyond_walk: s.beyond,
            resources: s.resources,
            access_score: (s.residents > 0).then(|| score(s.score / s.residents as f64)),
        })
        .collect();
    // `None` sorts first in a BTreeMap: the blocks in no group go last, as in `/coverage/rollup`.
    if rows.first().is_some_and(|r| r.group.is_none()) {
        let none = rows.remove(0);
        rows.push(none);
    }
    Ok(rows)
}
