//! `tail -o URL`: a shipper that runs for months, on the one export loop (`drive`).
//! Outages of Lago or the store pause it; SIGTERM or Ctrl-C saves the checkpoint and exits 0.

use crate::archive::{destination, open_archive, sink_options};
use crate::cli::TailArgs;
use crate::drive::drive_until;
use crate::env::Env;
use crate::error::CliError;
use crate::kinds::LogKind;
use crate::writer::SinkWriter;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use lago_audit_client::{DateFilter, Export, ExportOptions, ExportProgress};
use lago_audit_sink::{BatchLimits, SinkProgress};
use std::time::{Duration, Instant};

/// A shutdown request, SIGTERM or Ctrl-C, kept once it came (a shipper waits for it between
/// attempts as well as during them).
fn shutdown_signal() -> tokio::sync::watch::Receiver<bool> {
    let (tx, rx) = tokio::sync::watch::channel(false);
    // Registered now, not when the task first runs: a SIGTERM right after the start (a service
    // manager stopping it at once) is still a clean stop.
    #[cfg(unix)]
    let mut sigterm =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::spawn(async move {
        #[cfg(unix)]
        let term = async {
            match sigterm.as_mut() {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let term = std::future::pending::<()>();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            () = term => {}
        }
        let _ = tx.send(true);
    });
    rx
}

async fn stopped(mut rx: tokio::sync::watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

/// What the status line and the outage notes share.
struct Shipping {
    started: Instant,
    last_success: std::sync::Mutex<Option<Instant>>,
    outage: std::sync::Mutex<Option<Instant>>,
}

// The status line's "last answer" is the last delivery: see `succeeded`.

impl Shipping {
    fn succeeded(&self) {
        let now = Instant::now();
        if let Ok(mut last) = self.last_success.lock() {
            *last = Some(now);
        }
        let began = self.outage.lock().ok().and_then(|mut o| o.take());
        if let Some(began) = began {
            crate::note(&format!(
                "outage over after {:.0} s: Lago and the store answer again",
                began.elapsed().as_secs_f64()
            ));
        }
    }
}

/// `tail -o URL`: a shipper that runs for months. Each attempt opens the store (reading its
/// checkpoint) and follows Lago from there; an outage of either (an error that may pass) is
/// waited out with capped, jittered backoff, said on stderr when it starts and ends, up to
/// `--max-outage`. SIGTERM or Ctrl-C ends the stream: the sink seals what is confirmed, saves
/// its checkpoint, and the command exits 0.
pub async fn ship<K: LogKind>(
    env: &Env,
    sent: &K::Filters,
    now: DateTime<Utc>,
    args: &TailArgs,
    follow: ExportOptions,
    url: &str,
) -> Result<(), CliError> {
    let dest = destination(url)?;
    let store = SinkProgress::default();
    let counters = ExportProgress::default();
    let options = sink_options(
        env,
        &args.batch,
        &args.archive,
        BatchLimits::for_follow(),
        &store,
    )?;
    let from = K::window(sent).start_instant();
    let stop = shutdown_signal();
    let state = std::sync::Arc::new(Shipping {
        started: Instant::now(),
        last_success: std::sync::Mutex::new(None),
        outage: std::sync::Mutex::new(None),
    });
    let outage = state.clone();
    let watched = crate::metrics::Watched::of::<K>(&counters)
        .store(&store)
        .outage(move || *outage.outage.lock().unwrap_or_else(|p| p.into_inner()));
    let _metrics = crate::metrics::serve(&args.metrics, watched, env.global.quiet).await?;
    let status = (!env.global.quiet && !args.status_every.is_zero()).then(|| {
        let (every, st, c, state) = (
            args.status_every,
            store.clone(),
            counters.clone(),
            state.clone(),
        );
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                crate::note(&status_line(&st, &c, &state));
            }
        })
    });
    if !env.global.quiet {
        crate::note(&format!(
            "shipping {}s to {url}: each object once its records are confirmed; SIGTERM or Ctrl-C \
             stops after saving the checkpoint",
            K::NOUN
        ));
    }
    // Capped, jittered backoff between attempts.
    let backoff = lago_audit_client::RetryPolicy {
        base_delay: Duration::from_secs(1),
        max_delay: Duration::from_secs(30),
        ..lago_audit_client::RetryPolicy::default()
    };
    let mut failures = 0u32;
    let outcome = loop {
        let attempt = async {
            // Each attempt continues from the archive: its position, or where it started.
            let (sink, start) =
                open_archive::<K>(&dest, options.clone(), &args.archive, from, Some(now)).await?;
            let writer = SinkWriter::<K>::start(sink, true);
            let mut o = follow.clone().progress(counters.clone());
            let mut sent = sent.clone();
            if let Some(c) = start.resume {
                o = o.resume_from(c);
            }
            if let Some(at) = start.from {
                K::window_mut(&mut sent).from = Some(DateFilter::DateTime(at));
            }
            // An outage ends with a delivery into the store, not with an answer from Lago: a
            // store that takes nothing while Lago answers is an outage all the same.
            let (state, store, mut seen) = (state.clone(), store.clone(), store.deliveries());
            let events = K::list(&env.conn.client, &sent)
                .follow(o)
                .inspect(move |_| {
                    let now = store.deliveries();
                    if now > seen {
                        seen = now;
                        state.succeeded();
                    }
                });
            drive_until::<K, _, _>(env, events, writer, stopped(stop.clone())).await
        };
        let error =
            match attempt.await {
                Ok(()) => break Ok(()),
                Err(e) if e.refused_credentials && store.checkpoints() > 0 => {
                    break Err(e.hint(
                        "the store took these credentials until now: they have expired or were \
                     revoked (an STS session, a SAS token); refresh them and start the same \
                     command again, it continues from the checkpoint",
                    ))
                }
                Err(e) if e.refused_credentials => break Err(e.hint(
                    "the store never took these credentials for writing here: check the key and \
                     the bucket's or container's policy for this prefix",
                )),
                Err(e) if !e.transient => break Err(e),
                Err(e) => e,
            };
        if *stop.borrow() {
            break Ok(());
        }
        let began = {
            let mut outage = state.outage.lock().unwrap_or_else(|p| p.into_inner());
            if outage.is_none() {
                failures = 0;
                if !env.global.quiet {
                    crate::note(&format!(
                        "outage: {}; waiting and trying again (capped backoff)",
                        error.message
                    ));
                }
            }
            *outage.get_or_insert_with(Instant::now)
        };
        if let Some(limit) = args.max_outage {
            if began.elapsed() >= limit {
                let hint = format!(
                    "gave up after --max-outage {}; the same command continues from the checkpoint",
                    crate::parse::seconds(limit)
                );
                break Err(error.hint(hint));
            }
        }
        let wait = backoff.backoff(failures).max(Duration::from_millis(200));
        failures = failures.saturating_add(1);
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = stopped(stop.clone()) => break Ok(()),
        }
    };
    if let Some(task) = status {
        task.abort();
    }
    if !env.global.quiet {
        crate::note(&format!(
            "stopped: {}",
            status_line(&store, &counters, &state)
        ));
    }
    outcome
}

/// One line: what was shipped, how far behind now, retries, the last success.
fn status_line(store: &SinkProgress, counters: &ExportProgress, state: &Shipping) -> String {
    let position = match store.position() {
        Some(p) => {
            let lag = (chrono::Utc::now() - p).num_seconds().max(0);
            format!("stored up to {p} ({lag} s behind now)")
        }
        None => "nothing stored yet".to_owned(),
    };
    let last = match state.last_success.lock().ok().and_then(|l| *l) {
        Some(t) => format!("last delivery {:.0} s ago", t.elapsed().as_secs_f64()),
        None => "no delivery yet".to_owned(),
    };
    let outage = match state.outage.lock().ok().and_then(|o| *o) {
        Some(t) => format!(", in an outage for {:.0} s", t.elapsed().as_secs_f64()),
        None => String::new(),
    };
    let head = store
        .head_digest()
        .map_or(String::new(), |h| format!("; newest digest {h}"));
    format!(
        "status after {:.0} s: {} records in {} objects, {position}; {} requests, {} retries \
         ({} store retries); {last}{outage}{head}",
        state.started.elapsed().as_secs_f64(),
        store.records(),
        store.objects(),
        counters.requests(),
        counters.retries(),
        store.put_retries(),
    )
}
