//! Coverage counts kept up to date one change at a time: per person what the coverage rule
//! reads (role, activity, home block, adopted block and its expiry), per block the residents
//! and active ambassadors counting for it, and the catchment's totals. Each change costs O(1);
//! a change of the catchment costs one pass over the adopters.
//!
//! One tally serves two readers: the live state of the service (its clock is the wall clock,
//! and it notes which blocks changed so only those are republished) and the history replay
//! (its clock follows the history's timestamps). Both feed it the same history rows.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};

use chrono::DateTime;
use serde::{Deserialize, Deserializer};

use crate::core::Role;
use crate::core::person::{Counted as Rule, counted_for};
use crate::store::HistoryRow;

/// Milliseconds since 1970-01-01T00:00:00Z.
pub type Ms = i64;

/// FxHash (rustc's hasher) with a finaliser: several times faster than the default SipHash on
/// short ids, which was most of a replay's time. The keys come from our own database, so there
/// is no one to flood the table.
#[derive(Debug, Default, Clone, Copy)]
pub struct FxHasher(u64);

impl FxHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            self.add(w.iter().rev().fold(0, |acc, b| (acc << 8) | u64::from(*b)));
        }
        self.add(words.remainder().iter().fold(0, |acc, b| (acc << 8) | u64::from(*b)));
    }

    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    fn finish(&self) -> u64 {
        // The multiply only carries upwards, and ids such as "R0000001" differ in their last
        // bytes: fold the high bits down (splitmix64's finaliser), since hashbrown picks
        // buckets with the low ones.
        let h = (self.0 ^ (self.0 >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        let h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        h ^ (h >> 31)
    }
}

type Fx = BuildHasherDefault<FxHasher>;

/// Ids to dense indexes (0, 1, 2, … in order of first sight), compactly: the ids' bytes in one
/// buffer and a hash table of indexes (4 bytes a slot). A county's million people took 64 MB as
/// a `HashMap<Box<str>, u32>` (a 24-byte slot and an allocation per id), 22 MB this way.
#[derive(Default)]
pub struct Keys {
    bytes: String,
    /// Where each id ends in `bytes`: u32, since ids of 4 GiB are 100 million people or more.
    ends: Vec<u32>,
    table: hashbrown::HashTable<u32>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys").field("len", &self.ends.len()).finish()
    }
}

impl Keys {
    fn hash(id: &str) -> u64 {
        use std::hash::BuildHasher;
        Fx::default().hash_one(id)
    }

    /// The id of index `i`.
    pub fn id(&self, i: u32) -> &str {
        id_in(&self.bytes, &self.ends, i)
    }

    /// The index of `id`, if seen.
    pub fn get(&self, id: &str) -> Option<u32> {
        self.table.find(Self::hash(id), |&i| self.id(i) == id).copied()
    }

    /// The index of `id`, given the next one if it is new.
    pub fn key(&mut self, id: &str) -> u32 {
        if let Some(i) = self.get(id) {
            return i;
        }
        let i = self.ends.len() as u32;
        self.bytes.push_str(id);
        self.ends.push(u32::try_from(self.bytes.len()).expect("under 4 GiB of ids"));
        // Growing the table rehashes the ids already in it: borrowed apart from the table.
        let (bytes, ends) = (&self.bytes, &self.ends);
        self.table.insert_unique(Self::hash(id), i, |&j| Self::hash(id_in(bytes, ends, j)));
        i
    }
}

/// Id `i` of the buffer `bytes` whose ids end at `ends`.
fn id_in<'a>(bytes: &'a str, ends: &[u32], i: u32) -> &'a str {
    let i = i as usize;
    let start = if i == 0 { 0 } else { ends[i - 1] as usize };
    &bytes[start..ends[i] as usize]
}

/// Person [`Keys`] shared by the tallies of the same people (the live state's and the history
/// replay's, each on its own thread): they agree on every person's key, and each keeps only its
/// own per-key state. A key is given once and never changes.
#[derive(Debug, Clone, Default)]
pub struct PersonKeys(std::sync::Arc<std::sync::Mutex<Keys>>);

impl PersonKeys {
    fn lock(&self) -> std::sync::MutexGuard<'_, Keys> {
        // Keys are only appended, each under the lock: a panic elsewhere leaves them whole.
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn id(&self, i: u32) -> String {
        self.lock().id(i).to_string()
    }

    fn get(&self, id: &str) -> Option<u32> {
        self.lock().get(id)
    }

    fn key(&self, id: &str) -> u32 {
        self.lock().key(id)
    }

    /// How many people have a key.
    pub fn key_count(&self) -> usize {
        self.lock().ends.len()
    }
}

/// What a person adds to a block's counts (blocks by dense key).
type Counted = Rule<u32>;

#[derive(Debug, Clone, Copy, PartialEq)]
struct PersonState {
    role: Role,
    active: bool,
    home: Option<u32>,
    adopted: Option<u32>,
    until: Option<Ms>,
    counted: Counted,
}

const NONE: u32 = u32::MAX;

/// A [`PersonState`] in 16 bytes (it took 48): blocks as keys with [`NONE`] for none, role,
/// activity and what the person counts for as bits, the rare adoption expiry in a side table.
#[derive(Debug, Clone, Copy)]
struct Slot {
    home: u32,
    adopted: u32,
    counted: u32,
    bits: u8,
}

const PRESENT: u8 = 1;
const AMBASSADOR: u8 = 2;
const ACTIVE: u8 = 4;
const COUNTS_RESIDENT: u8 = 8;
const COUNTS_AMBASSADOR: u8 = 16;
const HAS_UNTIL: u8 = 32;

/// Everyone the tally knows, by dense person key.
#[derive(Debug, Default)]
struct People {
    slots: Vec<Slot>,
    until: HashMap<u32, Ms, Fx>,
}

impl People {
    fn len(&self) -> usize {
        self.slots.len()
    }

    fn push_empty(&mut self) {
        self.slots.push(Slot { home: NONE, adopted: NONE, counted: NONE, bits: 0 });
    }

    fn get(&self, i: u32) -> Option<PersonState> {
        // Keys are shared with another tally ([`PersonKeys`]): one may not have seen a key yet.
        let s = *self.slots.get(i as usize)?;
        if s.bits & PRESENT == 0 {
            return None;
        }
        let block = |b: u32| (b != NONE).then_some(b);
        let counted = match s.bits & (COUNTS_RESIDENT | COUNTS_AMBASSADOR) {
            COUNTS_RESIDENT => Counted::Resident(s.counted),
            COUNTS_AMBASSADOR => Counted::Ambassador(s.counted),
            _ => Counted::Nothing,
        };
        Some(PersonState {
            role: if s.bits & AMBASSADOR != 0 { Role::Ambassador } else { Role::Resident },
            active: s.bits & ACTIVE != 0,
            home: block(s.home),
            adopted: block(s.adopted),
            until: if s.bits & HAS_UNTIL != 0 { self.until.get(&i).copied() } else { None },
            counted,
        })
    }

    fn set(&mut self, i: u32, p: Option<PersonState>) {
        while self.slots.len() <= i as usize {
            self.push_empty();
        }
        let had_until = self.slots[i as usize].bits & HAS_UNTIL != 0;
        let Some(p) = p else {
            self.slots[i as usize] = Slot { home: NONE, adopted: NONE, counted: NONE, bits: 0 };
            if had_until {
                self.until.remove(&i);
            }
            return;
        };
        let mut bits = PRESENT;
        if p.role == Role::Ambassador {
            bits |= AMBASSADOR;
        }
        if p.active {
            bits |= ACTIVE;
        }
        let counted = match p.counted {
            Counted::Nothing => NONE,
            Counted::Resident(b) => {
                bits |= COUNTS_RESIDENT;
                b
            }
            Counted::Ambassador(b) => {
                bits |= COUNTS_AMBASSADOR;
                b
            }
        };
        match p.until {
            Some(u) => {
                bits |= HAS_UNTIL;
                self.until.insert(i, u);
            }
            None if had_until => {
                self.until.remove(&i);
            }
            None => {}
        }
        self.slots[i as usize] =
            Slot { home: p.home.unwrap_or(NONE), adopted: p.adopted.unwrap_or(NONE), counted, bits };
    }

    /// Whether person `i` is known and has an adopted block.
    fn adopts(&self, i: u32) -> bool {
        let Some(&s) = self.slots.get(i as usize) else { return false };
        s.bits & PRESENT != 0 && s.adopted != NONE
    }
}

/// Counts per block key, kept whether or not the block is in the catchment at the moment (people
/// keep pointing at a removed block until they are reassigned).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BlockTally {
    /// In the catchment now.
    pub live: bool,
    /// Residents living in it.
    pub residents: u64,
    /// Active ambassadors counting for it.
    pub ambassadors: u64,
}

/// Catchment totals over the live blocks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// Blocks in the catchment.
    pub blocks: u64,
    /// Of which covered.
    pub covered: u64,
    /// Residents of catchment blocks.
    pub residents: u64,
    /// Active ambassadors counting for catchment blocks.
    pub ambassadors: u64,
    /// Residents of uncovered catchment blocks.
    pub residents_uncovered: u64,
    /// People whose home is in no block.
    pub outside: u64,
}

/// A person as the coverage rule sees them (no personal data).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PersonFacts<'a> {
    /// Resident or ambassador.
    pub role: Role,
    /// Counts for coverage.
    pub active: bool,
    /// Block lived in.
    pub home: Option<&'a str>,
    /// Block adopted, if any.
    pub adopted: Option<&'a str>,
    /// When the adoption lapses.
    pub until: Option<Ms>,
}

/// The extra fields of a person event (`detail` JSON), present when the person has an adoption.
#[derive(Debug, Default, Deserialize)]
struct PersonDetail {
    /// Present (maybe `null`) when `block_id` is not simply the home block.
    #[serde(default, deserialize_with = "present")]
    home_block: Option<Option<String>>,
    adopted_block: Option<String>,
    adopted_until: Option<String>,
}

fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// Parse an RFC 3339 instant to milliseconds.
pub fn parse_ms(text: &str) -> Option<Ms> {
    DateTime::parse_from_rfc3339(text).ok().map(|t| t.timestamp_millis())
}

/// The tally. See the module documentation.
#[derive(Debug)]
pub struct Tally {
    target: u64,
    block_keys: Keys,
    blocks: Vec<BlockTally>,
    person_keys: PersonKeys,
    people: People,
    /// Pending adoption expiries `(adopted_until, person)`; stale entries are skipped.
    expiries: BinaryHeap<Reverse<(Ms, u32)>>,
    /// The set of live blocks changed since the adopters were last placed.
    adopters_stale: bool,
    totals: Totals,
    clock: Ms,
    /// Blocks whose counts or membership changed since [`Tally::take_dirty`], when tracked.
    dirty: Option<Vec<u32>>,
    /// People (keys) changed since [`Tally::take_dirty`], when tracked: keys, not ids, since a
    /// million-row import touches a million people (~40 MB as strings).
    dirty_people: Option<Vec<u32>>,
}

impl Tally {
    /// An empty tally counting a block as covered with `target` active ambassadors. With
    /// `track`, it notes the blocks and people each change touches ([`Tally::take_dirty`]).
    pub fn new(target: u32, track: bool) -> Tally {
        Tally {
            target: u64::from(target.max(1)),
            block_keys: Keys::default(),
            blocks: Vec::new(),
            person_keys: PersonKeys::default(),
            people: People::default(),
            expiries: BinaryHeap::new(),
            adopters_stale: false,
            totals: Totals::default(),
            clock: Ms::MIN,
            dirty: track.then(Vec::new),
            dirty_people: track.then(Vec::new),
        }
    }

    /// Active ambassadors a block needs.
    pub fn target(&self) -> u64 {
        self.target
    }

    /// The instant everything has been applied up to.
    pub fn clock(&self) -> Ms {
        self.clock
    }

    /// The catchment's totals.
    pub fn totals(&self) -> Totals {
        self.totals
    }

    /// The key of block `id`, if it was ever seen.
    pub fn key_of(&self, id: &str) -> Option<u32> {
        self.block_keys.get(id)
    }

    /// The counts of block key `key`.
    pub fn block(&self, key: u32) -> BlockTally {
        self.blocks[key as usize]
    }

    /// Number of block keys.
    pub fn block_keys(&self) -> usize {
        self.blocks.len()
    }

    /// Start noting the blocks and people each change touches (after seeding a tally from the
    /// store, where noting a million people would only be thrown away).
    pub fn track(&mut self) {
        self.dirty.get_or_insert_with(Vec::new);
        self.dirty_people.get_or_insert_with(Vec::new);
    }

    /// Start noting the blocks (only) each change touches.
    pub fn track_blocks(&mut self) {
        self.dirty.get_or_insert_with(Vec::new);
    }

    /// The blocks and people changed since the last call (keys, deduplicated, ascending; see
    /// [`Tally::person_id`]).
    pub fn take_dirty(&mut self) -> (Vec<u32>, Vec<u32>) {
        let mut blocks = self.dirty.as_mut().map(std::mem::take).unwrap_or_default();
        blocks.sort_unstable();
        blocks.dedup();
        let mut people = self.dirty_people.as_mut().map(std::mem::take).unwrap_or_default();
        people.sort_unstable();
        people.dedup();
        (blocks, people)
    }

    /// The id of person key `key` (as [`Tally::take_dirty`] gives them).
    pub fn person_id(&self, key: u32) -> String {
        self.person_keys.id(key)
    }

    /// The person keys, to share with another tally of the same people
    /// ([`Tally::sharing_person_keys`]).
    pub fn person_keys(&self) -> PersonKeys {
        self.person_keys.clone()
    }

    /// An empty tally as [`Tally::new`] that numbers people with `keys` (another tally's): a
    /// county's million ids are kept once for the live state and the history replay (~22 MB).
    pub fn sharing_person_keys(target: u32, track: bool, keys: PersonKeys) -> Tally {
        Tally { person_keys: keys, ..Tally::new(target, track) }
    }

    fn touch_person(&mut self, key: u32) {
        if let Some(d) = self.dirty_people.as_mut() {
            d.push(key);
        }
    }

    fn touch_block(&mut self, b: u32) {
        if let Some(d) = self.dirty.as_mut() {
            d.push(b);
        }
    }

    fn block_key(&mut self, id: &str) -> u32 {
        let b = self.block_keys.key(id);
        if b as usize == self.blocks.len() {
            self.blocks.push(BlockTally::default());
        }
        b
    }

    /// Apply one history row: a block inserted, updated or deleted, a person inserted,
    /// updated, reassigned or deleted. Other rows (resources, imports) change no count.
    pub fn apply_row(&mut self, e: HistoryRow<'_>) {
        match (e.entity, e.action) {
            ("block", "delete") => self.set_live(e.entity_id, false),
            ("block", _) => self.set_live(e.entity_id, true),
            ("person", "delete") => self.delete_person(e.entity_id),
            ("person", _) => {
                let detail: PersonDetail = e.detail.and_then(|d| serde_json::from_str(d).ok()).unwrap_or_default();
                let (home, adopted) = match &detail.home_block {
                    // `block_id` is the block counted for when the row was written: the adopted
                    // block while the adoption held, else home.
                    Some(home) => (home.as_deref(), detail.adopted_block.as_deref().or(e.block_id)),
                    None => (e.block_id, None),
                };
                let until = detail.adopted_until.as_deref().and_then(parse_ms).filter(|_| adopted.is_some());
                let facts = PersonFacts {
                    role: e.role.unwrap_or(Role::Resident),
                    active: e.active.unwrap_or(true),
                    home,
                    adopted,
                    until,
                };
                self.upsert_person(e.entity_id, facts);
            }
            _ => {}
        }
    }

    /// Put block `id` in the catchment, or take it out.
    pub fn set_live(&mut self, id: &str, live: bool) {
        let b = match (self.block_keys.get(id), live) {
            (Some(b), _) => b,
            (None, true) => self.block_key(id),
            (None, false) => return,
        };
        let target = self.target;
        let block = &mut self.blocks[b as usize];
        if block.live == live {
            return;
        }
        block.live = live;
        let (residents, ambassadors) = (block.residents, block.ambassadors);
        let covered = ambassadors >= target;
        let t = &mut self.totals;
        let sign = |n: &mut u64, by: u64| if live { *n += by } else { *n -= by };
        sign(&mut t.blocks, 1);
        sign(&mut t.residents, residents);
        sign(&mut t.ambassadors, ambassadors);
        sign(&mut t.covered, u64::from(covered));
        if !covered {
            sign(&mut t.residents_uncovered, residents);
        }
        self.adopters_stale = true;
        self.touch_block(b);
    }

    /// Add or replace person `id`.
    pub fn upsert_person(&mut self, id: &str, p: PersonFacts<'_>) {
        let home = p.home.map(|b| self.block_key(b));
        let adopted = p.adopted.map(|b| self.block_key(b));
        let until = p.until.filter(|_| adopted.is_some());
        let i = self.person_keys.key(id);
        while self.people.len() <= i as usize {
            self.people.push_empty();
        }
        let (counted, was_outside) =
            self.people.get(i).map_or((Counted::Nothing, false), |s| (s.counted, s.home.is_none()));
        self.people.set(i, Some(PersonState { role: p.role, active: p.active, home, adopted, until, counted }));
        self.totals.outside = self.totals.outside + u64::from(home.is_none()) - u64::from(was_outside);
        if let Some(u) = until.filter(|u| *u > self.clock) {
            self.expiries.push(Reverse((u, i)));
        }
        self.touch_person(i);
        self.recount(i);
    }

    /// Remove person `id` (nothing when unknown).
    pub fn delete_person(&mut self, id: &str) {
        let Some(i) = self.person_keys.get(id) else { return };
        let Some(home) = self.people.get(i).map(|p| p.home) else { return };
        self.set_counted(i, Counted::Nothing);
        self.people.set(i, None);
        self.totals.outside -= u64::from(home.is_none());
        self.touch_person(i);
    }

    /// What person `i` counts for at the tally's clock: the rule of [`counted_for`], with
    /// adoptions of blocks not in the catchment falling back to home.
    fn counting(&self, p: &PersonState) -> Counted {
        counted_for(p.role, p.active, p.home, p.adopted, p.until, self.clock, |b: u32| self.blocks[b as usize].live)
    }

    fn recount(&mut self, i: u32) {
        let Some(p) = self.people.get(i) else { return };
        let now = self.counting(&p);
        self.set_counted(i, now);
    }

    fn set_counted(&mut self, i: u32, new: Counted) {
        let Some(mut p) = self.people.get(i) else { return };
        let old = std::mem::replace(&mut p.counted, new);
        if old != new {
            self.people.set(i, Some(p));
            self.count(old, false);
            self.count(new, true);
        }
    }

    /// Add (or take away) what a person counts for.
    fn count(&mut self, c: Counted, add: bool) {
        let step = |n: &mut u64| if add { *n += 1 } else { *n -= 1 };
        let target = self.target;
        let (b, resident) = match c {
            Counted::Nothing => return,
            Counted::Resident(b) => (b, true),
            Counted::Ambassador(b) => (b, false),
        };
        let block = &mut self.blocks[b as usize];
        let was_covered = block.ambassadors >= target;
        if resident {
            step(&mut block.residents);
        } else {
            step(&mut block.ambassadors);
        }
        let (live, covered, residents) = (block.live, block.ambassadors >= target, block.residents);
        if live {
            let t = &mut self.totals;
            if resident {
                step(&mut t.residents);
                if !covered {
                    step(&mut t.residents_uncovered);
                }
            } else {
                step(&mut t.ambassadors);
                if covered != was_covered {
                    // Adding can only cover a block, taking away only uncover it.
                    step(&mut t.covered);
                    if covered {
                        t.residents_uncovered -= residents;
                    } else {
                        t.residents_uncovered += residents;
                    }
                }
            }
        }
        self.touch_block(b);
    }

    /// Move the clock to `t` (never back) and lapse every adoption that expired by then; then,
    /// if the catchment changed, place adopters again (see [`Tally::place_adopters`]).
    pub fn advance(&mut self, t: Ms) {
        self.clock = self.clock.max(t);
        while let Some(&Reverse((until, i))) = self.expiries.peek() {
            if until > self.clock {
                break;
            }
            self.expiries.pop();
            if self.people.get(i).is_some_and(|p| p.until == Some(until)) {
                self.recount(i);
            }
        }
    }

    /// The next pending adoption expiry, if any.
    pub fn next_expiry(&mut self) -> Option<Ms> {
        // Drop stale entries (renewed or removed adoptions) so the answer is a real expiry.
        while let Some(&Reverse((until, i))) = self.expiries.peek() {
            if self.people.get(i).is_some_and(|p| p.until == Some(until)) {
                return Some(until);
            }
            self.expiries.pop();
        }
        None
    }

    /// After the catchment changed, adopters of a removed block count for home again (and
    /// adopters of a restored one for it), as the rule says.
    pub fn place_adopters(&mut self) {
        if !std::mem::take(&mut self.adopters_stale) {
            return;
        }
        for i in 0..self.people.len() as u32 {
            if self.people.adopts(i) {
                self.recount(i);
            }
        }
    }
}
