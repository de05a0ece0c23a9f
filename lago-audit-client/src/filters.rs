//! Filter values with a shape the generator cannot name well: a date-or-date-time bound and an
//! HTTP status filter. They replace the spec's `DateFilter` and `HttpStatusFilter` schemas.
//!
//! ```
//! use chrono::{NaiveDate, TimeZone, Utc};
//! use lago_audit_client::filters::{DateFilter, HttpStatusFilter};
//!
//! let day: DateFilter = NaiveDate::from_ymd_opt(2025, 3, 31).unwrap().into();
//! let instant: DateFilter = Utc.with_ymd_and_hms(2025, 3, 31, 12, 0, 0).unwrap().into();
//! assert_eq!(day.to_string(), "2025-03-31");
//! assert_eq!(instant.to_string(), "2025-03-31T12:00:00Z");
//! assert_eq!("2025-03-31".parse::<DateFilter>().unwrap(), day);
//!
//! assert_eq!(HttpStatusFilter::code(422).unwrap().to_string(), "422");
//! assert!(HttpStatusFilter::code(99).is_err());
//! assert_eq!("failed".parse::<HttpStatusFilter>().unwrap(), HttpStatusFilter::Failed);
//! ```

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use std::fmt;
use std::str::FromStr;

/// A bound of a date filter (`from_date`, `to_date`). Both bounds are inclusive; a bare date
/// means 00:00:00 UTC of that day, so `to_date = 2022-08-09` leaves out the rest of that day.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DateFilter {
    /// A calendar day, sent as `YYYY-MM-DD`.
    Date(NaiveDate),
    /// An instant, sent as an RFC 3339 date-time in UTC.
    DateTime(DateTime<Utc>),
}

impl fmt::Display for DateFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DateFilter::Date(d) => write!(f, "{}", d.format("%Y-%m-%d")),
            DateFilter::DateTime(t) => f.write_str(&t.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
        }
    }
}

/// A string that is neither a `YYYY-MM-DD` date nor an RFC 3339 date-time.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is neither a date (YYYY-MM-DD) nor an RFC 3339 date-time (2025-03-31T12:00:00Z)")]
pub struct InvalidDateFilter(pub String);

impl FromStr for DateFilter {
    type Err = InvalidDateFilter;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
            return Ok(DateFilter::Date(d));
        }
        DateTime::parse_from_rfc3339(s)
            .map(|t| DateFilter::DateTime(t.with_timezone(&Utc)))
            .map_err(|_| InvalidDateFilter(s.to_owned()))
    }
}

impl From<NaiveDate> for DateFilter {
    fn from(d: NaiveDate) -> Self {
        DateFilter::Date(d)
    }
}

impl From<DateTime<Utc>> for DateFilter {
    fn from(t: DateTime<Utc>) -> Self {
        DateFilter::DateTime(t)
    }
}

/// An API-log status filter: an outcome or an exact status code (100..=599).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HttpStatusFilter {
    /// Calls that succeeded.
    Succeeded,
    /// Calls that failed.
    Failed,
    /// Calls answered with this status (build it with [`HttpStatusFilter::code`], or convert a
    /// number: `HttpStatusFilter::try_from(422)`).
    Code(HttpStatusCode),
}

/// An HTTP status code in 100..=599: no other value can be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HttpStatusCode(u16);

impl HttpStatusCode {
    /// The code, checked to be in 100..=599.
    pub fn new(code: u16) -> Result<Self, InvalidHttpStatusFilter> {
        if (100..=599).contains(&code) {
            Ok(Self(code))
        } else {
            Err(InvalidHttpStatusFilter(code.to_string()))
        }
    }

    /// The code as a number.
    pub fn get(self) -> u16 {
        self.0
    }
}

impl fmt::Display for HttpStatusCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A status filter that is not `succeeded`, `failed` or a code in 100..=599.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an HTTP status filter (succeeded, failed, or a code in 100..=599)")]
pub struct InvalidHttpStatusFilter(pub String);

impl HttpStatusFilter {
    /// A filter on an exact status code, checked to be in 100..=599.
    pub fn code(code: u16) -> Result<Self, InvalidHttpStatusFilter> {
        HttpStatusCode::new(code).map(HttpStatusFilter::Code)
    }
}

impl fmt::Display for HttpStatusFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpStatusFilter::Succeeded => f.write_str("succeeded"),
            HttpStatusFilter::Failed => f.write_str("failed"),
            HttpStatusFilter::Code(c) => write!(f, "{c}"),
        }
    }
}

impl FromStr for HttpStatusFilter {
    type Err = InvalidHttpStatusFilter;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "succeeded" => Ok(HttpStatusFilter::Succeeded),
            "failed" => Ok(HttpStatusFilter::Failed),
            other => other
                .parse::<u16>()
                .ok()
                .and_then(|c| HttpStatusFilter::code(c).ok())
                .ok_or_else(|| InvalidHttpStatusFilter(other.to_owned())),
        }
    }
}

/// Numbers convert when they are a status code in 100..=599 (`i32` is what a bare literal such as
/// `422` is, so `.http_statuses([422, 500])` works).
macro_rules! from_number {
    ($($n:ty),+) => {$(
        impl TryFrom<$n> for HttpStatusFilter {
            type Error = InvalidHttpStatusFilter;
            fn try_from(code: $n) -> Result<Self, Self::Error> {
                u16::try_from(code)
                    .ok()
                    .and_then(|c| HttpStatusFilter::code(c).ok())
                    .ok_or_else(|| InvalidHttpStatusFilter(code.to_string()))
            }
        }
    )+};
}
from_number!(u16, i32, u32, i64);

impl From<HttpStatusCode> for HttpStatusFilter {
    fn from(code: HttpStatusCode) -> Self {
        HttpStatusFilter::Code(code)
    }
}

impl TryFrom<reqwest::StatusCode> for HttpStatusFilter {
    type Error = InvalidHttpStatusFilter;
    fn try_from(status: reqwest::StatusCode) -> Result<Self, Self::Error> {
        HttpStatusFilter::code(status.as_u16())
    }
}

/// Both types convert from text (the builders take `TryInto`, so `"2025-03-31"` works) and go on
/// the wire as their text form (a status code as a number in JSON).
macro_rules! via_text {
    ($t:ty, $err:ty) => {
        impl TryFrom<&str> for $t {
            type Error = $err;
            fn try_from(s: &str) -> Result<Self, Self::Error> {
                s.parse()
            }
        }

        impl TryFrom<String> for $t {
            type Error = $err;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                s.parse()
            }
        }

        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let v = serde_json::Value::deserialize(d)?;
                let text = match &v {
                    serde_json::Value::String(s) => s.clone(),
                    serde_json::Value::Number(n) => n.to_string(),
                    other => return Err(serde::de::Error::custom(format!("unexpected {other}"))),
                };
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}
via_text!(DateFilter, InvalidDateFilter);
via_text!(HttpStatusFilter, InvalidHttpStatusFilter);

impl serde::Serialize for DateFilter {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl serde::Serialize for HttpStatusFilter {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            HttpStatusFilter::Code(c) => s.serialize_u16(c.get()),
            other => s.collect_str(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn date_filters_parse_and_print() {
        let t: DateFilter = "2025-03-31T14:00:00+02:00".parse().unwrap();
        assert_eq!(
            t,
            DateFilter::DateTime(Utc.with_ymd_and_hms(2025, 3, 31, 12, 0, 0).unwrap())
        );
        assert_eq!(t.to_string(), "2025-03-31T12:00:00Z");
        assert!("2025-02-30".parse::<DateFilter>().is_err());
        assert!("yesterday".parse::<DateFilter>().is_err());
        assert_eq!(
            serde_json::to_string(&t).unwrap(),
            "\"2025-03-31T12:00:00Z\""
        );
        let back: DateFilter = serde_json::from_str("\"2022-08-09\"").unwrap();
        assert_eq!(
            back,
            DateFilter::Date(NaiveDate::from_ymd_opt(2022, 8, 9).unwrap())
        );
    }

    #[test]
    fn status_filters_are_checked() {
        assert_eq!(
            HttpStatusFilter::try_from(404u16).unwrap(),
            HttpStatusFilter::code(404).unwrap()
        );
        assert!(HttpStatusFilter::try_from(600u16).is_err());
        assert!(HttpStatusFilter::try_from(999).is_err());
        assert!(HttpStatusFilter::try_from(-1).is_err());
        assert!(HttpStatusFilter::try_from(70_000u32).is_err());
        assert!(HttpStatusFilter::try_from(reqwest::StatusCode::from_u16(999).unwrap()).is_err());
        assert!(HttpStatusCode::new(99).is_err() && HttpStatusCode::new(600).is_err());
        assert_eq!(HttpStatusCode::new(599).unwrap().get(), 599);
        assert!("2xx".parse::<HttpStatusFilter>().is_err());
        assert_eq!(
            serde_json::to_string(&HttpStatusFilter::code(422).unwrap()).unwrap(),
            "422"
        );
        assert_eq!(
            serde_json::to_string(&HttpStatusFilter::Succeeded).unwrap(),
            "\"succeeded\""
        );
        let v: HttpStatusFilter = serde_json::from_str("503").unwrap();
        assert_eq!(v, HttpStatusFilter::code(503).unwrap());
        assert!(serde_json::from_str::<HttpStatusFilter>("999").is_err());
    }
}
