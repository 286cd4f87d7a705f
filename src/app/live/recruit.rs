//! The recruiting data of the live state (`/coverage/uncovered`): built from the store on first
//! use, then carried forward by every publication with [`RecruitData::updated`] — the blocks
//! whose counts changed and the people who changed, fetched by id — instead of reloading every
//! ambassador and opted-in resident. A block import drops it (the catchment's facts change);
//! so does a bulk change of many people, where one reload is cheaper than many updates.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use chrono::{DateTime, Utc};

use crate::app::layers::Layers;
use crate::app::recruit::{self, PersonChange, RecruitData};
use crate::app::{AppError, Catchment};
use crate::core::coverage::BlockCoverage;
use crate::core::{Person, Role};
use crate::store::Store;

/// Past this many changed people in one publication, the data is rebuilt on next use.
pub(super) const MAX_INCREMENTAL_PEOPLE: usize = 5_000;

/// One publication's changes, as the recruiting data needs them.
#[derive(Debug, Clone)]
pub(super) struct Changes {
    /// Coverage rows of the blocks whose counts changed.
    pub rows: Vec<BlockCoverage>,
    /// Ids of the people who changed; `None`: more than [`MAX_INCREMENTAL_PEOPLE`].
    pub people: Option<Vec<String>>,
    /// The instant the coverage was judged at.
    pub now: DateTime<Utc>,
}

#[derive(Default)]
enum State {
    /// Not built (or dropped): the next use builds it.
    #[default]
    Empty,
    /// Being built by a reader; publications meanwhile queue their changes here.
    Building(Vec<Changes>),
    /// Being built, but an import made what is being built obsolete: the builder starts over.
    Stale,
    Ready(Kept),
}

struct Kept {
    data: Arc<RecruitData>,
    /// The people the data was given (ambassadors, opted-in residents), as it saw them: the
    /// `before` of the next change of each.
    known: HashMap<Box<str>, Seen>,
}

/// What [`RecruitData::updated`] reads of a person's `before` (where they were, whether they
/// were an active ambassador or a candidate), and nothing else: no contact details, which kept
/// a second copy of 150,000 people at county scale (~60 MB).
#[derive(Debug, Clone)]
struct Seen {
    role: Role,
    active: bool,
    interested: bool,
    lon: f64,
    lat: f64,
    home_block: Option<Box<str>>,
}

impl Seen {
    fn of(p: &Person) -> Seen {
        Seen {
            role: p.role,
            active: p.active,
            interested: p.interested,
            lon: p.lon,
            lat: p.lat,
            home_block: p.home_block.as_deref().map(Into::into),
        }
    }

    /// The person `id` as far as the update needs them.
    fn person(&self, id: &str) -> Person {
        Person {
            id: id.to_string(),
            role: self.role,
            lon: self.lon,
            lat: self.lat,
            name: None,
            phone: None,
            email: None,
            interested: self.interested,
            active: self.active,
            adopted_block: None,
            adopted_until: None,
            home_block: self.home_block.as_deref().map(str::to_string),
        }
    }
}

/// What a build reads besides the store: the served catchment and snapshot.
pub(super) struct Inputs {
    /// The catchment (for its facts, cached by its version).
    pub catchment: Arc<Catchment>,
    /// The snapshot whose coverage (as judged at its `judged_at`) the data starts from.
    pub layers: Arc<Layers>,
}

/// The recruiting data and how it is kept current.
#[derive(Default)]
pub(super) struct Recruiting {
    state: Mutex<State>,
    /// Signalled when a build ends, for the readers waiting for it.
    built: Condvar,
}

/// Whether rankings look at this person at all (as [`recruit::load_people`] selects them).
fn relevant(p: &Person) -> bool {
    p.role == Role::Ambassador || p.interested
}

impl Recruiting {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Forget the data (a block or indicator import).
    pub(super) fn reset(&self) {
        let mut state = self.state();
        *state = match &*state {
            State::Building(_) | State::Stale => State::Stale,
            State::Empty | State::Ready(_) => State::Empty,
        };
    }

    /// The current data, built from the store and `inputs` (read when the build starts) if
    /// needed.
    pub(super) fn data(
        &self,
        store: &dyn Store,
        inputs: &dyn Fn() -> Result<Inputs, AppError>,
    ) -> Result<Arc<RecruitData>, AppError> {
        loop {
            {
                let mut state = self.state();
                loop {
                    match &*state {
                        State::Ready(k) => return Ok(k.data.clone()),
                        // Someone else is building it (the start-up warm-up, say): wait for it
                        // rather than build a second copy of a county's data beside it.
                        State::Building(_) | State::Stale => {
                            state = self.built.wait(state).unwrap_or_else(std::sync::PoisonError::into_inner);
                        }
                        State::Empty => {
                            *state = State::Building(Vec::new());
                            break;
                        }
                    }
                }
            }
            // The inputs are read only now that this reader holds the build: a reset (an import)
            // before this point cannot leave it building from the old catchment.
            let built = inputs().and_then(|i| self.build(store, &i));
            let mut state = self.state();
            let mut kept = match built {
                Ok(k) => Some(k),
                Err(e) => {
                    *state = State::Empty;
                    self.built.notify_all();
                    return Err(e);
                }
            };
            // What was published while building: applied now, in order, so nothing is missed.
            match std::mem::replace(&mut *state, State::Empty) {
                State::Building(pending) => {
                    for changes in pending {
                        kept = kept.and_then(|k| apply(store, k, &changes));
                    }
                }
                // Reset meanwhile (an import): what was built describes the old data.
                State::Stale | State::Empty | State::Ready(_) => kept = None,
            }
            // Too much changed meanwhile: start over (waiters wake to an empty state and one of
            // them, or this reader, builds again).
            let Some(kept) = kept else {
                self.built.notify_all();
                continue;
            };
            let data = kept.data.clone();
            *state = State::Ready(kept);
            self.built.notify_all();
            return Ok(data);
        }
    }

    fn build(&self, store: &dyn Store, inputs: &Inputs) -> Result<Kept, AppError> {
        let Inputs { catchment, layers } = inputs;
        // A served catchment has them; any other is derived from the stored blocks again.
        let facts = match catchment.facts() {
            Some(f) => f.clone(),
            None => Arc::new(recruit::CatchmentFacts::new(&store.blocks()?)),
        };
        let people = recruit::load_people(store)?;
        let indicators = store.indicators()?;
        let known: HashMap<Box<str>, Seen> = people.iter().map(|p| (p.id.as_str().into(), Seen::of(p))).collect();
        let data = Arc::new(RecruitData::new(facts, &layers.coverage.report(), people, &indicators, layers.judged_at));
        Ok(Kept { data, known })
    }

    /// Carry the data forward over one publication's changes (or queue them while it is being
    /// built). Fetches each changed person by id.
    pub(super) fn publish(&self, store: &dyn Store, changes: Changes) {
        let mut state = self.state();
        match std::mem::replace(&mut *state, State::Empty) {
            State::Empty => {}
            State::Stale => *state = State::Stale,
            State::Building(mut pending) => {
                pending.push(changes);
                *state = State::Building(pending);
            }
            State::Ready(kept) => {
                if let Some(k) = apply(store, kept, &changes) {
                    *state = State::Ready(k);
                }
            }
        }
    }
}

/// `kept` after `changes`; `None` when it is cheaper (or, after a store error, only safe) to
/// build it again.
fn apply(store: &dyn Store, mut kept: Kept, changes: &Changes) -> Option<Kept> {
    let changed = changes.people.as_ref().filter(|p| p.len() <= MAX_INCREMENTAL_PEOPLE)?;
    let mut people = Vec::with_capacity(changed.len());
    for id in changed {
        let after = match store.person(id) {
            Ok(p) => p.filter(relevant),
            Err(e) => {
                tracing::warn!("recruiting data: reading a changed person failed ({e}); rebuilding on next use");
                return None;
            }
        };
        let before = match &after {
            Some(p) => kept.known.insert(id.as_str().into(), Seen::of(p)),
            None => kept.known.remove(id.as_str()),
        }
        .map(|seen| seen.person(id));
        if before.is_some() || after.is_some() {
            people.push(PersonChange { before, after });
        }
    }
    if changes.rows.is_empty() && people.is_empty() {
        return Some(kept);
    }
    kept.data = Arc::new(kept.data.updated(&changes.rows, &people, changes.now));
    Some(kept)
}
