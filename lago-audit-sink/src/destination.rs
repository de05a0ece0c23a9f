//! Where a trail goes: a prefix in an object store, parsed from a URL.

use crate::local::LocalDir;
use crate::SinkError;
use async_trait::async_trait;
use object_store::aws::AmazonS3Builder;
use object_store::azure::MicrosoftAzureBuilder;
use object_store::client::{
    HttpClient, HttpConnector, HttpError, HttpRequest, HttpResponse, HttpService, ReqwestConnector,
};
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::path::Path;
use object_store::{BackoffConfig, ClientOptions, ObjectStore, RetryConfig};
use std::sync::Arc;
use std::time::Duration;

/// Adds `Content-MD5` to every upload with a body. S3 refuses a PUT into a bucket with an
/// Object Lock default retention unless it carries `Content-MD5` or an `x-amz-checksum-*`
/// header; `Content-MD5` is the one that every S3-compatible store (and moto) takes. The header
/// is added after signing, which SigV4 allows for headers outside `x-amz-*`.
#[derive(Debug, Default)]
struct ContentMd5;

impl HttpConnector for ContentMd5 {
    fn connect(&self, options: &ClientOptions) -> object_store::Result<HttpClient> {
        let inner = ReqwestConnector::default().connect(options)?;
        Ok(HttpClient::new(WithContentMd5(inner)))
    }
}

#[derive(Debug)]
struct WithContentMd5(HttpClient);

#[async_trait]
impl HttpService for WithContentMd5 {
    async fn call(&self, mut req: HttpRequest) -> Result<HttpResponse, HttpError> {
        if req.method() == http::Method::PUT
            && req.body().content_length() > 0
            && !req.headers().contains_key("content-md5")
        {
            use base64::Engine;
            use http_body_util::BodyExt;
            use md5::Digest;
            let body = req.body().clone().collect().await?.to_bytes();
            let digest = md5::Md5::digest(&body);
            let value = base64::engine::general_purpose::STANDARD.encode(digest);
            if let Ok(value) = http::HeaderValue::from_str(&value) {
                req.headers_mut().insert("content-md5", value);
            }
        }
        self.0.execute(req).await
    }
}

/// A prefix in an object store: `file:///dir`, `s3://bucket/prefix`, `az://container/prefix` or
/// `gs://bucket/prefix`. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Destination {
    pub(crate) store: Arc<dyn ObjectStore>,
    pub(crate) prefix: Path,
    url: String,
}

/// The object store's own retries: few and short, because the writer retries a failed upload
/// itself and a caller (a shipper) retries whole runs with its own backoff.
fn retry() -> RetryConfig {
    RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            base: 2.0,
        },
        max_retries: 4,
        retry_timeout: Duration::from_secs(60),
    }
}

/// The stores' HTTP clients use rustls (with the workspace's `rustls-no-provider` reqwest), which
/// needs a process-wide crypto provider before a client is built: ring, as the Lago client uses.
/// Installing it again is a no-op.
pub(crate) fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn bad(url: &str, reason: impl Into<String>) -> SinkError {
    SinkError::BadUrl {
        url: url.to_owned(),
        reason: reason.into(),
    }
}

impl Destination {
    /// Parses a destination URL, taking credentials and endpoints from the environment as each
    /// store's tools do:
    ///
    /// - `file:///absolute/dir` (created if missing);
    /// - `s3://bucket/prefix`: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`,
    ///   `AWS_REGION`/`AWS_DEFAULT_REGION`, `AWS_ENDPOINT_URL` (MinIO, R2, Ceph, moto) and
    ///   `AWS_ALLOW_HTTP=true` for a plain-HTTP endpoint;
    /// - `az://container/prefix`: `AZURE_STORAGE_ACCOUNT_NAME`, `AZURE_STORAGE_ACCOUNT_KEY` (or a
    ///   SAS/bearer token), `AZURE_STORAGE_USE_EMULATOR=true` with `AZURITE_BLOB_STORAGE_URL` for
    ///   Azurite, `AZURE_ALLOW_HTTP`;
    /// - `gs://bucket/prefix`: `GOOGLE_SERVICE_ACCOUNT` (a key file) or the instance's account.
    ///
    /// A URL with credentials, a query or a fragment is refused (keys belong in the environment,
    /// never in a command line or a log).
    pub fn parse(url: &str) -> Result<Self, SinkError> {
        Self::parse_with_options(url, std::iter::empty::<(String, String)>())
    }

    /// Like [`parse`](Self::parse), with store options that override the environment, named as
    /// `object_store` names them (`aws_endpoint`, `aws_allow_http`, `aws_access_key_id`,
    /// `azure_storage_account_name`, `azure_storage_use_emulator`, …). An unknown key is an error.
    pub fn parse_with_options<I, K, V>(url: &str, options: I) -> Result<Self, SinkError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: Into<String>,
    {
        install_tls_provider();
        let parsed = url::Url::parse(url).map_err(|e| {
            bad(
                url,
                format!("not a URL ({e}); use file:///dir, s3://bucket/prefix, az://container/prefix or gs://bucket/prefix"),
            )
        })?;
        if !parsed.username().is_empty() || parsed.password().is_some() {
            // Never echo a URL with credentials.
            return Err(bad(
                "(a URL with credentials)",
                "credentials do not belong in the URL; set them in the environment",
            ));
        }
        if parsed.query().is_some() || parsed.fragment().is_some() {
            return Err(bad(url, "a query or fragment is not supported"));
        }
        let options: Vec<(String, String)> = options
            .into_iter()
            .map(|(k, v)| (k.as_ref().to_ascii_lowercase(), v.into()))
            .collect();
        crate::preflight::check(url, &parsed, &options)?;
        let key_error = |k: &str, e: object_store::Error| bad(url, format!("option `{k}`: {e}"));
        let prefix_of = |u: &url::Url| -> Result<Path, SinkError> {
            let raw = u.path().trim_matches('/');
            let decoded = percent_decode(raw);
            Path::parse(&decoded).map_err(|e| bad(url, format!("bad prefix: {e}")))
        };
        let host = || -> Result<String, SinkError> {
            match parsed.host_str() {
                Some(h) if !h.is_empty() => Ok(h.to_owned()),
                _ => Err(bad(url, "the bucket or container name is missing")),
            }
        };
        let (store, prefix): (Arc<dyn ObjectStore>, Path) = match parsed.scheme() {
            "file" => {
                if parsed
                    .host_str()
                    .is_some_and(|h| !h.is_empty() && h != "localhost")
                {
                    return Err(bad(
                        url,
                        "a file URL names a local directory: file:///absolute/dir",
                    ));
                }
                if !options.is_empty() {
                    return Err(bad(url, "file URLs take no options"));
                }
                let dir = parsed
                    .to_file_path()
                    .map_err(|()| bad(url, "not an absolute local path"))?;
                std::fs::create_dir_all(&dir)
                    .map_err(|e| bad(url, format!("cannot create {}: {e}", dir.display())))?;
                let fs = LocalDir::new(dir).map_err(|e| bad(url, e.to_string()))?;
                (Arc::new(fs), Path::default())
            }
            "s3" | "s3a" => {
                host()?;
                let mut b = AmazonS3Builder::from_env()
                    .with_url(url)
                    .with_retry(retry())
                    .with_http_connector(ContentMd5);
                // `AWS_ENDPOINT_URL` is the name the AWS tools use; object_store reads it only
                // through `from_env` on some versions, so it is applied here explicitly too.
                if let Ok(endpoint) = std::env::var("AWS_ENDPOINT_URL") {
                    b = b.with_endpoint(endpoint);
                }
                for (k, v) in &options {
                    let key = k.parse().map_err(|e| key_error(k, e))?;
                    b = b.with_config(key, v.clone());
                }
                let store = b.build().map_err(|e| bad(url, e.to_string()))?;
                (Arc::new(store), prefix_of(&parsed)?)
            }
            "az" | "azure" | "abfs" | "abfss" => {
                host()?;
                let mut b = MicrosoftAzureBuilder::from_env()
                    .with_url(url)
                    .with_retry(retry());
                for (k, v) in &options {
                    let key = k.parse().map_err(|e| key_error(k, e))?;
                    b = b.with_config(key, v.clone());
                }
                let store = b.build().map_err(|e| bad(url, e.to_string()))?;
                (Arc::new(store), prefix_of(&parsed)?)
            }
            "gs" => {
                host()?;
                let mut b = GoogleCloudStorageBuilder::from_env()
                    .with_url(url)
                    .with_retry(retry());
                for (k, v) in &options {
                    let key = k.parse().map_err(|e| key_error(k, e))?;
                    b = b.with_config(key, v.clone());
                }
                let store = b.build().map_err(|e| bad(url, e.to_string()))?;
                (Arc::new(store), prefix_of(&parsed)?)
            }
            other => {
                return Err(bad(
                    url,
                    format!("unsupported scheme `{other}`: use file, s3, az or gs"),
                ))
            }
        };
        Ok(Self {
            store,
            prefix,
            url: url.to_owned(),
        })
    }

    /// A destination on a store built by the caller (a test double, a store with custom
    /// options). The store must support `PutMode::Create` (a [`Sink`](crate::Sink) checks that
    /// it refuses a create over an existing object when it opens).
    pub fn from_store(store: Arc<dyn ObjectStore>, prefix: &str) -> Result<Self, SinkError> {
        let prefix = Path::parse(prefix.trim_matches('/'))
            .map_err(|e| bad(prefix, format!("bad prefix: {e}")))?;
        Ok(Self {
            url: format!("{store}/{prefix}"),
            store,
            prefix,
        })
    }

    /// The URL it was parsed from.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The store, to read what was written.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// The prefix inside the store.
    pub fn prefix(&self) -> &Path {
        &self.prefix
    }

    /// `{prefix}/{parts…}` as a store path.
    /// The same destination, its requests counted into `progress` ([`crate::counted`]).
    pub(crate) fn counted(&self, progress: &crate::SinkProgress) -> Self {
        Self {
            store: Arc::new(crate::counted::Counted::new(
                self.store.clone(),
                progress.clone(),
            )),
            prefix: self.prefix.clone(),
            url: self.url.clone(),
        }
    }

    pub(crate) fn path(&self, parts: &str) -> Path {
        let mut s = self.prefix.to_string();
        for part in parts.split('/').filter(|p| !p.is_empty()) {
            if !s.is_empty() {
                s.push('/');
            }
            s.push_str(part);
        }
        Path::from(s)
    }
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| s.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(url: &str) -> String {
        Destination::parse(url).unwrap_err().to_string()
    }

    #[test]
    fn bad_urls_say_why() {
        assert!(err("bucket/prefix").contains("not a URL"));
        assert!(err("ftp://host/x").contains("unsupported scheme `ftp`"));
        assert!(err("s3:///prefix").contains("bucket or container name is missing"));
        let e = err("s3://AKIA:secret@bucket/prefix");
        assert!(e.contains("credentials") && !e.contains("secret"), "{e}");
        assert!(err("s3://bucket/prefix?x=1").contains("query"));
        assert!(err("file://host/dir").contains("local directory"));
    }

    #[test]
    fn file_and_s3_urls_parse() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("file://{}/a%20b", dir.path().display());
        Destination::parse(&url).unwrap();
        assert!(dir.path().join("a b").is_dir());
        let s3 = Destination::parse_with_options(
            "s3://bucket/some/prefix/",
            [
                ("aws_region", "us-east-1"),
                ("aws_access_key_id", "k"),
                ("aws_secret_access_key", "s"),
            ],
        )
        .unwrap();
        assert_eq!(s3.prefix.as_ref(), "some/prefix");
        assert_eq!(
            s3.path("activity_logs/dt=x").as_ref(),
            "some/prefix/activity_logs/dt=x"
        );
        let e = Destination::parse_with_options("s3://bucket/p", [("no_such_key", "1")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("no_such_key"), "{e}");
    }
}
