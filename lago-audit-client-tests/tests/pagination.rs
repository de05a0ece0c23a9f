//! The pagination streams: every page, in order, stopping at the last page or the first error.

use futures::{StreamExt, TryStreamExt};
use lago_audit_client::{Error, Paginate};
use lago_audit_client_tests::{client_for, scripted, Answer, TEST_KEY};
use lago_audit_fake::FakeLago;
use serde_json::json;

#[tokio::test]
async fn pages_and_items_cover_every_record_once() {
    let fake = FakeLago::builder()
        .api_key(TEST_KEY)
        .records_per_kind(1234, 0, 0)
        .start()
        .await
        .unwrap();
    let c = client_for(&fake.base_url());
    let pages: Vec<_> = c
        .find_all_activity_logs()
        .per_page(100)
        .pages()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(pages.len(), 13);
    assert_eq!(
        pages
            .iter()
            .map(|p| p.meta.current_page)
            .collect::<Vec<_>>(),
        (1..=13).collect::<Vec<_>>()
    );
    let items: Vec<_> = c
        .find_all_activity_logs()
        .per_page(100)
        .items()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(items.len(), 1234);
    let unique: std::collections::HashSet<_> = items.iter().map(|l| l.activity_id).collect();
    assert_eq!(unique.len(), 1234);
    assert_eq!(fake.counts().requests, 26);
}

#[tokio::test]
async fn an_empty_result_is_one_empty_page() {
    let fake = FakeLago::builder()
        .api_key(TEST_KEY)
        .records_per_kind(0, 0, 0)
        .start()
        .await
        .unwrap();
    let c = client_for(&fake.base_url());
    let items: Vec<_> = c.find_all_api_logs().items().try_collect().await.unwrap();
    assert!(items.is_empty());
    assert_eq!(fake.counts().requests, 1);
}

#[tokio::test]
async fn the_stream_ends_after_the_first_error() {
    let page = |current: i64, next: Option<i64>| {
        Answer::json(
            200,
            &json!({"activity_logs": [], "meta": {"current_page": current, "next_page": next,
                    "prev_page": null, "total_pages": 3, "total_count": 0}}),
        )
    };
    let (base, seen) = scripted(vec![
        page(1, Some(2)),
        Answer::json(
            403,
            &json!({"status": 403, "error": "Forbidden", "code": "feature_unavailable"}),
        ),
        page(3, None),
    ])
    .await;
    let results: Vec<_> = client_for(&base)
        .find_all_activity_logs()
        .pages()
        .collect()
        .await;
    assert_eq!(results.len(), 2);
    assert!(results[0].is_ok());
    assert_eq!(
        results[1].as_ref().unwrap_err().code(),
        Some("feature_unavailable")
    );
    assert_eq!(seen.load(std::sync::atomic::Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_server_that_does_not_advance_is_an_error_not_a_loop() {
    let stuck = Answer::json(
        200,
        &json!({"activity_logs": [], "meta": {"current_page": 1, "next_page": 1,
                "prev_page": null, "total_pages": 2, "total_count": 1}}),
    );
    let (base, seen) = scripted(vec![stuck]).await;
    let results: Vec<_> = client_for(&base)
        .find_all_activity_logs()
        .pages()
        .collect()
        .await;
    assert_eq!(results.len(), 2);
    assert!(
        matches!(&results[1], Err(Error::Decode { message, .. }) if message.contains("does not advance"))
    );
    assert_eq!(seen.load(std::sync::atomic::Ordering::SeqCst), 1);
}

#[tokio::test]
async fn streams_start_at_the_page_the_request_names() {
    let fake = FakeLago::builder()
        .api_key(TEST_KEY)
        .records_per_kind(250, 0, 0)
        .start()
        .await
        .unwrap();
    let c = client_for(&fake.base_url());
    let all: Vec<_> = c
        .find_all_activity_logs()
        .per_page(100)
        .items()
        .try_collect()
        .await
        .unwrap();
    let from_two: Vec<_> = c
        .find_all_activity_logs()
        .per_page(100)
        .page(2)
        .items()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(from_two.len(), 150);
    assert_eq!(from_two, all[100..]);
    let pages: Vec<_> = c
        .find_all_activity_logs()
        .per_page(100)
        .page(3)
        .pages()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(pages.len(), 1);
    assert_eq!(pages[0].meta.current_page, 3);
}

#[tokio::test]
async fn items_keeps_api_logs_that_share_a_request_id() {
    // The fake's API logs reuse callers' request ids, often within one second: items() must not
    // take two calls with one X-Request-Id for one record.
    let fake = FakeLago::builder()
        .api_key(TEST_KEY)
        .seed(12)
        .records_per_kind(0, 2000, 0)
        .start()
        .await
        .unwrap();
    let c = client_for(&fake.base_url());
    let items: Vec<_> = c
        .find_all_api_logs()
        .per_page(25)
        .items()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(items.len(), 2000);
    let request_ids: std::collections::HashSet<_> = items.iter().map(|l| &l.request_id).collect();
    assert!(request_ids.len() < 1950, "the data has shared request ids");
}
