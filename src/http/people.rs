//! The people API: residents and ambassadors, for recruiters (read) and managers (write).
//! Handlers only translate; validation and block assignment live in [`crate::app::people`].
//! Every write republishes the public layers before answering, so the next read reflects it.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use super::auth::{Manager, Recruiter, Require};
use super::body::AppJson;
use super::format::QueryPairs;
use super::ogc::Link;
use super::upload::{Upload, import_error};
use super::{AppError, AppState, BaseUrl, run_on_store};
use crate::app::people::{self as use_case, NewPerson, PersonError, PersonPatch};
use crate::core::person::until_text;
use crate::core::text::{QUOTED, clip, quote};
use crate::core::{BlockIndex, Person, Role};
use crate::ingest::Crs;
use crate::store::{PeopleFilter, Store};

/// Default page size of `GET /people`.
pub const DEFAULT_LIMIT: usize = 100;
/// Largest page size of `GET /people`.
pub const MAX_LIMIT: usize = 10_000;

impl From<PersonError> for AppError {
    fn from(e: PersonError) -> Self {
        match e {
            PersonError::Invalid { .. } => AppError::Unprocessable { detail: e.to_string(), rejected: Vec::new() },
            PersonError::NotFound(_) => AppError::NotFound(e.to_string()),
            PersonError::Exists(_) => AppError::Conflict(e.to_string()),
            PersonError::App(e) => AppError::App(e),
        }
    }
}

/// A person as served (`block_id` is the adopted block, `home_block` the block lived in).
#[derive(Debug, Serialize, ToSchema)]
pub struct PersonDoc {
    /// Stable id.
    pub id: String,
    /// `resident` or `ambassador`.
    pub role: String,
    /// Longitude, WGS84.
    pub lon: f64,
    /// Latitude, WGS84.
    pub lat: f64,
    /// Display name.
    #[schema(nullable)]
    pub name: Option<String>,
    /// Phone number.
    #[schema(nullable)]
    pub phone: Option<String>,
    /// Email address.
    #[schema(nullable)]
    pub email: Option<String>,
    /// Would volunteer.
    pub interested: bool,
    /// Counts for coverage.
    pub active: bool,
    /// The block an ambassador adopted, if any (kept after the adoption lapses).
    #[schema(nullable)]
    pub block_id: Option<String>,
    /// When the adoption lapses (RFC 3339 UTC); `null`: never.
    #[schema(nullable)]
    pub adopted_until: Option<String>,
    /// The block containing the location (`null`: outside the catchment).
    #[schema(nullable)]
    pub home_block: Option<String>,
    /// The block the person counts for now: adopted while the adoption has not lapsed, else home.
    #[schema(nullable)]
    pub covering_block: Option<String>,
}

impl From<Person> for PersonDoc {
    fn from(p: Person) -> Self {
        let covering_block = p.covering_block(chrono::Utc::now()).map(str::to_string);
        PersonDoc {
            id: p.id,
            role: p.role.as_str().to_string(),
            lon: p.lon,
            lat: p.lat,
            name: p.name,
            phone: p.phone,
            email: p.email,
            interested: p.interested,
            active: p.active,
            block_id: p.adopted_block,
            adopted_until: p.adopted_until.map(until_text),
            home_block: p.home_block,
            covering_block,
        }
    }
}

/// A page of people.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PeoplePage {
    /// The people on this page, in id order.
    pub people: Vec<PersonDoc>,
    /// People matching the filters.
    pub number_matched: usize,
    /// People on this page.
    pub number_returned: usize,
    /// `self`, and `next`/`prev` when there are more.
    pub links: Vec<Link>,
}

fn parse_usize(q: &QueryPairs, name: &str, default: usize, min: usize, max: usize) -> Result<usize, AppError> {
    let Some(text) = q.get(name) else { return Ok(default) };
    let v: usize = text.parse().map_err(|_| {
        AppError::BadRequest(format!("{name}={text}: expected an integer from {min} to {max}", text = quote(text)))
    })?;
    if !(min..=max).contains(&v) {
        return Err(AppError::BadRequest(format!("{name}={v}: expected an integer from {min} to {max}")));
    }
    Ok(v)
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn page_link(base: &str, q: &QueryPairs, rel: &str, offset: usize, limit: usize) -> Link {
    let mut pairs: Vec<(String, String)> = q.0.iter().filter(|(k, _)| k != "offset" && k != "limit").cloned().collect();
    pairs.push(("limit".into(), limit.to_string()));
    pairs.push(("offset".into(), offset.to_string()));
    let query = pairs.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect::<Vec<_>>().join("&");
    Link {
        href: format!("{base}/people?{query}"),
        rel: rel.into(),
        media_type: Some("application/json".into()),
        title: None,
        templated: None,
    }
}

/// Residents and ambassadors, in id order (recruiter or manager token).
#[utoipa::path(get, path = "/people", tag = "People", operation_id = "listPeople",
    params(("role" = Option<String>, Query, description = "resident or ambassador"),
           ("block_id" = Option<String>, Query, description = "Only people living in or adopting this block"),
           ("interested" = Option<bool>, Query, description = "Only people with this flag"),
           ("limit" = Option<usize>, Query, description = "People per page (1 to 10000, default 100)"),
           ("offset" = Option<usize>, Query, description = "People to skip")),
    security(("bearer" = [])),
    responses((status = 200, description = "A page of people", body = PeoplePage),
              (status = 400, description = "Bad parameter", body = super::error::Problem, content_type = "application/problem+json"),
              (status = 401, description = "No valid token", body = super::error::Problem, content_type = "application/problem+json"),
              (status = 403, description = "The token's role is too low", body = super::error::Problem, content_type = "application/problem+json")))]
pub async fn list(
    _: Require<Recruiter>,
    State(state): State<AppState>,
    BaseUrl(base): BaseUrl,
    q: QueryPairs,
) -> Result<Json<PeoplePage>, AppError> {
    q.only(&["role", "block_id", "interested", "limit", "offset", "f"])?;
    super::format::json_only(&q)?;
    let role = q
        .get("role")
        .map(|r| match r {
            "resident" => Ok(Role::Resident),
            "ambassador" => Ok(Role::Ambassador),
            other => Err(AppError::BadRequest(format!(
                "role={other}: expected resident or ambassador",
                other = quote(other)
            ))),
        })
        .transpose()?;
    let interested = q
        .get("interested")
        .map(|v| match v {
            "true" => Ok(true),
            "false" => Ok(false),
            other => {
                Err(AppError::BadRequest(format!("interested={other}: expected true or false", other = quote(other))))
            }
        })
        .transpose()?;
    let filter = PeopleFilter { role, block_id: q.get("block_id").map(str::to_string), interested };
    let limit = parse_usize(&q, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)?;
    let offset = parse_usize(&q, "offset", 0, 0, usize::MAX)?;
    let (people, matched) = run_on_store(&state, move |store| {
        Ok(store.people_page(&filter, offset as u64, limit as u64).map_err(crate::app::AppError::from)?)
    })
    .await?;
    let matched = usize::try_from(matched).unwrap_or(usize::MAX);
    let page: Vec<PersonDoc> = people.into_iter().map(PersonDoc::from).collect();
    let mut links = vec![page_link(&base, &q, "self", offset, limit)];
    if offset.saturating_add(page.len()) < matched {
        links.push(page_link(&base, &q, "next", offset + page.len(), limit));
    }
    if offset > 0 {
        links.push(page_link(&base, &q, "prev", offset.saturating_sub(limit), limit));
    }
    Ok(Json(PeoplePage { number_matched: matched, number_returned: page.len(), people: page, links }))
}

/// One person (recruiter or manager token).
#[utoipa::path(get, path = "/people/{id}", tag = "People", operation_id = "getPerson",
    params(("id" = String, Path, description = "Person id")),
    security(("bearer" = [])),
    responses((status = 200, description = "The person", body = PersonDoc),
              (status = 401, description = "No valid token", body = super::error::Problem, content_type = "application/problem+json"),
              (status = 403, description = "The token's role is too low", body = super::error::Problem, content_type = "application/problem+json"),
              (status = 404, description = "No such person", body = super::error::Problem, content_type = "application/problem+json")))]
pub async fn get_one(
    _: Require<Recruiter>,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<PersonDoc>, AppError> {
    let found = run_on_store(&state, {
        let id = id.clone();
        move |store| Ok(store.person(&id).map_err(crate::app::AppError::from)?)
    })
    .await?;
    found
        .map(|p| Json(p.into()))
        .ok_or_else(|| AppError::NotFound(format!("no person with id '{id}'", id = clip(&id, QUOTED))))
}

/// Add a person (manager token). The body has the sign-up CSV's fields.
#[utoipa::path(post, path = "/people", tag = "People", operation_id = "createPerson",
    request_body(content = Object, content_type = "application/json",
        description = "{\"role\": \"resident\"|\"ambassador\", \"lon\", \"lat\" (or \"x\", \"y\", \"crs\"), \"name\", \"phone\", \"email\", \"interested\", \"active\", \"block_id\" (adopted block, ambassadors), \"adopted_until\" (RFC 3339 or a date), \"id\" (optional)}"),
    security(("bearer" = [])),
    responses((status = 201, description = "Stored; Location names it", body = PersonDoc),
              (status = 400, description = "Malformed JSON or unknown field", body = super::error::Problem, content_type = "application/problem+json"),
              (status = 401, description = "No valid token", body = super::error::Problem, content_type = "application/problem+json"),
              (status = 403, description = "Not a manager token", body = super::error::Problem, content_type = "application/problem+json"),
              (status = 409, description = "The id exists", body = super::error::Problem, content_type = "application/problem+json"),
              (status = 415, description = "Not JSON", body = super::error::Problem, content_type = "application/problem+json"),
              (status = 422, description = "An invalid field (named)", body = super::error::Problem, content_type = "application/problem+json")))]
pub async fn create(
    _: Require<Manager>,
    State(state): State<AppState>,
    BaseUrl(base): BaseUrl,
    AppJson(input): AppJson<NewPerson>,
) -> Result<Response, AppError> {
    let person = write(&state, move |store, index| use_case::create_person(store, index, input, "http")).await?;
    let location = format!("{base}/people/{}", encode(&person.id));
    let mut res = (StatusCode::CREATED, Json(PersonDoc::from(person))).into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    Ok(res)
}

/// Change a person (manager token): JSON merge patch, `null` clears an optional field.
#[utoipa::path(patch, path = "/people/{id}", tag = "People", operation_id = "updatePerson",
    params(("id" = String, Path, description = "Person id")),
    request_body(content = Object, content_type = "application/merge-patch+json",
        description = "The fields to change, as in POST /people; null clears name, phone, email, block_id or adopted_until. A block_id starts a new adoption, lapsing at adopted_until if given."),
    security(("bearer" = [])),
    responses((status = 200, description = "The person as stored now", body = PersonDoc),
              (status = 400, description = "Malformed JSON or unknown field", body = super::error::Problem, content_type = "application/problem+json"),
              (status = 401, description = "No valid token", body = super::error::Problem, content_type = "application/problem+json"),
              (status = 403, description = "Not a manager token", body = super::error::Problem, content_type = "application/problem+json"),
              (status = 404, description = "No such person", body = super::error::Problem, content_type = "application/problem+json"),
              (status = 415, description = "Not JSON", body = super::error::Problem, content_type = "application/problem+json"),
              (status = 422, description = "The result would be invalid; nothing changed", body = super::error::Problem, content_type = "application/problem+json")))]
pub async fn update(
    _: Require<Manager>,
    State(state): State<AppState>,
    Path(id): Path<String>,
    AppJson(patch): AppJson<PersonPatch>,
) -> Result<Json<PersonDoc>, AppError> {
    let person = write(&state, move |store, index| use_case::update_person(store, index, &id, patch, "http")).await?;
    Ok(Json(person.into()))
}

/// Let an ambassador adopt a block (manager token), optionally until a time (`until`) or for a
/// number of days (`days`); after that the adoption lapses by itself and the block shows
/// uncovered again, without another write.
#[utoipa::path(post, path = "/people/{id}/adopt", tag = "People", operation_id = "adoptBlock",
    params(("id" = String, Path, description = "Ambassador id")),
    request_body(content = Object, content_type = "application/json",
        description = "{\"block_id\": \"060372091021000\", \"until\": \"2026-12-31T00:00:00Z\" (or a date: through its end, UTC) | \"days\": 30 | neither (no expiry)}"),
    security(("bearer" = [])),
    responses((status = 200, description = "The ambassador as stored now", body = PersonDoc),
              (status = 400, description = "Malformed JSON or unknown field", body = super::error::Problem, content_type = "application/problem+json"),
              (status = 401, description = "No valid token", body = super::error::Problem, content_type = "application/problem+json"),
              (status = 403, description = "Not a manager token", body = super::error::Problem, content_type = "application/problem+json"),
              (status = 404, description = "No such person", body = super::error::Problem, content_type = "application/problem+json"),
              (status = 415, description = "Not JSON", body = super::error::Problem, content_type = "application/problem+json"),
              (status = 422, description = "Not an ambassador, unknown block, or an expiry not in the future; nothing changed", body = super::error::Problem, content_type = "application/problem+json")))]
pub async fn adopt(
    _: Require<Manager>,
    State(state): State<AppState>,
    Path(id): Path<String>,
    AppJson(adoption): AppJson<use_case::Adoption>,
) -> Result<Json<PersonDoc>, AppError> {
    let person = write(&state, move |store, index| use_case::adopt(store, index, &id, adoption, "http")).await?;
    Ok(Json(person.into()))
}

/// Remove a person (manager token).
#[utoipa::path(delete, path = "/people/{id}", tag = "People", operation_id = "deletePerson",
    params(("id" = String, Path, description = "Person id")),
    security(("bearer" = [])),
    responses((status = 204, description = "Deleted"),
              (status = 401, description = "No valid token", body = super::error::Problem, content_type = "application/problem+json"),
              (status = 403, description = "Not a manager token", body = super::error::Problem, content_type = "application/problem+json"),
              (status = 404, description = "No such person", body = super::error::Problem, content_type = "application/problem+json")))]
pub async fn delete(
    _: Require<Manager>,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    write(&state, move |store, _| use_case::delete_person(store, &id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Run a person write on the store with the current catchment (to place the person), then
/// advance the live state, all off the async workers: the answer goes out once the next
/// request can see the write.
async fn write<T: Send + 'static>(
    state: &AppState,
    f: impl FnOnce(&dyn Store, &BlockIndex) -> Result<T, PersonError> + Send + 'static,
) -> Result<T, AppError> {
    let (store, live) = (state.store.clone(), state.live()?.clone());
    tokio::task::spawn_blocking(move || {
        let out = f(&*store, &live.catchment().index).map_err(AppError::from)?;
        live.catch_up()?;
        Ok(out)
    })
    .await?
}

/// Counts of a people import.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportedCounts {
    /// New people.
    pub inserted: usize,
    /// Existing people that changed.
    pub updated: usize,
    /// Existing people already identical.
    pub unchanged: usize,
}

/// A CSV row that was not imported.
#[derive(Debug, Serialize, ToSchema)]
pub struct RejectedRow {
    /// CSV line (the header is line 1).
    pub line: u64,
    /// The offending column, if one is to blame.
    #[schema(nullable)]
    pub field: Option<String>,
    /// Why.
    pub reason: String,
}

/// What `POST /people/import` did.
#[derive(Debug, Serialize, ToSchema)]
pub struct PeopleImportDoc {
    /// Rows written.
    pub imported: ImportedCounts,
    /// Imported people whose location is in no block.
    pub outside: usize,
    /// Rows rejected, with reasons; the others were imported.
    pub rejected: Vec<RejectedRow>,
    /// Notes about the file (e.g. ignored columns).
    pub warnings: Vec<String>,
}

/// Import a sign-up CSV of residents or ambassadors (manager token): good rows are imported,
/// bad rows are listed.
#[utoipa::path(post, path = "/people/import", tag = "People", operation_id = "importPeople",
    params(("role" = String, Query, description = "resident or ambassador"),
           ("crs" = Option<String>, Query, description = "CRS of x,y columns, e.g. EPSG:2229")),
    request_body(content = String, content_type = "text/csv", description = "The CSV, as for `belong import residents|ambassadors`"),
    security(("bearer" = [])),
    responses((status = 200, description = "Imported counts and rejected rows", body = PeopleImportDoc),
              (status = 400, description = "Bad parameter", body = super::error::Problem, content_type = "application/problem+json"),
              (status = 401, description = "No valid token", body = super::error::Problem, content_type = "application/problem+json"),
              (status = 403, description = "Not a manager token", body = super::error::Problem, content_type = "application/problem+json"),
              (status = 413, description = "Body too large", body = super::error::Problem, content_type = "application/problem+json"),
              (status = 415, description = "Not CSV", body = super::error::Problem, content_type = "application/problem+json"),
              (status = 422, description = "The file cannot be read at all", body = super::error::Problem, content_type = "application/problem+json")))]
pub async fn import(
    _: Require<Manager>,
    State(state): State<AppState>,
    q: QueryPairs,
    upload: Upload,
) -> Result<Json<PeopleImportDoc>, AppError> {
    q.only(&["role", "crs"])?;
    let role = match q.get("role") {
        Some("resident") => Role::Resident,
        Some("ambassador") => Role::Ambassador,
        Some(other) => {
            return Err(AppError::BadRequest(format!(
                "role={other}: expected resident or ambassador",
                other = quote(other)
            )));
        }
        None => return Err(AppError::BadRequest("query parameter 'role' is required: resident or ambassador".into())),
    };
    let crs = q.get("crs").map(Crs::parse).transpose().map_err(|e| AppError::BadRequest(format!("crs: {e}")))?;
    let file = upload.save_as(&["text/csv", "application/csv", "text/plain"], "csv")?;
    let served = state.live().ok().map(|live| live.catchment());
    let r = run_on_store(&state, move |store| {
        crate::app::import_people_in(store, served.as_deref(), file.path(), role, crs.as_ref(), |_| {})
            .map_err(|e| import_error(e, &file))
    })
    .await?;
    state.refresh().await?;
    let rejected = r
        .rejected
        .into_iter()
        .map(|j| RejectedRow {
            line: j.location.rsplit(' ').next().and_then(|n| n.parse().ok()).unwrap_or(0),
            field: j.field,
            reason: j.reason,
        })
        .collect();
    let u = r.upserted;
    Ok(Json(PeopleImportDoc {
        imported: ImportedCounts { inserted: u.inserted, updated: u.updated, unchanged: u.unchanged },
        outside: r.outside,
        rejected,
        warnings: r.warnings,
    }))
}
