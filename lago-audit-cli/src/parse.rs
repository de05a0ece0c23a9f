//! Reading flag values: each parser checks one value alone, before anything is sent, and says
//! what it expected; [`Window`] holds `--from`/`--to`. The lowest layer of the command line: it
//! imports nothing of the crate but these words.

use clap::Args;
use lago_audit_client::{
    ActivitySource, DateFilter, HttpMethod, HttpStatusFilter, SecurityLogType,
};
use std::time::Duration;

/// `--from` / `--to`, common to every list.
#[derive(Args, Debug, Clone, Default, serde::Serialize)]
pub struct Window {
    /// Oldest logged_at to include: a date (00:00:00 UTC) or an RFC 3339 date-time. Inclusive.
    #[arg(id = "from_date", long = "from", value_name = "DATE", value_parser = parse_date)]
    pub from: Option<DateFilter>,
    /// Newest logged_at to include: a date (00:00:00 UTC, so the rest of that day is left out)
    /// or an RFC 3339 date-time. Inclusive.
    #[arg(id = "to_date", long = "to", value_name = "DATE", value_parser = parse_date)]
    pub to: Option<DateFilter>,
}

pub(crate) fn non_blank(s: &str) -> Result<String, String> {
    if s.trim().is_empty() {
        Err("must not be empty".into())
    } else {
        Ok(s.to_owned())
    }
}

pub(crate) fn parse_date(s: &str) -> Result<DateFilter, String> {
    s.trim().parse::<DateFilter>().map_err(|_| {
        "expected a date (2025-03-31) or an RFC 3339 date-time (2025-03-31T12:00:00Z)".into()
    })
}

pub(crate) fn parse_email(s: &str) -> Result<String, String> {
    let s = s.trim();
    match s.split_once('@') {
        Some((user, host)) if !user.is_empty() && !host.is_empty() && !s.contains(' ') => {
            Ok(s.to_owned())
        }
        _ => Err("expected an e-mail address such as jane@example.com".into()),
    }
}

pub(crate) fn parse_uuid(s: &str) -> Result<uuid::Uuid, String> {
    uuid::Uuid::parse_str(s.trim())
        .map_err(|_| "expected a uuid such as 1a901a90-1a90-1a90-1a90-1a901a901a90".into())
}

pub(crate) fn parse_uuid_text(s: &str) -> Result<String, String> {
    parse_uuid(s).map(|u| u.to_string())
}

/// Checks `s` (any case) against an open enum's known values.
fn known<T: From<String>>(s: &str, known: &[&str]) -> Result<T, String> {
    let lower = s.trim().to_ascii_lowercase();
    if known.contains(&lower.as_str()) {
        Ok(T::from(lower))
    } else {
        Err(format!("expected one of {}", known.join(", ")))
    }
}

pub(crate) fn parse_activity_source(s: &str) -> Result<ActivitySource, String> {
    known(s, ActivitySource::KNOWN)
}

/// Lago stores methods in lower case; its own CLI's upper case matches nothing.
pub(crate) fn parse_http_method(s: &str) -> Result<HttpMethod, String> {
    known(s, HttpMethod::KNOWN)
}

pub(crate) fn parse_log_type(s: &str) -> Result<SecurityLogType, String> {
    known(s, SecurityLogType::KNOWN)
}

pub(crate) fn parse_http_status(s: &str) -> Result<HttpStatusFilter, String> {
    s.trim()
        .to_ascii_lowercase()
        .parse::<HttpStatusFilter>()
        .map_err(|_| "expected failed, succeeded, or a status code from 100 to 599".into())
}

/// A size in bytes: a plain number, or with a unit, any case, with or without a space: `k`/`kB`
/// (1000), `KiB` (1024), `M`/`MB`, `MiB`, `G`/`GB`, `GiB`; a bare `K`, `M`, `G` is binary, as
/// `--help`'s `32M` reads to most people. At least one byte.
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let bad = || format!("expected a size such as 32MiB, 10MB, 500k or 1048576, got {s:?}");
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let value: f64 = number.parse().map_err(|_| bad())?;
    let scale: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1000,
        "k" | "kib" => 1 << 10,
        "mb" => 1_000_000,
        "m" | "mib" => 1 << 20,
        "gb" => 1_000_000_000,
        "g" | "gib" => 1 << 30,
        _ => return Err(bad()),
    };
    let bytes = value * scale as f64;
    if !bytes.is_finite() || bytes < 1.0 || bytes > u64::MAX as f64 {
        return Err(bad());
    }
    Ok(bytes.round() as u64)
}

/// A duration as `--help` shows it and [`parse_duration`] reads it: `30s`, `1.5s`.
pub fn seconds(d: Duration) -> String {
    format!("{}s", d.as_secs_f64())
}

/// `500ms`, `30s`, `2m`, `1h`, or a plain number of seconds (`1.5`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let bad = || format!("expected a duration such as 500ms, 30s or 2m, got {s:?}");
    let (number, unit) = match s.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let value: f64 = number.parse().map_err(|_| bad())?;
    let seconds = match unit.trim() {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => return Err(bad()),
    };
    if !seconds.is_finite() || !(0.0..=86_400.0 * 365.0).contains(&seconds) {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(seconds))
}

impl Window {
    /// The instant `--from` starts at, if given.
    pub fn start_instant(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        self.from.map(start_of)
    }

    /// Checks the bounds against each other: `--from` must not be after `--to`.
    pub fn check(&self) -> Result<(), String> {
        if let (Some(from), Some(to)) = (self.from, self.to) {
            if start_of(from) > start_of(to) {
                return Err(format!(
                    "invalid value for '--from': {from} is after --to {to}, so no record can match"
                ));
            }
        }
        Ok(())
    }
}

fn start_of(d: DateFilter) -> chrono::DateTime<chrono::Utc> {
    match d {
        DateFilter::Date(d) => d.and_time(chrono::NaiveTime::MIN).and_utc(),
        DateFilter::DateTime(t) => t,
    }
}
