//! cql2-text: a tokenizer and a recursive-descent parser (precedence `NOT` > `AND` > `OR`), with
//! the WKT and `BBOX` geometry literals. Keywords are case-insensitive; property names are not.

use chrono::{DateTime, NaiveDate, Utc};
use geo::{Coord, Geometry, GeometryCollection, LineString, MultiLineString, MultiPoint, MultiPolygon, Point, Polygon};

use super::{CompareOp, Cql2Error, Expr, MAX_DEPTH, Operand, Spatial, near};

/// Parse a cql2-text filter.
///
/// ```
/// use belong::core::cql2::{parse_text, Expr, CompareOp, Operand};
/// let e = parse_text("residents > 10 AND NOT covered = TRUE").unwrap();
/// assert!(matches!(e, Expr::And(ref v) if v.len() == 2));
/// assert!(parse_text("residents >").unwrap_err().to_string().contains("at the end"));
/// ```
pub fn parse_text(input: &str) -> Result<Expr, Cql2Error> {
    let tokens = lex(input)?;
    let mut p = Parser { src: input, tokens, pos: 0, depth: 0 };
    let e = p.or_expr()?;
    match p.peek() {
        Tok::End => Ok(e),
        _ => Err(p.error("expected AND, OR or the end of the filter")),
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    /// An unquoted name or keyword.
    Word(String),
    /// A `"double-quoted"` property name.
    Quoted(String),
    /// A `'single-quoted'` character literal.
    Str(String),
    Num(f64),
    LParen,
    RParen,
    Comma,
    Cmp(CompareOp),
    /// `+ * / % ^` and a `-` that does not start a number: arithmetic, which is not supported.
    Arith(char),
    /// `[` or `]`: array literals, which are not supported.
    Bracket,
    End,
}

/// A token and the byte offset where it starts.
type Spanned = (Tok, usize);

fn error_at(src: &str, byte: usize, message: impl Into<String>) -> Cql2Error {
    let byte = byte.min(src.len());
    let before = &src[..byte];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    Cql2Error::Text { at: before.chars().count() + 1, line, column, message: message.into(), near: near(&src[byte..]) }
}

fn is_name_start(c: char) -> bool {
    c.is_alphabetic() || c == '_' || c == ':'
}

fn is_name_part(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | ':' | '.') || ('\u{0300}'..='\u{036F}').contains(&c)
}

fn lex(src: &str) -> Result<Vec<Spanned>, Cql2Error> {
    let mut out = Vec::new();
    let mut chars = src.char_indices().peekable();
    while let Some(&(at, c)) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        let next_is_digit = |chars: &std::iter::Peekable<std::str::CharIndices>| {
            let mut it = chars.clone();
            it.next();
            match it.next() {
                Some((_, d)) if d.is_ascii_digit() => true,
                Some((_, '.')) => it.next().is_some_and(|(_, d)| d.is_ascii_digit()),
                _ => false,
            }
        };
        let tok = match c {
            '(' => {
                chars.next();
                Tok::LParen
            }
            ')' => {
                chars.next();
                Tok::RParen
            }
            ',' => {
                chars.next();
                Tok::Comma
            }
            '[' | ']' => {
                chars.next();
                Tok::Bracket
            }
            '=' => {
                chars.next();
                Tok::Cmp(CompareOp::Eq)
            }
            '<' | '>' | '!' => {
                chars.next();
                let second = chars.peek().map(|&(_, c)| c);
                let op = match (c, second) {
                    ('<', Some('=')) => Some(CompareOp::Le),
                    ('<', Some('>')) => Some(CompareOp::Ne),
                    ('>', Some('=')) => Some(CompareOp::Ge),
                    ('!', Some('=')) => Some(CompareOp::Ne),
                    _ => None,
                };
                match op {
                    Some(op) => {
                        chars.next();
                        Tok::Cmp(op)
                    }
                    None if c == '<' => Tok::Cmp(CompareOp::Lt),
                    None if c == '>' => Tok::Cmp(CompareOp::Gt),
                    None => return Err(error_at(src, at, "unexpected character '!' (not equal is <>)")),
                }
            }
            '\'' => {
                chars.next();
                let mut s = String::new();
                loop {
                    match chars.next() {
                        Some((_, '\'')) if chars.peek().is_some_and(|&(_, c)| c == '\'') => {
                            chars.next();
                            s.push('\'');
                        }
                        Some((_, '\'')) => break,
                        Some((_, c)) => s.push(c),
                        None => return Err(error_at(src, at, "unterminated character literal (a ' is missing)")),
                    }
                }
                Tok::Str(s)
            }
            '"' => {
                chars.next();
                let mut s = String::new();
                loop {
                    match chars.next() {
                        Some((_, '"')) if chars.peek().is_some_and(|&(_, c)| c == '"') => {
                            chars.next();
                            s.push('"');
                        }
                        Some((_, '"')) => break,
                        Some((_, c)) => s.push(c),
                        None => return Err(error_at(src, at, "unterminated quoted property name (a \" is missing)")),
                    }
                }
                if s.is_empty() {
                    return Err(error_at(src, at, "empty property name"));
                }
                Tok::Quoted(s)
            }
            '0'..='9' | '.' => number(src, &mut chars)?,
            '+' | '-' if next_is_digit(&chars) => number(src, &mut chars)?,
            '+' | '-' | '*' | '/' | '%' | '^' => {
                chars.next();
                Tok::Arith(c)
            }
            c if is_name_start(c) => {
                let mut s = String::new();
                while let Some(&(_, c)) = chars.peek() {
                    if !is_name_part(c) {
                        break;
                    }
                    s.push(c);
                    chars.next();
                }
                Tok::Word(s)
            }
            c => {
                return Err(error_at(
                    src,
                    at,
                    format!("unexpected character {}", crate::core::text::quote(&c.to_string())),
                ));
            }
        };
        out.push((tok, at));
    }
    out.push((Tok::End, src.len()));
    Ok(out)
}

/// `[sign] digits [. [digits]] [E [sign] digits]`, or `.digits`.
fn number(src: &str, chars: &mut std::iter::Peekable<std::str::CharIndices>) -> Result<Tok, Cql2Error> {
    let start = chars.peek().map_or(src.len(), |&(i, _)| i);
    let mut end = start;
    let mut take = |chars: &mut std::iter::Peekable<std::str::CharIndices>, ok: &dyn Fn(char) -> bool| {
        let mut n = 0;
        while let Some(&(i, c)) = chars.peek() {
            if !ok(c) {
                break;
            }
            end = i + c.len_utf8();
            chars.next();
            n += 1;
        }
        n
    };
    take(chars, &|c| c == '+' || c == '-');
    let int = take(chars, &|c| c.is_ascii_digit());
    let mut frac = 0;
    if chars.peek().is_some_and(|&(_, c)| c == '.') {
        take(chars, &|c| c == '.');
        frac = take(chars, &|c| c.is_ascii_digit());
    }
    if int + frac == 0 {
        return Err(error_at(src, start, "expected a number"));
    }
    if chars.peek().is_some_and(|&(_, c)| c == 'e' || c == 'E') {
        let mut ahead = chars.clone();
        ahead.next();
        let signed = ahead.peek().is_some_and(|&(_, c)| c == '+' || c == '-');
        if signed {
            ahead.next();
        }
        if ahead.peek().is_some_and(|&(_, c)| c.is_ascii_digit()) {
            chars.next();
            if signed {
                take(chars, &|c| c == '+' || c == '-');
            }
            take(chars, &|c| c.is_ascii_digit());
        }
    }
    if chars.peek().is_some_and(|&(_, c)| is_name_part(c)) {
        return Err(error_at(src, start, "a number runs into a name (put a space or an operator between them)"));
    }
    let text = &src[start..end];
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(Tok::Num(v)),
        _ => Err(error_at(src, start, "number out of range")),
    }
}

struct Parser<'a> {
    src: &'a str,
    tokens: Vec<Spanned>,
    pos: usize,
    depth: usize,
}

/// Words that cannot be an unquoted property name.
const RESERVED: [&str; 10] = ["AND", "OR", "NOT", "LIKE", "BETWEEN", "IN", "IS", "NULL", "TRUE", "FALSE"];

impl Parser<'_> {
    fn peek(&self) -> &Tok {
        &self.tokens[self.pos.min(self.tokens.len() - 1)].0
    }

    fn peek2(&self) -> &Tok {
        &self.tokens[(self.pos + 1).min(self.tokens.len() - 1)].0
    }

    fn bump(&mut self) -> Tok {
        let t = self.peek().clone();
        if self.pos < self.tokens.len() - 1 {
            self.pos += 1;
        }
        t
    }

    fn offset(&self) -> usize {
        self.tokens[self.pos.min(self.tokens.len() - 1)].1
    }

    fn error(&self, message: impl Into<String>) -> Cql2Error {
        error_at(self.src, self.offset(), message)
    }

    fn is_word(&self, kw: &str) -> bool {
        matches!(self.peek(), Tok::Word(w) if w.eq_ignore_ascii_case(kw))
    }

    fn eat_word(&mut self, kw: &str) -> bool {
        let yes = self.is_word(kw);
        if yes {
            self.bump();
        }
        yes
    }

    fn expect(&mut self, tok: Tok, what: &str) -> Result<(), Cql2Error> {
        if *self.peek() == tok {
            self.bump();
            Ok(())
        } else {
            Err(self.error(format!("expected {what}")))
        }
    }

    fn enter(&mut self) -> Result<(), Cql2Error> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error(format!("nested more than {MAX_DEPTH} levels deep")));
        }
        Ok(())
    }

    fn or_expr(&mut self) -> Result<Expr, Cql2Error> {
        let mut terms = vec![self.and_expr()?];
        while self.eat_word("OR") {
            terms.push(self.and_expr()?);
        }
        Ok(if terms.len() == 1 { terms.remove(0) } else { Expr::Or(terms) })
    }

    fn and_expr(&mut self) -> Result<Expr, Cql2Error> {
        let mut terms = vec![self.not_expr()?];
        while self.eat_word("AND") {
            terms.push(self.not_expr()?);
        }
        Ok(if terms.len() == 1 { terms.remove(0) } else { Expr::And(terms) })
    }

    fn not_expr(&mut self) -> Result<Expr, Cql2Error> {
        if self.is_word("NOT") {
            self.bump();
            self.enter()?;
            let e = self.not_expr()?;
            self.depth -= 1;
            return Ok(Expr::Not(Box::new(e)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Expr, Cql2Error> {
        if *self.peek() == Tok::LParen {
            self.bump();
            self.enter()?;
            let e = self.or_expr()?;
            self.depth -= 1;
            self.expect(Tok::RParen, "')' to close the '('")?;
            return Ok(e);
        }
        if let (Tok::Word(w), Tok::LParen) = (self.peek(), self.peek2()) {
            let upper = w.to_ascii_uppercase();
            if upper == "S_INTERSECTS" {
                self.bump();
                self.bump();
                let a = self.spatial()?;
                self.expect(Tok::Comma, "',' between the two geometries of S_INTERSECTS")?;
                let b = self.spatial()?;
                self.expect(Tok::RParen, "')' to close S_INTERSECTS")?;
                return Ok(Expr::Intersects(a, b));
            }
            if upper.starts_with("S_") || upper.starts_with("T_") || upper.starts_with("A_") {
                return Err(self.error(format!(
                    "{upper} is not supported; the spatial predicate supported is S_INTERSECTS \
                     (temporal and array predicates are not supported)"
                )));
            }
        }
        let start = self.offset();
        let left = self.operand()?;
        let negated = self.eat_word("NOT");
        let expr = match self.peek().clone() {
            Tok::Cmp(op) if !negated => {
                self.bump();
                Expr::Compare { op, left, right: self.operand()? }
            }
            Tok::Word(w) if w.eq_ignore_ascii_case("LIKE") => {
                self.bump();
                Expr::Like { value: left, pattern: self.operand()?, negated }
            }
            Tok::Word(w) if w.eq_ignore_ascii_case("ILIKE") => {
                return Err(self.error("ILIKE is not CQL2; write CASEI(name) LIKE CASEI('pattern')"));
            }
            Tok::Word(w) if w.eq_ignore_ascii_case("BETWEEN") => {
                self.bump();
                let low = self.operand()?;
                if !self.eat_word("AND") {
                    return Err(self.error("expected AND between the two ends of BETWEEN"));
                }
                Expr::Between { value: left, low, high: self.operand()?, negated }
            }
            Tok::Word(w) if w.eq_ignore_ascii_case("IN") => {
                self.bump();
                self.expect(Tok::LParen, "'(' to open the list of IN")?;
                let mut list = vec![self.operand()?];
                while *self.peek() == Tok::Comma {
                    self.bump();
                    list.push(self.operand()?);
                }
                self.expect(Tok::RParen, "',' or ')' in the list of IN")?;
                Expr::In { value: left, list, negated }
            }
            Tok::Word(w) if w.eq_ignore_ascii_case("IS") && !negated => {
                self.bump();
                let negated = self.eat_word("NOT");
                if !self.eat_word("NULL") {
                    return Err(self.error("expected NULL (IS NULL or IS NOT NULL)"));
                }
                Expr::IsNull { value: left, negated }
            }
            _ if negated => return Err(self.error("expected LIKE, BETWEEN or IN after NOT")),
            Tok::Arith(c) => return Err(self.error(format!("arithmetic ('{c}') is not supported"))),
            _ => match left {
                Operand::Bool(b) => Expr::Bool(b),
                _ => {
                    let what = &self.src[start..self.offset()];
                    return Err(self.error(format!(
                        "expected =, <>, <, <=, >, >=, LIKE, BETWEEN, IN or IS NULL after {}",
                        crate::core::text::quote(what.trim_end())
                    )));
                }
            },
        };
        Ok(expr)
    }

    /// A property, a literal, or `CASEI(...)`.
    fn operand(&mut self) -> Result<Operand, Cql2Error> {
        match self.peek().clone() {
            Tok::Str(s) => {
                self.bump();
                Ok(Operand::Text(s))
            }
            Tok::Num(n) => {
                self.bump();
                Ok(Operand::Number(n))
            }
            Tok::Quoted(name) => {
                self.bump();
                Ok(Operand::Property(name))
            }
            Tok::Word(w) => {
                let upper = w.to_ascii_uppercase();
                if *self.peek2() == Tok::LParen {
                    return self.function(&upper);
                }
                match upper.as_str() {
                    "TRUE" | "FALSE" => {
                        self.bump();
                        Ok(Operand::Bool(upper == "TRUE"))
                    }
                    "NULL" => Err(self.error("NULL is not a value here; test for it with IS NULL")),
                    kw if RESERVED.contains(&kw) => {
                        Err(self.error(format!("expected a property name or a value, found {kw}")))
                    }
                    _ => {
                        self.bump();
                        Ok(Operand::Property(w))
                    }
                }
            }
            Tok::LParen => {
                Err(self.error("expected a property name or a value, found '(' (arithmetic is not supported)"))
            }
            Tok::End => Err(self.error("expected a property name or a value")),
            Tok::Arith(c) => Err(self.error(format!("arithmetic ('{c}') is not supported"))),
            Tok::Bracket => Err(self.error("arrays are not supported")),
            _ => Err(self.error("expected a property name or a value")),
        }
    }

    /// `DATE('…')`, `TIMESTAMP('…')`, `CASEI(…)`; other functions are refused.
    fn function(&mut self, upper: &str) -> Result<Operand, Cql2Error> {
        let at = self.offset();
        match upper {
            "DATE" | "TIMESTAMP" => {
                self.bump();
                self.bump();
                let Tok::Str(s) = self.peek().clone() else {
                    return Err(self.error(format!("expected a quoted {upper} literal, e.g. {upper}('2025-06-01')")));
                };
                let value =
                    if upper == "DATE" { date(&s).map(Operand::Date) } else { timestamp(&s).map(Operand::Timestamp) };
                let value = value.ok_or_else(|| {
                    error_at(self.src, self.offset(), format!("not a valid {upper}: {}", crate::core::text::quote(&s)))
                })?;
                self.bump();
                self.expect(Tok::RParen, &format!("')' to close {upper}"))?;
                Ok(value)
            }
            "CASEI" => {
                self.bump();
                self.bump();
                self.enter()?;
                let inner = self.operand()?;
                self.depth -= 1;
                self.expect(Tok::RParen, "')' to close CASEI")?;
                Ok(Operand::Casei(Box::new(inner)))
            }
            "ACCENTI" => Err(error_at(self.src, at, "ACCENTI is not supported")),
            "INTERVAL" => Err(error_at(self.src, at, "INTERVAL is not supported (temporal predicates are not)")),
            _ => Err(error_at(
                self.src,
                at,
                format!(
                    "function {} is not supported (the functions are CASEI, DATE and TIMESTAMP)",
                    crate::core::text::quote(upper)
                ),
            )),
        }
    }

    fn spatial(&mut self) -> Result<Spatial, Cql2Error> {
        match self.peek().clone() {
            Tok::Quoted(name) => {
                self.bump();
                Ok(Spatial::Property(name))
            }
            Tok::Word(w) => {
                let upper = w.to_ascii_uppercase();
                let geometry_word = matches!(
                    upper.as_str(),
                    "POINT"
                        | "LINESTRING"
                        | "POLYGON"
                        | "MULTIPOINT"
                        | "MULTILINESTRING"
                        | "MULTIPOLYGON"
                        | "GEOMETRYCOLLECTION"
                );
                if upper == "BBOX" || upper == "ENVELOPE" {
                    self.bump();
                    return self.bbox().map(Spatial::Literal);
                }
                if geometry_word {
                    return self.wkt().map(Spatial::Literal);
                }
                if *self.peek2() == Tok::LParen {
                    return Err(self.error(format!("function {} is not supported", crate::core::text::quote(&upper))));
                }
                if RESERVED.contains(&upper.as_str()) {
                    return Err(self.error(format!("expected a geometry or a property name, found {upper}")));
                }
                self.bump();
                Ok(Spatial::Property(w))
            }
            _ => Err(self
                .error("expected a geometry (WKT such as POINT(-118.28 34.05), or BBOX(w,s,e,n)) or a property name")),
        }
    }

    fn number(&mut self, what: &str) -> Result<f64, Cql2Error> {
        match self.peek() {
            Tok::Num(n) => {
                let n = *n;
                self.bump();
                Ok(n)
            }
            _ => Err(self.error(format!("expected {what}"))),
        }
    }

    /// `BBOX(w, s, e, n)` or `BBOX(w, s, zmin, e, n, zmax)` (the heights are ignored); `w > e`
    /// crosses the antimeridian.
    fn bbox(&mut self) -> Result<Geometry<f64>, Cql2Error> {
        self.expect(Tok::LParen, "'(' after BBOX")?;
        let start = self.offset();
        let mut v = vec![self.number("a number")?];
        while *self.peek() == Tok::Comma {
            self.bump();
            v.push(self.number("a number")?);
        }
        self.expect(Tok::RParen, "',' or ')' in BBOX")?;
        bbox_geometry(&v).map_err(|m| error_at(self.src, start, m))
    }

    fn wkt(&mut self) -> Result<Geometry<f64>, Cql2Error> {
        self.enter()?;
        let Tok::Word(w) = self.bump() else { return Err(self.error("expected a geometry")) };
        let kind = w.to_ascii_uppercase();
        // Z, M and ZM tags: heights and measures are read and dropped (the test is 2D).
        for tag in ["ZM", "Z", "M"] {
            if self.eat_word(tag) {
                break;
            }
        }
        if self.eat_word("EMPTY") {
            self.depth -= 1;
            return Ok(Geometry::GeometryCollection(GeometryCollection::default()));
        }
        let g = match kind.as_str() {
            "POINT" => {
                self.expect(Tok::LParen, "'(' after POINT")?;
                let c = self.position()?;
                self.expect(Tok::RParen, "')' to close POINT")?;
                Geometry::Point(Point(c))
            }
            "LINESTRING" => Geometry::LineString(self.line("LINESTRING")?),
            "POLYGON" => Geometry::Polygon(self.polygon()?),
            "MULTIPOINT" => {
                self.expect(Tok::LParen, "'(' after MULTIPOINT")?;
                let mut points = Vec::new();
                loop {
                    // Both MULTIPOINT((1 2), (3 4)) and MULTIPOINT(1 2, 3 4).
                    let c = if *self.peek() == Tok::LParen {
                        self.bump();
                        let c = self.position()?;
                        self.expect(Tok::RParen, "')' after the point")?;
                        c
                    } else {
                        self.position()?
                    };
                    points.push(Point(c));
                    if *self.peek() != Tok::Comma {
                        break;
                    }
                    self.bump();
                }
                self.expect(Tok::RParen, "',' or ')' in MULTIPOINT")?;
                Geometry::MultiPoint(MultiPoint(points))
            }
            "MULTILINESTRING" => {
                let lines = self.list(|p| p.line("a line"))?;
                Geometry::MultiLineString(MultiLineString(lines))
            }
            "MULTIPOLYGON" => Geometry::MultiPolygon(MultiPolygon(self.list(|p| p.polygon())?)),
            "GEOMETRYCOLLECTION" => {
                let members = self.list(|p| match p.peek() {
                    Tok::Word(_) => p.wkt(),
                    _ => Err(p.error("expected a geometry")),
                })?;
                Geometry::GeometryCollection(GeometryCollection(members))
            }
            _ => return Err(self.error("expected a geometry")),
        };
        self.depth -= 1;
        Ok(g)
    }

    /// `x y [z [m]]`.
    fn position(&mut self) -> Result<Coord<f64>, Cql2Error> {
        let x = self.number("a coordinate (a number)")?;
        let y = self.number("a second coordinate (x y)")?;
        // Heights and measures are dropped.
        for _ in 0..2 {
            if let Tok::Num(_) = self.peek() {
                self.bump();
            }
        }
        Ok(Coord { x, y })
    }

    /// `(x y, x y, ...)`.
    fn line(&mut self, what: &str) -> Result<LineString<f64>, Cql2Error> {
        self.expect(Tok::LParen, &format!("'(' to open {what}"))?;
        let mut coords = vec![self.position()?];
        while *self.peek() == Tok::Comma {
            self.bump();
            coords.push(self.position()?);
        }
        self.expect(Tok::RParen, "',' or ')' in a list of positions")?;
        Ok(LineString(coords))
    }

    /// `((ring), (hole), ...)`.
    fn polygon(&mut self) -> Result<Polygon<f64>, Cql2Error> {
        let at = self.offset();
        let mut rings = self.list(|p| p.line("a ring"))?;
        if rings.iter().any(|r| r.0.len() < 4) {
            return Err(error_at(self.src, at, "a polygon ring needs at least 4 positions (first = last)"));
        }
        let exterior = rings.remove(0);
        Ok(Polygon::new(exterior, rings))
    }

    /// `(item, item, ...)`.
    fn list<T>(&mut self, mut item: impl FnMut(&mut Self) -> Result<T, Cql2Error>) -> Result<Vec<T>, Cql2Error> {
        self.expect(Tok::LParen, "'('")?;
        self.enter()?;
        let mut out = vec![item(self)?];
        while *self.peek() == Tok::Comma {
            self.bump();
            out.push(item(self)?);
        }
        self.depth -= 1;
        self.expect(Tok::RParen, "',' or ')'")?;
        Ok(out)
    }
}

/// A date `YYYY-MM-DD`.
pub(super) fn date(s: &str) -> Option<NaiveDate> {
    (s.len() == 10).then(|| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()).flatten()
}

/// An RFC 3339 UTC timestamp `YYYY-MM-DDThh:mm:ss[.fff]Z`.
pub(super) fn timestamp(s: &str) -> Option<DateTime<Utc>> {
    if !s.ends_with('Z') && !s.ends_with('z') {
        return None;
    }
    DateTime::parse_from_rfc3339(s).ok().map(|t| t.with_timezone(&Utc))
}

/// The polygon of a CQL2 bbox: 4 numbers `w, s, e, n` or 6 `w, s, zmin, e, n, zmax`. A west
/// edge east of the east edge crosses the antimeridian: two boxes.
pub(super) fn bbox_geometry(v: &[f64]) -> Result<Geometry<f64>, String> {
    let (w, s, e, n) = match *v {
        [w, s, e, n] => (w, s, e, n),
        [w, s, _, e, n, _] => (w, s, e, n),
        _ => return Err(format!("a bbox has 4 numbers (w, s, e, n) or 6, not {}", v.len())),
    };
    if s > n {
        return Err("the south edge of the bbox is north of its north edge".into());
    }
    let rect = |w: f64, e: f64| geo::Rect::new(Coord { x: w, y: s }, Coord { x: e, y: n }).to_polygon();
    Ok(if w <= e {
        Geometry::Polygon(rect(w, e))
    } else {
        Geometry::MultiPolygon(MultiPolygon(vec![rect(w, 180.0), rect(-180.0, e)]))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prop(s: &str) -> Operand {
        Operand::Property(s.into())
    }

    fn err(s: &str) -> String {
        parse_text(s).unwrap_err().to_string()
    }

    #[test]
    fn precedence_is_not_and_or() {
        let e = parse_text("a = 1 OR b = 2 AND NOT c = 3").unwrap();
        let cmp = |p: &str, n: f64| Expr::Compare { op: CompareOp::Eq, left: prop(p), right: Operand::Number(n) };
        assert_eq!(
            e,
            Expr::Or(vec![cmp("a", 1.0), Expr::And(vec![cmp("b", 2.0), Expr::Not(Box::new(cmp("c", 3.0)))])])
        );
        let grouped = parse_text("(a = 1 OR b = 2) and c = 3").unwrap();
        assert!(matches!(grouped, Expr::And(ref v) if matches!(v[0], Expr::Or(_))));
    }

    #[test]
    fn comparison_operators_and_literals() {
        for (text, op) in [
            ("=", CompareOp::Eq),
            ("<>", CompareOp::Ne),
            ("!=", CompareOp::Ne),
            ("<", CompareOp::Lt),
            ("<=", CompareOp::Le),
            (">", CompareOp::Gt),
            (">=", CompareOp::Ge),
        ] {
            let e = parse_text(&format!("x {text} -1.5e2")).unwrap();
            assert_eq!(e, Expr::Compare { op, left: prop("x"), right: Operand::Number(-150.0) }, "{text}");
        }
        assert_eq!(
            parse_text("name = 'O''Brien'").unwrap(),
            Expr::Compare { op: CompareOp::Eq, left: prop("name"), right: Operand::Text("O'Brien".into()) }
        );
        assert_eq!(
            parse_text("\"my field\" = true").unwrap(),
            Expr::Compare { op: CompareOp::Eq, left: prop("my field"), right: Operand::Bool(true) }
        );
        let d = parse_text("date >= DATE('2025-06-01')").unwrap();
        assert!(matches!(d, Expr::Compare { right: Operand::Date(_), .. }));
        let t = parse_text("t < TIMESTAMP('2025-06-01T10:00:00Z')").unwrap();
        assert!(matches!(t, Expr::Compare { right: Operand::Timestamp(_), .. }));
        assert_eq!(parse_text("TRUE").unwrap(), Expr::Bool(true));
        assert_eq!(
            parse_text("x=.5").unwrap(),
            Expr::Compare { op: CompareOp::Eq, left: prop("x"), right: Operand::Number(0.5) }
        );
    }

    #[test]
    fn advanced_comparisons() {
        assert_eq!(
            parse_text("name NOT LIKE 'A%'").unwrap(),
            Expr::Like { value: prop("name"), pattern: Operand::Text("A%".into()), negated: true }
        );
        assert_eq!(
            parse_text("r BETWEEN 1 AND 5 AND c = 1").unwrap(),
            Expr::And(vec![
                Expr::Between {
                    value: prop("r"),
                    low: Operand::Number(1.0),
                    high: Operand::Number(5.0),
                    negated: false
                },
                Expr::Compare { op: CompareOp::Eq, left: prop("c"), right: Operand::Number(1.0) },
            ])
        );
        assert_eq!(
            parse_text("id IN ('a', 'b')").unwrap(),
            Expr::In {
                value: prop("id"),
                list: vec![Operand::Text("a".into()), Operand::Text("b".into())],
                negated: false
            }
        );
        assert_eq!(parse_text("x IS NOT NULL").unwrap(), Expr::IsNull { value: prop("x"), negated: true });
        assert_eq!(
            parse_text("CASEI(name) LIKE casei('a%')").unwrap(),
            Expr::Like {
                value: Operand::Casei(Box::new(prop("name"))),
                pattern: Operand::Casei(Box::new(Operand::Text("a%".into()))),
                negated: false
            }
        );
    }

    #[test]
    fn spatial_literals() {
        let e = parse_text("S_INTERSECTS(geometry, POINT(-118.28 34.05))").unwrap();
        assert_eq!(
            e,
            Expr::Intersects(
                Spatial::Property("geometry".into()),
                Spatial::Literal(Geometry::Point(Point::new(-118.28, 34.05)))
            )
        );
        for wkt in [
            "LINESTRING(0 0, 1 1)",
            "POLYGON((0 0, 1 0, 1 1, 0 0))",
            "POLYGON Z ((0 0 5, 1 0 5, 1 1 5, 0 0 5))",
            "MULTIPOINT((0 0), (1 1))",
            "MULTIPOINT(0 0, 1 1)",
            "MULTILINESTRING((0 0, 1 1), (2 2, 3 3))",
            "MULTIPOLYGON(((0 0, 1 0, 1 1, 0 0)), ((5 5, 6 5, 6 6, 5 5)))",
            "GEOMETRYCOLLECTION(POINT(0 0), LINESTRING(0 0, 1 1))",
            "BBOX(-118.3, 34.0, -118.2, 34.1)",
            "POINT EMPTY",
        ] {
            let e = parse_text(&format!("s_intersects({wkt}, geometry)")).unwrap_or_else(|e| panic!("{wkt}: {e}"));
            assert!(matches!(e, Expr::Intersects(Spatial::Literal(_), Spatial::Property(_))), "{wkt}");
        }
        let Expr::Intersects(_, Spatial::Literal(Geometry::MultiPolygon(mp))) =
            parse_text("S_INTERSECTS(geometry, BBOX(170, -10, -170, 10))").unwrap()
        else {
            panic!("an antimeridian bbox is two boxes")
        };
        assert_eq!(mp.0.len(), 2);
    }

    #[test]
    fn errors_say_where_and_quote_briefly() {
        let e = err("name = 'x' AMD y = 1");
        assert!(e.contains("character 12 (line 1, column 12)") && e.contains("near \"AMD y = 1\""), "{e}");
        let e = err("a = 1 AND\n  b ==");
        assert!(e.contains("line 2, column 6"), "{e}");
        assert!(err("a = 'open").contains("unterminated"));
        assert!(err("a = ").contains("at the end of the filter"));
        assert!(err("S_WITHIN(geometry, POINT(0 0))").contains("S_INTERSECTS"));
        assert!(err("a + 1 = 2").contains("arithmetic"));
        assert!(err("upper(name) = 'A'").contains("not supported"));
        assert!(err("name ILIKE 'a'").contains("CASEI"));
        assert!(err("x = NULL").contains("IS NULL"));
        assert!(err("name").contains("expected =, <>"));
        let long = format!("a = 1 {}", "x".repeat(10_000));
        let e = err(&long);
        assert!(e.len() < 300, "{}", e.len());
        let deep = format!("{}a = 1{}", "(".repeat(MAX_DEPTH + 5), ")".repeat(MAX_DEPTH + 5));
        assert!(err(&deep).contains("nested"));
        assert!(err("S_INTERSECTS(geometry, BBOX(0, 1, 2))").contains("4 numbers"));
        assert!(err("S_INTERSECTS(geometry, POLYGON((0 0, 1 1)))").contains("4 positions"));
    }

    #[test]
    fn gdal_36_cql_text_parses() {
        // What GDAL 3.6's OAPIF driver writes for `-where` (BuildFilterCQLText).
        for f in [
            "(covered = 0) AND (residents > 5)",
            "NOT ((name IS NULL))",
            "(a = 1) OR (b <> 'x''y')",
            "value >= 0.5000000000000001",
            "date >= '2025-01-01T'",
        ] {
            parse_text(f).unwrap_or_else(|e| panic!("{f}: {e}"));
        }
    }
}
