//! Building a [`Client`]: API key, region or base URL, timeouts, user agent, retries.
//!
//! ```
//! use lago_audit_client::{ClientBuilder, ClientInfo, Region};
//! use std::time::Duration;
//!
//! let client = ClientBuilder::new("my-api-key")
//!     .region(Region::Eu)
//!     .request_timeout(Duration::from_secs(20))
//!     .build()?;
//! assert_eq!(client.baseurl(), "https://api.eu.getlago.com/api/v1");
//! # Ok::<(), lago_audit_client::ConfigError>(())
//! ```

use crate::retry::RetryPolicy;
use crate::Client;
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION};
use std::fmt;
use std::time::Duration;
use url::Url;

/// The environment variable holding the API key.
pub const ENV_API_KEY: &str = "LAGO_API_KEY";
/// The environment variable holding a base URL (with or without `/api/v1`).
pub const ENV_API_URL: &str = "LAGO_API_URL";
/// The environment variable holding a region (`us`, `eu`) or a base URL; it wins over
/// [`ENV_API_URL`], as in Lago's own Rust client.
pub const ENV_REGION: &str = "LAGO_REGION";

/// How long a client waits for a connection by default ([`ClientBuilder::connect_timeout`]).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one attempt of a request may take by default ([`ClientBuilder::request_timeout`]).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The user agent sent by default.
pub const USER_AGENT: &str = concat!("lago-audit-client/", env!("CARGO_PKG_VERSION"));

/// Where Lago runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Region {
    /// Lago Cloud, US cluster (`https://api.getlago.com/api/v1`). The default.
    Us,
    /// Lago Cloud, EU cluster (`https://api.eu.getlago.com/api/v1`).
    Eu,
    /// A self-hosted Lago or another endpoint: a base URL, with or without `/api/v1`.
    Custom(String),
}

impl Region {
    /// Reads `us`, `eu` (any case) or a URL.
    pub fn parse(value: &str) -> Region {
        match value.trim().to_ascii_lowercase().as_str() {
            "us" => Region::Us,
            "eu" => Region::Eu,
            _ => Region::Custom(value.trim().to_owned()),
        }
    }

    fn base_url(&self) -> &str {
        match self {
            Region::Us => "https://api.getlago.com/api/v1",
            Region::Eu => "https://api.eu.getlago.com/api/v1",
            Region::Custom(url) => url,
        }
    }
}

/// A client could not be built. Never contains the API key.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// No API key was given (or `LAGO_API_KEY` is unset or empty).
    #[error("no Lago API key: set {ENV_API_KEY} or pass one to ClientBuilder::new")]
    MissingApiKey,
    /// The API key cannot go into an HTTP header (control characters, line breaks).
    #[error("the Lago API key contains characters that cannot be sent in an HTTP header")]
    InvalidApiKey,
    /// The base URL is not an absolute `http(s)` URL without credentials, query or fragment.
    #[error("invalid Lago base URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Plain `http://` to a host that is not loopback, without [`ClientBuilder::allow_insecure_http`].
    #[error(
        "refusing to send the API key in clear text to {url:?}: use https, or call \
         allow_insecure_http(true) for a self-hosted Lago on a private network"
    )]
    InsecureUrl {
        /// The URL as given.
        url: String,
    },
    /// The user agent cannot go into an HTTP header.
    #[error("the user agent contains characters that cannot be sent in an HTTP header")]
    InvalidUserAgent,
    /// The HTTP client could not be created (for instance, no TLS backend could start).
    #[error("cannot create the HTTP client: {0}")]
    Http(String),
}

/// Where the API key of a client came from, named in the hint of a 401.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeySource {
    /// Passed to [`ClientBuilder::new`] or [`ClientBuilder::api_key`].
    Given,
    /// Read from this environment variable.
    Environment(&'static str),
    /// Named by the caller with [`ClientBuilder::api_key_from`], in its own words: a command-line
    /// tool says `the --api-key flag`, a service the file it read.
    Named(String),
}

impl KeySource {
    /// Where the key came from, as a noun: `the LAGO_API_KEY environment variable`,
    /// `the --api-key flag`, `the code that built the client`.
    pub fn origin(&self) -> String {
        match self {
            KeySource::Given => "the code that built the client".to_owned(),
            KeySource::Environment(var) => format!("the {var} environment variable"),
            KeySource::Named(name) => name.clone(),
        }
    }
}

impl fmt::Display for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySource::Given => f.write_str("given to the client"),
            KeySource::Environment(var) => write!(f, "from {var}"),
            KeySource::Named(name) => write!(f, "from {name}"),
        }
    }
}

/// Per-client state the generated code carries for the hand-written hooks.
#[derive(Clone, Debug)]
pub struct Inner {
    pub(crate) retry: RetryPolicy,
    /// Where the API key came from, for the hint of a 401.
    pub(crate) key_source: KeySource,
    /// The path of the base URL (`/api/v1` for Lago Cloud), used to check request paths.
    pub(crate) base_path: String,
    /// The client's rate limiter, shared by every request (`None`: off).
    pub(crate) rate_limiter: Option<std::sync::Arc<crate::ratelimit::RateLimiter>>,
    /// The longest one call may take, all attempts and waits included (`None`: no limit).
    pub(crate) max_elapsed: Option<Duration>,
}

impl Inner {
    /// The retry policy in force.
    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.retry
    }

    /// Where the client's API key came from.
    pub fn key_source(&self) -> &KeySource {
        &self.key_source
    }
}

/// Builds a [`Client`]. See the [module documentation](self).
#[derive(Clone)]
pub struct ClientBuilder {
    api_key: Option<String>,
    key_source: KeySource,
    region: Region,
    exact_base_url: bool,
    connect_timeout: Duration,
    request_timeout: Duration,
    user_agent: String,
    allow_insecure_http: bool,
    retry: RetryPolicy,
    rate_limit: u32,
    max_elapsed: Option<Duration>,
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("key_source", &self.key_source)
            .field("region", &redact_userinfo(self.region.base_url()))
            .field("exact_base_url", &self.exact_base_url)
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("user_agent", &self.user_agent)
            .field("allow_insecure_http", &self.allow_insecure_http)
            .field("retry", &self.retry)
            .field("rate_limit", &self.rate_limit)
            .field("max_elapsed", &self.max_elapsed)
            .finish()
    }
}

impl ClientBuilder {
    /// A builder with this API key, the US region, a 10 s connect timeout, a 30 s request
    /// timeout and the default [`RetryPolicy`].
    pub fn new(api_key: impl Into<String>) -> Self {
        Self {
            api_key: Some(api_key.into()),
            key_source: KeySource::Given,
            region: Region::Us,
            exact_base_url: false,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            user_agent: USER_AGENT.to_owned(),
            allow_insecure_http: false,
            retry: RetryPolicy::default(),
            rate_limit: crate::ratelimit::DEFAULT_RATE_LIMIT,
            max_elapsed: Some(Duration::from_secs(300)),
        }
    }

    /// A builder from the environment: `LAGO_API_KEY` (required at [`build`](Self::build)),
    /// `LAGO_REGION` (`us`, `eu` or a URL), else `LAGO_API_URL`, else the US region.
    pub fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Like [`from_env`](Self::from_env), reading variables through `lookup` (for tests, or
    /// another source of configuration). Empty values count as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let mut builder = Self::new(String::new());
        builder.api_key = get(ENV_API_KEY);
        builder.key_source = KeySource::Environment(ENV_API_KEY);
        if let Some(region) = get(ENV_REGION) {
            builder.region = Region::parse(&region);
        } else if let Some(url) = get(ENV_API_URL) {
            builder.region = Region::Custom(url);
        }
        builder
    }

    /// Sets the API key.
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(key.into());
        self.key_source = KeySource::Given;
        self
    }

    /// Sets the API key, and says where it came from (named in the hint of a 401).
    pub fn api_key_from(mut self, key: impl Into<String>, source: KeySource) -> Self {
        self.api_key = Some(key.into());
        self.key_source = source;
        self
    }

    /// Where the API key came from (it is set by [`new`](Self::new), [`api_key`](Self::api_key),
    /// [`api_key_from`](Self::api_key_from) or the environment).
    pub fn key_source(&self) -> &KeySource {
        &self.key_source
    }

    /// The host (and port, when not the scheme's default) requests will go to, for messages:
    /// `api.getlago.com`, `127.0.0.1:3000`. `None` when the base URL is not valid.
    pub fn host(&self) -> Option<String> {
        self.resolved_base_url().ok().as_ref().and_then(host_of)
    }

    /// Whether an API key is set (from [`new`](Self::new), [`api_key`](Self::api_key) or the
    /// environment), without revealing it.
    pub fn has_api_key(&self) -> bool {
        self.api_key
            .as_deref()
            .is_some_and(|k| !k.trim().is_empty())
    }

    /// Sets the region (or a custom base URL).
    pub fn region(mut self, region: Region) -> Self {
        self.region = region;
        self.exact_base_url = false;
        self
    }

    /// Sets a base URL, with or without `/api/v1` (self-hosted Lago): `/api/v1` is appended when
    /// the path does not already end with it.
    pub fn base_url(self, url: impl Into<String>) -> Self {
        self.region(Region::Custom(url.into()))
    }

    /// Sets the exact base URL the operations' paths are appended to, as given: nothing is
    /// appended. For a proxy or a mock that serves `/activity_logs` at another path (or at its
    /// root).
    pub fn exact_base_url(mut self, url: impl Into<String>) -> Self {
        self.region = Region::Custom(url.into());
        self.exact_base_url = true;
        self
    }

    /// How long to wait for a connection.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long one attempt of a request may take, from sending to the end of the body.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Replaces the user agent (default [`USER_AGENT`]).
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = user_agent.into();
        self
    }

    /// Allows plain `http://` to hosts that are not loopback (a self-hosted Lago on a private
    /// network). Off by default, so the API key is never sent in clear text by accident.
    pub fn allow_insecure_http(mut self, allow: bool) -> Self {
        self.allow_insecure_http = allow;
        self
    }

    /// Sets the retry policy ([`RetryPolicy::none`] disables retries).
    pub fn retry_policy(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Limits this client to `per_second` requests per second on average (default
    /// [`DEFAULT_RATE_LIMIT`](crate::ratelimit::DEFAULT_RATE_LIMIT), 45 with bursts of 3, so at most
    /// 48 in a second, under Lago Cloud's 50);
    /// 0 turns the limiter off. Every request of the client, from every stream and task, shares
    /// one budget; see [`ratelimit`](crate::ratelimit).
    pub fn rate_limit(mut self, per_second: u32) -> Self {
        self.rate_limit = per_second;
        self
    }

    /// The longest one call may take, all attempts, backoffs and rate-limit waits included
    /// (default 300 s; `None`: no limit). When the next wait would cross it, the last error is
    /// returned. Each attempt is also bounded by [`request_timeout`](Self::request_timeout).
    pub fn max_elapsed(mut self, limit: Option<Duration>) -> Self {
        self.max_elapsed = limit;
        self
    }

    /// The base URL requests will go to: normalised to end in `/api/v1`, unless it was set with
    /// [`exact_base_url`](Self::exact_base_url).
    pub fn resolved_base_url(&self) -> Result<Url, ConfigError> {
        let raw = self.region.base_url();
        if self.exact_base_url {
            check_base_url(raw, self.allow_insecure_http)
        } else {
            normalize_base_url(raw, self.allow_insecure_http)
        }
    }

    /// Checks everything and builds the client.
    pub fn build(self) -> Result<Client, ConfigError> {
        let key = self.api_key.as_deref().filter(|k| !k.trim().is_empty());
        let key = key.ok_or(ConfigError::MissingApiKey)?;
        let mut auth = HeaderValue::from_str(&format!("Bearer {}", key.trim()))
            .map_err(|_| ConfigError::InvalidApiKey)?;
        auth.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, auth);
        let user_agent =
            HeaderValue::from_str(&self.user_agent).map_err(|_| ConfigError::InvalidUserAgent)?;

        let base = self.resolved_base_url()?;
        // rustls needs a process-wide crypto provider; if the application installed one already,
        // that one is used.
        #[cfg(feature = "rustls")]
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .user_agent(user_agent)
            .connect_timeout(self.connect_timeout)
            .timeout(self.request_timeout)
            // Never follow a redirect: it could carry the key to another host.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ConfigError::Http(e.without_url().to_string()))?;
        let base_str = base.as_str().trim_end_matches('/').to_owned();
        let inner = Inner {
            retry: self.retry,
            key_source: self.key_source,
            base_path: base.path().trim_end_matches('/').to_owned(),
            rate_limiter: (self.rate_limit > 0)
                .then(|| std::sync::Arc::new(crate::ratelimit::RateLimiter::new(self.rate_limit))),
            max_elapsed: self.max_elapsed,
        };
        Ok(Client::new_with_client(&base_str, http, inner))
    }
}

/// The host and port of a URL (`127.0.0.1:3000`; no port when it is the scheme's default), for
/// messages: no path, query or credentials.
pub fn host_of(url: &Url) -> Option<String> {
    let host = url.host_str()?;
    Some(match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    })
}

/// Replaces any `user:password@` in a URL with `***@`, so a URL can go into an error or a log,
/// whatever characters the credentials hold: everything between the scheme and the URL's last
/// `@` is hidden (a `/`, `?` or `#` inside a password makes the authority's end unknowable, so
/// an `@` anywhere counts).
fn redact_userinfo(raw: &str) -> String {
    let start = raw.find("://").map_or(0, |i| i + 3);
    match raw[start..].rfind('@') {
        Some(at) => format!("{}***{}", &raw[..start], &raw[start + at..]),
        None => raw.to_owned(),
    }
}

/// Checks a base URL and normalises it to end in `/api/v1` (without a trailing slash).
pub fn normalize_base_url(raw: &str, allow_insecure_http: bool) -> Result<Url, ConfigError> {
    let mut url = check_base_url(raw, allow_insecure_http)?;
    let path = url.path().trim_end_matches('/').to_owned();
    let path = if path.ends_with("/api/v1") {
        path
    } else {
        format!("{path}/api/v1")
    };
    url.set_path(&path);
    Ok(url)
}

/// Checks a base URL: absolute `http(s)`, a host, no credentials, query or fragment, and clear
/// text only to loopback unless allowed. A trailing slash is dropped; nothing is appended.
pub fn check_base_url(raw: &str, allow_insecure_http: bool) -> Result<Url, ConfigError> {
    let invalid = |reason: &str| ConfigError::InvalidUrl {
        url: redact_userinfo(raw),
        reason: reason.to_owned(),
    };
    let mut url = Url::parse(raw.trim()).map_err(|e| match e {
        url::ParseError::RelativeUrlWithoutBase => invalid(
            "expected a region (`us` or `eu`) or an http(s) URL such as https://lago.example.com",
        ),
        other => invalid(&other.to_string()),
    })?;
    match url.scheme() {
        "https" => {}
        "http" => {
            let loopback = match url.host() {
                Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
                Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                None => false,
            };
            if !loopback && !allow_insecure_http {
                return Err(ConfigError::InsecureUrl {
                    url: redact_userinfo(raw),
                });
            }
        }
        _ => return Err(invalid("the scheme must be http or https")),
    }
    if url.host().is_none() {
        return Err(invalid("no host"));
    }
    // An `@` anywhere (not only in the authority) is refused: `https://us/er:pw@host` parses
    // with the password in its path, and would be printed with the client.
    if !url.username().is_empty() || url.password().is_some() || raw.contains('@') {
        return Err(invalid(
            "credentials in the URL are not allowed (the URL holds an `@`); use the API key",
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid("a base URL has no query or fragment"));
    }
    let path = url.path().trim_end_matches('/').to_owned();
    url.set_path(&path);
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;
    use progenitor_client::ClientInfo;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn base_urls_are_normalised_with_or_without_api_v1() {
        for raw in [
            "https://lago.example.com",
            "https://lago.example.com/",
            "https://lago.example.com/api/v1",
            "https://lago.example.com/api/v1/",
        ] {
            assert_eq!(
                normalize_base_url(raw, false).unwrap().as_str(),
                "https://lago.example.com/api/v1",
                "{raw}"
            );
        }
        assert_eq!(
            normalize_base_url("https://example.com/lago", false)
                .unwrap()
                .as_str(),
            "https://example.com/lago/api/v1"
        );
    }

    #[test]
    fn bad_urls_are_typed_errors() {
        for raw in [
            "",
            "lago.example.com",
            "ftp://x",
            "https://user:pw@x",
            "https://x/?a=1",
            "https://x/#f",
        ] {
            assert!(
                matches!(
                    normalize_base_url(raw, false),
                    Err(ConfigError::InvalidUrl { .. })
                ),
                "{raw}"
            );
        }
    }

    #[test]
    fn credentials_in_urls_never_reach_error_text() {
        let err = normalize_base_url("https://admin:hunter2@lago.example.com", false).unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
        assert!(err.to_string().contains("***@lago.example.com"), "{err}");
        let err = normalize_base_url("http://u:hunter2@10.0.0.5/x", false).unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
        let b = ClientBuilder::new("k").base_url("https://u:hunter2@x.example");
        assert!(!format!("{b:?}").contains("hunter2"));
        assert_eq!(
            redact_userinfo("https://x.example/a/b"),
            "https://x.example/a/b"
        );
    }

    #[test]
    fn credentials_never_show_whatever_characters_they_hold() {
        for (raw, secret) in [
            ("https://u:p/w@x.example", "p/w"),
            ("https://u:pa?ss@x.example/api/v1", "pa?ss"),
            ("https://u:pa#ss@x.example", "pa#ss"),
            ("https://us/er:hunter2@x.example", "hunter2"),
            ("https://u:p%40ss@x.example", "p%40ss"),
            ("http://u:s3cret@@10.0.0.1", "s3cret"),
            ("https://:tok@en@x.example", "tok"),
            ("u:bare-secret@x.example", "bare-secret"),
        ] {
            let builder = ClientBuilder::new("k").base_url(raw);
            let shown = format!("{builder:?}");
            assert!(!shown.contains(secret), "{raw}: {shown}");
            let err = builder.build().unwrap_err();
            assert!(!err.to_string().contains(secret), "{raw}: {err}");
            assert!(!format!("{err:?}").contains(secret), "{raw}: {err:?}");
            let err = ClientBuilder::new("k")
                .exact_base_url(raw)
                .build()
                .unwrap_err();
            assert!(!err.to_string().contains(secret), "{raw}: {err}");
        }
    }

    #[test]
    fn an_unknown_region_lists_what_is_accepted() {
        let err =
            ClientBuilder::from_lookup(env(&[("LAGO_API_KEY", "k"), ("LAGO_REGION", "mars")]))
                .build()
                .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("\"mars\""), "{text}");
        assert!(
            text.contains("`us`") && text.contains("`eu`") && text.contains("URL"),
            "{text}"
        );
        assert!(!text.contains("relative URL without a base"), "{text}");
    }

    #[test]
    fn an_exact_base_url_is_used_as_given() {
        let b = ClientBuilder::new("k").exact_base_url("http://127.0.0.1:9/foo/");
        assert_eq!(
            b.resolved_base_url().unwrap().as_str(),
            "http://127.0.0.1:9/foo"
        );
        let client = b.build().unwrap();
        assert_eq!(client.baseurl(), "http://127.0.0.1:9/foo");
        let b = ClientBuilder::new("k").exact_base_url("http://127.0.0.1:9");
        assert_eq!(b.build().unwrap().baseurl(), "http://127.0.0.1:9");
        // The normalising form still appends /api/v1, and region() turns exactness off.
        let b = ClientBuilder::new("k")
            .exact_base_url("http://127.0.0.1:9/foo")
            .base_url("http://127.0.0.1:9/foo");
        assert_eq!(
            b.build().unwrap().baseurl(),
            "http://127.0.0.1:9/foo/api/v1"
        );
    }

    #[test]
    fn the_key_source_is_recorded() {
        let b = ClientBuilder::from_lookup(env(&[("LAGO_API_KEY", "k")]));
        assert_eq!(b.key_source, KeySource::Environment("LAGO_API_KEY"));
        assert!(b.has_api_key());
        let b = b.api_key("other");
        assert_eq!(b.key_source, KeySource::Given);
        assert!(!ClientBuilder::from_lookup(env(&[])).has_api_key());
        let b = b.api_key_from("k", KeySource::Named("the --api-key flag".into()));
        assert_eq!(b.key_source().origin(), "the --api-key flag");
        assert_eq!(b.key_source().to_string(), "from the --api-key flag");
        assert_eq!(
            KeySource::Environment("LAGO_API_KEY").origin(),
            "the LAGO_API_KEY environment variable"
        );
        assert_eq!(
            ClientBuilder::new("k")
                .base_url("http://127.0.0.1:3000")
                .host()
                .as_deref(),
            Some("127.0.0.1:3000")
        );
        assert_eq!(
            ClientBuilder::new("k").host().as_deref(),
            Some("api.getlago.com")
        );
    }

    #[test]
    fn clear_text_needs_an_opt_in_except_on_loopback() {
        assert!(normalize_base_url("http://127.0.0.1:3000", false).is_ok());
        assert!(normalize_base_url("http://localhost:3000", false).is_ok());
        assert!(normalize_base_url("http://[::1]:3000", false).is_ok());
        assert_eq!(
            normalize_base_url("http://lago.internal", false),
            Err(ConfigError::InsecureUrl {
                url: "http://lago.internal".into()
            })
        );
        assert!(normalize_base_url("http://lago.internal", true).is_ok());
    }

    #[test]
    fn environment_region_wins_over_url() {
        let b = ClientBuilder::from_lookup(env(&[
            ("LAGO_API_KEY", "k"),
            ("LAGO_REGION", "EU"),
            ("LAGO_API_URL", "https://self.example"),
        ]));
        assert_eq!(
            b.resolved_base_url().unwrap().as_str(),
            "https://api.eu.getlago.com/api/v1"
        );
        let b = ClientBuilder::from_lookup(env(&[
            ("LAGO_API_KEY", "k"),
            ("LAGO_API_URL", "https://self.example"),
        ]));
        assert_eq!(
            b.resolved_base_url().unwrap().as_str(),
            "https://self.example/api/v1"
        );
        let b = ClientBuilder::from_lookup(env(&[
            ("LAGO_API_KEY", "k"),
            ("LAGO_REGION", "https://r.example/api/v1"),
        ]));
        assert_eq!(
            b.resolved_base_url().unwrap().as_str(),
            "https://r.example/api/v1"
        );
        let b = ClientBuilder::from_lookup(env(&[("LAGO_API_KEY", "k")]));
        assert_eq!(
            b.resolved_base_url().unwrap().as_str(),
            "https://api.getlago.com/api/v1"
        );
    }

    #[test]
    fn a_missing_or_bad_key_is_a_typed_error() {
        let err = ClientBuilder::from_lookup(env(&[("LAGO_API_KEY", "  ")]))
            .build()
            .unwrap_err();
        assert_eq!(err, ConfigError::MissingApiKey);
        let err = ClientBuilder::new("abc\ndef").build().unwrap_err();
        assert_eq!(err, ConfigError::InvalidApiKey);
        assert!(!err.to_string().contains("abc"));
    }

    #[test]
    fn the_key_never_shows_in_debug() {
        let secret = "sk_live_do_not_print_me";
        let builder = ClientBuilder::new(secret);
        assert!(!format!("{builder:?}").contains(secret));
        let client = builder.build().unwrap();
        let shown = format!("{client:?}");
        assert!(!shown.contains(secret), "{shown}");
    }
}
