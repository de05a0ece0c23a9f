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
use std::collections::HashSet;
use std::future::Future;
use std::hash::{BuildHasherDefault, Hasher};
use std::pin::Pin;
use std::task::{Context, Poll};

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

/// What identifies a record, used to drop duplicates across a page boundary (and, in an
/// export, within a second).
pub trait RecordKey {
    /// The record's identity as text: the id for activity and security logs, the canonical JSON
    /// of the whole record for API logs.
    fn record_key(&self) -> String;

    /// The same identity in a form that is cheap to hash and compare: two records have equal ids
    /// exactly when their [`record_key`](Self::record_key)s are equal. The default wraps the
    /// text; activity and security logs use their parsed uuid, with no allocation.
    fn record_id(&self) -> RecordId {
        RecordId(IdRepr::Text(self.record_key().into_boxed_str()))
    }
}

/// A record's identity ([`RecordKey::record_id`]): a uuid as a number, or the identity's text.
/// Compare it, or keep it in an [`IdSet`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RecordId(IdRepr);

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum IdRepr {
    Uuid(u128),
    Text(Box<str>),
}

impl RecordId {
    /// The identity of a record identified by a uuid.
    pub fn uuid(id: uuid::Uuid) -> Self {
        RecordId(IdRepr::Uuid(id.as_u128()))
    }
}

impl From<String> for RecordId {
    fn from(key: String) -> Self {
        RecordId(IdRepr::Text(key.into_boxed_str()))
    }
}

/// A set of [`RecordId`]s with a hasher made for them: the ids of activity and security logs are
/// random uuids, which need mixing, not the DoS resistance (and cost) of SipHash. Text ids (API
/// logs) go through the same hasher; a crafted collision can only slow one page's lookups down,
/// never drop a record, because equal hashes are still compared in full.
pub type IdSet = HashSet<RecordId, BuildHasherDefault<IdHasher>>;

/// The hasher of an [`IdSet`]: word-at-a-time multiply and rotate, finished with a full
/// avalanche so that the bits the table indexes by depend on every input bit.
#[derive(Clone, Copy, Debug, Default)]
pub struct IdHasher(u64);

impl IdHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for IdHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word) ^ ((rest.len() as u64) << 59));
        }
    }
    #[inline]
    fn write_u8(&mut self, n: u8) {
        self.add(u64::from(n));
    }
    #[inline]
    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }
    #[inline]
    fn write_u128(&mut self, n: u128) {
        self.add(n as u64);
        self.add((n >> 64) as u64);
    }
    #[inline]
    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }
    #[inline]
    fn write_isize(&mut self, n: isize) {
        self.add(n as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        // MurmurHash3's 64-bit finaliser.
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
}

impl RecordKey for ActivityLogObject {
    fn record_key(&self) -> String {
        self.activity_id.to_string()
    }
    fn record_id(&self) -> RecordId {
        RecordId::uuid(self.activity_id)
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
            assert_eq!(a.record_id(), b.record_id());
        }
        assert_ne!(a.record_id(), c.record_id());
        assert_ne!(
            a.record_key(),
            c.record_key(),
            "same request_id, other call"
        );
    }

    #[test]
    fn uuid_ids_are_equal_exactly_when_their_keys_are() {
        let ids: Vec<uuid::Uuid> = (0..2000u128)
            .map(|i| uuid::Uuid::from_u128(i.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (i << 64)))
            .collect();
        let set: IdSet = ids.iter().copied().map(RecordId::uuid).collect();
        assert_eq!(set.len(), ids.len());
        for id in &ids {
            assert!(set.contains(&RecordId::uuid(*id)));
        }
        assert!(!set.contains(&RecordId::uuid(uuid::Uuid::from_u128(u128::MAX))));
        // A uuid and its text are different identities (one record type uses one form).
        assert_ne!(RecordId::uuid(ids[0]), RecordId::from(ids[0].to_string()));
    }
}
impl RecordKey for SecurityLogObject {
    fn record_key(&self) -> String {
        self.log_id.to_string()
    }
    fn record_id(&self) -> RecordId {
        RecordId::uuid(self.log_id)
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
        Items::<Self::Page, _> {
            pages: self.pages(),
            page: Vec::new().into_iter(),
            previous: IdSet::default(),
            current: IdSet::default(),
            done: false,
        }
    }
}

/// The stream of [`Paginate::items`]: yields straight out of the page being read (no copy into
/// a buffer), keeping the ids of that page to drop repeats on the next one.
struct Items<P: Page, S> {
    pages: S,
    /// The rest of the current page.
    page: std::vec::IntoIter<P::Item>,
    /// The ids of the previous page.
    previous: IdSet,
    /// The ids of the current page so far (every record, yielded or not).
    current: IdSet,
    done: bool,
}

// Nothing is pinned through `Items`: `pages` is `Unpin` and polled through `Pin::new`.
impl<P: Page, S> Unpin for Items<P, S> {}

impl<P, S> Stream for Items<P, S>
where
    P: Page,
    P::Item: RecordKey,
    S: Stream<Item = Result<P, Error>> + Unpin,
{
    type Item = Result<P::Item, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            for item in this.page.by_ref() {
                let id = item.record_id();
                let repeat = this.previous.contains(&id);
                this.current.insert(id);
                if !repeat {
                    return Poll::Ready(Some(Ok(item)));
                }
            }
            if this.done {
                return Poll::Ready(None);
            }
            match std::task::ready!(Pin::new(&mut this.pages).poll_next(cx)) {
                None => {
                    this.done = true;
                    return Poll::Ready(None);
                }
                Some(Err(e)) => {
                    this.done = true;
                    return Poll::Ready(Some(Err(e)));
                }
                Some(Ok(page)) => {
                    // The page just read becomes the previous one; both sets keep their
                    // capacity, so a steady walk allocates none.
                    std::mem::swap(&mut this.previous, &mut this.current);
                    this.current.clear();
                    this.page = page.into_items().into_iter();
                    this.current.reserve(this.page.len());
                }
            }
        }
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
