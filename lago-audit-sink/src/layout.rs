//! Where things go: the kinds of log, object names and the checkpoint's path.
//!
//! ```text
//! {prefix}/{kind}/dt=YYYY-MM-DD/{first}_{last}.ndjson.gz
//! {prefix}/{kind}/_lago-audit/chain/{seq:020}.json
//! ```
//!
//! `{first}` and `{last}` are the first and last second (UTC, `YYYYMMDDTHHMMSSZ`) of the records
//! the object holds, so a name is a function of its content and names sort in time order.

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
}
