//! The transport's fault handling: incomplete bodies, 429s, deadlines, hung servers, TLS
//! failures, and what it traces.

use futures::StreamExt;
use lago_audit_client::{ClientBuilder, Error, Export, ExportOptions, Paginate, RetryPolicy};
use lago_audit_client_tests::{empty_page, scripted, Answer, TEST_KEY};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn retries(n: u32) -> RetryPolicy {
    RetryPolicy {
        max_retries: n,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
        max_wait: Duration::from_secs(2),
        ..RetryPolicy::default()
    }
}

fn client(base: &str, retry: RetryPolicy) -> lago_audit_client::Client {
    ClientBuilder::new(TEST_KEY)
        .base_url(base)
        .retry_policy(retry)
        .build()
        .unwrap()
}

fn json_answer(body: &str) -> Answer {
    Answer::Http(
        200,
        vec!["content-type: application/json".into()],
        body.as_bytes().to_vec(),
    )
}

#[tokio::test]
async fn an_incomplete_or_garbled_body_is_retried_like_a_transport_error() {
    let page = empty_page("activity_logs");
    for broken in [&page[..page.len() / 2], r#"{"activity_logs": [}"#, ""] {
        let (base, seen) = scripted(vec![json_answer(broken), json_answer(&page)]).await;
        let got = client(&base, retries(2))
            .find_all_activity_logs()
            .send()
            .await;
        assert!(got.is_ok(), "{broken:?}: {got:?}");
        assert_eq!(seen.load(Ordering::SeqCst), 2, "{broken:?}");
    }
    // Out of retries, it is reported as a decode error.
    let (base, seen) = scripted(vec![json_answer(&page[..10])]).await;
    let err = client(&base, retries(1))
        .find_all_activity_logs()
        .send()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Decode { .. }), "{err:?}");
    assert_eq!(seen.load(Ordering::SeqCst), 2);
}

/// A 200 whose body stops short of its framing: under its `Content-Length`, or chunked without
/// its last chunk, the connection closed mid-body (a proxy or load balancer cutting it).
fn cut_bodies(page: &str) -> Vec<(&'static str, Answer)> {
    let sent = page.as_bytes()[..40.min(page.len())].to_vec();
    vec![
        (
            "under its Content-Length",
            Answer::CutUnderLength {
                declared: 5000,
                body: sent.clone(),
            },
        ),
        ("chunked, before its last chunk", Answer::CutChunked(sent)),
    ]
}

#[tokio::test]
async fn a_body_cut_mid_stream_is_retried_by_send_items_and_export() {
    let page = empty_page("activity_logs");
    for (how, cut) in cut_bodies(&page) {
        let (base, seen) = scripted(vec![cut.clone(), json_answer(&page)]).await;
        let got = client(&base, retries(2))
            .find_all_activity_logs()
            .send()
            .await;
        assert!(got.is_ok(), "send, body cut {how}: {got:?}");
        assert_eq!(seen.load(Ordering::SeqCst), 2, "send, {how}");

        let (base, seen) = scripted(vec![cut.clone(), json_answer(&page)]).await;
        let items: Vec<_> = client(&base, retries(2))
            .find_all_activity_logs()
            .items()
            .collect()
            .await;
        assert!(
            items.iter().all(Result::is_ok),
            "items, body cut {how}: {items:?}"
        );
        assert_eq!(seen.load(Ordering::SeqCst), 2, "items, {how}");

        let (base, seen) = scripted(vec![cut.clone(), json_answer(&page)]).await;
        let events: Vec<_> = client(&base, retries(2))
            .find_all_activity_logs()
            .to_date("2025-01-01")
            .export(ExportOptions::default())
            .collect()
            .await;
        assert!(
            !events.is_empty() && events.iter().all(Result::is_ok),
            "export, body cut {how}: {events:?}"
        );
        assert!(seen.load(Ordering::SeqCst) >= 2, "export, {how}");

        // Out of retries: the error says the body was cut short, and after how many attempts.
        let (base, seen) = scripted(vec![cut]).await;
        let err = client(&base, retries(1))
            .find_all_activity_logs()
            .send()
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(
            matches!(&err, Error::Transport(t) if t.body_cut_short() && t.attempts == 2),
            "{how}: {err:?}"
        );
        assert!(
            text.contains("cut short") && text.contains("2 attempts"),
            "{how}: {text}"
        );
        assert!(!text.contains("could not reach"), "{how}: {text}");
        assert!(err.is_retryable(), "{how}");
        assert_eq!(seen.load(Ordering::SeqCst), 2, "{how}");
    }
}

#[tokio::test]
async fn a_complete_body_that_does_not_match_the_spec_fails_at_once() {
    let (base, seen) = scripted(vec![json_answer(r#"{"activity_logs": 5, "meta": {}}"#)]).await;
    let err = client(&base, retries(3))
        .find_all_activity_logs()
        .send()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Decode { .. }), "{err:?}");
    assert_eq!(seen.load(Ordering::SeqCst), 1, "not retried");
}

#[tokio::test]
async fn rate_limited_answers_do_not_use_the_retry_budget() {
    let throttled = Answer::Http(
        429,
        vec![
            "content-type: application/json".into(),
            "x-ratelimit-reset: 0".into(),
        ],
        br#"{"status":429,"error":"Too Many Requests"}"#.to_vec(),
    );
    let mut answers = vec![throttled; 6];
    answers.push(json_answer(&empty_page("activity_logs")));
    let (base, seen) = scripted(answers).await;
    // One retry for real faults; six 429s are waited out regardless.
    let got = client(&base, retries(1))
        .find_all_activity_logs()
        .send()
        .await;
    assert!(got.is_ok(), "{got:?}");
    assert_eq!(seen.load(Ordering::SeqCst), 7);
}

#[tokio::test]
async fn a_call_ends_within_max_elapsed() {
    let unavailable = Answer::Http(503, vec!["retry-after: 1".into()], b"down".to_vec());
    let (base, seen) = scripted(vec![unavailable]).await;
    let c = ClientBuilder::new(TEST_KEY)
        .base_url(&base)
        .retry_policy(retries(50))
        .max_elapsed(Some(Duration::from_millis(2500)))
        .build()
        .unwrap();
    let started = Instant::now();
    let err = c.find_all_activity_logs().send().await.unwrap_err();
    assert_eq!(err.status().map(|s| s.as_u16()), Some(503));
    assert!(
        started.elapsed() < Duration::from_millis(2600),
        "{:?}",
        started.elapsed()
    );
    // Retry-After: 1 twice fits in 2.5 s; a third wait would not.
    assert_eq!(seen.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_hung_server_cannot_hang_an_export() {
    // Accepts connections and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let held = Arc::new(Mutex::new(Vec::new()));
    let keep = held.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            keep.lock().unwrap().push(socket);
        }
    });
    let c = ClientBuilder::new(TEST_KEY)
        .base_url(format!("http://{addr}"))
        .retry_policy(retries(1))
        .request_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let started = Instant::now();
    let first = tokio::time::timeout(
        Duration::from_secs(5),
        c.find_all_activity_logs()
            .export(ExportOptions::default())
            .next(),
    )
    .await
    .expect("the stream ends with an error, it does not hang");
    assert!(
        matches!(&first, Some(Err(Error::Transport(e))) if e.source.is_timeout()),
        "{first:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(held.lock().unwrap().len(), 2, "one attempt and one retry");
    let items = tokio::time::timeout(
        Duration::from_secs(5),
        c.find_all_activity_logs().items().next(),
    )
    .await
    .expect("items() does not hang either");
    assert!(matches!(items, Some(Err(_))));
}

#[tokio::test]
async fn tls_failures_are_not_retried() {
    // Answers a TLS client hello with plain HTTP: the handshake fails.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let connections = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = connections.clone();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut socket, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            let mut buf = [0u8; 512];
            let _ = socket.read(&mut buf).await;
            let _ = socket
                .write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
                .await;
            let _ = socket.shutdown().await;
        }
    });
    let c = client(&format!("https://{addr}"), retries(3));
    let err = c.find_all_activity_logs().send().await.unwrap_err();
    assert!(matches!(err, Error::Transport(_)), "{err:?}");
    assert_eq!(connections.load(Ordering::SeqCst), 1, "{err} {err:?}");
    // A refused connection, by contrast, is retried.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let c = client(
        &format!("http://127.0.0.1:{port}"),
        RetryPolicy {
            base_delay: Duration::from_millis(50),
            max_delay: Duration::from_millis(50),
            ..retries(3)
        },
    );
    let err = c.find_all_activity_logs().send().await.unwrap_err();
    // Every attempt made (1 + 3 retries): counted by the client, not timed (a full-jitter
    // backoff may wait close to nothing).
    match &err {
        Error::Transport(t) => assert_eq!(t.attempts, 4, "{err}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn attempts_are_traced_without_secrets_or_filter_values() {
    let out = lago_audit_fake::capture::Captured::default();
    let writer = out.clone();
    use tracing_subscriber::layer::SubscriberExt;
    // Only this client's own spans and events (hyper's own traces name the host).
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing_subscriber::filter::LevelFilter::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish()
        .with(tracing_subscriber::filter::Targets::new().with_target(
            "lago_audit_client",
            tracing_subscriber::filter::LevelFilter::TRACE,
        ));
    let _guard = tracing::subscriber::set_default(subscriber);
    let unavailable = Answer::Http(503, vec!["retry-after: 0".into()], b"down".to_vec());
    let (base, _) = scripted(vec![unavailable, json_answer(&empty_page("activity_logs"))]).await;
    client(&base, retries(2))
        .find_all_activity_logs()
        .user_emails(["very.private@example.com"])
        .external_customer_id("cust_secret_42")
        .page(1)
        .per_page(50)
        .send()
        .await
        .unwrap();
    let text = out.text();
    for want in [
        "lago.request",
        "operation=\"find_all_activity_logs\"",
        "attempt=1",
        "status=503",
        "per_page=\"50\"",
        "retrying",
        "wait_ms",
    ] {
        assert!(text.contains(want), "{want} missing from:\n{text}");
    }
    for secret in [TEST_KEY, "very.private", "cust_secret_42", "127.0.0.1"] {
        assert!(!text.contains(secret), "{secret} leaked into:\n{text}");
    }
}
