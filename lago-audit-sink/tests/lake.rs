//! Amazon Security Lake (`Layout::SecurityLake`): every object of an export of all three kinds,
//! written with kills along the way, read back by an independent Parquet reader (pyarrow, from
//! `.ci/run`'s virtualenv: `LAGO_SINK_TEST_PYTHON`), in a directory and on moto
//! (`LAGO_SINK_TEST_S3`). Each record of the fake is there exactly once, each event validates
//! against the vendored OCSF 1.3.0 class schemas, each object holds one class in its own source,
//! sorted by time, zstd, one row group, under `eventDay=` of its records; and `verify` passes on
//! the archive and catches an object changed afterwards.
#![cfg(feature = "security-lake")]

mod common;

use common::*;
use futures::TryStreamExt;
use lago_audit_client::types::{ActivityLogObject, ApiLogObject, SecurityLogObject};
use lago_audit_fake::FakeLago;
use lago_audit_sink::verify::{verify, VerifyOptions};
use lago_audit_sink::{ocsf, BatchLimits, Destination, Format, Lake, Layout, SinkOptions};
use object_store::ObjectStoreExt;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// Reads every `*.parquet` under a directory with pyarrow: path, codecs, row groups (their
/// uncompressed bytes), the JSON columns the file names, and the rows.
const READER: &str = r#"
import json, os, sys
import pyarrow.parquet as pq
root, out = sys.argv[1], []
for d, _, files in sorted(os.walk(root)):
    for f in sorted(files):
        if not f.endswith(".parquet"):
            continue
        p = os.path.join(d, f)
        pf = pq.ParquetFile(p)
        md = pf.metadata
        kv = {k.decode(): v.decode() for k, v in (md.metadata or {}).items()}
        codecs = sorted({md.row_group(i).column(j).compression
                         for i in range(md.num_row_groups) for j in range(md.num_columns)})
        out.append({
            "path": os.path.relpath(p, root),
            "codecs": codecs,
            "row_groups": [md.row_group(i).total_byte_size for i in range(md.num_row_groups)],
            "json_columns": json.loads(kv.get("lago_audit.json_columns", "[]")),
            "rows": pf.read().to_pylist(),
        })
json.dump(out, sys.stdout)
"#;

fn lake() -> Lake {
    Lake::new("lago", "eu-west-1", "123456789012").unwrap()
}

fn options() -> SinkOptions {
    SinkOptions::default()
        .format(Format::Ocsf)
        .layout(Layout::SecurityLake(lake()))
        .limits(BatchLimits::default().max_records(400))
}

async fn fake(seed: u64) -> FakeLago {
    hostile(seed)
        .records_per_kind(1_500, 1_200, 800)
        .start()
        .await
        .unwrap()
}

/// The fake's ground truth of `T` as OCSF 1.3 events, by event id, with the kind's word in
/// source names.
fn expected<T: TestRecord>(
    fake: &FakeLago,
    kind: &'static str,
    into: &mut HashMap<String, (&'static str, Value)>,
) {
    for id in fake.ground_truth(T::FAKE, None, Some(fake.generator().now())) {
        let record: T = serde_json::from_value(fake.record_json(T::FAKE, &id).unwrap()).unwrap();
        let event = ocsf::to_1_3(record.to_ocsf());
        let uid = event["metadata"]["uid"].as_str().unwrap().to_owned();
        assert!(
            into.insert(uid, (kind, event)).is_none(),
            "two records with one id"
        );
    }
}

/// Exports all three kinds, killing the first runs of each at random points.
async fn export_all(fake: &FakeLago, dest: &Destination, seed: u64) {
    let killed = run_with_kills::<ActivityLogObject>(fake, dest, options, 200, 2, 6, seed).await
        + run_with_kills::<ApiLogObject>(fake, dest, options, 200, 2, 6, seed + 1).await
        + run_with_kills::<SecurityLogObject>(fake, dest, options, 200, 2, 6, seed + 2).await;
    eprintln!("{killed} runs killed");
}

/// Copies every object under `{prefix}/ext/` into `dir`, keeping the relative paths.
async fn download(dest: &Destination, dir: &Path) -> usize {
    let root = if dest.prefix().as_ref().is_empty() {
        "ext".to_owned()
    } else {
        format!("{}/ext", dest.prefix())
    };
    let listed: Vec<_> = dest
        .store()
        .list(Some(&object_store::path::Path::from(root.as_str())))
        .try_collect()
        .await
        .unwrap();
    for meta in &listed {
        let rel = meta
            .location
            .as_ref()
            .strip_prefix(&format!("{root}/"))
            .unwrap();
        let bytes = dest
            .store()
            .get(&meta.location)
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let path = dir.join("ext").join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
    listed.len()
}

fn read_back(python: &str, dir: &Path) -> Vec<Value> {
    let out = std::process::Command::new(python)
        .arg("-c")
        .arg(READER)
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pyarrow: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Undoes what Parquet adds or changes: nulls for absent members (removed), JSON text columns
/// (parsed), whole numbers in a floating-point column (as integers).
fn normalise(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|_, v| !v.is_null());
            m.values_mut().for_each(normalise);
        }
        Value::Array(items) => items.iter_mut().for_each(normalise),
        Value::Number(n) => {
            if let Some(f) = n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15) {
                *v = Value::from(f as i64);
            }
        }
        _ => {}
    }
}

fn decode_json(v: &mut Value, path: &[&str]) {
    let Some((head, rest)) = path.split_first() else {
        if let Value::String(s) = v {
            *v = serde_json::from_str(s).unwrap_or_else(|e| panic!("JSON column: {e}: {s}"));
        }
        return;
    };
    let (name, list) = match head.strip_suffix("[]") {
        Some(n) => (n, true),
        None => (*head, false),
    };
    match v.get_mut(name) {
        Some(Value::Array(items)) if list => items.iter_mut().for_each(|i| decode_json(i, rest)),
        Some(child) if !list => decode_json(child, rest),
        _ => {}
    }
}

/// Reads back every object of the archive at `dest` and checks it against the fake.
async fn check_lake(fake: &FakeLago, dest: &Destination, python: &str) {
    let mut want = HashMap::new();
    expected::<ActivityLogObject>(fake, "activity", &mut want);
    expected::<ApiLogObject>(fake, "api", &mut want);
    expected::<SecurityLogObject>(fake, "security", &mut want);
    let total = want.len();
    let dir = tempfile::tempdir().unwrap();
    let objects = download(dest, dir.path()).await;
    let files = read_back(python, dir.path());
    assert_eq!(files.len(), objects, "every object is a Parquet file");
    let schemas = schemas_of("1.3.0");
    let mut per_source = BTreeMap::<String, usize>::new();
    for file in &files {
        let path = file["path"].as_str().unwrap();
        // ext/{source}/region={region}/accountId={id}/eventDay=YYYYMMDD/{first}_{last}.parquet
        let parts: Vec<&str> = path.split('/').collect();
        assert_eq!(parts.len(), 6, "{path}");
        assert_eq!(
            &parts[..5],
            &[
                "ext",
                parts[1],
                "region=eu-west-1",
                "accountId=123456789012",
                parts[4]
            ]
        );
        let source = parts[1];
        let class: u64 = source.rsplit('-').next().unwrap().parse().unwrap();
        let day = parts[4].strip_prefix("eventDay=").unwrap();
        assert_eq!(file["codecs"], serde_json::json!(["ZSTD"]), "{path}");
        let groups = file["row_groups"].as_array().unwrap();
        assert_eq!(groups.len(), 1, "{path}: one row group");
        assert!(groups[0].as_u64().unwrap() <= 256 << 20, "{path}");
        let json: Vec<String> = serde_json::from_value(file["json_columns"].clone()).unwrap();
        let mut last_time = i64::MIN;
        for row in file["rows"].as_array().unwrap() {
            let mut event = row.clone();
            for column in &json {
                decode_json(&mut event, &column.split('.').collect::<Vec<_>>());
            }
            normalise(&mut event);
            assert_eq!(
                event["class_uid"].as_u64(),
                Some(class),
                "{path}: one class"
            );
            let time = event["time"].as_i64().unwrap();
            assert!(time >= last_time, "{path}: sorted by time");
            last_time = time;
            let at = chrono::DateTime::from_timestamp_millis(time).unwrap();
            assert_eq!(at.format("%Y%m%d").to_string(), day, "{path}: eventDay");
            let errors: Vec<String> = schemas[&class]
                .iter_errors(&event)
                .map(|e| format!("{} at {}", e, e.instance_path()))
                .collect();
            assert!(errors.is_empty(), "{path}: {errors:#?}\n{event:#}");
            let uid = event["metadata"]["uid"].as_str().unwrap().to_owned();
            let Some((kind, mut original)) = want.remove(&uid) else {
                panic!("{path}: event {uid} is a second copy, or no record of the fake")
            };
            assert_eq!(
                source,
                format!("lago-{kind}-{class}"),
                "one source per class"
            );
            normalise(&mut original);
            assert_eq!(event, original, "{path}: the event as mapped");
            *per_source.entry(source.to_owned()).or_default() += 1;
        }
    }
    assert!(
        want.is_empty(),
        "{} of {total} records missing, e.g. {:?}",
        want.len(),
        want.keys().next()
    );
    eprintln!("{objects} objects, {total} records: {per_source:?}");
    assert_eq!(
        per_source.keys().cloned().collect::<Vec<_>>(),
        [
            "lago-activity-3004",
            "lago-api-4002",
            "lago-security-3001",
            "lago-security-3002",
            "lago-security-3004",
            "lago-security-3005"
        ]
    );
    for kind in [
        lago_audit_sink::LogKind::Activity,
        lago_audit_sink::LogKind::Api,
        lago_audit_sink::LogKind::Security,
    ] {
        let report = verify(dest, kind, &VerifyOptions::default())
            .await
            .unwrap()
            .unwrap();
        assert!(report.is_valid(), "{kind}: {:#?}", report.problems);
        assert!(report.objects > 0, "{kind}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn security_lake_in_a_directory_reads_back_once_each_as_ocsf_1_3_and_verifies() {
    let Some(python) = server("LAGO_SINK_TEST_PYTHON") else {
        return;
    };
    let fake = fake(41).await;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("file://{}", dir.path().display());
    let dest = Destination::parse(&url).unwrap();
    export_all(&fake, &dest, 41).await;
    check_lake(&fake, &dest, &python).await;

    // An object changed afterwards: verify says which, by its hash.
    let victim = walk(dir.path())
        .into_iter()
        .find(|p| p.extension().is_some_and(|e| e == "parquet"))
        .unwrap();
    let mut bytes = std::fs::read(&victim).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&victim, bytes).unwrap();
    let mut codes = Vec::new();
    for kind in [
        lago_audit_sink::LogKind::Activity,
        lago_audit_sink::LogKind::Api,
        lago_audit_sink::LogKind::Security,
    ] {
        let report = verify(&dest, kind, &VerifyOptions::default())
            .await
            .unwrap()
            .unwrap();
        codes.extend(report.problems.iter().map(|p| (p.code, p.path.clone())));
    }
    let name = victim.strip_prefix(dir.path()).unwrap().to_str().unwrap();
    assert!(
        codes.contains(&("object-hash", name.to_owned())),
        "{name}: {codes:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn security_lake_on_s3_reads_back_once_each_as_ocsf_1_3_and_verifies() {
    let (Some(s3), Some(python)) = (server("LAGO_SINK_TEST_S3"), server("LAGO_SINK_TEST_PYTHON"))
    else {
        return;
    };
    let bucket = unique("lake");
    create_bucket(&s3, &bucket).await;
    let dest = s3_destination(&s3, &bucket);
    let fake = fake(43).await;
    export_all(&fake, &dest, 43).await;
    check_lake(&fake, &dest, &python).await;
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out.sort();
    out
}
