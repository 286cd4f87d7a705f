//! Recruiting: the ranked list of uncovered blocks behind `belong recruit` and
//! `GET /coverage/uncovered` — each block's priority with its components (see
//! [`crate::core::recruit`]), its nearest active ambassadors, its covered neighbours and the
//! opted-in residents living in it, plus the CSV walk list.
//!
//! The work is split by how often its inputs change:
//! - [`CatchmentFacts`]: interior points, adjacency and children per block. Depends on the
//!   blocks only; build it once per catchment (see [`FactsCache`]).
//! - [`RecruitData`]: coverage, ambassadors and candidates at one moment. Build it once, then
//!   follow each write with [`RecruitData::updated`], which shares what did not change.
//! - [`rank`]: scores and the ordering, for one set of options. The nearest ambassadors of the
//!   uncovered blocks (the costly part) do not depend on the options: the first ranking finds
//!   them, the `RecruitData` keeps them for the next, and updates keep them current by looking
//!   only at the blocks near an ambassador who came, went or moved.
//!
//! Distances are from a block's interior point (a point guaranteed inside it, as used for
//! labels) to the ambassador's home, along the WGS84 ellipsoid.

#[cfg(test)]
mod incremental_tests;

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::AppError;
use super::chunked::Chunked;
use crate::core::coverage::BlockCoverage;
use crate::core::recruit::{
    self, Adjacency, AmbassadorIndex, Components, Moves, NearestLists, QueryPoints, ScoreInputs, WeightError, Weights,
};
use crate::core::{Block, CoverageReport, IndicatorValue, Person, Role};
use crate::store::{PeopleFilter, Store};

/// Nearest ambassadors listed per block unless asked otherwise.
pub const DEFAULT_NEAREST: usize = 3;
/// Most nearest ambassadors listed per block.
pub const MAX_NEAREST: usize = 50;
/// Distances beyond this (metres) count as this far in the score, unless asked otherwise.
pub const DEFAULT_DISTANCE_CAP_M: f64 = 2000.0;
/// Largest distance cap accepted (metres).
pub const MAX_DISTANCE_CAP_M: f64 = 1_000_000.0;
/// The need indicator unless asked otherwise (lower readiness, more need).
pub const DEFAULT_INDICATOR: &str = "school_readiness";
/// Distances shown to callers who may not see people are rounded to this many metres, and the
/// score always uses distances rounded to it, so neither reveals where an ambassador lives
/// (exact distances from several blocks would locate their home).
pub const PUBLIC_DISTANCE_STEP_M: f64 = 100.0;

/// Why a ranking could not be made; the message is meant for the user.
#[derive(Debug, thiserror::Error)]
pub enum RecruitError {
    /// A weight is unknown or out of range.
    #[error(transparent)]
    Weight(#[from] WeightError),
    /// The need indicator asked for has no value anywhere.
    #[error("unknown indicator '{name}'; the indicators with data are: {known}")]
    UnknownIndicator {
        /// What was asked for.
        name: String,
        /// What there is, comma-separated (or "none").
        known: String,
    },
    /// An option is out of range.
    #[error("{0}")]
    OutOfRange(String),
}

/// What to rank by and how much to show.
#[derive(Debug, Clone, PartialEq)]
pub struct RankOptions {
    /// Weights of the score's components.
    pub weights: Weights,
    /// Nearest active ambassadors listed per block (1 to [`MAX_NEAREST`]).
    pub nearest: usize,
    /// The need indicator; `None`: [`DEFAULT_INDICATOR`], and no error when it has no data.
    pub indicator: Option<String>,
    /// Distances beyond this (metres) count as this far in the score.
    pub distance_cap_m: f64,
}

impl Default for RankOptions {
    fn default() -> Self {
        RankOptions {
            weights: Weights::default(),
            nearest: DEFAULT_NEAREST,
            indicator: None,
            distance_cap_m: DEFAULT_DISTANCE_CAP_M,
        }
    }
}

impl RankOptions {
    /// Check the ranges (the edges parse; this says what is allowed).
    pub fn check(&self) -> Result<(), RecruitError> {
        if !(1..=MAX_NEAREST).contains(&self.nearest) {
            return Err(RecruitError::OutOfRange(format!(
                "nearest={}: expected an integer from 1 to {MAX_NEAREST}",
                self.nearest
            )));
        }
        if !(self.distance_cap_m.is_finite() && self.distance_cap_m > 0.0 && self.distance_cap_m <= MAX_DISTANCE_CAP_M)
        {
            return Err(RecruitError::OutOfRange(format!(
                "distance_cap={}: expected metres, more than 0 and at most {MAX_DISTANCE_CAP_M}",
                self.distance_cap_m
            )));
        }
        Ok(())
    }
}

/// What the blocks alone determine, by block position (id order).
#[derive(Debug)]
pub struct CatchmentFacts {
    ids: Vec<String>,
    names: Vec<Option<String>>,
    /// Interior points (WGS84 lon, lat), where distances are measured from.
    points: QueryPoints,
    children: Vec<Option<f64>>,
    children_field: Option<String>,
    adjacency: Adjacency,
}

impl CatchmentFacts {
    /// Derive the facts of `blocks` (any order). CPU-heavy at county scale (adjacency,
    /// interior points): build once per catchment, off the async workers.
    pub fn new(blocks: &[Block]) -> CatchmentFacts {
        let mut sorted: Vec<&Block> = blocks.iter().collect();
        sorted.sort_by(|a, b| a.id.cmp(&b.id));
        let children_field = recruit::children_field(sorted.iter().map(|b| &b.attributes));
        let children = sorted
            .iter()
            .map(|b| {
                let field = children_field.as_deref()?;
                b.attributes.iter().find(|(k, _)| k.eq_ignore_ascii_case(field)).and_then(|(_, v)| recruit::number(v))
            })
            .collect();
        let geometries: Vec<_> = sorted.iter().map(|b| &b.geometry).collect();
        CatchmentFacts {
            adjacency: Adjacency::new(&geometries),
            points: QueryPoints::new(sorted.iter().map(|b| b.interior_point().map(|p| (p.x(), p.y()))).collect()),
            names: sorted.iter().map(|b| b.name.clone()).collect(),
            ids: sorted.into_iter().map(|b| b.id.clone()).collect(),
            children,
            children_field,
        }
    }

    /// Number of blocks.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// True when there are no blocks.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    fn position(&self, id: &str) -> Option<usize> {
        self.ids.binary_search_by(|x| x.as_str().cmp(id)).ok()
    }

    /// Ids of the blocks sharing an edge with block `id`, sorted.
    pub fn neighbours(&self, id: &str) -> Vec<&str> {
        self.position(id)
            .map(|i| self.adjacency.neighbours(i).iter().map(|&j| self.ids[j as usize].as_str()).collect())
            .unwrap_or_default()
    }
}

/// [`CatchmentFacts`] kept across writes that do not touch the blocks, keyed by
/// [`Store::catchment_version`].
#[derive(Debug, Default)]
pub struct FactsCache(Mutex<Option<(i64, Arc<CatchmentFacts>)>>);

impl FactsCache {
    /// The cached facts if they are for catchment `version`.
    pub fn get(&self, version: i64) -> Option<Arc<CatchmentFacts>> {
        let cached = self.0.lock().ok()?;
        cached.as_ref().filter(|(v, _)| *v == version).map(|(_, f)| f.clone())
    }

    /// Remember the facts of catchment `version`.
    pub fn put(&self, version: i64, facts: Arc<CatchmentFacts>) {
        if let Ok(mut cached) = self.0.lock() {
            *cached = Some((version, facts));
        }
    }
}

/// An opted-in resident of an uncovered block, with contact details (personal data: recruiters
/// and managers only).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Candidate {
    /// Person id.
    pub id: String,
    /// Name.
    #[schema(nullable)]
    pub name: Option<String>,
    /// Phone.
    #[schema(nullable)]
    pub phone: Option<String>,
    /// Email.
    #[schema(nullable)]
    pub email: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct BlockState {
    residents: u64,
    ambassadors: u64,
    covered: bool,
}

/// An active ambassador as rankings show them, with what decides the block they cover at any
/// instant (so a lapsed adoption needs no reload).
#[derive(Debug, Clone)]
struct Ambassador {
    id: Arc<str>,
    home: Option<Arc<str>>,
    /// The adopted block, if it is one of the catchment's (an adoption of a block that is gone
    /// falls back to home, as in coverage), and when the adoption lapses (`None`: never).
    adoption: Option<(Arc<str>, Option<DateTime<Utc>>)>,
}

impl Ambassador {
    fn new(p: &Person, facts: &CatchmentFacts) -> Ambassador {
        let adopted = p.adopted_block.as_deref().filter(|b| facts.position(b).is_some());
        Ambassador {
            id: Arc::from(p.id.as_str()),
            home: p.home_block.as_deref().map(Arc::from),
            adoption: adopted.map(|b| (Arc::from(b), p.adopted_until)),
        }
    }

    /// The block they cover at `now`: [`Person::covering_block`], with the adopted block only if
    /// it is in the catchment.
    fn block(&self, now: DateTime<Utc>) -> Option<&str> {
        match &self.adoption {
            Some((block, until)) if until.is_none_or(|u| u > now) => Some(block),
            _ => self.home.as_deref(),
        }
    }
}

/// Whether `p` is an active ambassador: in the index, listed as a nearest ambassador.
fn is_ambassador(p: &&Person) -> bool {
    p.role == Role::Ambassador && p.active
}

/// Everything a ranking reads, at one moment: coverage, ambassadors, candidates, indicators.
///
/// Build it once with [`RecruitData::new`], then follow writes with [`RecruitData::updated`]:
/// each version shares with the previous one everything the changes did not touch, so readers
/// of the old one are not disturbed and a write costs what it changes.
#[derive(Debug)]
pub struct RecruitData {
    facts: Arc<CatchmentFacts>,
    blocks: Chunked<BlockState>,
    /// Latest value of each indicator, by block position.
    indicators: Arc<HashMap<String, Vec<Option<f64>>>>,
    /// Active ambassadors by their slot in `index` (`None`: a free slot).
    ambassadors: Chunked<Option<Ambassador>>,
    index: Arc<AmbassadorIndex>,
    /// Opted-in active residents by home block, by id. Every block's, covered or not, so that a
    /// block losing its coverage shows its candidates without a reload.
    candidates: Chunked<Vec<Candidate>>,
    /// The instant adoptions are judged at.
    now: DateTime<Utc>,
    /// Nearest ambassadors for the largest `k` asked so far: of the blocks uncovered when a
    /// ranking asked, and kept (up to date) when they become covered, so that coverage changing
    /// invalidates nothing.
    nearest: Mutex<Option<Arc<NearestLists>>>,
}

/// One person's change, as a change feed sees it: `before` and `after` the write (`None`:
/// absent, i.e. created or deleted). A change of anything counts (role, activity, location,
/// interest, adoption, contact details); either side may be a person rankings ignore.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PersonChange {
    /// The person as the [`RecruitData`] being updated knew them (what was removed or replaced).
    pub before: Option<Person>,
    /// The person now.
    pub after: Option<Person>,
}

/// Beyond this many ambassador locations moved in one update, the nearest lists are dropped and
/// the next ranking searches afresh (each moved location costs a pass over the blocks, ~0.4 ms
/// at county scale; a fresh search of the uncovered blocks ~100 ms).
const MAX_MOVES_KEPT: usize = 64;

/// The people a ranking needs from the store: every ambassador and the residents who would
/// volunteer (one query each).
pub fn load_people(store: &dyn Store) -> Result<Vec<Person>, AppError> {
    let mut people = store.people(&PeopleFilter { role: Some(Role::Ambassador), ..Default::default() })?;
    people.extend(store.people(&PeopleFilter {
        role: Some(Role::Resident),
        interested: Some(true),
        ..Default::default()
    })?);
    Ok(people)
}

/// Indicator → latest value per block position (by date; the last given wins a tie).
fn latest_indicators(facts: &CatchmentFacts, indicators: &[IndicatorValue]) -> HashMap<String, Vec<Option<f64>>> {
    type Latest<'d> = Vec<Option<(Option<&'d str>, f64)>>;
    let mut latest: HashMap<String, Latest> = HashMap::new();
    for v in indicators {
        let Some(i) = facts.position(&v.block_id) else { continue };
        let slot = &mut latest.entry(v.indicator.clone()).or_insert_with(|| vec![None; facts.len()])[i];
        if slot.is_none_or(|(date, _)| v.date.as_deref() >= date) {
            *slot = Some((v.date.as_deref(), v.value));
        }
    }
    latest.into_iter().map(|(name, values)| (name, values.into_iter().map(|v| v.map(|v| v.1)).collect())).collect()
}

impl RecruitData {
    /// Assemble the data from its parts: the catchment's facts, its coverage (whose `covered`
    /// flags decide which blocks are ranked), people (ambassadors and opted-in residents; others
    /// are ignored), indicator values, and the instant adoptions are judged at.
    pub fn new(
        facts: Arc<CatchmentFacts>,
        coverage: &CoverageReport,
        people: impl IntoIterator<Item = Person>,
        indicators: &[IndicatorValue],
        now: DateTime<Utc>,
    ) -> RecruitData {
        let mut blocks = vec![BlockState::default(); facts.len()];
        for c in &coverage.blocks {
            if let Some(i) = facts.position(&c.block_id) {
                blocks[i] = BlockState { residents: c.residents, ambassadors: c.ambassadors, covered: c.covered };
            }
        }
        let mut ambassadors: Vec<(Ambassador, (f64, f64))> = Vec::new();
        let mut candidates: Vec<Vec<Candidate>> = vec![Vec::new(); facts.len()];
        for p in people {
            if is_ambassador(&&p) {
                ambassadors.push((Ambassador::new(&p, &facts), (p.lon, p.lat)));
            } else if let Some(i) = candidate_block(&p, &facts) {
                candidates[i].push(Candidate { id: p.id, name: p.name, phone: p.phone, email: p.email });
            }
        }
        // Slots in id order: the same data always gets the same slots.
        ambassadors.sort_by(|a, b| a.0.id.cmp(&b.0.id));
        for list in &mut candidates {
            list.sort_by(|a, b| a.id.cmp(&b.id));
        }
        let index = AmbassadorIndex::with_keys(ambassadors.iter().map(|(a, (lon, lat))| (a.id.clone(), *lon, *lat)));
        RecruitData {
            index: Arc::new(index),
            ambassadors: Chunked::new(ambassadors.into_iter().map(|(a, _)| Some(a)).collect()),
            indicators: Arc::new(latest_indicators(&facts, indicators)),
            facts,
            blocks: Chunked::new(blocks),
            candidates: Chunked::new(candidates),
            now,
            nearest: Mutex::new(None),
        }
    }

    /// Read everything but the catchment's facts from `store`, with `coverage` as computed for
    /// the caller's target (the HTTP service passes its snapshot's, so both agree).
    pub fn load(
        store: &dyn Store,
        facts: Arc<CatchmentFacts>,
        coverage: &CoverageReport,
        now: DateTime<Utc>,
    ) -> Result<RecruitData, AppError> {
        let people = load_people(store)?;
        let indicators = store.indicators()?;
        Ok(RecruitData::new(facts, coverage, people, &indicators, now))
    }

    /// The data after a write, leaving `self` as it is (readers may hold it): `blocks` are the
    /// new coverage rows of the blocks whose counts or `covered` flag changed (rows of blocks
    /// not in the catchment are ignored), `people` the people who changed, in the order they
    /// changed, and `now` the instant adoptions are judged at from now on.
    ///
    /// What the changes did not touch is shared, and the nearest ambassadors found by earlier
    /// rankings are kept up to date: only the lists of blocks near an ambassador who came, went
    /// or moved are looked at (up to 64 moved locations; beyond, the next ranking searches
    /// afresh). The result ranks exactly as [`RecruitData::new`] from the same coverage and
    /// people would.
    ///
    /// A lapsed adoption needs no person change: the ambassador shows their home block at any
    /// `now` past the expiry. The coverage it changes comes, as always, in `blocks`.
    pub fn updated(&self, blocks: &[BlockCoverage], people: &[PersonChange], now: DateTime<Utc>) -> RecruitData {
        let mut next = RecruitData {
            facts: self.facts.clone(),
            blocks: self.blocks.clone(),
            indicators: self.indicators.clone(),
            ambassadors: self.ambassadors.clone(),
            index: self.index.clone(),
            candidates: self.candidates.clone(),
            now,
            nearest: Mutex::new(None),
        };
        for c in blocks {
            if let Some(state) = self.facts.position(&c.block_id).and_then(|i| next.blocks.get_mut(i)) {
                *state = BlockState { residents: c.residents, ambassadors: c.ambassadors, covered: c.covered };
            }
        }
        let mut moves = Moves::default();
        for change in people {
            next.apply(change, &mut moves);
        }
        let lists = self.nearest.lock().ok().and_then(|cached| cached.clone());
        next.nearest = Mutex::new(lists.and_then(|lists| match moves.len() {
            0 => Some(lists),
            n if n <= MAX_MOVES_KEPT => Some(Arc::new(lists.updated(&next.index, &self.facts.points, &moves))),
            _ => None,
        }));
        next
    }

    /// The data with new indicator values (an indicator import), everything else shared.
    pub fn with_indicators(&self, indicators: &[IndicatorValue]) -> RecruitData {
        RecruitData {
            facts: self.facts.clone(),
            blocks: self.blocks.clone(),
            indicators: Arc::new(latest_indicators(&self.facts, indicators)),
            ambassadors: self.ambassadors.clone(),
            index: self.index.clone(),
            candidates: self.candidates.clone(),
            now: self.now,
            nearest: Mutex::new(self.nearest.lock().ok().and_then(|cached| cached.clone())),
        }
    }

    /// The instant adoptions are judged at.
    pub fn now(&self) -> DateTime<Utc> {
        self.now
    }

    /// Replace `change.before`'s part in the data by `change.after`'s; `moves` records what the
    /// index went through.
    fn apply(&mut self, change: &PersonChange, moves: &mut Moves) {
        let was = change.before.as_ref().filter(is_ambassador);
        let is = change.after.as_ref().filter(is_ambassador);
        match (was, is) {
            // Still there: the index and the nearest lists stay; only what rows show changes.
            (Some(b), Some(a)) if b.id == a.id && b.lon == a.lon && b.lat == a.lat => {
                if let Some(slot) = self.index.find(&b.id, b.lon, b.lat)
                    && let Some(row) = self.ambassadors.get_mut(slot as usize)
                {
                    *row = Some(Ambassador::new(a, &self.facts));
                }
            }
            _ => {
                if let Some(b) = was
                    && let Some(slot) = self.index.find(&b.id, b.lon, b.lat)
                {
                    Arc::make_mut(&mut self.index).remove(slot, moves);
                    if let Some(row) = self.ambassadors.get_mut(slot as usize) {
                        *row = None;
                    }
                }
                if let Some(a) = is {
                    let row = Ambassador::new(a, &self.facts);
                    let slot = Arc::make_mut(&mut self.index).insert(row.id.clone(), a.lon, a.lat, moves) as usize;
                    while self.ambassadors.len() <= slot {
                        self.ambassadors.push(None);
                    }
                    if let Some(at) = self.ambassadors.get_mut(slot) {
                        *at = Some(row);
                    }
                }
            }
        }
        if let Some(b) = &change.before
            && let Some(list) = candidate_block(b, &self.facts).and_then(|i| self.candidates.get_mut(i))
            && let Ok(at) = list.binary_search_by(|c| c.id.as_str().cmp(&b.id))
        {
            list.remove(at);
        }
        if let Some(a) = &change.after
            && let Some(list) = candidate_block(a, &self.facts).and_then(|i| self.candidates.get_mut(i))
        {
            let candidate =
                Candidate { id: a.id.clone(), name: a.name.clone(), phone: a.phone.clone(), email: a.email.clone() };
            match list.binary_search_by(|c| c.id.as_str().cmp(&a.id)) {
                Ok(at) => list[at] = candidate,
                Err(at) => list.insert(at, candidate),
            }
        }
    }

    /// Names of the indicators with data, sorted.
    pub fn indicator_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.indicators.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }
}

/// The block position whose candidates `p` is among: an opted-in active resident's home block.
fn candidate_block(p: &Person, facts: &CatchmentFacts) -> Option<usize> {
    (p.role == Role::Resident && p.active && p.interested)
        .then(|| p.home_block.as_deref().and_then(|b| facts.position(b)))?
}

/// One active ambassador near an uncovered block.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NearestAmbassador<'a> {
    /// Ambassador id; `None` (null) once [`RecruitRow::without_people`] removed it: an id is a
    /// person's identifier (and a CSV may use anything as one), for roles that see people only.
    pub id: Option<&'a str>,
    /// The block they cover now (adopted, else home); `None` when they live outside the
    /// catchment.
    pub block_id: Option<&'a str>,
    /// Metres along the WGS84 ellipsoid from the block's interior point to the ambassador's
    /// home: to the millimetre, or rounded to 100 m by [`RecruitRow::without_people`].
    pub distance_m: f64,
}

/// The raw inputs of a row's score.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RowInputs<'a> {
    /// Residents living in the block.
    pub residents: u64,
    /// The need indicator's name.
    pub need_indicator: &'a str,
    /// Its latest value for the block; `None`: no data (need counts 0).
    pub need_value: Option<f64>,
    /// Children (or the population proxy) from the block data; `None`: no data.
    pub children: Option<f64>,
    /// The block attribute `children` was read from (e.g. `CHILDREN`, or `POP20` as a proxy).
    pub children_field: Option<&'a str>,
    /// Metres to the nearest active ambassador as scored: rounded to 100 m; `None`: none.
    pub nearest_ambassador_m: Option<f64>,
    /// The distance cap of the score, metres.
    pub distance_cap_m: f64,
}

/// One uncovered block in priority order, borrowing its text from the [`RecruitData`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecruitRow<'a> {
    /// Block id.
    pub block_id: &'a str,
    /// Block name.
    pub name: Option<&'a str>,
    /// Residents living in the block.
    pub residents: u64,
    /// Active ambassadors covering it (fewer than the target).
    pub ambassadors: u64,
    /// 1 for the highest priority.
    pub rank: u64,
    /// Sum of the components.
    pub priority: f64,
    /// Weighted, normalised inputs by name: why the block ranks where it does.
    pub components: Components,
    /// The raw inputs.
    pub inputs: RowInputs<'a>,
    /// The nearest active ambassadors, nearest first.
    pub nearest_ambassadors: Vec<NearestAmbassador<'a>>,
    /// Covered blocks sharing an edge with this one, sorted: their ambassadors could adopt it.
    pub adjacent_covered_blocks: Vec<&'a str>,
    /// Opted-in residents living in the block; `None` (left out of JSON) for callers who may not
    /// see people.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub candidates: Option<&'a [Candidate]>,
}

impl RecruitRow<'_> {
    /// The row as callers below recruiter may see it: no candidates, no ambassador ids, and
    /// distances rounded to [`PUBLIC_DISTANCE_STEP_M`]. What is left — how far the nearest
    /// coverage is, and which covered blocks border this one — is block-level information.
    pub fn without_people(mut self) -> Self {
        self.candidates = None;
        for n in &mut self.nearest_ambassadors {
            n.id = None;
            n.distance_m = round_to(n.distance_m, PUBLIC_DISTANCE_STEP_M);
        }
        self
    }
}

fn round_to(v: f64, step: f64) -> f64 {
    (v / step).round() * step
}

/// Rank every uncovered block of `data` by priority (highest first, then block id).
/// CPU-heavy at county scale (the nearest-ambassador search, cached in `data` per `nearest`):
/// run it off the async workers.
pub fn rank<'a>(data: &'a RecruitData, opts: &RankOptions) -> Result<Vec<RecruitRow<'a>>, RecruitError> {
    Ok(rank_page(data, opts, 0, usize::MAX)?.1)
}

/// The rows `offset..offset + limit` of [`rank`]'s ranking, and how many rows it has in all.
/// Every uncovered block is scored, but only the page's rows are assembled (nearest
/// ambassadors, adjacent covered blocks, candidates): at county scale most of a full ranking's
/// time, for the 50 rows a map asks for.
pub fn rank_page<'a>(
    data: &'a RecruitData,
    opts: &RankOptions,
    offset: usize,
    limit: usize,
) -> Result<(usize, Vec<RecruitRow<'a>>), RecruitError> {
    opts.check()?;
    let indicator = opts.indicator.as_deref().unwrap_or(DEFAULT_INDICATOR);
    let (indicator, values) = match data.indicators.get_key_value(indicator) {
        Some((name, values)) => (name.as_str(), Some(values)),
        None if opts.indicator.is_some() => {
            let known = data.indicator_names().join(", ");
            return Err(RecruitError::UnknownIndicator {
                name: indicator.to_string(),
                known: if known.is_empty() { "none".into() } else { known },
            });
        }
        None => (DEFAULT_INDICATOR, None),
    };
    let facts = &*data.facts;
    let (uncovered, states): (Vec<usize>, Vec<BlockState>) =
        data.blocks.iter().copied().enumerate().filter(|(_, b)| !b.covered).unzip();
    let nearest = data.nearest(&uncovered, opts.nearest);
    let inputs: Vec<ScoreInputs> = uncovered
        .iter()
        .zip(&states)
        .map(|(&i, state)| ScoreInputs {
            residents: state.residents,
            indicator: values.and_then(|v| v[i]),
            children: facts.children[i],
            distance_m: nearest.get(i).first().map(|n| round_to(n.distance_m, PUBLIC_DISTANCE_STEP_M)),
        })
        .collect();
    let scores = recruit::score(&inputs, &opts.weights, opts.distance_cap_m);
    // Priority order, ties by block id (block order is id order): a total order, so selecting
    // the page and sorting only it gives the rows a full sort would.
    let total = uncovered.len();
    let mut order: Vec<(f64, u32)> = scores.iter().enumerate().map(|(k, s)| (s.priority, k as u32)).collect();
    let by_rank = |a: &(f64, u32), b: &(f64, u32)| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1));
    let end = offset.saturating_add(limit).min(total);
    let start = offset.min(end);
    if end < order.len() {
        if end > 0 {
            order.select_nth_unstable_by(end - 1, by_rank);
        }
        order.truncate(end);
    }
    order.sort_unstable_by(by_rank);
    let row = |rank: usize, k: usize| {
        let i = uncovered[k];
        let near = nearest.get(i);
        RecruitRow {
            block_id: &facts.ids[i],
            name: facts.names[i].as_deref(),
            residents: states[k].residents,
            ambassadors: states[k].ambassadors,
            rank: rank as u64 + 1,
            priority: scores[k].priority,
            components: scores[k].components,
            inputs: RowInputs {
                residents: inputs[k].residents,
                need_indicator: indicator,
                need_value: inputs[k].indicator,
                children: inputs[k].children,
                children_field: facts.children_field.as_deref(),
                nearest_ambassador_m: inputs[k].distance_m,
                distance_cap_m: opts.distance_cap_m,
            },
            nearest_ambassadors: near[..opts.nearest.min(near.len())]
                .iter()
                .filter_map(|n| {
                    let a = data.ambassadors.get(n.index as usize)?.as_ref()?;
                    Some(NearestAmbassador {
                        id: Some(&a.id),
                        block_id: a.block(data.now),
                        distance_m: round_to(n.distance_m, 0.001),
                    })
                })
                .collect(),
            adjacent_covered_blocks: facts
                .adjacency
                .neighbours(i)
                .iter()
                .filter(|&&j| data.blocks.get(j as usize).is_some_and(|b| b.covered))
                .map(|&j| facts.ids[j as usize].as_str())
                .collect(),
            candidates: Some(data.candidates.get(i).map_or(&[], Vec::as_slice)),
        }
    };
    // The page's rows are assembled in block order, where the data they read lies together in
    // memory, and only then put in rank order (in rank order a full ranking's every row was a
    // cache miss). On this thread: rows built on others would later be freed across threads,
    // which costs more than building them (measured).
    let mut page: Vec<(usize, usize)> =
        order[start..end].iter().enumerate().map(|(r, &(_, k))| (start + r, k as usize)).collect();
    page.sort_unstable_by_key(|&(_, k)| k);
    let mut rows: Vec<Option<RecruitRow>> = (0..page.len()).map(|_| None).collect();
    for (rank, k) in page {
        rows[rank - start] = Some(row(rank, k));
    }
    let rows = rows.into_iter().flatten().collect();
    Ok((total, rows))
}

impl RecruitData {
    /// The `k` (or more) nearest active ambassadors of the `uncovered` blocks (at least), by
    /// block position (a shorter list is a prefix of a longer one: same order, same
    /// tie-breaking). Found for the uncovered blocks by the first ranking that asks for this
    /// `k` or more, then kept up to date by [`RecruitData::updated`] for every block that has a
    /// list; a block that lost its coverage since gets its list here (a few µs each).
    fn nearest(&self, uncovered: &[usize], k: usize) -> Arc<NearestLists> {
        let cached = self.nearest.lock().ok().and_then(|c| c.clone()).filter(|lists| lists.k() >= k);
        let lists = match cached {
            Some(lists) => {
                let missing: Vec<usize> = uncovered.iter().copied().filter(|&i| !lists.has(i)).collect();
                if missing.is_empty() {
                    return lists;
                }
                let mut lists = (*lists).clone();
                lists.fill(&self.index, &self.facts.points, &missing);
                Arc::new(lists)
            }
            None => {
                let mut wanted = vec![false; self.facts.len()];
                for &i in uncovered {
                    wanted[i] = true;
                }
                Arc::new(NearestLists::new(&self.index, &self.facts.points, k, |i| wanted[i]))
            }
        };
        if let Ok(mut cached) = self.nearest.lock()
            && cached.as_ref().is_none_or(|c| c.k() <= lists.k())
        {
            *cached = Some(lists.clone());
        }
        lists
    }

    /// Drop the cached nearest ambassadors (benchmarks: to time a ranking from scratch).
    #[doc(hidden)]
    pub fn forget_nearest(&self) {
        if let Ok(mut cached) = self.nearest.lock() {
            *cached = None;
        }
    }
}

/// Write the walk list: a UTF-8 CSV with a header, one line per candidate (blocks without one
/// get a line with empty candidate columns), in rank order. `with_people` adds the candidate
/// columns; without it there is one line per block. It starts with a byte-order mark so that
/// spreadsheets (Excel) read names with accents correctly.
pub fn write_walk_list<W: Write>(mut out: W, rows: &[RecruitRow<'_>], with_people: bool) -> csv::Result<W> {
    out.write_all("\u{feff}".as_bytes())?;
    let mut w = csv::Writer::from_writer(out);
    let mut header = vec!["rank", "block_id", "block_name", "priority", "residents", "ambassadors"];
    if with_people {
        header.extend(["candidate_id", "candidate_name", "candidate_phone", "candidate_email"]);
    }
    header.extend(["nearest_ambassadors", "adjacent_covered_blocks"]);
    w.write_record(&header)?;
    for r in rows {
        let nearest: Vec<String> = r
            .nearest_ambassadors
            .iter()
            .map(|n| match (n.id, n.block_id) {
                (Some(id), Some(b)) => format!("{id} (block {b}) {:.0} m", n.distance_m),
                (Some(id), None) => format!("{id} {:.0} m", n.distance_m),
                (None, Some(b)) => format!("block {b} {:.0} m", n.distance_m),
                (None, None) => format!("{:.0} m", n.distance_m),
            })
            .collect();
        let block = [
            r.rank.to_string(),
            r.block_id.to_string(),
            r.name.unwrap_or_default().to_string(),
            r.priority.to_string(),
            r.residents.to_string(),
            r.ambassadors.to_string(),
        ];
        let tail = [nearest.join("; "), r.adjacent_covered_blocks.join(" ")];
        let candidates = r.candidates.filter(|_| with_people).unwrap_or_default();
        if candidates.is_empty() {
            let blank = if with_people { vec![String::new(); 4] } else { Vec::new() };
            w.write_record(block.iter().chain(&blank).chain(&tail))?;
        }
        for c in candidates {
            let person = [
                c.id.clone(),
                c.name.clone().unwrap_or_default(),
                c.phone.clone().unwrap_or_default(),
                c.email.clone().unwrap_or_default(),
            ];
            w.write_record(block.iter().chain(&person).chain(&tail))?;
        }
    }
    w.flush()?;
    w.into_inner().map_err(|e| csv::Error::from(std::io::Error::other(e.to_string())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::coverage::{BlockCounts, compute};
    use geo::{MultiPolygon, Rect};

    /// A row of 1 x 1 km-ish blocks along a parallel near Los Angeles: "b0".."b{n-1}".
    fn blocks(n: usize) -> Vec<Block> {
        (0..n)
            .map(|i| {
                let x = -118.3 + 0.01 * i as f64;
                let mut attributes = crate::core::Attributes::new();
                attributes.insert("CHILDREN".into(), (10 * i as u64).into());
                Block {
                    id: format!("b{i}"),
                    name: Some(format!("Block {i}")),
                    geometry: MultiPolygon(vec![Rect::new((x, 34.0), (x + 0.01, 34.01)).to_polygon()]),
                    attributes,
                }
            })
            .collect()
    }

    fn person(id: &str, role: Role, lon: f64, home: &str) -> Person {
        Person {
            id: id.into(),
            role,
            lon,
            lat: 34.005,
            name: Some(format!("Name {id}")),
            phone: None,
            email: None,
            interested: true,
            active: true,
            adopted_block: None,
            home_block: Some(home.into()),
            adopted_until: None,
        }
    }

    fn data(residents: &[u64], people: Vec<Person>, now: DateTime<Utc>) -> RecruitData {
        let b = blocks(residents.len());
        let mut counts: HashMap<String, BlockCounts> = HashMap::new();
        for (i, r) in residents.iter().enumerate() {
            counts.entry(format!("b{i}")).or_default().residents = *r;
        }
        for p in people.iter().filter(|p| p.role == Role::Ambassador && p.active) {
            if let Some(block) = p.covering_block(now) {
                counts.entry(block.to_string()).or_default().ambassadors += 1;
            }
        }
        let coverage = compute(b.iter().map(|b| b.id.as_str()), &counts, 0, 1);
        RecruitData::new(Arc::new(CatchmentFacts::new(&b)), &coverage, people, &[], now)
    }

    #[test]
    fn weights_change_the_order() {
        // b0 covered; b1 has residents, b3 has children (CHILDREN = 30) and is farthest away.
        let people = vec![person("a", Role::Ambassador, -118.295, "b0")];
        let d = data(&[0, 50, 0, 0], people, Utc::now());
        let ids = |opts: &RankOptions| rank(&d, opts).unwrap().into_iter().map(|r| r.block_id).collect::<Vec<_>>();
        assert_eq!(ids(&RankOptions::default()), ["b1", "b3", "b2"]);
        let mut children_first = RankOptions::default();
        children_first.weights.apply(["residents=0.1"]).unwrap();
        assert_eq!(ids(&children_first), ["b3", "b2", "b1"]);
        let weights = Weights { residents: 0.0, need: 0.0, children: 0.0, distance: 0.0 };
        let zero = RankOptions { weights, ..Default::default() };
        assert_eq!(ids(&zero), ["b1", "b2", "b3"], "ties go by block id");
    }

    #[test]
    fn rows_explain_themselves() {
        let people = vec![
            person("a", Role::Ambassador, -118.295, "b0"),
            person("r1", Role::Resident, -118.285, "b1"),
            Person { interested: false, ..person("r2", Role::Resident, -118.285, "b1") },
        ];
        let d = data(&[3, 2, 0], people, Utc::now());
        let rows = rank(&d, &RankOptions::default()).unwrap();
        let b1 = rows.iter().find(|r| r.block_id == "b1").unwrap();
        assert_eq!(b1.adjacent_covered_blocks, ["b0"]);
        assert_eq!(b1.candidates.unwrap().iter().map(|c| c.id.as_str()).collect::<Vec<_>>(), ["r1"]);
        assert_eq!(b1.nearest_ambassadors[0].id, Some("a"));
        assert_eq!(b1.inputs.children_field, Some("CHILDREN"));
        assert_eq!(b1.inputs.need_value, None);
        let c = b1.components;
        approx::assert_abs_diff_eq!(b1.priority, c.residents + c.need + c.children + c.distance, epsilon = 1e-9);
        let public = b1.clone().without_people();
        assert!(public.candidates.is_none());
        assert_eq!(public.nearest_ambassadors[0].id, None);
        assert_eq!(public.nearest_ambassadors[0].distance_m % 100.0, 0.0);
        let json = serde_json::to_value(&public).unwrap();
        assert!(json.get("candidates").is_none(), "{json}");
    }

    #[test]
    fn an_expired_adoption_uncovers_the_block() {
        let mut a = person("a", Role::Ambassador, -118.295, "b0");
        a.adopted_block = Some("b2".into());
        a.adopted_until = crate::core::person::parse_until("2026-01-01T00:00:00Z");
        let before = crate::core::person::parse_until("2025-12-31T23:00:00Z").unwrap();
        let after = crate::core::person::parse_until("2026-01-01T00:00:00Z").unwrap();
        let uncovered = |now| {
            let d = data(&[1, 1, 1], vec![a.clone()], now);
            let rows = rank(&d, &RankOptions::default()).unwrap();
            let mut ids: Vec<String> = rows.into_iter().map(|r| r.block_id.to_string()).collect();
            ids.sort();
            ids
        };
        assert_eq!(uncovered(before), ["b0", "b1"]);
        assert_eq!(uncovered(after), ["b1", "b2"]);
    }

    #[test]
    fn bad_options_are_refused_precisely() {
        let d = data(&[1, 1], vec![], Utc::now());
        let err = |opts: RankOptions| rank(&d, &opts).unwrap_err().to_string();
        assert!(err(RankOptions { nearest: 0, ..Default::default() }).contains("nearest=0"));
        assert!(err(RankOptions { nearest: 51, ..Default::default() }).contains("from 1 to 50"));
        assert!(err(RankOptions { distance_cap_m: f64::NAN, ..Default::default() }).contains("distance_cap"));
        let e = err(RankOptions { indicator: Some("readyness".into()), ..Default::default() });
        assert!(e.contains("unknown indicator 'readyness'") && e.contains("none"), "{e}");
        // The default indicator may be missing: need is 0 everywhere.
        assert_eq!(rank(&d, &RankOptions::default()).unwrap().len(), 2);
    }
}
