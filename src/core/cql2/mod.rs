//! CQL2 (OGC 21-065r2), the filter language of OGC API – Features Part 3: the expression tree
//! and its two encodings, [`parse_text`] (cql2-text) and [`parse_json`] (cql2-json). Only the
//! language lives here; what a property means and how a feature is tested is the app layer's
//! (`app::layers::filter`).
//!
//! The subset read is what the service evaluates: logical operators, comparisons, `LIKE`,
//! `BETWEEN`, `IN`, `IS NULL`, `CASEI`, and `S_INTERSECTS` with a geometry literal (WKT or
//! GeoJSON, or a `BBOX`). Anything else of CQL2 (arithmetic, other functions, temporal and array
//! operators, `ACCENTI`) is refused with a message naming it, never misread.
//!
//! Geometry literals keep the coordinates as written: CRS84 longitude/latitude unless the
//! request's `filter-crs` said otherwise (see [`Expr::geometries_mut`]).

mod json;
mod text;

pub use json::parse_json;
pub use text::parse_text;

use chrono::{DateTime, NaiveDate, Utc};
use geo::Geometry;

/// Deepest nesting of parentheses (or JSON objects) read: deeper input is refused instead of
/// exhausting the stack. GDAL writes `((a) AND (b)) AND (c)` for a chain of `AND`s, one level
/// per term, so this is far more than any real filter uses.
pub const MAX_DEPTH: usize = 100;

/// A CQL2 boolean expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// All of them (`AND`).
    And(Vec<Expr>),
    /// Any of them (`OR`).
    Or(Vec<Expr>),
    /// `NOT`.
    Not(Box<Expr>),
    /// `TRUE` or `FALSE`.
    Bool(bool),
    /// `left op right`.
    Compare {
        /// The operator.
        op: CompareOp,
        /// Left operand.
        left: Operand,
        /// Right operand.
        right: Operand,
    },
    /// `value [NOT] LIKE pattern`: `%` matches any run of characters, `_` one character, and
    /// `\` makes the next character literal.
    Like {
        /// The text tested.
        value: Operand,
        /// The pattern.
        pattern: Operand,
        /// `NOT LIKE`.
        negated: bool,
    },
    /// `value [NOT] BETWEEN low AND high` (both ends included).
    Between {
        /// The value tested.
        value: Operand,
        /// Lower end.
        low: Operand,
        /// Upper end.
        high: Operand,
        /// `NOT BETWEEN`.
        negated: bool,
    },
    /// `value [NOT] IN (a, b, ...)`.
    In {
        /// The value tested.
        value: Operand,
        /// The list.
        list: Vec<Operand>,
        /// `NOT IN`.
        negated: bool,
    },
    /// `value IS [NOT] NULL`.
    IsNull {
        /// The value tested.
        value: Operand,
        /// `IS NOT NULL`.
        negated: bool,
    },
    /// `S_INTERSECTS(a, b)`.
    Intersects(Spatial, Spatial),
}

/// A binary comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    /// `=`
    Eq,
    /// `<>`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

impl CompareOp {
    /// The operator as cql2-text writes it.
    pub fn symbol(self) -> &'static str {
        match self {
            CompareOp::Eq => "=",
            CompareOp::Ne => "<>",
            CompareOp::Lt => "<",
            CompareOp::Le => "<=",
            CompareOp::Gt => ">",
            CompareOp::Ge => ">=",
        }
    }
}

/// A scalar operand: a property or a literal.
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    /// A property (queryable) by name.
    Property(String),
    /// A character literal.
    Text(String),
    /// A numeric literal.
    Number(f64),
    /// `TRUE` / `FALSE`.
    Bool(bool),
    /// `DATE('YYYY-MM-DD')`.
    Date(NaiveDate),
    /// `TIMESTAMP('YYYY-MM-DDThh:mm:ssZ')`.
    Timestamp(DateTime<Utc>),
    /// `CASEI(x)`: `x` compared without regard to case.
    Casei(Box<Operand>),
}

/// An operand of a spatial predicate.
#[derive(Debug, Clone, PartialEq)]
pub enum Spatial {
    /// A geometry-valued property (queryable) by name.
    Property(String),
    /// A geometry literal (WKT, GeoJSON or a bounding box), coordinates as written.
    Literal(Geometry<f64>),
}

impl Expr {
    /// Every geometry literal, to be changed in place: the hook for `filter-crs`, where the
    /// literals are reprojected to CRS84 before the filter is bound to a collection.
    pub fn geometries_mut(&mut self) -> Vec<&mut Geometry<f64>> {
        let mut out = Vec::new();
        self.collect_geometries(&mut out);
        out
    }

    fn collect_geometries<'a>(&'a mut self, out: &mut Vec<&'a mut Geometry<f64>>) {
        match self {
            Expr::And(v) | Expr::Or(v) => v.iter_mut().for_each(|e| e.collect_geometries(out)),
            Expr::Not(e) => e.collect_geometries(out),
            Expr::Intersects(a, b) => {
                for s in [a, b] {
                    if let Spatial::Literal(g) = s {
                        out.push(g);
                    }
                }
            }
            _ => {}
        }
    }
}

/// The encoding of a filter (`filter-lang`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// `cql2-text` (the default).
    Text,
    /// `cql2-json`.
    Json,
}

impl Lang {
    /// The `filter-lang` values read: the two of Part 3, and `cql-text`, the pre-standard name
    /// GDAL up to 3.8 sends (its CQL is a subset of cql2-text).
    pub const NAMES: [&'static str; 3] = ["cql2-text", "cql2-json", "cql-text"];

    /// The language a `filter-lang` value names.
    pub fn from_name(name: &str) -> Option<Lang> {
        match name {
            "cql2-text" | "cql-text" => Some(Lang::Text),
            "cql2-json" => Some(Lang::Json),
            _ => None,
        }
    }
}

/// Parse a filter in `lang`.
pub fn parse(input: &str, lang: Lang) -> Result<Expr, Cql2Error> {
    match lang {
        Lang::Text => parse_text(input),
        Lang::Json => parse_json(input),
    }
}

/// Why a filter does not parse. Messages say where (a character position, or a JSON pointer)
/// and quote at most a short piece of the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Cql2Error {
    /// cql2-text that is not CQL2 (or uses a part of CQL2 that is not supported).
    #[error("cql2-text: {message} at character {at} (line {line}, column {column}){near}")]
    Text {
        /// 1-based character position in the input.
        at: usize,
        /// 1-based line.
        line: usize,
        /// 1-based column (characters).
        column: usize,
        /// What was wrong.
        message: String,
        /// `, near "…"`: a short quote of the input from there (empty at the end).
        near: String,
    },
    /// cql2-json that is not JSON.
    #[error("cql2-json: not JSON: {message} (line {line}, column {column})")]
    JsonSyntax {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// serde_json's reason.
        message: String,
    },
    /// JSON that is not a CQL2 expression (or uses a part of CQL2 that is not supported).
    #[error("cql2-json: {message} at {pointer}")]
    Json {
        /// Where, as a JSON pointer (RFC 6901; `/` is the whole document).
        pointer: String,
        /// What was wrong.
        message: String,
    },
}

/// Longest piece of the input quoted in a message, in characters.
const NEAR: usize = 40;

/// A short quote of `rest` for a message: `, near "…"`, or nothing at the end of the input.
fn near(rest: &str) -> String {
    if rest.is_empty() {
        return ", at the end of the filter".into();
    }
    let piece: String = rest.chars().take(NEAR).collect();
    let more = if rest.chars().nth(NEAR).is_some() { "…" } else { "" };
    format!(", near {}{more}", crate::core::text::quote(&piece))
}
