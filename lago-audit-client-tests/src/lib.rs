//! Spec-conformance support: progenitor's typed httpmock helpers, fixtures built from the spec's
//! own examples, and small helpers shared by the tests in `tests/`.
//!
//! Run everything with `cargo test -p lago-audit-client-tests`.

pub mod fixtures;

/// progenitor's typed httpmock helpers (`MockServerExt`), generated at build time.
#[allow(missing_docs, unused_imports, clippy::all, clippy::pedantic)]
pub mod mocks {
    include!(concat!(env!("OUT_DIR"), "/lago_audit_mocks.rs"));
}

use lago_audit_client::{Client, ClientBuilder, RetryPolicy};

/// The API key the tests send. Long and distinctive, so a leak into any text is easy to find.
pub const TEST_KEY: &str = "lago_test_key_0123456789abcdef_SHOULD_NEVER_BE_PRINTED";

/// A client for a local mock server, with retries off (tests that want them turn them on).
pub fn client_for(base_url: &str) -> Client {
    ClientBuilder::new(TEST_KEY)
        .base_url(base_url)
        .retry_policy(RetryPolicy::none())
        .build()
        .expect("a loopback URL is a valid base URL")
}

/// The spec as the tests see it: the audit-log part, overlay applied, still OpenAPI 3.1.
pub fn spec() -> serde_json::Value {
    let (spec, overlay) = lago_audit_codegen::resolve_paths();
    let loaded = lago_audit_codegen::load(&spec, &overlay).unwrap_or_else(|e| panic!("{e}"));
    lago_audit_codegen::audit_document(&loaded).unwrap_or_else(|e| panic!("{e}"))
}

/// Removes object entries whose value is null, recursively. The generated models skip `None`
/// optional fields when serialising, so `{"user_email": null}` and `{}` are the same record; this
/// is the one normalisation the round-trip tests apply.
pub fn without_nulls(value: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), without_nulls(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_nulls).collect()),
        other => other.clone(),
    }
}
