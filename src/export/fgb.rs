//! FlatGeobuf downloads, written by the `flatgeobuf` crate: features Hilbert-sorted behind the
//! packed R-tree index, the CRS in the header, one column per field (booleans `Bool`,
//! integers `Long`, reals `Double`, text `String`, dates `DateTime`: FlatGeobuf has no
//! date-only type, so days are written as `YYYY-MM-DD` ISO 8601 text, which GDAL reads as a
//! DateTime at midnight).

use std::io::Write;

use flatgeobuf::{ColumnType, FgbCrs, FgbWriter, FgbWriterOptions};
use geozero::{ColumnValue, PropertyProcessor};

use super::download::{
    ExportError, FieldType, GeometryType, LayerSchema, OutputCrs, Projected, Rows, boolean, date, integer, real, text,
};

/// Write `rows` of `layer` as FlatGeobuf to `out`. The features pass through a temporary file
/// (the index comes first in the file, and is known only at the end).
pub fn write_fgb(
    out: &mut impl Write,
    layer: &LayerSchema,
    rows: &dyn Rows,
    crs: &OutputCrs,
) -> Result<(), ExportError> {
    let srs = &crs.srs;
    let options = FgbWriterOptions {
        // An index over no features is one readers refuse (GDAL: "Number of items must be
        // greater than 0").
        write_index: !rows.is_empty(),
        detect_type: false,
        promote_to_multi: true,
        crs: FgbCrs {
            org: Some(&srs.organization),
            code: srs.code,
            name: Some(&srs.name),
            wkt: Some(&srs.wkt),
            ..Default::default()
        },
        description: Some(&layer.description),
        ..Default::default()
    };
    let geometry_type = match layer.geometry {
        GeometryType::Point => flatgeobuf::GeometryType::Point,
        GeometryType::MultiPolygon => flatgeobuf::GeometryType::MultiPolygon,
    };
    let mut fgb = FgbWriter::create_with_options(&layer.name, geometry_type, options)?;
    for field in &layer.fields {
        let kind = match field.kind {
            FieldType::Boolean => ColumnType::Bool,
            FieldType::Integer => ColumnType::Long,
            FieldType::Real => ColumnType::Double,
            FieldType::Text => ColumnType::String,
            FieldType::Date => ColumnType::DateTime,
        };
        fgb.add_column(&field.name, kind, |_, column| column.nullable = true);
    }
    rows.visit(&mut |row| {
        let geometry = match Projected::of(row.geometry, crs)? {
            Projected::Point(x, y) => geo::Geometry::Point(geo::Point::new(x, y)),
            Projected::MultiPolygon(mp) => geo::Geometry::MultiPolygon(mp),
        };
        let mut failed: Option<geozero::error::GeozeroError> = None;
        fgb.add_feature_geom(geometry, |feature| {
            for (i, (field, v)) in layer.fields.iter().zip(row.values).enumerate() {
                let name = field.name.as_str();
                // A null is an absent property in FlatGeobuf.
                let written = match field.kind {
                    FieldType::Boolean => boolean(v).map(|b| feature.property(i, name, &ColumnValue::Bool(b))),
                    FieldType::Integer => integer(v).map(|n| feature.property(i, name, &ColumnValue::Long(n))),
                    FieldType::Real => real(v).map(|x| feature.property(i, name, &ColumnValue::Double(x))),
                    FieldType::Text => text(v).map(|t| feature.property(i, name, &ColumnValue::String(&t))),
                    FieldType::Date => date(v).map(|d| {
                        let day = d.format("%Y-%m-%d").to_string();
                        feature.property(i, name, &ColumnValue::DateTime(&day))
                    }),
                };
                if let Some(Err(e)) = written {
                    failed.get_or_insert(e);
                }
            }
        })
        .map_err(|e| ExportError::FlatGeobuf(e.to_string()))?;
        match failed {
            Some(e) => Err(ExportError::FlatGeobuf(e.to_string())),
            None => Ok(()),
        }
    })?;
    fgb.write(out)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::download::{Field, Geometry, Row};
    use flatgeobuf::{FallibleStreamingIterator, FeatureProperties, FgbReader};
    use serde_json::Value;

    struct Points(Vec<(f64, f64, Vec<Value>)>);

    impl Rows for Points {
        fn len(&self) -> usize {
            self.0.len()
        }
        fn visit(&self, f: &mut dyn FnMut(Row<'_>) -> Result<(), ExportError>) -> Result<(), ExportError> {
            for (x, y, values) in &self.0 {
                f(Row { geometry: Geometry::Point(*x, *y), values })?;
            }
            Ok(())
        }
    }

    #[test]
    fn columns_keep_their_types_and_nulls() {
        let layer = LayerSchema {
            name: "resources".into(),
            description: "test".into(),
            geometry: GeometryType::Point,
            fields: vec![
                Field { name: "id".into(), kind: FieldType::Text },
                Field { name: "capacity".into(), kind: FieldType::Integer },
                Field { name: "open".into(), kind: FieldType::Boolean },
            ],
        };
        let rows = Points(vec![
            (-118.25, 34.05, vec!["007".into(), 40.into(), true.into()]),
            (-118.30, 34.10, vec!["008".into(), Value::Null, Value::Null]),
        ]);
        let mut out = Vec::new();
        write_fgb(&mut out, &layer, &rows, &OutputCrs::wgs84()).unwrap();
        let reader = FgbReader::open(std::io::Cursor::new(&out)).unwrap();
        let header = reader.header();
        assert_eq!(header.features_count(), 2);
        assert_eq!(header.crs().map(|c| c.code()), Some(4326));
        let columns: Vec<(String, ColumnType)> =
            header.columns().unwrap().iter().map(|c| (c.name().to_string(), c.type_())).collect();
        assert_eq!(
            columns,
            [
                ("id".into(), ColumnType::String),
                ("capacity".into(), ColumnType::Long),
                ("open".into(), ColumnType::Bool)
            ]
        );
        let mut features = reader.select_all().unwrap();
        let mut seen = Vec::new();
        while let Some(f) = features.next().unwrap() {
            seen.push((f.property::<String>("id").unwrap(), f.property::<i64>("capacity").ok()));
        }
        seen.sort();
        assert_eq!(seen, [("007".to_string(), Some(40)), ("008".to_string(), None)], "ids stay text, nulls stay null");
    }
}
