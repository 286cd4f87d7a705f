//! Coverage summaries: the headline numbers (from the snapshot, the same numbers as
//! `belong coverage`) and the uncovered blocks ranked for recruiting (as `belong recruit`).

use std::sync::{Arc, Mutex, Weak};

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tokio::sync::OnceCell;
use utoipa::ToSchema;

use super::auth::Caller;
use super::format::{CSV, QueryPairs, json_only};
use super::{AppError, AppState};
use crate::app::recruit::{self, Candidate, RankOptions, RecruitData, RecruitError, RecruitRow};
use crate::core::AccessRole;
use crate::core::recruit::{WeightError, Weights};
use crate::core::text::quote;

/// Headline coverage numbers (as in `belong coverage --format json`'s `summary`).
#[derive(Debug, Serialize, ToSchema)]
pub struct CoverageSummaryDoc {
    /// Blocks in the catchment.
    pub blocks: u64,
    /// Blocks with at least `target` active ambassadors.
    pub covered_blocks: u64,
    /// `100 * covered_blocks / blocks`, two decimals.
    pub coverage_pct: f64,
    /// Ambassadors a block needs to count as covered.
    pub target: u32,
    /// Residents living in the catchment.
    pub residents: u64,
    /// Active ambassadors covering a block.
    pub ambassadors: u64,
    /// Residents whose block is not covered.
    pub residents_in_uncovered_blocks: u64,
    /// People whose location is in no block.
    pub people_outside: u64,
}

/// The coverage summary.
#[utoipa::path(get, path = "/coverage", tag = "Coverage", operation_id = "getCoverage",
    params(("f" = Option<String>, Query, description = "Format: json")),
    responses((status = 200, description = "Headline coverage numbers", body = CoverageSummaryDoc),
              (status = 400, description = "Bad parameter", body = super::error::Problem, content_type = "application/problem+json")))]
pub async fn summary(State(state): State<AppState>, q: QueryPairs) -> Result<Response, AppError> {
    q.only(&["f"])?;
    json_only(&q)?;
    // Serialized from the core type itself, so the numbers match the command line's exactly.
    Ok(Json(&state.layers().coverage.summary).into_response())
}

/// One uncovered block with its priority and what explains it (see `belong recruit`).
#[derive(Debug, Serialize, ToSchema)]
pub struct UncoveredRow {
    /// Block id.
    pub block_id: String,
    /// Block name.
    #[schema(nullable)]
    pub name: Option<String>,
    /// Residents living in the block.
    pub residents: u64,
    /// Active ambassadors (fewer than the target).
    pub ambassadors: u64,
    /// 1 for the highest priority.
    pub rank: u64,
    /// Sum of the components: each input normalised to 0..1 over the uncovered blocks, times
    /// its weight.
    pub priority: f64,
    /// Weighted components by name (`residents`, `need`, `children`, `distance`).
    pub components: ComponentsDoc,
    /// The raw inputs of the score.
    pub inputs: RowInputsDoc,
    /// The nearest active ambassadors, nearest first (distances rounded to 100 m below the
    /// recruiter role).
    pub nearest_ambassadors: Vec<NearestAmbassadorDoc>,
    /// Covered blocks sharing an edge with this one, sorted.
    pub adjacent_covered_blocks: Vec<String>,
    /// Opted-in residents living in the block, with contacts. Recruiter and manager tokens only:
    /// absent for everyone else.
    pub candidates: Option<Vec<Candidate>>,
}

/// One active ambassador near an uncovered block.
#[derive(Debug, Serialize, ToSchema)]
pub struct NearestAmbassadorDoc {
    /// Ambassador id (recruiter and manager tokens; `null` for everyone else).
    #[schema(nullable)]
    pub id: Option<String>,
    /// The block they cover now (adopted, else home); `null` when they live outside the
    /// catchment.
    #[schema(nullable)]
    pub block_id: Option<String>,
    /// Metres along the WGS84 ellipsoid from the block's interior point to the ambassador's
    /// home: to the millimetre for recruiters and managers, rounded to 100 m for everyone else
    /// (exact distances from several blocks would locate the ambassador's home).
    pub distance_m: f64,
}

/// The raw inputs of a row's score.
#[derive(Debug, Serialize, ToSchema)]
pub struct RowInputsDoc {
    /// Residents living in the block.
    pub residents: u64,
    /// The need indicator's name.
    pub need_indicator: String,
    /// Its latest value for the block; `null`: no data (need counts 0).
    #[schema(nullable)]
    pub need_value: Option<f64>,
    /// Children (or the population proxy) from the block data; `null`: no data.
    #[schema(nullable)]
    pub children: Option<f64>,
    /// The block attribute `children` was read from (e.g. `CHILDREN`, or `POP20` as a proxy).
    #[schema(nullable)]
    pub children_field: Option<String>,
    /// Metres to the nearest active ambassador as scored, rounded to 100 m for everyone; `null`:
    /// there is no active ambassador.
    #[schema(nullable)]
    pub nearest_ambassador_m: Option<f64>,
    /// Distances beyond this many metres count as this far.
    pub distance_cap_m: f64,
}

/// The weighted components of a priority.
#[derive(Debug, Serialize, ToSchema)]
pub struct ComponentsDoc {
    /// From residents.
    pub residents: f64,
    /// From need (the indicator; lower value, more need).
    pub need: f64,
    /// From children (or population) in the block data.
    pub children: f64,
    /// From the distance to the nearest active ambassador.
    pub distance: f64,
}

/// The recruiting data of the live state (built on first use, then kept current by writes).
pub(super) async fn recruit_data(state: &AppState) -> Result<Arc<RecruitData>, AppError> {
    let live = state.live()?.clone();
    Ok(tokio::task::spawn_blocking(move || live.recruit()).await??)
}

impl From<RecruitError> for AppError {
    fn from(e: RecruitError) -> Self {
        AppError::BadRequest(e.to_string())
    }
}

/// What an answer of `/coverage/uncovered` depends on besides the recruiting data.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct RankKey {
    opts: RankOptions,
    limit: Option<usize>,
    offset: usize,
    people: bool,
    csv: bool,
}

/// A ranked, serialized answer: the total rows before paging and the body.
type Ranked = Arc<(usize, Bytes)>;

/// Answers of `/coverage/uncovered` for the current recruiting data, one per distinct query
/// (the few most recent). A new recruiting data (any write) starts afresh.
#[derive(Debug, Default)]
pub(super) struct RankedCache {
    entries: Mutex<Vec<RankedEntry>>,
}

/// One answer: the recruiting data it is of, the query, and the answer once computed.
type RankedEntry = (Weak<RecruitData>, RankKey, Arc<OnceCell<Ranked>>);

/// Distinct queries answered from one recruiting data.
const RANKED_KEPT: usize = 32;

impl RankedCache {
    /// The slot for `key` on `data`: filled by the first asker, awaited by the others.
    fn cell(&self, data: &Arc<RecruitData>, key: &RankKey) -> Arc<OnceCell<Ranked>> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let current = Arc::downgrade(data);
        entries.retain(|(d, _, _)| Weak::ptr_eq(d, &current));
        if let Some((_, _, cell)) = entries.iter().find(|(_, k, _)| k == key) {
            return cell.clone();
        }
        let cell = Arc::new(OnceCell::new());
        if entries.len() >= RANKED_KEPT {
            entries.remove(0);
        }
        entries.push((current, key.clone(), cell.clone()));
        cell
    }
}

/// Parameters of `/coverage/uncovered` besides `f`.
const UNCOVERED_PARAMS: &[&str] = &[
    "f",
    "limit",
    "offset",
    "nearest",
    "weights",
    "w_residents",
    "w_need",
    "w_children",
    "w_distance",
    "indicator",
    "distance_cap",
];

fn ranking_options(q: &QueryPairs) -> Result<RankOptions, AppError> {
    let mut opts = RankOptions::default();
    if let Some(list) = q.get("weights") {
        opts.weights.apply(list.split(',').filter(|s| !s.trim().is_empty()))?;
    }
    for name in Weights::NAMES {
        if let Some(v) = q.get(&format!("w_{name}")) {
            opts.weights.set(name, v).map_err(RecruitError::from)?;
        }
    }
    if let Some(k) = q.get("nearest") {
        opts.nearest = k.trim().parse().map_err(|_| {
            AppError::BadRequest(format!(
                "nearest={k}: expected an integer from 1 to {}",
                recruit::MAX_NEAREST,
                k = quote(k)
            ))
        })?;
    }
    if let Some(cap) = q.get("distance_cap") {
        opts.distance_cap_m = cap.trim().parse().map_err(|_| {
            AppError::BadRequest(format!(
                "distance_cap={cap}: expected a distance in metres, e.g. 2000",
                cap = quote(cap)
            ))
        })?;
    }
    opts.indicator = q.get("indicator").map(str::to_string);
    opts.check()?;
    Ok(opts)
}

impl From<WeightError> for AppError {
    fn from(e: WeightError) -> Self {
        AppError::BadRequest(e.to_string())
    }
}

/// Uncovered blocks by recruiting priority, with what explains it; `f=csv` is the walk list.
#[utoipa::path(get, path = "/coverage/uncovered", tag = "Coverage", operation_id = "getUncoveredBlocks",
    params(("f" = Option<String>, Query, description = "json (default), or csv: the walk list, one line per candidate (one per block without candidates or below the recruiter role), UTF-8 with a byte-order mark"),
           ("weights" = Option<String>, Query, description = "Weights as name:value pairs, e.g. residents:2,need:1 (names: residents, need, children, distance; each 0 to 1000; defaults 1, 1, 0.5, 0.25)"),
           ("w_residents" = Option<f64>, Query, description = "Weight of residents (0 to 1000, default 1)"),
           ("w_need" = Option<f64>, Query, description = "Weight of need from the indicator (default 1)"),
           ("w_children" = Option<f64>, Query, description = "Weight of children, or population as a proxy, from the block data (default 0.5)"),
           ("w_distance" = Option<f64>, Query, description = "Weight of the distance to the nearest active ambassador (default 0.25)"),
           ("indicator" = Option<String>, Query, description = "Need indicator, lower value = more need (default school_readiness)"),
           ("distance_cap" = Option<f64>, Query, description = "Metres beyond which distance counts no more (default 2000)"),
           ("nearest" = Option<usize>, Query, description = "Nearest active ambassadors listed per block (1 to 50, default 3)"),
           ("limit" = Option<usize>, Query, description = "Rows to return (default: all)"),
           ("offset" = Option<usize>, Query, description = "Rows to skip")),
    responses((status = 200, description = "Uncovered blocks by priority (desc), then block id. Candidates and exact distances need a recruiter or manager token. X-Total-Count gives the number of rows before paging.", body = Vec<UncoveredRow>),
              (status = 400, description = "Bad parameter (unknown or out-of-range weight, nearest, indicator...)", body = super::error::Problem, content_type = "application/problem+json")))]
pub async fn uncovered(State(state): State<AppState>, caller: Caller, q: QueryPairs) -> Result<Response, AppError> {
    q.only(UNCOVERED_PARAMS)?;
    let csv = match q.get("f") {
        None | Some("json") => false,
        Some("csv") => true,
        Some(f) => return Err(AppError::BadRequest(format!("f={f}: expected json or csv", f = quote(f)))),
    };
    let opts = ranking_options(&q)?;
    let (limit, offset) = (q.count("limit", 1)?, q.count("offset", 0)?.unwrap_or(0));
    let people = caller.0.is_some_and(|r| r >= AccessRole::Recruiter);
    let data = recruit_data(&state).await?;
    // Every client of the map asks the same page: it is ranked and serialized once per
    // recruiting data (per write), and concurrent askers wait for that one answer instead of
    // each ranking on its own blocking thread.
    let key = RankKey { opts, limit, offset, people, csv };
    let cell = state.ranked.cell(&data, &key);
    let answer = cell
        .get_or_try_init(|| async move {
            let RankKey { opts, limit, offset, people, csv } = key;
            // Ranking and serializing are CPU-heavy at county scale: both off the async workers.
            tokio::task::spawn_blocking(move || {
                let (total, page) = recruit::rank_page(&data, &opts, offset, limit.unwrap_or(usize::MAX))?;
                let page: Vec<RecruitRow> =
                    if people { page } else { page.into_iter().map(RecruitRow::without_people).collect() };
                let body = if csv {
                    recruit::write_walk_list(Vec::new(), &page, people).map_err(|e| format!("writing CSV: {e}"))
                } else {
                    serde_json::to_vec(&page).map_err(|e| format!("writing JSON: {e}"))
                };
                Ok::<_, AppError>(Arc::new((total, Bytes::from(body.map_err(AppError::Internal)?))))
            })
            .await?
        })
        .await?;
    let (total, body) = (answer.0, answer.1.clone());
    let mut res = body.into_response();
    if csv {
        res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(CSV));
        res.headers_mut()
            .insert(header::CONTENT_DISPOSITION, HeaderValue::from_static("attachment; filename=\"walk-list.csv\""));
    } else {
        res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(super::format::JSON));
    }
    res.headers_mut().insert("x-total-count", HeaderValue::from(total));
    if people {
        // Names and phone numbers: never kept by a shared cache.
        res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
    }
    Ok(res)
}
