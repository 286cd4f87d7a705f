//! Coordinate reference systems: parse what users and files say (EPSG codes, URNs, ESRI or OGC
//! WKT from a `.prj`, PROJ strings) and reproject coordinates to WGS84 lon/lat, the only CRS
//! `belong` stores and serves. Projection maths is proj4rs; WKT parsing is proj4wkt.

use crate::core::text::{QUOTED, clip, quote as quoted};
use proj4rs::Proj;

/// Why a CRS could not be understood or a coordinate could not be reprojected.
#[derive(Debug, thiserror::Error)]
pub enum CrsError {
    /// The text names an EPSG code this build has no definition for.
    #[error("EPSG:{0} is not a known CRS")]
    UnknownEpsg(u32),
    /// The text is neither an EPSG code, a URN, WKT nor a PROJ string.
    #[error("{0} is not a CRS we understand (use EPSG:NNNN, e.g. EPSG:2229)")]
    Unrecognized(String),
    /// WKT (e.g. a `.prj` file) that could not be turned into a projection.
    #[error("unsupported or malformed WKT ({reason}): {wkt}")]
    Wkt {
        /// The WKT text, quoted back to the user (cut short: see [`crate::core::text::quote`]).
        wkt: String,
        /// What the WKT parser said.
        reason: String,
    },
    /// A coordinate the projection cannot map (outside its domain).
    #[error("coordinate ({x}, {y}) cannot be reprojected from {crs}: {reason}")]
    Transform {
        /// Source x / easting / longitude.
        x: f64,
        /// Source y / northing / latitude.
        y: f64,
        /// Label of the source CRS.
        crs: String,
        /// What proj4rs said.
        reason: String,
    },
    /// A coordinate outside what the projection can represent: its reprojection is not a
    /// plausible lon/lat, or does not project back to where it came from (a point 1e9 ft from a
    /// State Plane zone's origin, say, lands on a pole).
    #[error("coordinate ({x}, {y}) {}", outside_crs_reason(crs))]
    OutsideCrs {
        /// Source x / easting / longitude.
        x: f64,
        /// Source y / northing / latitude.
        y: f64,
        /// Label of the source CRS.
        crs: String,
    },
}

fn outside_crs_reason(crs: &str) -> String {
    format!("is outside the area {crs} can represent (wrong CRS, or wrong units?)")
}

impl CrsError {
    /// The reason without the coordinate, for messages about personal data (a person's
    /// location is not to be repeated in an error).
    pub fn without_coordinates(&self) -> String {
        match self {
            CrsError::Transform { crs, reason, .. } => format!("cannot be reprojected from {crs}: {reason}"),
            CrsError::OutsideCrs { crs, .. } => outside_crs_reason(crs),
            other => other.to_string(),
        }
    }
}

/// How far (in the source CRS's own units: metres, feet, degrees) a coordinate may move when
/// reprojected to WGS84 and back before it is called outside the CRS. Inside a projection's
/// domain the round trip is exact to well under a millimetre; outside it, the inverse clamps or
/// wraps, and the point comes back kilometres (or light years) away.
pub const ROUND_TRIP_TOLERANCE: f64 = 1.0;
/// The same tolerance for geographic (degrees) source CRSs: about 1 cm.
const ROUND_TRIP_TOLERANCE_DEG: f64 = 1e-7;

/// A source CRS and how to get from it to WGS84 lon/lat degrees.
#[derive(Debug)]
pub struct Crs {
    label: String,
    proj: Proj,
    /// True when coordinates already are lon/lat degrees on WGS84 or an equivalent datum
    /// (NAD83 is treated as WGS84, as PROJ does without a grid shift), so no maths is needed.
    geographic_wgs84: bool,
}

const WGS84_PROJ: &str = "+proj=longlat +datum=WGS84 +no_defs";

/// Parsed once: building a `Proj` parses its definition, far too slow to do per coordinate.
#[allow(clippy::expect_used)]
static WGS84: std::sync::LazyLock<Proj> =
    std::sync::LazyLock::new(|| Proj::from_proj_string(WGS84_PROJ).expect("static WGS84 definition parses"));

impl Crs {
    /// WGS84 lon/lat (EPSG:4326 with lon/lat axis order, i.e. OGC CRS84).
    pub fn wgs84() -> Crs {
        #[allow(clippy::expect_used)]
        let proj = Proj::from_proj_string(WGS84_PROJ).expect("static WGS84 definition parses");
        Crs { label: "EPSG:4326".into(), proj, geographic_wgs84: true }
    }

    /// An EPSG code (4326, 4269, 2229, 3310, 26911, 32611, 3857, ...).
    pub fn from_epsg(code: u32) -> Result<Crs, CrsError> {
        let code16 = u16::try_from(code).map_err(|_| CrsError::UnknownEpsg(code))?;
        let def = crs_definitions::from_code(code16).ok_or(CrsError::UnknownEpsg(code))?;
        let proj = Proj::from_proj_string(def.proj4).map_err(|_| CrsError::UnknownEpsg(code))?;
        let geographic_wgs84 = proj.is_latlong() && is_wgs84_like(def.proj4);
        Ok(Crs { label: format!("EPSG:{code}"), proj, geographic_wgs84 })
    }

    /// What a user typed on the command line or a file declared: `EPSG:2229`, `2229`,
    /// `urn:ogc:def:crs:EPSG::3310`, `CRS84`, `WGS84`, a PROJ string or WKT.
    pub fn parse(text: &str) -> Result<Crs, CrsError> {
        let t = text.trim();
        let upper = t.to_ascii_uppercase();
        if upper == "CRS84"
            || upper == "WGS84"
            || upper.ends_with("OGC:1.3:CRS84")
            || upper.ends_with("OGC::CRS84")
            || upper.ends_with("OGC:CRS84")
        {
            return Ok(Crs::wgs84());
        }
        if t.starts_with('+') {
            let proj = Proj::from_proj_string(t).map_err(|_| CrsError::Unrecognized(quoted(t)))?;
            let geographic_wgs84 = proj.is_latlong() && is_wgs84_like(t);
            return Ok(Crs { label: t.into(), proj, geographic_wgs84 });
        }
        if t.contains('[') {
            return Crs::from_wkt(t);
        }
        // EPSG:2229, epsg:2229, urn:ogc:def:crs:EPSG::2229, urn:ogc:def:crs:EPSG:6.3:2229,
        // http://www.opengis.net/def/crs/EPSG/0/2229, or a bare number.
        let code = if let Some(pos) = upper.find("EPSG") {
            upper[pos + 4..].rsplit([':', '/']).next().unwrap_or("")
        } else {
            upper.as_str()
        };
        match code.trim().parse::<u32>() {
            Ok(code) => Crs::from_epsg(code),
            Err(_) => Err(CrsError::Unrecognized(quoted(t))),
        }
    }

    /// WKT1 (OGC or ESRI flavour, as in a shapefile's `.prj`) or WKT2. An `AUTHORITY["EPSG",..]`
    /// on the outermost CRS is preferred because its definition is the reference one.
    pub fn from_wkt(wkt: &str) -> Result<Crs, CrsError> {
        let wkt = wkt.trim().trim_start_matches('\u{feff}');
        if let Some(code) = outer_epsg_authority(wkt)
            && let Ok(crs) = Crs::from_epsg(code)
        {
            return Ok(crs);
        }
        let projstr = proj4wkt::wkt_to_projstring(wkt)
            .map_err(|e| CrsError::Wkt { wkt: clip(wkt, QUOTED), reason: e.to_string() })?;
        let proj = Proj::from_proj_string(&projstr).map_err(|e| CrsError::Wkt {
            wkt: clip(wkt, QUOTED),
            reason: format!("{e} (from {})", quoted(&projstr)),
        })?;
        let geographic_wgs84 = proj.is_latlong() && is_wgs84_like(&projstr);
        let name = wkt_name(wkt).unwrap_or("WKT");
        Ok(Crs { label: name.to_string(), proj, geographic_wgs84 })
    }

    /// A short human label: `EPSG:2229` or the WKT's name.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Coordinates are already WGS84 (or NAD83) lon/lat degrees.
    pub fn is_geographic_wgs84(&self) -> bool {
        self.geographic_wgs84
    }

    /// Is this CRS lon/lat (degrees) at all, whatever the datum?
    pub fn is_geographic(&self) -> bool {
        self.proj.is_latlong()
    }

    /// Reproject one coordinate from this CRS to WGS84 lon/lat degrees. A result that is not
    /// finite, not within ±180/±90, or that does not project back to within
    /// [`ROUND_TRIP_TOLERANCE`] of the input is [`CrsError::OutsideCrs`]: the point is outside
    /// what the CRS can represent, and its "reprojection" would be a made-up place (typically a
    /// pole). Coordinates already in WGS84 are returned as they are (callers range-check them).
    pub fn to_wgs84(&self, x: f64, y: f64) -> Result<(f64, f64), CrsError> {
        if self.geographic_wgs84 {
            return Ok((x, y));
        }
        let outside = || CrsError::OutsideCrs { x, y, crs: self.label.clone() };
        if !x.is_finite() || !y.is_finite() {
            return Err(self.transform_error(x, y, "not a finite number"));
        }
        let latlong = self.proj.is_latlong();
        if latlong && !((-180.0..=180.0).contains(&x) && (-90.0..=90.0).contains(&y)) {
            return Err(outside());
        }
        let mut pt = if latlong { (x.to_radians(), y.to_radians(), 0.0) } else { (x, y, 0.0) };
        proj4rs::transform::transform(&self.proj, &WGS84, &mut pt).map_err(|e| self.transform_error(x, y, e))?;
        let (lon, lat) = (pt.0.to_degrees(), pt.1.to_degrees());
        if !lon.is_finite() || !lat.is_finite() {
            return Err(self.transform_error(x, y, "result is not finite"));
        }
        if !((-180.0..=180.0).contains(&lon) && (-90.0..=90.0).contains(&lat)) {
            return Err(outside());
        }
        let (bx, by) = self.from_wgs84(lon, lat).map_err(|_| outside())?;
        let tolerance = if latlong { ROUND_TRIP_TOLERANCE_DEG } else { ROUND_TRIP_TOLERANCE };
        let moved = (bx - x).hypot(by - y);
        if moved.is_nan() || moved > tolerance {
            return Err(outside());
        }
        Ok((lon, lat))
    }

    /// Project one WGS84 lon/lat coordinate into this CRS (used by the demo generator and tests).
    pub fn from_wgs84(&self, lon: f64, lat: f64) -> Result<(f64, f64), CrsError> {
        if self.geographic_wgs84 {
            return Ok((lon, lat));
        }
        let mut pt = (lon.to_radians(), lat.to_radians(), 0.0);
        proj4rs::transform::transform(&WGS84, &self.proj, &mut pt).map_err(|e| self.transform_error(lon, lat, e))?;
        if self.proj.is_latlong() { Ok((pt.0.to_degrees(), pt.1.to_degrees())) } else { Ok((pt.0, pt.1)) }
    }

    fn transform_error(&self, x: f64, y: f64, reason: impl ToString) -> CrsError {
        CrsError::Transform { x, y, crs: self.label.clone(), reason: reason.to_string() }
    }
}

/// NAD83 and WGS84 differ by about a metre; PROJ (and so GDAL) treats them as identical when no
/// grid is given, so we do too. Anything else lon/lat must go through the datum shift.
fn is_wgs84_like(projstr: &str) -> bool {
    let s = projstr.to_ascii_lowercase();
    let datum_ok = s.contains("datum=wgs84")
        || s.contains("datum=nad83")
        || s.contains("ellps=wgs84")
        || s.contains("ellps=grs80")
        || (s.contains("a=6378137") && (s.contains("rf=298.257222101") || s.contains("rf=298.257223563")));
    let shift = s.split_whitespace().find_map(|t| t.strip_prefix("+towgs84="));
    let no_shift = shift.is_none_or(|v| v.split(',').all(|n| n.trim().parse::<f64>().is_ok_and(|f| f == 0.0)));
    let pm_ok = !s.contains("+pm=") || s.contains("+pm=greenwich") || s.contains("+pm=0 ");
    datum_ok && no_shift && pm_ok
}

/// The EPSG code of the outermost CRS: the last `AUTHORITY["EPSG","N"]` (WKT1) or `ID["EPSG",N]`
/// (WKT2) before the final closing bracket at nesting depth 1.
fn outer_epsg_authority(wkt: &str) -> Option<u32> {
    let bytes = wkt.as_bytes();
    let mut depth = 0usize;
    let mut last_outer: Option<usize> = None;
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'[' | b'(' => {
                if depth == 1 {
                    let head = &wkt[..i];
                    let kw_start = head.rfind([',', '[', '(']).map_or(0, |p| p + 1);
                    let kw = head[kw_start..].trim().to_ascii_uppercase();
                    if kw == "AUTHORITY" || kw == "ID" {
                        last_outer = Some(i);
                    }
                }
                depth += 1;
            }
            b']' | b')' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    let start = last_outer?;
    let rest = &wkt[start + 1..];
    let end = rest.find([']', ')'])?;
    let mut parts = rest[..end].split(',').map(|p| p.trim().trim_matches('"'));
    let authority = parts.next()?;
    if !authority.eq_ignore_ascii_case("EPSG") {
        return None;
    }
    parts.next()?.parse().ok()
}

/// The name of the outermost CRS in WKT: `PROJCS["this",...`.
fn wkt_name(wkt: &str) -> Option<&str> {
    let open = wkt.find('[')?;
    let rest = &wkt[open + 1..];
    let rest = rest.strip_prefix('"')?;
    Some(&rest[..rest.find('"')?])
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    proptest! {
        /// Issue 12: any CRS text (a `--source-crs`, a GeoJSON `crs` name, a `.prj`) is parsed
        /// or refused with a short message, never a panic.
        #[test]
        fn any_crs_text_is_parsed_or_refused_briefly(
            text in prop_oneof!["EPSG:[0-9]{0,7}", "urn:ogc:def:crs:[A-Z]{0,5}:[0-9.]{0,4}:[0-9]{0,6}", "PROJCS\\[.{0,400}", ".{0,400}"]
        ) {
            for result in [Crs::parse(&text), Crs::from_wkt(&text)] {
                if let Err(e) = result {
                    let m = e.to_string();
                    prop_assert!(!m.is_empty() && m.len() < 1_000, "{} bytes", m.len());
                }
            }
        }
    }

    use super::*;
    use approx::assert_abs_diff_eq;

    const LA_TRACTS_PRJ: &str = r#"PROJCS["NAD_1983_StatePlane_California_V_FIPS_0405_Feet",GEOGCS["GCS_North_American_1983",DATUM["D_North_American_1983",SPHEROID["GRS_1980",6378137.0,298.257222101]],PRIMEM["Greenwich",0.0],UNIT["Degree",0.0174532925199433]],PROJECTION["Lambert_Conformal_Conic"],PARAMETER["False_Easting",6561666.667],PARAMETER["False_Northing",1640416.667],PARAMETER["Central_Meridian",-118.0],PARAMETER["Standard_Parallel_1",35.4666666666667],PARAMETER["Standard_Parallel_2",34.0333333333333],PARAMETER["Latitude_Of_Origin",33.5],UNIT["US survey foot",0.304800609601219]]"#;
    const TIGER_PRJ: &str = r#"GEOGCS["GCS_North_American_1983",DATUM["D_North_American_1983",SPHEROID["GRS_1980",6378137,298.257222101]],PRIMEM["Greenwich",0],UNIT["Degree",0.017453292519943295]]"#;

    /// GDAL/PostGIS reference from ../shared/data/README.md.
    #[test]
    fn esri_prj_state_plane_v_feet_matches_gdal() {
        let crs = Crs::from_wkt(LA_TRACTS_PRJ).unwrap();
        let (lon, lat) = crs.to_wgs84(6_480_000.0, 1_840_000.0).unwrap();
        assert_abs_diff_eq!(lon, -118.2695921, epsilon = 1e-6);
        assert_abs_diff_eq!(lat, 34.0481104, epsilon = 1e-6);
    }

    #[test]
    fn epsg_2229_matches_gdal() {
        let crs = Crs::parse("EPSG:2229").unwrap();
        let (lon, lat) = crs.to_wgs84(6_480_000.0, 1_840_000.0).unwrap();
        assert_abs_diff_eq!(lon, -118.2695921, epsilon = 1e-6);
        assert_abs_diff_eq!(lat, 34.0481104, epsilon = 1e-6);
    }

    #[test]
    fn nad83_geographic_prj_is_passthrough() {
        let crs = Crs::from_wkt(TIGER_PRJ).unwrap();
        assert!(crs.is_geographic_wgs84());
        assert_eq!(crs.to_wgs84(-95.5, 43.3).unwrap(), (-95.5, 43.3));
    }

    #[test]
    fn parses_user_forms() {
        for s in [
            "EPSG:3310",
            "epsg:3310",
            "3310",
            "urn:ogc:def:crs:EPSG::3310",
            "http://www.opengis.net/def/crs/EPSG/0/3310",
        ] {
            assert_eq!(Crs::parse(s).unwrap().label(), "EPSG:3310", "{s}");
        }
        assert!(Crs::parse("urn:ogc:def:crs:OGC:1.3:CRS84").unwrap().is_geographic_wgs84());
        assert!(matches!(Crs::parse("EPSG:99999"), Err(CrsError::UnknownEpsg(99999))));
        assert!(matches!(Crs::parse("banana"), Err(CrsError::Unrecognized(_))));
    }

    #[test]
    fn round_trip_from_wgs84() {
        let crs = Crs::parse("EPSG:2229").unwrap();
        let (x, y) = crs.from_wgs84(-118.2856, 34.0409).unwrap();
        let (lon, lat) = crs.to_wgs84(x, y).unwrap();
        assert_abs_diff_eq!(lon, -118.2856, epsilon = 1e-9);
        assert_abs_diff_eq!(lat, 34.0409, epsilon = 1e-9);
    }

    #[test]
    fn coordinates_outside_the_crs_are_refused() {
        // 1e9 ft in State Plane V and ∓1e12 m in Web Mercator used to land on a pole.
        let cases = [("EPSG:2229", 1e9, 1e9), ("EPSG:2229", 6_480_000.0, 1e9), ("EPSG:3857", -1e12, 1e12)];
        for (code, x, y) in cases {
            let crs = Crs::parse(code).unwrap();
            let e = crs.to_wgs84(x, y).unwrap_err();
            assert!(matches!(e, CrsError::OutsideCrs { .. } | CrsError::Transform { .. }), "{code} {x} {y}: {e}");
            assert!(!e.without_coordinates().contains("1000000000"), "{e}");
        }
        let crs = Crs::parse("EPSG:3857").unwrap();
        let (lon, lat) = crs.to_wgs84(-13_167_000.0, 4_035_000.0).unwrap();
        assert_abs_diff_eq!(lon, -118.28, epsilon = 0.01);
        assert_abs_diff_eq!(lat, 34.04, epsilon = 0.01);
        assert!(matches!(crs.to_wgs84(f64::NAN, 0.0), Err(CrsError::Transform { .. })));
    }

    #[test]
    fn finds_outer_authority_only() {
        let wkt = r#"PROJCS["x",GEOGCS["NAD83",AUTHORITY["EPSG","4269"]],AUTHORITY["EPSG","26911"]]"#;
        assert_eq!(outer_epsg_authority(wkt), Some(26911));
        let inner_only = r#"PROJCS["x",GEOGCS["NAD83",AUTHORITY["EPSG","4269"]]]"#;
        assert_eq!(outer_epsg_authority(inner_only), None);
    }
}
