//! Parquet objects for Amazon Security Lake (the `security-lake` feature).
//!
//! One object holds the OCSF 1.3 events of one class, in time order. Its schema is derived from
//! the events it holds, so it is a function of its content:
//!
//! - a JSON object is an optional group, its members in name order; a member that is null or
//!   absent in every event of the object has no column;
//! - an array is an optional `LIST` of optional elements;
//! - a string is `BYTE_ARRAY` (`STRING`); an integer `INT64` (OCSF's `time` and other
//!   timestamps stay integers of milliseconds, as OCSF defines them); a number with a fraction
//!   `DOUBLE`; a boolean `BOOLEAN`;
//! - OCSF's free-form attributes (`unmapped`, and every attribute named `data`, OCSF's `json_t`),
//!   an empty object, and any attribute whose values disagree in type are one `STRING` column of
//!   compact JSON with sorted keys. The file's key-value metadata `lago_audit.json_columns` lists
//!   those columns (dotted paths, JSON array), so a reader turns them back into objects.
//!
//! Written with zstd, one row group per object (the batch limits keep it far below Security
//! Lake's 256 MB), data and dictionary pages cut at 512 KiB of encoded values (a page passes that
//! by at most 64 values, so values under 8 KiB keep every page within 1 MiB), statistics per
//! page and chunk, and a fixed `created_by`, so the same events give the same bytes. An object's
//! SHA-256 in the chain is that of its bytes as stored: Parquet compresses page by page, so there
//! is no one uncompressed stream to hash as there is for gzip NDJSON.
//!
//! Limits: 64 values of more than 8 KiB in a row (large request bodies) can make a page larger
//! than 1 MiB, and a single value larger than 1 MiB makes one; Security Lake's page limit is not
//! met for those.

use crate::chain::ObjectEntry;
use bytes::Bytes;
use parquet::basic::{Compression, LogicalType, Repetition, Type as Physical, ZstdLevel};
use parquet::data_type::{BoolType, ByteArray, ByteArrayType, DoubleType, Int64Type};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::file::reader::FileReader;
use parquet::file::serialized_reader::SerializedFileReader;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::Type;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The key-value metadata that lists the columns holding JSON text.
pub const JSON_COLUMNS_KEY: &str = "lago_audit.json_columns";
/// The most bytes of encoded values a data or dictionary page holds before it is cut: half of
/// Security Lake's 1 MB, because the writer checks the limit between mini-batches of
/// [`MINI_BATCH`] values, and a page may pass it by one mini-batch.
pub const PAGE_BYTES: usize = 512 << 10;
/// Values written between two checks of the page limit.
pub const MINI_BATCH: usize = 64;
/// The `created_by` of every object (fixed, so a new crate version writes the same bytes).
const CREATED_BY: &str = "lago-audit-sink (parquet-rs)";

/// The shape of a value, merged over the events of an object (order does not matter).
#[derive(Clone, Debug, PartialEq)]
enum Shape {
    /// Only nulls seen.
    Unknown,
    Bool,
    Int,
    Double,
    Str,
    /// Compact JSON text.
    Json,
    Object(BTreeMap<String, Shape>),
    List(Box<Shape>),
}

/// Attributes that OCSF defines as free-form JSON: stored as text.
fn free_form(name: &str) -> bool {
    name == "data" || name == "unmapped"
}

fn shape_of(name: &str, v: &Value) -> Shape {
    if free_form(name) && !v.is_null() {
        return Shape::Json;
    }
    match v {
        Value::Null => Shape::Unknown,
        Value::Bool(_) => Shape::Bool,
        Value::Number(n) if n.is_i64() => Shape::Int,
        Value::Number(_) => Shape::Double,
        Value::String(_) => Shape::Str,
        Value::Object(m) if m.is_empty() => Shape::Json,
        Value::Object(m) => {
            Shape::Object(m.iter().map(|(k, v)| (k.clone(), shape_of(k, v))).collect())
        }
        Value::Array(items) => Shape::List(Box::new(
            items
                .iter()
                .fold(Shape::Unknown, |s, i| merge(s, shape_of("element", i))),
        )),
    }
}

fn merge(a: Shape, b: Shape) -> Shape {
    match (a, b) {
        (Shape::Unknown, x) | (x, Shape::Unknown) => x,
        (Shape::Int, Shape::Double) | (Shape::Double, Shape::Int) => Shape::Double,
        (Shape::Object(mut a), Shape::Object(b)) => {
            for (k, v) in b {
                let merged = match a.remove(&k) {
                    Some(old) => merge(old, v),
                    None => v,
                };
                a.insert(k, merged);
            }
            Shape::Object(a)
        }
        (Shape::List(a), Shape::List(b)) => Shape::List(Box::new(merge(*a, *b))),
        (a, b) if a == b => a,
        _ => Shape::Json,
    }
}

/// Drops members whose shape stayed unknown (no column); an object left empty is JSON.
fn prune(shape: Shape) -> Option<Shape> {
    match shape {
        Shape::Unknown => None,
        Shape::Object(m) => {
            let m: BTreeMap<_, _> = m
                .into_iter()
                .filter_map(|(k, v)| prune(v).map(|v| (k, v)))
                .collect();
            Some(if m.is_empty() {
                Shape::Json
            } else {
                Shape::Object(m)
            })
        }
        // A list whose elements were never seen: a list of (null) strings.
        Shape::List(e) => Some(Shape::List(Box::new(prune(*e).unwrap_or(Shape::Str)))),
        other => Some(other),
    }
}

/// One leaf column being filled.
enum Values {
    Bool(Vec<bool>),
    Int(Vec<i64>),
    Double(Vec<f64>),
    Bytes(Vec<ByteArray>),
}

struct Column {
    values: Values,
    def: Vec<i16>,
    rep: Vec<i16>,
}

fn parquet_err(e: parquet::errors::ParquetError) -> String {
    format!("writing Parquet: {e}")
}

/// Builds the Parquet type of `shape` named `name`, collecting leaf columns and JSON paths.
fn build(
    name: &str,
    shape: &Shape,
    path: &str,
    columns: &mut Vec<Column>,
    json: &mut Vec<String>,
) -> Result<Type, String> {
    let leaf = |physical: Physical, logical: Option<LogicalType>, values: Values| {
        (physical, logical, values)
    };
    let (physical, logical, values) = match shape {
        Shape::Object(members) => {
            let mut fields = Vec::with_capacity(members.len());
            for (k, v) in members {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                fields.push(Arc::new(build(k, v, &p, columns, json)?));
            }
            return Type::group_type_builder(name)
                .with_repetition(Repetition::OPTIONAL)
                .with_fields(fields)
                .build()
                .map_err(parquet_err);
        }
        Shape::List(element) => {
            let element = build("element", element, &format!("{path}[]"), columns, json)?;
            let list = Type::group_type_builder("list")
                .with_repetition(Repetition::REPEATED)
                .with_fields(vec![Arc::new(element)])
                .build()
                .map_err(parquet_err)?;
            return Type::group_type_builder(name)
                .with_repetition(Repetition::OPTIONAL)
                .with_logical_type(Some(LogicalType::List))
                .with_fields(vec![Arc::new(list)])
                .build()
                .map_err(parquet_err);
        }
        Shape::Bool => leaf(Physical::BOOLEAN, None, Values::Bool(Vec::new())),
        Shape::Int => leaf(Physical::INT64, None, Values::Int(Vec::new())),
        Shape::Double => leaf(Physical::DOUBLE, None, Values::Double(Vec::new())),
        Shape::Str | Shape::Json | Shape::Unknown => {
            if *shape != Shape::Str {
                json.push(path.to_owned());
            }
            leaf(
                Physical::BYTE_ARRAY,
                Some(LogicalType::String),
                Values::Bytes(Vec::new()),
            )
        }
    };
    columns.push(Column {
        values,
        def: Vec::new(),
        rep: Vec::new(),
    });
    Type::primitive_type_builder(name, physical)
        .with_repetition(Repetition::OPTIONAL)
        .with_logical_type(logical)
        .build()
        .map_err(parquet_err)
}

/// Nulls for every leaf under `shape` at levels `(d, r)`.
fn nulls(shape: &Shape, d: i16, r: i16, columns: &mut [Column], at: &mut usize) {
    match shape {
        Shape::Object(members) => {
            for v in members.values() {
                nulls(v, d, r, columns, at);
            }
        }
        Shape::List(e) => nulls(e, d, r, columns, at),
        _ => {
            columns[*at].def.push(d);
            columns[*at].rep.push(r);
            *at += 1;
        }
    }
}

/// Appends `value` (an optional field of shape `shape`) to the leaf columns from `*at` on.
/// `d` is the definition level of its parent, `r` the repetition level of this entry, `depth`
/// the number of repeated fields above it (Dremel's record shredding).
fn shred(
    shape: &Shape,
    value: Option<&Value>,
    d: i16,
    r: i16,
    depth: i16,
    columns: &mut [Column],
    at: &mut usize,
) {
    let Some(value) = value.filter(|v| !v.is_null()) else {
        return nulls(shape, d, r, columns, at);
    };
    let d = d + 1;
    match shape {
        Shape::Object(members) => {
            for (k, s) in members {
                shred(s, value.get(k), d, r, depth, columns, at);
            }
        }
        Shape::List(element) => {
            let items = value.as_array().map(Vec::as_slice).unwrap_or_default();
            if items.is_empty() {
                return nulls(element, d, r, columns, at);
            }
            let start = *at;
            for (i, item) in items.iter().enumerate() {
                *at = start;
                let r = if i == 0 { r } else { depth + 1 };
                shred(element, Some(item), d + 1, r, depth + 1, columns, at);
            }
        }
        _ => {
            let c = &mut columns[*at];
            *at += 1;
            c.def.push(d);
            c.rep.push(r);
            match (&mut c.values, shape) {
                (Values::Bool(v), _) => v.push(value.as_bool().unwrap_or_default()),
                (Values::Int(v), _) => v.push(value.as_i64().unwrap_or_default()),
                (Values::Double(v), _) => v.push(value.as_f64().unwrap_or_default()),
                (Values::Bytes(v), Shape::Str) => {
                    v.push(ByteArray::from(value.as_str().unwrap_or_default()))
                }
                (Values::Bytes(v), _) => {
                    let mut text = Vec::new();
                    crate::format::canonical(value, &mut text);
                    v.push(ByteArray::from(text));
                }
            }
        }
    }
}

/// The writer's settings: zstd, pages of at most [`PAGE_BYTES`], one row group, statistics.
fn properties(json: &[String]) -> Result<WriterProperties, String> {
    let level = ZstdLevel::try_new(3).map_err(parquet_err)?;
    let json = serde_json::to_string(json).map_err(|e| e.to_string())?;
    Ok(WriterProperties::builder()
        .set_compression(Compression::ZSTD(level))
        .set_data_page_size_limit(PAGE_BYTES)
        .set_dictionary_page_size_limit(PAGE_BYTES)
        // The page limit is checked between mini-batches: small ones keep pages near it.
        .set_write_batch_size(MINI_BATCH)
        .set_max_row_group_row_count(None)
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_created_by(CREATED_BY.to_owned())
        .set_key_value_metadata(Some(vec![
            KeyValue::new(JSON_COLUMNS_KEY.to_owned(), json),
            KeyValue::new("ocsf.version".to_owned(), "1.3.0".to_owned()),
        ]))
        .build())
}

/// The Parquet object of `events` (OCSF events of one class, in the order to store them).
pub(crate) fn encode(events: &[Value]) -> Result<Bytes, String> {
    let shape = events
        .iter()
        .fold(Shape::Unknown, |s, e| merge(s, shape_of("", e)));
    let members = match prune(shape) {
        Some(Shape::Object(m)) => m,
        _ => return Err("an OCSF event must be a JSON object with attributes".into()),
    };
    let (mut columns, mut json, mut fields) = (Vec::new(), Vec::new(), Vec::new());
    for (k, v) in &members {
        fields.push(Arc::new(build(k, v, k, &mut columns, &mut json)?));
    }
    let schema = Type::group_type_builder("ocsf_event")
        .with_fields(fields)
        .build()
        .map_err(parquet_err)?;
    for event in events {
        let mut at = 0;
        for (k, s) in &members {
            shred(s, event.get(k), 0, 0, 0, &mut columns, &mut at);
        }
    }
    let props = Arc::new(properties(&json)?);
    let mut writer =
        SerializedFileWriter::new(Vec::new(), Arc::new(schema), props).map_err(parquet_err)?;
    let mut group = writer.next_row_group().map_err(parquet_err)?;
    let mut columns = columns.into_iter();
    while let Some(mut out) = group.next_column().map_err(parquet_err)? {
        let c = columns
            .next()
            .ok_or("the Parquet schema has more columns than the events")?;
        let (def, rep) = (Some(c.def.as_slice()), Some(c.rep.as_slice()));
        match &c.values {
            Values::Bool(v) => out.typed::<BoolType>().write_batch(v, def, rep),
            Values::Int(v) => out.typed::<Int64Type>().write_batch(v, def, rep),
            Values::Double(v) => out.typed::<DoubleType>().write_batch(v, def, rep),
            Values::Bytes(v) => out.typed::<ByteArrayType>().write_batch(v, def, rep),
        }
        .map_err(parquet_err)?;
        out.close().map_err(parquet_err)?;
    }
    group.close().map_err(parquet_err)?;
    writer.into_inner().map(Bytes::from).map_err(parquet_err)
}

/// Checks a Security Lake object against the chain's entry (for [`crate::verify`]): the SHA-256
/// of its bytes, its row count (from the footer) and its `time` column's range (from the
/// statistics) within the entry's seconds and its `eventDay=` partition. Returns the record
/// count, or the problems.
pub(crate) fn check(entry: &ObjectEntry, body: &[u8]) -> Result<u64, Vec<(&'static str, String)>> {
    let got = crate::chain::sha256_hex(body);
    let mut problems = Vec::new();
    if got != entry.sha256 {
        problems.push((
            "object-hash",
            format!(
                "INVALID hash: the chain says {}, the object holds {got}",
                entry.sha256
            ),
        ));
    }
    let reader = match SerializedFileReader::new(Bytes::copy_from_slice(body)) {
        Ok(r) => r,
        Err(e) => {
            problems.push(("object-hash", format!("INVALID: not a Parquet file ({e})")));
            return Err(problems);
        }
    };
    let meta = reader.metadata();
    let count = u64::try_from(meta.file_metadata().num_rows()).unwrap_or(0);
    if count != entry.records {
        problems.push((
            "object-count",
            format!("{count} records, the chain says {}", entry.records),
        ));
    }
    let (mut min, mut max) = (None::<i64>, None::<i64>);
    for group in meta.row_groups() {
        let time = group
            .columns()
            .iter()
            .find(|c| c.column_path().string() == "time");
        match time.and_then(|c| c.statistics()) {
            Some(parquet::file::statistics::Statistics::Int64(s)) => {
                if let (Some(a), Some(b)) = (s.min_opt(), s.max_opt()) {
                    min = Some(min.map_or(*a, |m| m.min(*a)));
                    max = Some(max.map_or(*b, |m| m.max(*b)));
                }
            }
            _ if group.num_rows() > 0 => problems.push((
                "object-seconds",
                "no statistics of the `time` column: its records' times cannot be checked".into(),
            )),
            _ => {}
        }
    }
    let first = entry.first.timestamp_millis();
    let end = entry.last.timestamp_millis() + 1000;
    if min.is_some_and(|m| m < first) || max.is_some_and(|m| m >= end) {
        problems.push((
            "object-seconds",
            format!("its records' times run from {min:?} to {max:?} ms, outside its seconds"),
        ));
    }
    let day = entry.first.format("%Y%m%d").to_string();
    if crate::layout::parse_lake_object_name(&entry.name).is_none()
        || entry.last.format("%Y%m%d").to_string() != day
    {
        problems.push((
            "object-partition",
            format!("its seconds are not all of its eventDay= partition ({day})"),
        ));
    }
    if problems.is_empty() {
        Ok(count)
    } else {
        Err(problems)
    }
}

/// The (second, event id) of each row of a Security Lake object: its `time` and `metadata.uid`
/// (for `verify --against-lago`, as the NDJSON lines' ids are read). Rows without either, or a
/// file that is not Parquet, are skipped: the object checks report them.
pub(crate) fn ids(body: &[u8]) -> Vec<(i64, String)> {
    use parquet::record::Field;
    let Ok(reader) = SerializedFileReader::new(Bytes::copy_from_slice(body)) else {
        return Vec::new();
    };
    let Ok(rows) = reader.get_row_iter(None) else {
        return Vec::new();
    };
    rows.filter_map(Result::ok)
        .filter_map(|row| {
            let (mut time, mut uid) = (None, None);
            for (name, field) in row.get_column_iter() {
                match (name.as_str(), field) {
                    ("time", Field::Long(ms)) => time = Some(ms.div_euclid(1000)),
                    ("metadata", Field::Group(metadata)) => {
                        uid = metadata
                            .get_column_iter()
                            .find_map(|(n, f)| match (n.as_str(), f) {
                                ("uid", Field::Str(u)) => Some(u.clone()),
                                _ => None,
                            })
                    }
                    _ => {}
                }
            }
            Some((time?, uid?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn shapes_merge_whatever_the_order() {
        let a = json!({"time": 1, "x": {"a": "s"}, "l": [1], "data": {"k": 1}});
        let b = json!({"time": 2, "x": {"b": true}, "l": [1.5], "z": null});
        let c = json!({"time": 3, "x": "text"});
        let one = [&a, &b, &c]
            .iter()
            .fold(Shape::Unknown, |s, e| merge(s, shape_of("", e)));
        let other = [&c, &b, &a]
            .iter()
            .fold(Shape::Unknown, |s, e| merge(s, shape_of("", e)));
        assert_eq!(one, other);
        let Some(Shape::Object(m)) = prune(one) else {
            panic!("not an object")
        };
        assert_eq!(m["x"], Shape::Json, "an object and a string disagree: JSON");
        assert_eq!(m["l"], Shape::List(Box::new(Shape::Double)));
        assert_eq!(m["data"], Shape::Json);
        assert!(!m.contains_key("z"), "null everywhere: no column");
    }

    #[test]
    fn the_same_events_give_the_same_bytes_and_the_footer_counts_them() {
        let events: Vec<Value> = (0..3)
            .map(|i| {
                json!({"time": 1_740_787_200_000i64 + i, "class_uid": 3004,
                            "metadata": {"uid": format!("u{i}"), "labels": ["a", "b"]},
                            "privileges": [], "unmapped": {"k": i}})
            })
            .collect();
        let one = encode(&events).unwrap();
        assert_eq!(one, encode(&events).unwrap());
        let ids = ids(&one);
        assert_eq!(ids.len(), 3);
        assert_eq!(ids[2], (1_740_787_200, "u2".to_owned()));
        let reader = SerializedFileReader::new(one).unwrap();
        assert_eq!(reader.metadata().file_metadata().num_rows(), 3);
        let kv = reader
            .metadata()
            .file_metadata()
            .key_value_metadata()
            .unwrap();
        let json = kv.iter().find(|k| k.key == JSON_COLUMNS_KEY).unwrap();
        assert_eq!(json.value.as_deref(), Some(r#"["unmapped"]"#));
    }

    #[test]
    fn pages_stay_within_a_mebibyte_uncompressed() {
        // 20 MB of 4 KiB strings that do not repeat (no dictionary saves them).
        let events: Vec<Value> = (0..5_000)
            .map(|i| json!({"time": i, "message": format!("{i:04096}")}))
            .collect();
        let reader = SerializedFileReader::new(encode(&events).unwrap()).unwrap();
        let group = reader.get_row_group(0).unwrap();
        let (mut pages, mut largest) = (0, 0);
        for c in 0..group.num_columns() {
            let mut column = group.get_column_page_reader(c).unwrap();
            while let Some(page) = column.get_next_page().unwrap() {
                pages += 1;
                largest = largest.max(page.buffer().len());
            }
        }
        assert!(pages > 20, "{pages} pages");
        assert!(largest <= 1 << 20, "a page of {largest} bytes");
    }
}
