//! Counting every request a sink sends to its store, by operation and outcome, into its
//! [`SinkProgress`]: an [`ObjectStore`] in front of the destination's own.
//!
//! One count per call of the store's API: an upload, a read, a `HEAD`, a listing (however many
//! pages it takes), each attempt of the sink's own retries apart. The store client's retries of
//! one call inside it (a few quick ones, for S3, Azure and GCS) are not seen here.

use crate::writer::SinkProgress;
use async_trait::async_trait;
use futures::stream::BoxStream;
use futures::StreamExt;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, Result,
};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// The operations counted, as the `operation` label says them.
pub const OPERATIONS: [&str; 6] = ["put", "get", "head", "list", "delete", "copy"];
/// The outcomes counted, as the `outcome` label says them: `ok`; `not_found`; `refused` (a
/// create-only write over an existing object, or a stale version: the store keeping its
/// promise, not a failure); `error` (anything else).
pub const OUTCOMES: [&str; 4] = ["ok", "not_found", "refused", "error"];

pub(crate) fn outcome<T>(r: &Result<T>) -> usize {
    match r {
        Ok(_) => 0,
        Err(object_store::Error::NotFound { .. }) => 1,
        Err(object_store::Error::AlreadyExists { .. })
        | Err(object_store::Error::Precondition { .. }) => 2,
        Err(_) => 3,
    }
}

/// The destination's store, counting into `progress`.
#[derive(Debug)]
pub(crate) struct Counted {
    inner: Arc<dyn ObjectStore>,
    progress: SinkProgress,
}

impl Counted {
    pub(crate) fn new(inner: Arc<dyn ObjectStore>, progress: SinkProgress) -> Self {
        Self { inner, progress }
    }
}

impl std::fmt::Display for Counted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.fmt(f)
    }
}

#[async_trait]
impl ObjectStore for Counted {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        let r = self.inner.put_opts(location, payload, opts).await;
        self.progress.count_request(0, outcome(&r));
        r
    }
    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        let r = self.inner.put_multipart_opts(location, opts).await;
        self.progress.count_request(0, outcome(&r));
        r
    }
    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        let operation = if options.head { 2 } else { 1 };
        let r = self.inner.get_opts(location, options).await;
        self.progress.count_request(operation, outcome(&r));
        r
    }
    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        let progress = self.progress.clone();
        self.inner
            .delete_stream(locations)
            .inspect(move |r| progress.count_request(4, outcome(r)))
            .boxed()
    }
    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        counted_list(self.inner.list(prefix), self.progress.clone())
    }
    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, Result<ObjectMeta>> {
        counted_list(
            self.inner.list_with_offset(prefix, offset),
            self.progress.clone(),
        )
    }
    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        let r = self.inner.list_with_delimiter(prefix).await;
        self.progress.count_request(3, outcome(&r));
        r
    }
    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        let r = self.inner.copy_opts(from, to, options).await;
        self.progress.count_request(5, outcome(&r));
        r
    }
}

/// A listing is one request: `error` at its first error, else `ok` once it ends.
fn counted_list(
    stream: BoxStream<'static, Result<ObjectMeta>>,
    progress: SinkProgress,
) -> BoxStream<'static, Result<ObjectMeta>> {
    let failed = Arc::new(AtomicBool::new(false));
    let (on_item, at_end) = (progress.clone(), failed.clone());
    stream
        .inspect(move |r| {
            if r.is_err() && !failed.swap(true, Ordering::Relaxed) {
                on_item.count_request(3, outcome(r));
            }
        })
        .map(Some)
        .chain(futures::stream::once(async move {
            if !at_end.load(Ordering::Relaxed) {
                progress.count_request(3, 0);
            }
            None
        }))
        .filter_map(|r| async move { r })
        .boxed()
}
