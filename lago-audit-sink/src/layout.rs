//! Where things go: the kinds of log, object names and the checkpoint's path.
//!
//! ```text
//! {prefix}/{kind}/dt=YYYY-MM-DD/{first}_{last}.ndjson.gz
//! {prefix}/{kind}/_lago-audit/chain/{seq:020}.json
//! ```
//!
//! `{first}` and `{last}` are the first and last second (UTC, `YYYYMMDDTHHMMSSZ`) of the records
//! the object holds, so a name is a function of its content and names sort in time order.
//!
//! With [`Layout::SecurityLake`] the objects are Parquet files under Amazon Security Lake's
//! partitions, one custom source per OCSF class of each kind ([`Lake::source_for`]), and named the
//! same way; the chain stays in `{prefix}/{kind}/_lago-audit/`:
//!
//! ```text
//! {prefix}/ext/{source}-{kind}-{class_uid}/region={region}/accountId={id}/eventDay=YYYYMMDD/{first}_{last}.parquet
//! {prefix}/{kind}/_lago-audit/chain/{seq:020}.json
//! ```

use chrono::{DateTime, NaiveDateTime, Utc};

/// The three kinds of Lago audit log, each in a folder of its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LogKind {
    /// Activity logs (`activity_logs/`).
    Activity,
    /// API logs (`api_logs/`).
    Api,
    /// Security logs (`security_logs/`).
    Security,
}

impl LogKind {
    /// The folder name: `activity_logs`, `api_logs` or `security_logs`.
    pub fn dir(self) -> &'static str {
        match self {
            LogKind::Activity => "activity_logs",
            LogKind::Api => "api_logs",
            LogKind::Security => "security_logs",
        }
    }
}

impl LogKind {
    /// How long Lago keeps this kind of log: 30 days for activity and API logs, 90 for security
    /// logs. A list request never returns older records.
    pub fn retention(self) -> std::time::Duration {
        let days = match self {
            LogKind::Activity | LogKind::Api => 30,
            LogKind::Security => 90,
        };
        std::time::Duration::from_secs(days * 86_400)
    }
}

impl std::fmt::Display for LogKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.dir())
    }
}

const STAMP: &str = "%Y%m%dT%H%M%SZ";
const SUFFIX: &str = ".ndjson.gz";

/// The folder of the checkpoint and the writer's own files, inside `{prefix}/{kind}/`.
pub const STATE_DIR: &str = "_lago-audit";
/// The file name, inside [`STATE_DIR`], of the checkpoint written by versions before the chain
/// (read once, to start a chain from it).
pub const CHECKPOINT_FILE: &str = "checkpoint.json";
/// The folder of the checkpoint chain inside [`STATE_DIR`] (see [`crate::chain`]).
pub const CHAIN_DIR: &str = "chain";
/// The folder of the signed digests inside [`STATE_DIR`] (see [`crate::digest`]).
pub const DIGEST_DIR: &str = "digests";

/// Where a sink's objects go and what they hold.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum Layout {
    /// gzip NDJSON under `{prefix}/{kind}/dt=YYYY-MM-DD/` (Hive partitions).
    #[default]
    Hive,
    /// Parquet (zstd) of OCSF 1.3 events for Amazon Security Lake custom sources: see [`Lake`].
    /// Needs the crate's `security-lake` feature and [`Format::Ocsf`](crate::Format::Ocsf).
    SecurityLake(Lake),
}

impl Layout {
    /// What the chain records as the archive's format (`format`): the line format for
    /// [`Layout::Hive`]; for Security Lake, the source, region and account too, so a prefix
    /// reopened with other partitions is refused instead of scattering one archive over two.
    pub fn tag(&self, format: crate::Format) -> String {
        match self {
            Layout::Hive => format.as_str().to_owned(),
            Layout::SecurityLake(lake) => format!(
                "ocsf-1.3-parquet;security-lake;source={};region={};accountId={}",
                lake.source, lake.region, lake.account_id
            ),
        }
    }
}

/// An Amazon Security Lake target: the custom sources' common name, the region and the account
/// id of their partitions.
///
/// Security Lake wants one OCSF class per source. Each kind of log therefore writes one source
/// per class it maps to, named `{source}-{kind}-{class_uid}` ([`Lake::source_for`]): activity
/// logs `…-activity-3004`; API logs `…-api-4002`; security logs `…-security-3001`, `-3002`,
/// `-3004` and `-3005`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Lake {
    source: String,
    region: String,
    account_id: String,
}

fn lake_word(
    what: &str,
    s: &str,
    max: usize,
    allowed: &str,
    ok: impl Fn(char) -> bool,
) -> Result<(), String> {
    if s.is_empty() || s.len() > max || !s.chars().all(ok) {
        return Err(format!("{what} `{s}` must be 1 to {max} {allowed}"));
    }
    Ok(())
}

impl Lake {
    /// A target, checked: `source` is 1–40 letters, digits, `-` or `_` (Security Lake's source
    /// names are at most 64 characters, and `-{kind}-{class_uid}` is added); `region` is an AWS
    /// region (lower-case letters, digits, `-`); `account_id` is 1–64 letters, digits, `-` or `_`
    /// (12 digits for an AWS account; for a source outside AWS it is the operator's choice).
    pub fn new(source: &str, region: &str, account_id: &str) -> Result<Self, String> {
        let word = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
        let words = "letters, digits, `-` or `_`";
        lake_word("the source name", source, 40, words, word)?;
        lake_word(
            "the region",
            region,
            32,
            "lower-case letters, digits or `-` (e.g. eu-west-1)",
            |c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-',
        )?;
        lake_word("the account id", account_id, 64, words, word)?;
        Ok(Self {
            source: source.to_owned(),
            region: region.to_owned(),
            account_id: account_id.to_owned(),
        })
    }
    /// The sources' common name.
    pub fn source(&self) -> &str {
        &self.source
    }
    /// The region of the partitions.
    pub fn region(&self) -> &str {
        &self.region
    }
    /// The account id of the partitions.
    pub fn account_id(&self) -> &str {
        &self.account_id
    }
    /// The custom source of `kind`'s events of OCSF class `class_uid`:
    /// `{source}-{activity|api|security}-{class_uid}`.
    pub fn source_for(&self, kind: LogKind, class_uid: u64) -> String {
        let kind = match kind {
            LogKind::Activity => "activity",
            LogKind::Api => "api",
            LogKind::Security => "security",
        };
        format!("{}-{kind}-{class_uid}", self.source)
    }
    /// The object name (relative to the prefix) of `kind`'s events of class `class_uid` whose
    /// records span the seconds `first..=last`:
    /// `ext/{source}/region={region}/accountId={id}/eventDay=YYYYMMDD/{first}_{last}.parquet`.
    pub fn object_name(&self, kind: LogKind, class_uid: u64, first: i64, last: i64) -> String {
        let (a, b) = (
            second(first).unwrap_or_default(),
            second(last).unwrap_or_default(),
        );
        format!(
            "{LAKE_ROOT}/{}/region={}/accountId={}/eventDay={}/{}_{}{LAKE_SUFFIX}",
            self.source_for(kind, class_uid),
            self.region,
            self.account_id,
            a.format("%Y%m%d"),
            a.format(STAMP),
            b.format(STAMP)
        )
    }
}

/// The folder of Security Lake's custom sources, under the prefix.
pub const LAKE_ROOT: &str = "ext";
const LAKE_SUFFIX: &str = ".parquet";

/// The store path of an object the chain names: a Security Lake object's name (it starts with
/// `ext/`) is relative to the prefix, any other to `{prefix}/{kind}/`.
pub fn object_path(
    dest: &crate::Destination,
    kind: LogKind,
    name: &str,
) -> object_store::path::Path {
    if is_lake_object(name) {
        dest.path(name)
    } else {
        dest.path(&format!("{}/{name}", kind.dir()))
    }
}

/// Whether a name the chain holds is a Security Lake object (`ext/…/….parquet`).
pub fn is_lake_object(name: &str) -> bool {
    name.starts_with(&format!("{LAKE_ROOT}/")) && name.ends_with(LAKE_SUFFIX)
}

/// The seconds `(first, last)` of a Security Lake object name and its `eventDay` (`YYYYMMDD`),
/// when they agree; `None` otherwise.
pub fn parse_lake_object_name(name: &str) -> Option<(i64, i64)> {
    let rest = name.strip_prefix(&format!("{LAKE_ROOT}/"))?;
    let (dir, file) = rest.rsplit_once('/')?;
    let day = dir.rsplit('/').next()?.strip_prefix("eventDay=")?;
    let (a, b) = file.strip_suffix(LAKE_SUFFIX)?.split_once('_')?;
    let parse = |s: &str| {
        NaiveDateTime::parse_from_str(s, STAMP)
            .ok()
            .map(|t| t.and_utc())
    };
    let (a, b) = (parse(a)?, parse(b)?);
    (a <= b && a.format("%Y%m%d").to_string() == day).then(|| (a.timestamp(), b.timestamp()))
}

pub(crate) fn second(t: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t, 0)
}

/// The object name (relative to `{prefix}/{kind}/`) of a batch whose records span the seconds
/// `first..=last` (unix seconds): `dt=YYYY-MM-DD/{first}_{last}.ndjson.gz`.
pub fn object_name(first: i64, last: i64) -> String {
    let (a, b) = (
        second(first).unwrap_or_default(),
        second(last).unwrap_or_default(),
    );
    format!(
        "dt={}/{}_{}{SUFFIX}",
        a.format("%Y-%m-%d"),
        a.format(STAMP),
        b.format(STAMP)
    )
}

/// The seconds `(first, last)` an object name (relative to `{prefix}/{kind}/`) covers, or `None`
/// for anything this crate does not write (the checkpoint, a staging file, another tool's files).
pub fn parse_object_name(name: &str) -> Option<(i64, i64)> {
    let (dir, file) = name.split_once('/')?;
    let day = dir.strip_prefix("dt=")?;
    let (a, b) = file.strip_suffix(SUFFIX)?.split_once('_')?;
    let parse = |s: &str| {
        NaiveDateTime::parse_from_str(s, STAMP)
            .ok()
            .map(|t| t.and_utc())
    };
    let (a, b) = (parse(a)?, parse(b)?);
    (a <= b && a.format("%Y-%m-%d").to_string() == day).then(|| (a.timestamp(), b.timestamp()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_sort_in_time_order() {
        let a = "2025-03-01T23:59:58Z"
            .parse::<DateTime<Utc>>()
            .unwrap()
            .timestamp();
        let name = object_name(a, a + 1);
        assert_eq!(
            name,
            "dt=2025-03-01/20250301T235958Z_20250301T235959Z.ndjson.gz"
        );
        assert_eq!(parse_object_name(&name), Some((a, a + 1)));
        assert!(object_name(a, a) < object_name(a + 1, a + 1));
        for bad in [
            "dt=2025-03-02/20250301T235958Z_20250301T235959Z.ndjson.gz",
            "dt=2025-03-01/20250301T235959Z_20250301T235958Z.ndjson.gz",
            "dt=2025-03-01/20250301T235958Z_20250301T235959Z.ndjson.gz#1",
            "_lago-audit/checkpoint.json",
            "dt=2025-03-01/x.ndjson.gz",
        ] {
            assert_eq!(parse_object_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn lake_names_follow_security_lakes_partitions() {
        let a = "2025-03-01T23:59:58Z"
            .parse::<DateTime<Utc>>()
            .unwrap()
            .timestamp();
        let lake = Lake::new("lago", "eu-west-1", "123456789012").unwrap();
        let name = lake.object_name(LogKind::Security, 3002, a, a + 1);
        assert_eq!(
            name,
            "ext/lago-security-3002/region=eu-west-1/accountId=123456789012/eventDay=20250301/\
             20250301T235958Z_20250301T235959Z.parquet"
        );
        assert!(is_lake_object(&name));
        assert_eq!(parse_lake_object_name(&name), Some((a, a + 1)));
        assert!(!is_lake_object(&object_name(a, a)));
        for (s, r, id) in [
            ("", "eu-west-1", "1"),
            ("a/b", "eu-west-1", "1"),
            ("lago", "EU", "1"),
            ("lago", "eu-west-1", "../x"),
        ] {
            assert!(Lake::new(s, r, id).is_err(), "{s} {r} {id}");
        }
        assert_ne!(
            Layout::SecurityLake(lake.clone()).tag(crate::Format::Ocsf),
            Layout::SecurityLake(Lake::new("lago", "us-east-1", "123456789012").unwrap())
                .tag(crate::Format::Ocsf)
        );
    }
}
