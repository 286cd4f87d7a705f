//! cql2-json: `{"op": …, "args": […]}` objects, `{"property": …}`, `{"date": …}`,
//! `{"timestamp": …}`, `{"bbox": […]}` and GeoJSON geometry objects. Errors point at the
//! offending member with a JSON pointer.

use geo::{Coord, Geometry, GeometryCollection, LineString, MultiLineString, MultiPoint, MultiPolygon, Point, Polygon};
use serde_json::{Map, Value};

use super::text::{bbox_geometry, date, timestamp};
use super::{CompareOp, Cql2Error, Expr, Operand, Spatial};

/// Parse a cql2-json filter.
///
/// ```
/// use belong::core::cql2::{parse_json, Expr};
/// let e = parse_json(r#"{"op": "and", "args": [
///     {"op": ">", "args": [{"property": "residents"}, 10]},
///     {"op": "=", "args": [{"property": "covered"}, false]}]}"#).unwrap();
/// assert!(matches!(e, Expr::And(ref v) if v.len() == 2));
/// ```
pub fn parse_json(input: &str) -> Result<Expr, Cql2Error> {
    // serde_json refuses nesting deeper than 128 levels: the stack is safe below.
    let v: Value = serde_json::from_str(input).map_err(|e| Cql2Error::JsonSyntax {
        line: e.line(),
        column: e.column(),
        message: clip_reason(&e.to_string()),
    })?;
    expr(&v, &Path::root())
}

/// serde_json's message without its trailing ` at line L column C` (the error says it).
fn clip_reason(s: &str) -> String {
    let s = s.rsplit_once(" at line ").map_or(s, |(a, _)| a);
    crate::core::text::clip(s, 200)
}

/// Where in the document, as a JSON pointer.
#[derive(Clone)]
struct Path(String);

impl Path {
    fn root() -> Path {
        Path(String::new())
    }

    fn key(&self, k: &str) -> Path {
        Path(format!("{}/{}", self.0, k.replace('~', "~0").replace('/', "~1")))
    }

    fn index(&self, i: usize) -> Path {
        Path(format!("{}/{i}", self.0))
    }

    fn error(&self, message: impl Into<String>) -> Cql2Error {
        let pointer = if self.0.is_empty() { "/".to_string() } else { crate::core::text::clip(&self.0, 200) };
        Cql2Error::Json { pointer, message: message.into() }
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `{"op": name, "args": [...]}` as (name, args).
fn operation<'a>(o: &'a Map<String, Value>, at: &Path) -> Result<Option<(&'a str, &'a [Value])>, Cql2Error> {
    let Some(op) = o.get("op") else { return Ok(None) };
    let op = op.as_str().ok_or_else(|| at.key("op").error(format!("\"op\" must be a string, not {}", kind(op))))?;
    let args = match o.get("args") {
        Some(Value::Array(a)) => a.as_slice(),
        Some(other) => return Err(at.key("args").error(format!("\"args\" must be an array, not {}", kind(other)))),
        None => return Err(at.error(format!("operation {} has no \"args\"", crate::core::text::quote(op)))),
    };
    Ok(Some((op, args)))
}

fn arity<'a>(op: &str, args: &'a [Value], n: usize, at: &Path) -> Result<&'a [Value], Cql2Error> {
    if args.len() == n {
        Ok(args)
    } else {
        Err(at.key("args").error(format!(
            "\"{op}\" takes {n} argument{}, not {}",
            if n == 1 { "" } else { "s" },
            args.len()
        )))
    }
}

const SPATIAL_OPS: [&str; 7] =
    ["s_contains", "s_crosses", "s_disjoint", "s_equals", "s_overlaps", "s_touches", "s_within"];

fn expr(v: &Value, at: &Path) -> Result<Expr, Cql2Error> {
    let o = match v {
        Value::Bool(b) => return Ok(Expr::Bool(*b)),
        Value::Object(o) => o,
        other => {
            return Err(at.error(format!(
                "expected a condition ({{\"op\": …, \"args\": […]}} or true/false), not {}",
                kind(other)
            )));
        }
    };
    let Some((op, args)) = operation(o, at)? else {
        return Err(at.error("expected a condition: an object with \"op\" and \"args\""));
    };
    let arg = |i: usize| at.key("args").index(i);
    let compare = |op: CompareOp| -> Result<Expr, Cql2Error> {
        let a = arity(op.symbol(), args, 2, at)?;
        Ok(Expr::Compare { op, left: operand(&a[0], &arg(0))?, right: operand(&a[1], &arg(1))? })
    };
    match op {
        "and" | "or" => {
            if args.len() < 2 {
                return Err(at.key("args").error(format!("\"{op}\" takes at least 2 arguments, not {}", args.len())));
            }
            let terms = args.iter().enumerate().map(|(i, a)| expr(a, &arg(i))).collect::<Result<Vec<_>, _>>()?;
            Ok(if op == "and" { Expr::And(terms) } else { Expr::Or(terms) })
        }
        "not" => Ok(Expr::Not(Box::new(expr(&arity(op, args, 1, at)?[0], &arg(0))?))),
        "=" => compare(CompareOp::Eq),
        "<>" => compare(CompareOp::Ne),
        "<" => compare(CompareOp::Lt),
        "<=" => compare(CompareOp::Le),
        ">" => compare(CompareOp::Gt),
        ">=" => compare(CompareOp::Ge),
        "like" => {
            let a = arity(op, args, 2, at)?;
            Ok(Expr::Like { value: operand(&a[0], &arg(0))?, pattern: operand(&a[1], &arg(1))?, negated: false })
        }
        "between" => {
            let a = arity(op, args, 3, at)?;
            Ok(Expr::Between {
                value: operand(&a[0], &arg(0))?,
                low: operand(&a[1], &arg(1))?,
                high: operand(&a[2], &arg(2))?,
                negated: false,
            })
        }
        "in" => {
            let a = arity(op, args, 2, at)?;
            let Value::Array(items) = &a[1] else {
                return Err(
                    arg(1).error(format!("the second argument of \"in\" is the list (an array), not {}", kind(&a[1])))
                );
            };
            if items.is_empty() {
                return Err(arg(1).error("the list of \"in\" is empty"));
            }
            let list = items.iter().enumerate().map(|(i, x)| operand(x, &arg(1).index(i))).collect::<Result<_, _>>()?;
            Ok(Expr::In { value: operand(&a[0], &arg(0))?, list, negated: false })
        }
        "isNull" => Ok(Expr::IsNull { value: operand(&arity(op, args, 1, at)?[0], &arg(0))?, negated: false }),
        "s_intersects" => {
            let a = arity(op, args, 2, at)?;
            Ok(Expr::Intersects(spatial(&a[0], &arg(0))?, spatial(&a[1], &arg(1))?))
        }
        "casei" | "accenti" => Err(at.key("op").error(format!("\"{op}\" gives a value, not a condition"))),
        s if SPATIAL_OPS.contains(&s) => Err(at
            .key("op")
            .error(format!("\"{s}\" is not supported; the spatial predicate supported is \"s_intersects\""))),
        s if s.starts_with("t_") || s.starts_with("a_") => {
            Err(at.key("op").error(format!("\"{s}\" is not supported (temporal and array predicates are not)")))
        }
        other => {
            Err(at.key("op").error(format!("unknown or unsupported operator {}", crate::core::text::quote(other))))
        }
    }
}

fn operand(v: &Value, at: &Path) -> Result<Operand, Cql2Error> {
    match v {
        Value::String(s) => Ok(Operand::Text(s.clone())),
        Value::Number(n) => {
            n.as_f64().filter(|x| x.is_finite()).map(Operand::Number).ok_or_else(|| at.error("number out of range"))
        }
        Value::Bool(b) => Ok(Operand::Bool(*b)),
        Value::Null => Err(at.error("null is not a value here; test for it with \"isNull\"")),
        Value::Array(_) => Err(at.error("a list is only allowed as the second argument of \"in\"")),
        Value::Object(o) => {
            if let Some(p) = o.get("property") {
                return match p.as_str() {
                    Some(name) if !name.is_empty() => Ok(Operand::Property(name.to_string())),
                    _ => Err(at.key("property").error("a property name is a non-empty string")),
                };
            }
            if let Some(d) = o.get("date") {
                return d
                    .as_str()
                    .and_then(date)
                    .map(Operand::Date)
                    .ok_or_else(|| at.key("date").error("a date is a string YYYY-MM-DD"));
            }
            if let Some(t) = o.get("timestamp") {
                return t
                    .as_str()
                    .and_then(timestamp)
                    .map(Operand::Timestamp)
                    .ok_or_else(|| at.key("timestamp").error("a timestamp is a string YYYY-MM-DDThh:mm:ssZ"));
            }
            if o.contains_key("interval") {
                return Err(at.error("intervals are not supported (temporal predicates are not)"));
            }
            match operation(o, at)? {
                Some(("casei", args)) => {
                    let a = arity("casei", args, 1, at)?;
                    Ok(Operand::Casei(Box::new(operand(&a[0], &at.key("args").index(0))?)))
                }
                Some(("accenti", _)) => Err(at.key("op").error("\"accenti\" is not supported")),
                Some((op, _)) if ["+", "-", "*", "/", "%", "^", "div"].contains(&op) => {
                    Err(at.key("op").error("arithmetic is not supported"))
                }
                Some((op, _)) => Err(at.key("op").error(format!(
                    "{} is not a value; the functions supported are casei, date and timestamp",
                    crate::core::text::quote(op)
                ))),
                None => Err(at.error("expected a value: a string, a number, a boolean, {\"property\": …}, {\"date\": …}, {\"timestamp\": …} or {\"op\": \"casei\", …}")),
            }
        }
    }
}

fn spatial(v: &Value, at: &Path) -> Result<Spatial, Cql2Error> {
    let Value::Object(o) = v else {
        return Err(at.error(format!(
            "expected a geometry (GeoJSON or {{\"bbox\": […]}}) or {{\"property\": …}}, not {}",
            kind(v)
        )));
    };
    if let Some(p) = o.get("property") {
        return match p.as_str() {
            Some(name) if !name.is_empty() => Ok(Spatial::Property(name.to_string())),
            _ => Err(at.key("property").error("a property name is a non-empty string")),
        };
    }
    if let Some(b) = o.get("bbox") {
        let at = at.key("bbox");
        let nums = b
            .as_array()
            .and_then(|a| a.iter().map(|x| x.as_f64().filter(|x| x.is_finite())).collect::<Option<Vec<f64>>>())
            .ok_or_else(|| at.error("a bbox is an array of numbers"))?;
        return bbox_geometry(&nums).map(Spatial::Literal).map_err(|m| at.error(m));
    }
    geojson(o, at, 0).map(Spatial::Literal)
}

fn position(v: &Value, at: &Path) -> Result<Coord<f64>, Cql2Error> {
    match v.as_array().map(Vec::as_slice) {
        Some([x, y, ..]) => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) if x.is_finite() && y.is_finite() => Ok(Coord { x, y }),
            _ => Err(at.error("a position is an array of numbers [x, y]")),
        },
        _ => Err(at.error("a position is an array of numbers [x, y]")),
    }
}

fn array<'a>(v: &'a Value, at: &Path, what: &str) -> Result<&'a [Value], Cql2Error> {
    v.as_array().map(Vec::as_slice).ok_or_else(|| at.error(format!("expected {what} (an array), not {}", kind(v))))
}

fn positions(v: &Value, at: &Path) -> Result<Vec<Coord<f64>>, Cql2Error> {
    array(v, at, "a list of positions")?.iter().enumerate().map(|(i, p)| position(p, &at.index(i))).collect()
}

fn polygon(v: &Value, at: &Path) -> Result<Polygon<f64>, Cql2Error> {
    let rings = array(v, at, "a list of rings")?;
    let mut rings: Vec<LineString<f64>> =
        rings.iter().enumerate().map(|(i, r)| positions(r, &at.index(i)).map(LineString)).collect::<Result<_, _>>()?;
    if rings.is_empty() || rings.iter().any(|r| r.0.len() < 4) {
        return Err(at.error("a polygon has at least one ring of at least 4 positions (first = last)"));
    }
    let exterior = rings.remove(0);
    Ok(Polygon::new(exterior, rings))
}

/// A GeoJSON geometry object (RFC 7946) as a geometry.
fn geojson(o: &Map<String, Value>, at: &Path, depth: usize) -> Result<Geometry<f64>, Cql2Error> {
    let Some(kind) = o.get("type").and_then(Value::as_str) else {
        return Err(
            at.error("expected a geometry (a GeoJSON object with \"type\"), {\"bbox\": […]} or {\"property\": …}")
        );
    };
    if kind == "GeometryCollection" {
        if depth > 0 {
            return Err(at.error("a GeometryCollection inside a GeometryCollection is not allowed"));
        }
        let members = o.get("geometries").ok_or_else(|| at.error("a GeometryCollection has \"geometries\""))?;
        let at = at.key("geometries");
        let members = array(members, &at, "a list of geometries")?
            .iter()
            .enumerate()
            .map(|(i, g)| match g {
                Value::Object(m) => geojson(m, &at.index(i), depth + 1),
                _ => Err(at.index(i).error("expected a geometry object")),
            })
            .collect::<Result<_, _>>()?;
        return Ok(Geometry::GeometryCollection(GeometryCollection(members)));
    }
    let coords = o.get("coordinates").ok_or_else(|| at.error(format!("a {kind} has \"coordinates\"")))?;
    let at = at.key("coordinates");
    let list = |what| array(coords, &at, what);
    Ok(match kind {
        "Point" => Geometry::Point(Point(position(coords, &at)?)),
        "LineString" => {
            let line = positions(coords, &at)?;
            if line.len() < 2 {
                return Err(at.error("a LineString has at least 2 positions"));
            }
            Geometry::LineString(LineString(line))
        }
        "Polygon" => Geometry::Polygon(polygon(coords, &at)?),
        "MultiPoint" => Geometry::MultiPoint(MultiPoint(positions(coords, &at)?.into_iter().map(Point).collect())),
        "MultiLineString" => Geometry::MultiLineString(MultiLineString(
            list("a list of lines")?
                .iter()
                .enumerate()
                .map(|(i, l)| positions(l, &at.index(i)).map(LineString))
                .collect::<Result<_, _>>()?,
        )),
        "MultiPolygon" => Geometry::MultiPolygon(MultiPolygon(
            list("a list of polygons")?
                .iter()
                .enumerate()
                .map(|(i, p)| polygon(p, &at.index(i)))
                .collect::<Result<_, _>>()?,
        )),
        other => {
            return Err(at.error(format!("unknown geometry type {}", crate::core::text::quote(other))));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<Expr, Cql2Error> {
        parse_json(&v.to_string())
    }

    fn prop(s: &str) -> Operand {
        Operand::Property(s.into())
    }

    #[test]
    fn every_supported_operator() {
        let p = json!({"property": "x"});
        assert_eq!(
            parse(json!({"op": "=", "args": [p, 1]})).unwrap(),
            Expr::Compare { op: CompareOp::Eq, left: prop("x"), right: Operand::Number(1.0) }
        );
        for op in ["<>", "<", "<=", ">", ">="] {
            assert!(matches!(parse(json!({"op": op, "args": [p, "a"]})).unwrap(), Expr::Compare { .. }), "{op}");
        }
        assert!(matches!(
            parse(json!({"op": "or", "args": [true, {"op": "not", "args": [false]}]})).unwrap(),
            Expr::Or(ref v) if v[1] == Expr::Not(Box::new(Expr::Bool(false)))
        ));
        assert_eq!(
            parse(json!({"op": "like", "args": [p, {"op": "casei", "args": ["a%"]}]})).unwrap(),
            Expr::Like {
                value: prop("x"),
                pattern: Operand::Casei(Box::new(Operand::Text("a%".into()))),
                negated: false
            }
        );
        assert!(matches!(parse(json!({"op": "between", "args": [p, 1, 2]})).unwrap(), Expr::Between { .. }));
        assert!(
            matches!(parse(json!({"op": "in", "args": [p, ["a", "b"]]})).unwrap(), Expr::In { ref list, .. } if list.len() == 2)
        );
        assert_eq!(
            parse(json!({"op": "isNull", "args": [p]})).unwrap(),
            Expr::IsNull { value: prop("x"), negated: false }
        );
        assert!(matches!(
            parse(json!({"op": ">=", "args": [{"property": "date"}, {"date": "2025-01-01"}]})).unwrap(),
            Expr::Compare { right: Operand::Date(_), .. }
        ));
        let g = json!({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]});
        assert!(matches!(
            parse(json!({"op": "s_intersects", "args": [{"property": "geometry"}, g]})).unwrap(),
            Expr::Intersects(Spatial::Property(_), Spatial::Literal(Geometry::Polygon(_)))
        ));
        assert!(matches!(
            parse(
                json!({"op": "s_intersects", "args": [{"bbox": [-118.3, 34, -118.2, 34.1]}, {"property": "geometry"}]})
            )
            .unwrap(),
            Expr::Intersects(Spatial::Literal(Geometry::Polygon(_)), _)
        ));
        for g in [
            json!({"type": "Point", "coordinates": [0, 0]}),
            json!({"type": "LineString", "coordinates": [[0, 0], [1, 1]]}),
            json!({"type": "MultiPoint", "coordinates": [[0, 0], [1, 1]]}),
            json!({"type": "MultiLineString", "coordinates": [[[0, 0], [1, 1]]]}),
            json!({"type": "MultiPolygon", "coordinates": [[[[0, 0], [1, 0], [1, 1], [0, 0]]]]}),
            json!({"type": "GeometryCollection", "geometries": [{"type": "Point", "coordinates": [0, 0]}]}),
        ] {
            parse(json!({"op": "s_intersects", "args": [{"property": "geometry"}, g]}))
                .unwrap_or_else(|e| panic!("{g}: {e}"));
        }
    }

    #[test]
    fn errors_point_at_the_member() {
        let e = parse_json("{\"op\": \"=\",\n \"args\": [1,]}").unwrap_err().to_string();
        assert!(e.contains("line 2"), "{e}");
        let e = parse(json!({"op": "and", "args": [{"op": "=", "args": [{"property": "x"}]}, true]})).unwrap_err();
        assert_eq!(
            e,
            Cql2Error::Json { pointer: "/args/0/args".into(), message: "\"=\" takes 2 arguments, not 1".into() }
        );
        let e = parse(json!({"op": "s_within", "args": []})).unwrap_err().to_string();
        assert!(e.contains("s_intersects") && e.contains("/op"), "{e}");
        let e = parse(json!({"op": "=", "args": [{"op": "+", "args": [1, 2]}, 3]})).unwrap_err().to_string();
        assert!(e.contains("arithmetic") && e.contains("/args/0/op"), "{e}");
        let e = parse(json!({"op": "in", "args": [{"property": "x"}, "a"]})).unwrap_err().to_string();
        assert!(e.contains("/args/1"), "{e}");
        let e = parse(json!({"op": "s_intersects", "args": [{"property": "g"}, {"type": "Polygon", "coordinates": [[[0, 0], [1, 1]]]}]}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("/args/1/coordinates"), "{e}");
        assert!(parse(json!(5)).unwrap_err().to_string().contains("not a number"));
        assert!(
            parse(json!({"op": "=", "args": [{"property": "x"}, null]})).unwrap_err().to_string().contains("isNull")
        );
        let deep = format!("{}true{}", "{\"op\":\"not\",\"args\":[".repeat(200), "]}".repeat(200));
        assert!(matches!(parse_json(&deep), Err(Cql2Error::JsonSyntax { .. })));
    }
}
