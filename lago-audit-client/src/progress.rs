//! The live counters of an export ([`ExportProgress`]): the export counts records and
//! duplicates, the transport counts requests, retries and rate-limit waits. Both write here, so
//! neither depends on the other: the export runs its requests `with_progress`, and whoever sends
//! one `count`s into the counters of the export it belongs to.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

tokio::task_local! {
    /// Counters of the export a request belongs to, if any.
    static PROGRESS: ExportProgress;
}

/// Runs `future` with its requests counted in `progress`.
pub(crate) async fn with_progress<F: std::future::Future>(
    progress: ExportProgress,
    future: F,
) -> F::Output {
    PROGRESS.scope(progress, future).await
}

/// Counts into the progress of the export the running request belongs to, if any (a request
/// outside an export counts nowhere).
pub(crate) fn count(update: impl FnOnce(&ExportProgress)) {
    let _ = PROGRESS.try_with(update);
}

/// Live counters of an export, shared: clone it, pass it in
/// [`ExportOptions::progress`](crate::ExportOptions::progress), and read it from another task (a
/// progress bar) while the export runs.
#[derive(Clone, Debug, Default)]
pub struct ExportProgress(Arc<Counters>);

#[derive(Debug)]
struct Counters {
    records: AtomicU64,
    requests: AtomicU64,
    retries: AtomicU64,
    rate_limit_waits: AtomicU64,
    duplicates: AtomicU64,
    expected_total: AtomicU64,
}

impl Default for Counters {
    fn default() -> Self {
        Self {
            records: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            rate_limit_waits: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            expected_total: AtomicU64::new(u64::MAX),
        }
    }
}

impl ExportProgress {
    /// Records yielded so far.
    pub fn records(&self) -> u64 {
        self.0.records.load(Ordering::Relaxed)
    }
    /// HTTP attempts sent so far (retries included).
    pub fn requests(&self) -> u64 {
        self.0.requests.load(Ordering::Relaxed)
    }
    /// Attempts that were retries (after a fault or a 429).
    pub fn retries(&self) -> u64 {
        self.0.retries.load(Ordering::Relaxed)
    }
    /// Times a request waited: for the client's rate limiter, or after a 429.
    pub fn rate_limit_waits(&self) -> u64 {
        self.0.rate_limit_waits.load(Ordering::Relaxed)
    }
    /// Second copies of stored records dropped so far (Lago can store a log twice; see
    /// [`ExportOptions::keep_duplicates`](crate::ExportOptions::keep_duplicates)).
    pub fn duplicates(&self) -> u64 {
        self.0.duplicates.load(Ordering::Relaxed)
    }
    /// How many records the window held when the export started (`None` until known). Records
    /// inserted or arriving late can make the final count differ.
    pub fn expected_total(&self) -> Option<u64> {
        let v = self.0.expected_total.load(Ordering::Relaxed);
        (v != u64::MAX).then_some(v)
    }

    pub(crate) fn add_request(&self) {
        self.0.requests.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn add_retry(&self) {
        self.0.retries.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn add_rate_limit_wait(&self) {
        self.0.rate_limit_waits.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn add_duplicates(&self, n: u64) {
        if n > 0 {
            self.0.duplicates.fetch_add(n, Ordering::Relaxed);
        }
    }
    pub(crate) fn add_record(&self) {
        self.0.records.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn set_expected_total(&self, n: u64) {
        self.0
            .expected_total
            .store(n.min(u64::MAX - 1), Ordering::Relaxed);
    }
}
