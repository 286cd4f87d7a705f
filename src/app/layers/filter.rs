//! CQL2 filters on a collection (OGC API – Features Part 3): a parsed expression
//! ([`crate::core::cql2`]) is bound to a collection's queryables — names checked, literal types
//! checked against the properties — and then tested on features with SQL's three-valued logic
//! (a comparison with a missing value is unknown, and only features for which the whole filter
//! is true are selected).
//!
//! Values are read the way the other filters read them: the counts that change with people
//! from the snapshot ([`LiveValues`]), dates from the feature, and every other property from a
//! column of its values parsed once from the features' stored JSON and shared by every later
//! snapshot until the next import (like the equality indexes).

use std::borrow::Cow;
use std::cmp::Ordering;

use chrono::{DateTime, NaiveDate, Utc};
use geo::{BoundingRect, Coord, CoordsIter, Geometry, Intersects};
use serde_json::Value;

use super::{Collection, Feature, GeometryKind, PropertyKind, Shape, par_chunks};
use crate::core::cql2::{self, CompareOp, Cql2Error, Expr, Lang, Operand, Spatial};
use crate::core::text::{QUOTED, clip, clip_list};
use crate::tiles::LiveValues;

/// The name of the geometry queryable (the feature's geometry).
pub const GEOMETRY: &str = "geometry";

/// Why a filter was refused; every message is meant for the client.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FilterError {
    /// The filter does not parse.
    #[error("filter: {0}")]
    Syntax(#[from] Cql2Error),
    /// A name that is not a queryable of the collection.
    #[error(
        "filter: {name:?} is not a queryable of collection '{collection}'; queryables are: {queryables} \
         (their types: /collections/{collection}/queryables)"
    )]
    UnknownProperty {
        /// The name, clipped.
        name: String,
        /// The collection id.
        collection: String,
        /// The queryables, listed briefly.
        queryables: String,
    },
    /// Operands of types that do not go together, or an operator that does not apply to them.
    #[error("filter: {0}")]
    Type(String),
    /// A geometry literal that is not in CRS84 longitude/latitude.
    #[error("filter: {0}")]
    Geometry(String),
}

/// The type of a queryable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryableKind {
    /// `true` / `false`.
    Boolean,
    /// Whole numbers.
    Integer,
    /// Numbers.
    Number,
    /// Text.
    String,
    /// Calendar dates (`YYYY-MM-DD`).
    Date,
    /// The feature geometry.
    Geometry(GeometryKind),
}

/// A property that filters can name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queryable {
    /// Its name in filters.
    pub name: String,
    /// Its type.
    pub kind: QueryableKind,
}

impl Collection {
    /// What a filter on this collection can name: the geometry, then every property (a
    /// property called `geometry` is hidden by the geometry).
    pub fn queryables(&self) -> Vec<Queryable> {
        let mut out = vec![Queryable { name: GEOMETRY.into(), kind: QueryableKind::Geometry(self.geometry) }];
        for p in self.properties.iter().filter(|p| p.name != GEOMETRY) {
            let kind = match p.kind {
                _ if self.temporal == Some(p.name.as_str()) => QueryableKind::Date,
                PropertyKind::Boolean => QueryableKind::Boolean,
                PropertyKind::Integer => QueryableKind::Integer,
                PropertyKind::Number => QueryableKind::Number,
                PropertyKind::String => QueryableKind::String,
            };
            out.push(Queryable { name: p.name.clone(), kind });
        }
        out
    }
}

/// A filter bound to a collection, ready to test its features.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    root: Node,
    /// The properties the filter reads, by slot.
    slots: Vec<Slot>,
}

#[derive(Debug, Clone, PartialEq)]
struct Slot {
    name: String,
    access: Access,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Access {
    /// A count that changes with people: from [`LiveValues`].
    Live,
    /// The feature's date.
    Date,
    /// From the stored properties (a column).
    Stored,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Bool,
    Number,
    Text,
    Date,
    Timestamp,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Bool => "a boolean",
            Kind::Number => "a number",
            Kind::Text => "text",
            Kind::Date => "a date",
            Kind::Timestamp => "a timestamp",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Lit {
    Bool(bool),
    Number(f64),
    Text(Box<str>),
    Date(NaiveDate),
    Timestamp(DateTime<Utc>),
}

#[derive(Debug, Clone, PartialEq)]
enum Term {
    Slot(usize),
    Lit(Lit),
    /// Lower-cased at evaluation (literals are lower-cased when bound).
    Casei(Box<Term>),
}

#[derive(Debug, Clone, PartialEq)]
enum PatternTerm {
    Fixed(Pattern),
    Dynamic(Term),
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    And(Vec<Node>),
    Or(Vec<Node>),
    Not(Box<Node>),
    Const(bool),
    Compare {
        op: CompareOp,
        left: Term,
        right: Term,
    },
    Like {
        value: Term,
        pattern: PatternTerm,
        negated: bool,
    },
    Between {
        value: Term,
        low: Term,
        high: Term,
        negated: bool,
    },
    In {
        value: Term,
        list: Vec<Term>,
        negated: bool,
    },
    IsNull {
        value: Term,
        negated: bool,
    },
    /// The feature's geometry intersects this one (CRS84), whose envelope is `[x0, y0, x1, y1]`.
    Intersects {
        geometry: Box<Geometry<f64>>,
        envelope: [f64; 4],
    },
}

impl Filter {
    /// Parse `text` in `lang` and bind it to `c` (the whole path for a filter in CRS84).
    pub fn parse(c: &Collection, text: &str, lang: Lang) -> Result<Filter, FilterError> {
        Filter::new(c, &cql2::parse(text, lang)?)
    }

    /// Bind a parsed expression to `c`: every name must be a queryable of `c`, and operands
    /// must be of types that compare. Geometry literals must be in CRS84 by now.
    pub fn new(c: &Collection, expr: &Expr) -> Result<Filter, FilterError> {
        let mut b = Binder { c, slots: Vec::new() };
        let root = b.expr(expr)?;
        Ok(Filter { root, slots: b.slots })
    }

    /// `[x0, y0, x1, y1]` that every selected feature's envelope intersects, when the filter
    /// requires `S_INTERSECTS` with a literal (for an index lookup instead of a scan).
    pub fn envelope(&self) -> Option<[f64; 4]> {
        let hint = |n: &Node| match n {
            Node::Intersects { envelope, .. } => Some(*envelope),
            _ => None,
        };
        match &self.root {
            Node::And(v) => v.iter().find_map(hint),
            n => hint(n),
        }
    }

    /// The positions among `candidates` (ascending) of the features of `c` the filter selects.
    /// `c` is the collection the filter was bound to, or a later snapshot of it; `live` gives
    /// the counts that change with people.
    pub fn select(&self, c: &Collection, live: &dyn LiveValues, candidates: &[usize]) -> Vec<usize> {
        let columns: Vec<Col<'_>> = self
            .slots
            .iter()
            .map(|s| match s.access {
                Access::Live => Col::Live(&s.name),
                Access::Date => Col::Date,
                Access::Stored => c
                    .properties
                    .iter()
                    .position(|p| p.name == s.name)
                    .map_or(Col::Missing, |at| Col::Stored(c.columns[at].get_or_init(|| column(c, &s.name)))),
            })
            .collect();
        let test = |i: usize| {
            let row = Row { c, i, live, columns: &columns };
            row.eval(&self.root) == Truth::True
        };
        // A county-wide scan (110,000 features) on every core: half the wait on two.
        let parts = par_chunks(candidates, |part| part.iter().copied().filter(|&i| test(i)).collect::<Vec<_>>());
        parts.into_iter().flatten().collect()
    }
}

struct Binder<'a> {
    c: &'a Collection,
    slots: Vec<Slot>,
}

impl Binder<'_> {
    fn unknown(&self, name: &str) -> FilterError {
        let names: Vec<String> = self.c.queryables().into_iter().map(|q| q.name).collect();
        FilterError::UnknownProperty {
            name: clip(name, QUOTED),
            collection: self.c.id.to_string(),
            queryables: clip_list(&names),
        }
    }

    fn property(&mut self, name: &str) -> Result<(Term, Kind), FilterError> {
        if name == GEOMETRY {
            return Err(FilterError::Type(format!("'{GEOMETRY}' is the feature geometry: test it with S_INTERSECTS")));
        }
        let p = self.c.property(name).ok_or_else(|| self.unknown(name))?;
        let (kind, access) = if self.c.temporal == Some(name) {
            (Kind::Date, Access::Date)
        } else {
            let kind = match p.kind {
                PropertyKind::Boolean => Kind::Bool,
                PropertyKind::Integer | PropertyKind::Number => Kind::Number,
                PropertyKind::String => Kind::Text,
            };
            (kind, if self.c.live.contains(&name) { Access::Live } else { Access::Stored })
        };
        let slot = match self.slots.iter().position(|s| s.name == name) {
            Some(s) => s,
            None => {
                self.slots.push(Slot { name: name.to_string(), access });
                self.slots.len() - 1
            }
        };
        Ok((Term::Slot(slot), kind))
    }

    fn operand(&mut self, o: &Operand) -> Result<(Term, Kind), FilterError> {
        Ok(match o {
            Operand::Property(name) => self.property(name)?,
            Operand::Text(s) => (Term::Lit(Lit::Text(s.as_str().into())), Kind::Text),
            Operand::Number(n) => (Term::Lit(Lit::Number(*n)), Kind::Number),
            Operand::Bool(b) => (Term::Lit(Lit::Bool(*b)), Kind::Bool),
            Operand::Date(d) => (Term::Lit(Lit::Date(*d)), Kind::Date),
            Operand::Timestamp(t) => (Term::Lit(Lit::Timestamp(*t)), Kind::Timestamp),
            Operand::Casei(inner) => match self.operand(inner)? {
                (Term::Lit(Lit::Text(s)), Kind::Text) => (Term::Lit(Lit::Text(s.to_lowercase().into())), Kind::Text),
                (t, Kind::Text) => (Term::Casei(Box::new(t)), Kind::Text),
                (_, k) => return Err(FilterError::Type(format!("CASEI takes text, not {}", k.name()))),
            },
        })
    }

    /// The two operands as terms of one type. Two conversions make what clients send work: the
    /// numbers 0 and 1 against a boolean property (GDAL reads booleans as integers), and a text
    /// date `YYYY-MM-DD` (or GDAL's `YYYY-MM-DDT`) against a date property.
    fn unify(&self, a: (Term, Kind), b: (Term, Kind), what: &str) -> Result<(Term, Term), FilterError> {
        let convert = |t: &Term, from: Kind, to: Kind| -> Option<Term> {
            match (t, from, to) {
                (Term::Lit(Lit::Number(n)), Kind::Number, Kind::Bool) if *n == 0.0 || *n == 1.0 => {
                    Some(Term::Lit(Lit::Bool(*n == 1.0)))
                }
                (Term::Lit(Lit::Text(s)), Kind::Text, Kind::Date) => {
                    let s = s.strip_suffix('T').unwrap_or(s);
                    (s.len() == 10)
                        .then(|| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
                        .flatten()
                        .map(|d| Term::Lit(Lit::Date(d)))
                }
                _ => None,
            }
        };
        let ((ta, ka), (tb, kb)) = (a, b);
        if ka == kb {
            return Ok((ta, tb));
        }
        if let Some(tb) = convert(&tb, kb, ka) {
            return Ok((ta, tb));
        }
        if let Some(ta) = convert(&ta, ka, kb) {
            return Ok((ta, tb));
        }
        Err(FilterError::Type(format!(
            "{what}: {} is {} and {} is {}; both sides must be of one type",
            self.describe(&ta),
            ka.name(),
            self.describe(&tb),
            kb.name()
        )))
    }

    fn describe(&self, t: &Term) -> String {
        match t {
            Term::Slot(s) => format!("'{}'", clip(&self.slots[*s].name, 60)),
            Term::Lit(Lit::Text(s)) => crate::core::text::quote(&clip(s, 40)),
            Term::Lit(Lit::Number(n)) => n.to_string(),
            Term::Lit(Lit::Bool(b)) => b.to_string().to_uppercase(),
            Term::Lit(Lit::Date(d)) => format!("DATE('{d}')"),
            Term::Lit(Lit::Timestamp(t)) => format!("TIMESTAMP('{}')", t.to_rfc3339()),
            Term::Casei(inner) => format!("CASEI({})", self.describe(inner)),
        }
    }

    fn expr(&mut self, e: &Expr) -> Result<Node, FilterError> {
        Ok(match e {
            Expr::And(v) => Node::And(v.iter().map(|e| self.expr(e)).collect::<Result<_, _>>()?),
            Expr::Or(v) => Node::Or(v.iter().map(|e| self.expr(e)).collect::<Result<_, _>>()?),
            Expr::Not(e) => Node::Not(Box::new(self.expr(e)?)),
            Expr::Bool(b) => Node::Const(*b),
            Expr::Compare { op, left, right } => {
                let (l, r) = (self.operand(left)?, self.operand(right)?);
                let (left, right) = self.unify(l, r, op.symbol())?;
                Node::Compare { op: *op, left, right }
            }
            Expr::Like { value, pattern, negated } => {
                let (v, vk) = self.operand(value)?;
                let (p, pk) = self.operand(pattern)?;
                for (t, k) in [(&v, vk), (&p, pk)] {
                    if k != Kind::Text {
                        return Err(FilterError::Type(format!(
                            "LIKE compares text; {} is {}",
                            self.describe(t),
                            k.name()
                        )));
                    }
                }
                let pattern = match p {
                    Term::Lit(Lit::Text(s)) => PatternTerm::Fixed(Pattern::new(&s).map_err(FilterError::Type)?),
                    other => PatternTerm::Dynamic(other),
                };
                Node::Like { value: v, pattern, negated: *negated }
            }
            Expr::Between { value, low, high, negated } => {
                let v = self.operand(value)?;
                let kind = v.1;
                if !matches!(kind, Kind::Number | Kind::Date | Kind::Timestamp) {
                    return Err(FilterError::Type(format!(
                        "BETWEEN compares numbers or dates; {} is {}",
                        self.describe(&v.0),
                        kind.name()
                    )));
                }
                let (l, h) = (self.operand(low)?, self.operand(high)?);
                let (value, low) = self.unify(v.clone(), l, "BETWEEN")?;
                let (_, high) = self.unify(v, h, "BETWEEN")?;
                Node::Between { value, low, high, negated: *negated }
            }
            Expr::In { value, list, negated } => {
                let v = self.operand(value)?;
                let mut terms = Vec::with_capacity(list.len());
                for item in list {
                    let item = self.operand(item)?;
                    terms.push(self.unify(v.clone(), item, "IN")?.1);
                }
                Node::In { value: v.0, list: terms, negated: *negated }
            }
            Expr::IsNull { value, negated } => Node::IsNull { value: self.operand(value)?.0, negated: *negated },
            Expr::Intersects(a, b) => match (self.spatial(a)?, self.spatial(b)?) {
                (None, None) => Node::Const(true),
                (Some(g), None) | (None, Some(g)) => {
                    let envelope = g.bounding_rect().map(|r| [r.min().x, r.min().y, r.max().x, r.max().y]);
                    match envelope {
                        // An empty geometry intersects nothing.
                        None => Node::Const(false),
                        Some(envelope) => Node::Intersects { geometry: Box::new(g), envelope },
                    }
                }
                (Some(a), Some(b)) => Node::Const(a.intersects(&b)),
            },
        })
    }

    /// `None` for the feature geometry, else the literal (checked to be CRS84 lon/lat).
    fn spatial(&self, s: &Spatial) -> Result<Option<Geometry<f64>>, FilterError> {
        match s {
            Spatial::Property(name) if name == GEOMETRY => Ok(None),
            Spatial::Property(name) if self.c.property(name).is_some() => Err(FilterError::Type(format!(
                "'{}' is not a geometry; the geometry queryable is '{GEOMETRY}'",
                clip(name, 60)
            ))),
            Spatial::Property(name) => Err(self.unknown(name)),
            Spatial::Literal(g) => {
                let outside =
                    g.coords_iter().find(|c| !((-180.0..=180.0).contains(&c.x) && (-90.0..=90.0).contains(&c.y)));
                if let Some(c) = outside {
                    return Err(FilterError::Geometry(format!(
                        "the position ({} {}) is not a CRS84 longitude/latitude (longitude first, -180..180; \
                         latitude -90..90); filter-crs other than CRS84 is not supported",
                        c.x, c.y
                    )));
                }
                Ok(Some(g.clone()))
            }
        }
    }
}

/// A `LIKE` pattern: `%` any run of characters, `_` one character, `\` escapes the next one.
#[derive(Debug, Clone, PartialEq)]
struct Pattern(Vec<Piece>);

#[derive(Debug, Clone, Copy, PartialEq)]
enum Piece {
    Char(char),
    One,
    Any,
}

impl Pattern {
    fn new(s: &str) -> Result<Pattern, String> {
        let mut out = Vec::with_capacity(s.len());
        let mut chars = s.chars();
        while let Some(c) = chars.next() {
            out.push(match c {
                '%' => Piece::Any,
                '_' => Piece::One,
                '\\' => match chars.next() {
                    Some(c) => Piece::Char(c),
                    None => {
                        return Err(format!(
                            "the LIKE pattern {} ends with the escape character \\ (write \\\\ for a backslash)",
                            crate::core::text::quote(&clip(s, 40))
                        ));
                    }
                },
                c => Piece::Char(c),
            });
        }
        Ok(Pattern(out))
    }

    /// Whether `text` matches: greedy on `%` with backtracking to the last `%` only, so the
    /// cost is at most the product of the two lengths. Walks the text in place (no copy per
    /// feature).
    fn matches(&self, text: &str) -> bool {
        let p = &self.0;
        let next = |at: usize| text.get(at..).and_then(|rest| rest.chars().next());
        // `ti` is a byte offset into `text`; `star` the last `%` and where its match ends.
        let (mut ti, mut pi) = (0, 0);
        let mut star: Option<(usize, usize)> = None;
        while let Some(c) = next(ti) {
            match p.get(pi) {
                Some(Piece::Char(x)) if *x == c => {
                    ti += c.len_utf8();
                    pi += 1;
                }
                Some(Piece::One) => {
                    ti += c.len_utf8();
                    pi += 1;
                }
                Some(Piece::Any) => {
                    star = Some((pi, ti));
                    pi += 1;
                }
                _ => match star.and_then(|(sp, st)| next(st).map(|c| (sp, st + c.len_utf8()))) {
                    Some((sp, st)) => {
                        pi = sp + 1;
                        ti = st;
                        star = Some((sp, st));
                    }
                    None => return false,
                },
            }
        }
        p[pi..].iter().all(|x| *x == Piece::Any)
    }
}

/// A stored property value of one feature, as a filter reads it.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Cell {
    Null,
    Bool(bool),
    Number(f64),
    Text(Box<str>),
}

impl Cell {
    fn of(v: &Value) -> Cell {
        match v {
            Value::Null => Cell::Null,
            Value::Bool(b) => Cell::Bool(*b),
            Value::Number(n) => n.as_f64().map_or(Cell::Null, Cell::Number),
            Value::String(s) => Cell::Text(s.as_str().into()),
            // Nested values compare as their JSON text (their queryable type is string).
            other => Cell::Text(other.to_string().into()),
        }
    }
}

/// One property's values, by feature position.
pub(super) type Column = Vec<Cell>;

/// The values of property `name` of every feature, read from the stored JSON (once per build of
/// the features; ~110,000 features in well under a second, on every core).
fn column(c: &Collection, name: &str) -> Column {
    let features: Vec<&Feature> = c.features.iter().map(|f| &**f).collect();
    let parts = par_chunks(&features, |part| {
        part.iter().map(|f| f.props.value(name).map_or(Cell::Null, pick_value)).collect::<Vec<_>>()
    });
    parts.into_iter().flatten().collect()
}

/// One property's value from its JSON text.
fn pick_value(json: &str) -> Cell {
    serde_json::from_str::<Value>(json).map_or(Cell::Null, |v| Cell::of(&v))
}

/// Where a slot's values come from, resolved for one snapshot.
enum Col<'a> {
    Live(&'a str),
    Date,
    Stored(&'a Column),
    /// The property is gone from this snapshot: always NULL.
    Missing,
}

#[derive(Debug, Clone, PartialEq)]
enum Val<'a> {
    Null,
    Bool(bool),
    Number(f64),
    Text(Cow<'a, str>),
    Date(NaiveDate),
    Timestamp(DateTime<Utc>),
}

impl Val<'_> {
    fn cmp(&self, other: &Val<'_>) -> Option<Ordering> {
        match (self, other) {
            (Val::Bool(a), Val::Bool(b)) => Some(a.cmp(b)),
            (Val::Number(a), Val::Number(b)) => a.partial_cmp(b),
            (Val::Text(a), Val::Text(b)) => Some(a.cmp(b)),
            (Val::Date(a), Val::Date(b)) => Some(a.cmp(b)),
            (Val::Timestamp(a), Val::Timestamp(b)) => Some(a.cmp(b)),
            // NULL, or values of other kinds in a property of mixed kinds: unknown.
            _ => None,
        }
    }
}

/// SQL's three-valued logic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Truth {
    True,
    False,
    Unknown,
}

impl Truth {
    fn of(b: bool) -> Truth {
        if b { Truth::True } else { Truth::False }
    }

    fn not(self) -> Truth {
        match self {
            Truth::True => Truth::False,
            Truth::False => Truth::True,
            Truth::Unknown => Truth::Unknown,
        }
    }

    fn negate_if(self, negated: bool) -> Truth {
        if negated { self.not() } else { self }
    }
}

/// One feature of one snapshot.
struct Row<'a> {
    c: &'a Collection,
    i: usize,
    live: &'a dyn LiveValues,
    columns: &'a [Col<'a>],
}

impl<'a> Row<'a> {
    fn term(&self, t: &'a Term) -> Val<'a> {
        match t {
            Term::Lit(Lit::Bool(b)) => Val::Bool(*b),
            Term::Lit(Lit::Number(n)) => Val::Number(*n),
            Term::Lit(Lit::Text(s)) => Val::Text(Cow::Borrowed(s)),
            Term::Lit(Lit::Date(d)) => Val::Date(*d),
            Term::Lit(Lit::Timestamp(t)) => Val::Timestamp(*t),
            Term::Casei(inner) => match self.term(inner) {
                Val::Text(s) => Val::Text(Cow::Owned(s.to_lowercase())),
                other => other,
            },
            Term::Slot(s) => match &self.columns[*s] {
                Col::Live(name) => match self.live.value(self.c.id, self.i, name) {
                    Some(v) => match Cell::of(&v) {
                        Cell::Null => Val::Null,
                        Cell::Bool(b) => Val::Bool(b),
                        Cell::Number(n) => Val::Number(n),
                        Cell::Text(t) => Val::Text(Cow::Owned(t.into())),
                    },
                    None => Val::Null,
                },
                Col::Date => self.c.features.get(self.i).and_then(|f| f.date).map_or(Val::Null, Val::Date),
                Col::Stored(column) => match column.get(self.i) {
                    Some(Cell::Bool(b)) => Val::Bool(*b),
                    Some(Cell::Number(n)) => Val::Number(*n),
                    Some(Cell::Text(t)) => Val::Text(Cow::Borrowed(t)),
                    Some(Cell::Null) | None => Val::Null,
                },
                Col::Missing => Val::Null,
            },
        }
    }

    fn compare(&self, a: &'a Term, b: &'a Term, test: impl Fn(Ordering) -> bool) -> Truth {
        self.term(a).cmp(&self.term(b)).map_or(Truth::Unknown, |o| Truth::of(test(o)))
    }

    fn eval(&self, n: &'a Node) -> Truth {
        match n {
            Node::And(v) => {
                let mut out = Truth::True;
                for n in v {
                    match self.eval(n) {
                        Truth::False => return Truth::False,
                        Truth::Unknown => out = Truth::Unknown,
                        Truth::True => {}
                    }
                }
                out
            }
            Node::Or(v) => {
                let mut out = Truth::False;
                for n in v {
                    match self.eval(n) {
                        Truth::True => return Truth::True,
                        Truth::Unknown => out = Truth::Unknown,
                        Truth::False => {}
                    }
                }
                out
            }
            Node::Not(n) => self.eval(n).not(),
            Node::Const(b) => Truth::of(*b),
            Node::Compare { op, left, right } => self.compare(left, right, |o| match op {
                CompareOp::Eq => o == Ordering::Equal,
                CompareOp::Ne => o != Ordering::Equal,
                CompareOp::Lt => o == Ordering::Less,
                CompareOp::Le => o != Ordering::Greater,
                CompareOp::Gt => o == Ordering::Greater,
                CompareOp::Ge => o != Ordering::Less,
            }),
            Node::Like { value, pattern, negated } => {
                let Val::Text(text) = self.term(value) else { return Truth::Unknown };
                let hit = match pattern {
                    PatternTerm::Fixed(p) => p.matches(&text),
                    PatternTerm::Dynamic(t) => match self.term(t) {
                        Val::Text(p) => match Pattern::new(&p) {
                            Ok(p) => p.matches(&text),
                            Err(_) => return Truth::Unknown,
                        },
                        _ => return Truth::Unknown,
                    },
                };
                Truth::of(hit).negate_if(*negated)
            }
            Node::Between { value, low, high, negated } => {
                let above = self.compare(value, low, |o| o != Ordering::Less);
                let below = self.compare(value, high, |o| o != Ordering::Greater);
                let inside = match (above, below) {
                    (Truth::False, _) | (_, Truth::False) => Truth::False,
                    (Truth::True, Truth::True) => Truth::True,
                    _ => Truth::Unknown,
                };
                inside.negate_if(*negated)
            }
            Node::In { value, list, negated } => {
                let v = self.term(value);
                let mut out = Truth::False;
                for item in list {
                    match v.cmp(&self.term(item)) {
                        Some(Ordering::Equal) => {
                            out = Truth::True;
                            break;
                        }
                        None => out = Truth::Unknown,
                        Some(_) => {}
                    }
                }
                out.negate_if(*negated)
            }
            Node::IsNull { value, negated } => Truth::of(self.term(value) == Val::Null).negate_if(*negated),
            Node::Intersects { geometry, envelope } => {
                let Some(f) = self.c.features.get(self.i) else { return Truth::Unknown };
                let Some(e) = f.envelope else { return Truth::False };
                let [x0, y0, x1, y1] = *envelope;
                if e[0] > x1 || e[2] < x0 || e[1] > y1 || e[3] < y0 {
                    return Truth::False;
                }
                Truth::of(match &f.shape {
                    Shape::Point(x, y) => geometry.intersects(&Coord { x: *x, y: *y }),
                    Shape::Area(mp) => geometry.intersects(&**mp),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{ItemQuery, Place, SCHOOL_READINESS};
    use super::*;
    use serde_json::{Map, json};
    use std::sync::Arc;

    /// Five points along the equator with a mix of values and nulls; `live` is read from
    /// [`live`], not from the stored JSON (which says 0).
    fn places() -> Collection {
        let rows = [
            json!({"name": "Alvarado", "live": 0, "score": 1.5, "flag": true, "note": "x", "a": 1, "b": 2, "pat": "Al%"}),
            json!({"name": "alameda", "live": 0, "score": 2.5, "flag": false, "note": null, "a": 3, "b": 2, "pat": "zz"}),
            json!({"name": "Bonnie_Brae", "live": 0, "score": 3.5, "flag": true, "note": "y", "a": 2, "b": 2, "pat": "B%"}),
            json!({"name": "100% Park", "live": 0, "score": null, "flag": null, "note": "x", "a": null, "b": 1, "pat": null}),
            json!({"name": null, "live": 0, "score": 5.0, "flag": false, "note": "z", "a": 5, "b": 9, "pat": "%"}),
        ];
        let maps: Vec<Map<String, Value>> = rows.iter().map(|r| r.as_object().unwrap().clone()).collect();
        let features = maps
            .iter()
            .enumerate()
            .map(|(i, m)| Arc::new(Feature::new(&format!("p{i}"), &Place::point(i as f64, 0.0), m, &mut None)))
            .collect();
        Collection::new("places", "Places", "test", GeometryKind::Point, features, &maps, &["live"])
    }

    fn live(_: &str, i: usize, name: &str) -> Option<Value> {
        (name == "live").then(|| json!(i * 10))
    }

    fn ids(c: &Collection, text: &str) -> Vec<usize> {
        let f = Filter::parse(c, text, Lang::Text).unwrap_or_else(|e| panic!("{text}: {e}"));
        let q = ItemQuery { filter: Some(Arc::new(f)), ..ItemQuery::default() };
        c.query(&q, &live).unwrap().page(0, 100)
    }

    fn refused(c: &Collection, text: &str) -> String {
        Filter::parse(c, text, Lang::Text).unwrap_err().to_string()
    }

    #[test]
    fn comparisons() {
        let c = places();
        assert_eq!(ids(&c, "score = 2.5"), [1]);
        assert_eq!(ids(&c, "score <> 2.5"), [0, 2, 4], "NULL is neither equal nor unequal");
        assert_eq!(ids(&c, "score < 3"), [0, 1]);
        assert_eq!(ids(&c, "score <= 3.5"), [0, 1, 2]);
        assert_eq!(ids(&c, "score > 3.5"), [4]);
        assert_eq!(ids(&c, "score >= 3.5"), [2, 4]);
        assert_eq!(ids(&c, "name = 'alameda'"), [1]);
        assert_eq!(ids(&c, "name > 'B'"), [1, 2], "code point order: lower case after upper");
        assert_eq!(ids(&c, "flag = TRUE"), [0, 2]);
        assert_eq!(ids(&c, "flag = 0"), [1, 4], "GDAL's 0/1 for booleans");
        assert_eq!(ids(&c, "TRUE"), [0, 1, 2, 3, 4]);
        assert_eq!(ids(&c, "2.5 = score"), [1], "literal first");
        assert_eq!(ids(&c, "a > b"), [1], "property-property");
        assert_eq!(ids(&c, "a = b"), [2]);
    }

    #[test]
    fn live_values_come_from_the_snapshot() {
        let c = places();
        assert_eq!(ids(&c, "live >= 20"), [2, 3, 4]);
        assert_eq!(ids(&c, "live = 0"), [0]);
    }

    #[test]
    fn null_logic() {
        let c = places();
        assert_eq!(ids(&c, "note = 'x'"), [0, 3]);
        assert_eq!(ids(&c, "NOT note = 'x'"), [2, 4], "NOT unknown is unknown");
        assert_eq!(ids(&c, "note = 'x' OR score > 4"), [0, 3, 4]);
        assert_eq!(ids(&c, "note <> 'x' AND flag = FALSE"), [4]);
        assert_eq!(ids(&c, "note IS NULL"), [1]);
        assert_eq!(ids(&c, "note IS NOT NULL"), [0, 2, 3, 4]);
        assert_eq!(ids(&c, "NOT (score > 2 OR flag = TRUE)"), [0usize; 0], "unknown OR false stays unknown");
        assert_eq!(ids(&c, "NOT (score > 2 AND flag = TRUE)"), [0, 1, 4], "false AND unknown is false");
    }

    #[test]
    fn like_in_between_casei() {
        let c = places();
        assert_eq!(ids(&c, "name LIKE 'A%'"), [0]);
        assert_eq!(ids(&c, "name NOT LIKE 'A%'"), [1, 2, 3], "NULL names are neither");
        assert_eq!(ids(&c, "CASEI(name) LIKE CASEI('A%')"), [0, 1]);
        assert_eq!(ids(&c, "CASEI(name) = casei('ALAMEDA')"), [1]);
        assert_eq!(ids(&c, "name LIKE '%\\_%'"), [2], "escaped underscore");
        assert_eq!(ids(&c, "name LIKE '100\\%%'"), [3], "escaped percent");
        assert_eq!(ids(&c, "name LIKE '_lameda'"), [1]);
        assert_eq!(ids(&c, "name LIKE pat"), [0, 2], "a pattern from a property");
        assert_eq!(ids(&c, "note IN ('x', 'z')"), [0, 3, 4]);
        assert_eq!(ids(&c, "note NOT IN ('x', 'z')"), [2]);
        assert_eq!(ids(&c, "a IN (1, b)"), [0, 2], "items may be properties");
        assert_eq!(ids(&c, "score BETWEEN 2 AND 3.5"), [1, 2]);
        assert_eq!(ids(&c, "score NOT BETWEEN 2 AND 3.5"), [0, 4]);
        assert_eq!(ids(&c, "a BETWEEN b AND 4"), [1, 2]);
    }

    #[test]
    fn spatial() {
        let c = places();
        assert_eq!(ids(&c, "S_INTERSECTS(geometry, BBOX(0.5, -1, 2.5, 1))"), [1, 2]);
        assert_eq!(ids(&c, "S_INTERSECTS(POLYGON((2.5 -1, 4.5 -1, 4.5 1, 2.5 -1)), geometry) AND name IS NULL"), [4]);
        assert_eq!(ids(&c, "S_INTERSECTS(geometry, POINT(3 0))"), [3]);
        assert_eq!(ids(&c, "S_INTERSECTS(geometry, LINESTRING(0 -1, 0 1))"), [0]);
        assert_eq!(ids(&c, "NOT S_INTERSECTS(geometry, BBOX(0.5, -1, 10, 1))"), [0]);
        assert_eq!(ids(&c, "S_INTERSECTS(geometry, POINT EMPTY)"), [0usize; 0]);
        let f = Filter::parse(&c, "S_INTERSECTS(geometry, BBOX(0.5, -1, 2.5, 1)) AND score > 0", Lang::Text).unwrap();
        assert_eq!(f.envelope(), Some([0.5, -1.0, 2.5, 1.0]));
        assert!(refused(&c, "S_INTERSECTS(geometry, POINT(34 -118))").contains("CRS84"));
        assert!(refused(&c, "S_INTERSECTS(name, POINT(0 0))").contains("not a geometry"));
        assert!(refused(&c, "geometry = 1").contains("S_INTERSECTS"));
    }

    #[test]
    fn json_and_text_agree() {
        let c = places();
        for (text, json) in [
            (
                "score > 2 AND flag = FALSE",
                json!({"op": "and", "args": [
                {"op": ">", "args": [{"property": "score"}, 2]},
                {"op": "=", "args": [{"property": "flag"}, false]}]}),
            ),
            ("NOT note IS NULL", json!({"op": "not", "args": [{"op": "isNull", "args": [{"property": "note"}]}]})),
            (
                "CASEI(name) LIKE 'a%'",
                json!({"op": "like", "args": [{"op": "casei", "args": [{"property": "name"}]}, "a%"]}),
            ),
            (
                "S_INTERSECTS(geometry, BBOX(0.5, -1, 2.5, 1))",
                json!({"op": "s_intersects", "args": [{"property": "geometry"}, {"bbox": [0.5, -1, 2.5, 1]}]}),
            ),
            ("note IN ('x')", json!({"op": "in", "args": [{"property": "note"}, ["x"]]})),
        ] {
            let f = Filter::parse(&c, &json.to_string(), Lang::Json).unwrap();
            let q = ItemQuery { filter: Some(Arc::new(f)), ..ItemQuery::default() };
            assert_eq!(c.query(&q, &live).unwrap().page(0, 100), ids(&c, text), "{text}");
        }
    }

    #[test]
    fn dates() {
        let rows: Vec<Map<String, Value>> = ["2025-01-15", "2025-03-01", "2025-06-30"]
            .iter()
            .map(|d| json!({"date": d, "value": 1}).as_object().unwrap().clone())
            .chain([json!({"date": null, "value": 1}).as_object().unwrap().clone()])
            .collect();
        let features = rows
            .iter()
            .enumerate()
            .map(|(i, m)| Arc::new(Feature::new(&i.to_string(), &Place::point(0.0, 0.0), m, &mut None)))
            .collect();
        let c = Collection::new(SCHOOL_READINESS, "t", "t", GeometryKind::Point, features, &rows, &[]);
        assert_eq!(c.queryables().iter().find(|q| q.name == "date").map(|q| q.kind), Some(QueryableKind::Date));
        assert_eq!(ids(&c, "date >= DATE('2025-03-01')"), [1, 2]);
        assert_eq!(ids(&c, "date < '2025-03-01T'"), [0], "GDAL writes dates with a trailing T");
        assert_eq!(ids(&c, "date BETWEEN '2025-01-01' AND DATE('2025-03-01')"), [0, 1]);
        assert_eq!(ids(&c, "date IS NULL"), [3]);
        assert!(refused(&c, "date > TIMESTAMP('2025-01-01T00:00:00Z')").contains("a timestamp"));
        assert!(refused(&c, "date > 'soon'").contains("one type"));
    }

    #[test]
    fn refusals_name_the_problem() {
        let c = places();
        let e = refused(&c, "nmae = 'x'");
        assert!(
            e.contains("\"nmae\" is not a queryable of collection 'places'") && e.contains("geometry, a, b, flag"),
            "{e}"
        );
        assert!(e.contains("/collections/places/queryables"), "{e}");
        assert!(refused(&c, "score = 'high'").contains("'score' is a number and \"high\" is text"));
        assert!(refused(&c, "flag = 2").contains("one type"));
        assert!(refused(&c, "score LIKE '1%'").contains("LIKE compares text"));
        assert!(refused(&c, "name BETWEEN 'a' AND 'b'").contains("BETWEEN compares numbers"));
        assert!(refused(&c, "CASEI(score) = 1").contains("CASEI takes text"));
        assert!(refused(&c, "name LIKE 'x\\'").contains("escape character"));
        let e = refused(&c, &format!("{} = 1", "q".repeat(5_000)));
        assert!(e.len() < 700, "{}", e.len());
    }

    #[test]
    fn columns_are_read_without_parsing_every_value() {
        let map: Map<String, Value> = serde_json::from_str(r#"{"a":{"deep":[1,2]},"name":"O\"Neil","n":3}"#).unwrap();
        let f = Feature::new("x", &Place::point(0.0, 0.0), &map, &mut None);
        let pick = |name: &str| f.props.value(name).map_or(Cell::Null, pick_value);
        assert_eq!(pick("name"), Cell::Text("O\"Neil".into()));
        assert_eq!(pick("n"), Cell::Number(3.0));
        assert_eq!(pick("a"), Cell::Text("{\"deep\":[1,2]}".into()));
        assert_eq!(pick("missing"), Cell::Null);
    }

    use proptest::prelude::*;

    proptest! {
        /// Any text is parsed or refused with a short message, never a panic; what parses
        /// binds or is refused, and what binds evaluates.
        #[test]
        fn any_text_is_parsed_or_refused_briefly(raw in prop_oneof![
            "[a-z ()'=<>%_,.0-9-]{0,60}",
            "(name|score|flag|note|a|b|geometry|AND|OR|NOT|LIKE|IN|IS|NULL|BETWEEN|S_INTERSECTS|BBOX|POINT|CASEI|TRUE|\\(|\\)|,|=|<>|<|'x'|1|-2\\.5| ){0,30}",
            "\\PC{0,80}",
        ]) {
            let c = places();
            match Filter::parse(&c, &raw, Lang::Text) {
                Ok(f) => { f.select(&c, &live, &[0, 1, 2, 3, 4]); }
                Err(e) => prop_assert!(e.to_string().len() < 1_000, "{}", e),
            }
            if let Err(e) = Filter::parse(&c, &raw, Lang::Json) {
                prop_assert!(e.to_string().len() < 1_000, "{}", e);
            }
        }
    }

    #[test]
    fn like_patterns() {
        let m = |p: &str, t: &str| Pattern::new(p).unwrap().matches(t);
        assert!(m("A%", "Alvarado") && !m("A%", "alvarado") && m("%", "") && m("%%", "x"));
        assert!(m("_a_", "bat") && !m("_a_", "at") && !m("_a_", "bats"));
        assert!(m("%ar%", "Alvarado") && m("%o", "Alvarado") && !m("%x%", "Alvarado"));
        assert!(m("a%b%c", "aXbYc") && !m("a%b%c", "aXbY"));
        assert!(m("100\\%", "100%") && !m("100\\%", "1000") && m("a\\_b", "a_b") && !m("a\\_b", "axb"));
        assert!(m("c:\\\\%", "c:\\temp"));
        assert!(m("ñ_", "ñé"), "characters, not bytes");
        assert!(Pattern::new("50\\").is_err());
        // Backtracking stays bounded: a long text against a pattern of many %.
        let long = "a".repeat(5_000);
        assert!(!m("%a%a%a%a%b", &long));
    }

    #[test]
    fn three_valued_logic() {
        use Truth::*;
        assert_eq!(Unknown.not(), Unknown);
        assert_eq!(Truth::of(true).negate_if(true), False);
    }
}
