//! The writer's answers to what a store can do to it, made deterministic with a store double
//! over object_store's in-memory store (which has native conditional updates): uploads applied
//! whose answer is lost, and another writer's object appearing under the name being written.

mod common;

use async_trait::async_trait;
use common::*;
use futures::stream::BoxStream;
use lago_audit_client::types::ActivityLogObject;
use lago_audit_fake::FakeLago;
use lago_audit_sink::{BatchLimits, Destination, SinkError, SinkOptions, SinkProgress};
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    ObjectStoreExt, PutMode, PutMultipartOptions, PutOptions, PutPayload, PutResult, Result,
};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// In-memory store that loses the answer to every `lose_every`-th upload (after applying it)
/// and can put other content under the next object's name just before it is created.
#[derive(Debug, Default)]
struct Double {
    inner: InMemory,
    lose_every: u64,
    puts: AtomicU64,
    lost: AtomicU64,
    /// (the n-th object upload, content to put there first)
    intrude: Mutex<Option<(u64, Vec<u8>)>>,
    object_puts: AtomicU64,
}

impl std::fmt::Display for Double {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Double")
    }
}

#[async_trait]
impl ObjectStore for Double {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        if location.as_ref().ends_with(".ndjson.gz") && opts.mode == PutMode::Create {
            let n = self.object_puts.fetch_add(1, Ordering::Relaxed) + 1;
            let other = {
                let mut intrude = self.intrude.lock().unwrap();
                match intrude.take() {
                    Some((at, other)) if at == n => Some(other),
                    keep => {
                        *intrude = keep;
                        None
                    }
                }
            };
            if let Some(other) = other {
                self.inner.put(location, PutPayload::from(other)).await?;
            }
        }
        let n = self.puts.fetch_add(1, Ordering::Relaxed) + 1;
        let result = self.inner.put_opts(location, payload, opts).await?;
        if self.lose_every > 0 && n.is_multiple_of(self.lose_every) {
            self.lost.fetch_add(1, Ordering::Relaxed);
            return Err(object_store::Error::Generic {
                store: "Double",
                source: "the connection was reset before the answer arrived".into(),
            });
        }
        Ok(result)
    }
    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }
    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        self.inner.get_opts(location, options).await
    }
    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        self.inner.delete_stream(locations)
    }
    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list(prefix)
    }
    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }
    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}

fn small() -> SinkOptions {
    SinkOptions::default().limits(BatchLimits::default().max_records(300))
}

/// Every third upload (objects and checkpoints alike) is applied but its answer lost: the
/// retried object meets itself (success, counted as found), the retried checkpoint update meets
/// its own new version (success, not "another exporter").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_answers_are_recognised_as_our_own_writes() {
    let fake = FakeLago::builder()
        .seed(61)
        .records_per_kind(3_000, 0, 0)
        .shuffle_ties(true)
        .start()
        .await
        .unwrap();
    let store = Arc::new(Double {
        lose_every: 3,
        ..Double::default()
    });
    let dest = Destination::from_store(store.clone(), "archive").unwrap();
    let progress = SinkProgress::default();
    run::<ActivityLogObject>(&fake, &dest, small().progress(progress.clone()), 1000)
        .await
        .unwrap();
    assert!(store.lost.load(Ordering::Relaxed) >= 5);
    assert!(
        progress.objects_found() > 0,
        "no retried upload met its object"
    );
    assert!(progress.put_retries() > 0);
    assert_exactly_once(
        &stored_keys::<ActivityLogObject>(&dest).await,
        &truth::<ActivityLogObject>(&fake),
        "lost answers",
    );
}

/// Another writer's object appears under the name being written, with other content: the
/// writer stops with a conflict, and that object is left as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_content_under_the_name_being_written_is_a_conflict() {
    let fake = FakeLago::builder()
        .seed(62)
        .records_per_kind(2_000, 0, 0)
        .start()
        .await
        .unwrap();
    let store = Arc::new(Double::default());
    *store.intrude.lock().unwrap() = Some((3, b"someone else's bytes".to_vec()));
    let dest = Destination::from_store(store.clone(), "archive").unwrap();
    let err = run::<ActivityLogObject>(&fake, &dest, small(), 1000)
        .await
        .unwrap_err();
    let SinkError::Conflict { path } = &err else {
        panic!("expected a conflict, got {err}");
    };
    assert!(err.to_string().contains("other content"), "{err}");
    let kept = store
        .get(&Path::from(path.as_str()))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(&kept[..], b"someone else's bytes");
}
