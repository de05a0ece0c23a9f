//! Exactly-once exports against the fake Lago.

use futures::TryStreamExt;
use lago_audit_client::{ClientBuilder, Export, ExportEvent, ExportOptions, RetryPolicy};
use lago_audit_fake::data::{Kind, Slot};
use lago_audit_fake::FakeLago;

#[tokio::test]
async fn smoke_export_with_ties_and_inserts() {
    let fake = FakeLago::builder()
        .seed(3)
        .records_per_kind(3000, 0, 0)
        .shuffle_ties(true)
        .insert_per_request(2)
        .start()
        .await
        .unwrap();
    let client = ClientBuilder::new(fake.api_key())
        .base_url(fake.base_url())
        .retry_policy(RetryPolicy::none())
        .rate_limit(0)
        .build()
        .unwrap();
    let events: Vec<_> = client
        .find_all_activity_logs()
        .to_date(lago_audit_fake::DEFAULT_NOW)
        .export(ExportOptions::default().max_per_page(100).read_ahead(4))
        .try_collect()
        .await
        .unwrap();
    let mut got: Vec<String> = events
        .iter()
        .filter_map(|e| match e {
            ExportEvent::Record(r) => Some(r.activity_id.to_string()),
            ExportEvent::Checkpoint(_) => None,
        })
        .collect();
    got.sort();
    let mut want: Vec<String> = (0..3000)
        .map(|i| {
            fake.generator()
                .id(Kind::Activity, Slot::Base(i))
                .to_string()
        })
        .collect();
    want.sort();
    assert_eq!(got.len(), want.len());
    assert_eq!(got, want);
    println!("{:?}", fake.counts());
}
