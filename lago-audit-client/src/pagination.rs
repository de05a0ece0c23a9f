//! Streams over the pages of one list query: **one query, page by page, not exactly-once**.
//!
//! Lago pages with `page`/`per_page` and reports `meta.next_page`; progenitor only generates
//! streams for another pagination shape, so these are written here. Import [`Paginate`] and call
//! [`pages`](Paginate::pages) or [`items`](Paginate::items) on a list request; the stream starts
//! at the request's own `page` (1 when unset):
//!
//! ```no_run
//! # async fn run(client: lago_audit_client::Client) -> Result<(), lago_audit_client::Error> {
//! use futures::TryStreamExt;
//! use lago_audit_client::Paginate;
//!
//! let mut logs = client.find_all_activity_logs().per_page(100).to_date("2025-03-31").items();
//! while let Some(log) = logs.try_next().await? {
//!     println!("{} {}", log.logged_at, log.activity_type);
//! }
//! # Ok(()) }
//! ```
//!
//! These streams send the same query for page 1, 2, 3… Lago orders by `logged_at`, newest first,
//! at second precision, with **no tie-breaker**: records sharing a second come back in another
//! order on each query, and new records go to the front while you page. So across page
//! boundaries a record can be **missed** (ties reordered) or **seen twice** (pushed down by
//! inserts), and no setting of `to_date` prevents the first. [`items`](Paginate::items) drops a
//! record already seen on the previous page, which helps with inserts but cannot bring back a
//! missed record. To read a whole window exactly once, use [`Export`](crate::Export).

use crate::types::{
    ActivityLogObject, ActivityLogsPaginated, ApiLogObject, ApiLogsPaginated, PaginationMeta,
    SecurityLogObject, SecurityLogsPaginated,
};
use crate::Error;
use futures::stream::{self, Stream};
use std::collections::{HashSet, VecDeque};
use std::future::Future;

/// One page of a list response.
pub trait Page {
    /// The record type.
    type Item;
    /// The pagination metadata.
    fn meta(&self) -> &PaginationMeta;
    /// The records, in the server's order.
    fn into_items(self) -> Vec<Self::Item>;
}

macro_rules! page {
    ($page:ty, $item:ty, $field:ident) => {
        impl Page for $page {
            type Item = $item;
            fn meta(&self) -> &PaginationMeta {
                &self.meta
            }
            fn into_items(self) -> Vec<$item> {
                self.$field
            }
        }
    };
}
page!(ActivityLogsPaginated, ActivityLogObject, activity_logs);
page!(ApiLogsPaginated, ApiLogObject, api_logs);
page!(SecurityLogsPaginated, SecurityLogObject, security_logs);

/// What identifies a record, as text, used to drop duplicates across a page boundary.
pub trait RecordKey {
    /// The record's identity as text.
    fn record_key(&self) -> String;
}

impl RecordKey for ActivityLogObject {
    fn record_key(&self) -> String {
        self.activity_id.to_string()
    }
}
/// An API log has no id of its own: `request_id` is a caller's `X-Request-Id` when one was sent,
/// and callers reuse it (a retried call, a fixed header), so it does not tell two calls apart.
/// The identity is therefore the whole record, as canonical JSON text (object keys sorted); two
/// records equal in every field, to the second, cannot be told apart by anyone.
impl RecordKey for ApiLogObject {
    fn record_key(&self) -> String {
        match serde_json::to_value(self) {
            Ok(value) => {
                let mut out = String::new();
                canonical_json(&value, &mut out);
                out
            }
            Err(_) => self.request_id.clone(),
        }
    }
}

/// Writes `value` as JSON with every object's keys in sorted order, whatever map type produced
/// it.
fn canonical_json(value: &serde_json::Value, out: &mut String) {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                canonical_json(v, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical_json(v, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_log_keys_do_not_depend_on_map_order() {
        let json = |body: &str| {
            serde_json::json!({"request_id": "same", "api_version": "v1", "client": "c",
                "http_method": "post", "http_status": 200, "request_origin": "o",
                "request_path": "/p", "logged_at": "2025-04-01T12:00:00Z",
                "created_at": "2025-04-01T12:00:00Z",
                "request_body": serde_json::from_str::<serde_json::Value>(body).unwrap()})
        };
        let a: ApiLogObject =
            serde_json::from_value(json(r#"{"a":"1","b":"2","c":"3","d":"4"}"#)).unwrap();
        let b: ApiLogObject =
            serde_json::from_value(json(r#"{"d":"4","c":"3","b":"2","a":"1"}"#)).unwrap();
        let c: ApiLogObject = serde_json::from_value(json(r#"{"a":"1"}"#)).unwrap();
        for _ in 0..20 {
            assert_eq!(a.record_key(), b.record_key());
        }
        assert_ne!(
            a.record_key(),
            c.record_key(),
            "same request_id, other call"
        );
    }
}
impl RecordKey for SecurityLogObject {
    fn record_key(&self) -> String {
        self.log_id.to_string()
    }
}

/// A list request that can be sent for any page. Implemented for the builders of
/// `find_all_activity_logs`, `find_all_api_logs` and `find_all_security_logs`.
pub trait Paginate: Clone + Send + Sync + Sized {
    /// The page type.
    type Page: Page + Send;

    /// Sends this request for page `page` (1-based).
    fn fetch_page(&self, page: i64) -> impl Future<Output = Result<Self::Page, Error>> + Send;

    /// The `page` this request was given (1 when unset), read without sending anything.
    fn start_page(&self) -> impl Future<Output = i64> + Send;

    /// Every page from the request's own `page` (1 when unset), stopping after the last page or
    /// the first error. A server whose `next_page` does not move forward ends the stream with an
    /// error after that page. One query, page by page: see the [module documentation](self).
    fn pages(self) -> impl Stream<Item = Result<Self::Page, Error>> + Send + Unpin {
        enum Step<R> {
            Start(R),
            Fetch(R, i64),
            Fail(Error),
        }
        Box::pin(stream::unfold(
            Some(Step::Start(self)),
            |state| async move {
                let (request, page) = match state? {
                    Step::Start(request) => {
                        let page = request.start_page().await;
                        (request, page)
                    }
                    Step::Fetch(request, page) => (request, page),
                    Step::Fail(e) => return Some((Err(e), None)),
                };
                match request.fetch_page(page).await {
                    Ok(p) => {
                        let next = match p.meta().next_page {
                            None => None,
                            Some(n) if n > page => Some(Step::Fetch(request, n)),
                            Some(n) => Some(Step::Fail(Error::Decode {
                                status: reqwest::StatusCode::OK,
                                message: format!(
                                    "pagination does not advance: next_page {n} after page {page}"
                                ),
                                body_snippet: String::new(),
                            })),
                        };
                        Some((Ok(p), next))
                    }
                    Err(e) => Some((Err(e), None)),
                }
            },
        ))
    }

    /// Every record of every page, dropping a record that was already on the previous page
    /// (by [`RecordKey`]). Not exactly-once: see the [module documentation](self).
    fn items(self) -> impl Stream<Item = Result<<Self::Page as Page>::Item, Error>> + Send + Unpin
    where
        <Self::Page as Page>::Item: RecordKey + Send,
    {
        struct State<P, I> {
            pages: P,
            buffer: VecDeque<I>,
            previous: HashSet<String>,
            done: bool,
        }
        let state = State {
            pages: self.pages(),
            buffer: VecDeque::new(),
            previous: HashSet::new(),
            done: false,
        };
        Box::pin(stream::unfold(state, |mut st| async move {
            use futures::StreamExt;
            loop {
                if let Some(item) = st.buffer.pop_front() {
                    return Some((Ok(item), st));
                }
                if st.done {
                    return None;
                }
                match st.pages.next().await {
                    None => return None,
                    Some(Err(e)) => {
                        st.done = true;
                        return Some((Err(e), st));
                    }
                    Some(Ok(page)) => {
                        let items = page.into_items();
                        // Each key is computed once: checked against the previous page, then
                        // kept for the next one.
                        let mut keys = HashSet::with_capacity(items.len());
                        for item in items {
                            let key = item.record_key();
                            if !st.previous.contains(&key) {
                                st.buffer.push_back(item);
                            }
                            keys.insert(key);
                        }
                        st.previous = keys;
                    }
                }
            }
        }))
    }
}

macro_rules! paginate {
    ($builder:ident, $page:ty) => {
        impl Paginate for crate::generated::builder::$builder<'_> {
            type Page = $page;
            fn fetch_page(&self, page: i64) -> impl Future<Output = Result<$page, Error>> + Send {
                let request = self.clone().page(page);
                async move { Ok(request.send().await?.into_inner()) }
            }
            fn start_page(&self) -> impl Future<Output = i64> + Send {
                let request = self.clone();
                async move {
                    let query = crate::transport::capture_query(async {
                        let _ = request.send().await;
                    })
                    .await
                    .unwrap_or_default();
                    url::form_urlencoded::parse(query.as_bytes())
                        .find(|(k, _)| k == "page")
                        .and_then(|(_, v)| v.parse::<i64>().ok())
                        .filter(|p| *p >= 1)
                        .unwrap_or(1)
                }
            }
        }
    };
}
paginate!(FindAllActivityLogs, ActivityLogsPaginated);
paginate!(FindAllApiLogs, ApiLogsPaginated);
paginate!(FindAllSecurityLogs, SecurityLogsPaginated);
