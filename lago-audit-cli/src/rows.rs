//! What CSV and table rows are made of: the columns of a table, and how values become text.
//! Each kind's own columns are in its `LogKind` impl.

use std::collections::{BTreeMap, HashMap};

/// A table column: its title, the narrowest it may get, the widest it needs, and whether it is
/// dropped first when the terminal is narrow (higher `drop_order` goes first; 0 is never dropped).
#[derive(Clone, Copy, Debug)]
pub struct Column {
    /// The title.
    pub title: &'static str,
    /// The narrowest width worth showing.
    pub min: usize,
    /// The widest the values get.
    pub max: usize,
    /// Columns with a higher number are left out first when the terminal is narrow.
    pub drop_order: u8,
}

pub const fn col(title: &'static str, min: usize, max: usize, drop_order: u8) -> Column {
    Column {
        title,
        min,
        max,
        drop_order,
    }
}

pub fn time(t: &chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

pub fn short_time(t: &chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

pub fn opt(s: &Option<String>) -> String {
    s.clone().unwrap_or_default()
}

/// A string map as JSON text, keys sorted so the same record always gives the same text.
pub fn map_text(m: &HashMap<String, Option<String>>) -> String {
    let sorted: BTreeMap<_, _> = m.iter().collect();
    serde_json::to_string(&sorted).unwrap_or_default()
}

pub fn opt_map_text(m: &Option<HashMap<String, Option<String>>>) -> String {
    m.as_ref().map(map_text).unwrap_or_default()
}

pub fn opt_json(m: &Option<serde_json::Map<String, serde_json::Value>>) -> String {
    m.as_ref()
        .map(|m| serde_json::to_string(m).unwrap_or_default())
        .unwrap_or_default()
}
