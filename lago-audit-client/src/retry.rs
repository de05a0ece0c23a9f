//! When and how long the client waits before trying a request again.
//!
//! Every operation of this API is a `GET`, so every request is safe to repeat. A request is tried
//! again after a transport failure (connect error, timeout, connection reset) or one of the
//! statuses in [`RetryPolicy::retries_status`], at most [`RetryPolicy::max_retries`] times. The
//! wait doubles from [`RetryPolicy::base_delay`] up to [`RetryPolicy::max_delay`] with full jitter,
//! unless the server says how long to wait (`Retry-After`, or `X-RateLimit-Reset` on a 429), in
//! which case the client waits that long; a hint longer than [`RetryPolicy::max_wait`] is not
//! waited out, and the error is returned at once.
//!
//! The client's transport applies this policy with three refinements:
//!
//! - a 200 whose body is not complete JSON (cut short, garbled) is retried like a transport
//!   failure; a complete JSON body that does not match the spec is an error at once;
//! - a 429 does not use up [`max_retries`](RetryPolicy::max_retries): it is waited out
//!   ([`RetryPolicy::rate_limited_wait`], the server's hint plus jitter) up to
//!   [`max_rate_limited`](RetryPolicy::max_rate_limited) times (20 by default, 0 in
//!   [`RetryPolicy::none`]), so a burst of rate limiting cannot exhaust the budget meant for real
//!   faults;
//! - a failed TLS handshake or an untrusted certificate is never retried;
//! - one call, all attempts and waits included, ends within the client's
//!   [`max_elapsed`](crate::ClientBuilder::max_elapsed).

use reqwest::header::HeaderMap;
use reqwest::StatusCode;
use std::time::Duration;

/// The retry policy of a client. See the [module documentation](self).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// How many times a request may be repeated after its first attempt (0 disables retries).
    pub max_retries: u32,
    /// The first backoff step.
    pub base_delay: Duration,
    /// The largest backoff step (before jitter).
    pub max_delay: Duration,
    /// The longest server-requested wait the client honours; longer hints end the retries.
    pub max_wait: Duration,
    /// How many 429 answers in a row one call waits out, apart from `max_retries` (0: a 429 is
    /// returned at once).
    pub max_rate_limited: u32,
}

impl Default for RetryPolicy {
    /// 3 retries, 250 ms doubling to 8 s, server hints honoured up to 60 s, up to 20 waits on
    /// 429.
    fn default() -> Self {
        Self {
            max_retries: 3,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(8),
            max_wait: Duration::from_secs(60),
            max_rate_limited: 20,
        }
    }
}

impl RetryPolicy {
    /// A policy that never retries, and does not wait out a 429 either.
    pub fn none() -> Self {
        Self {
            max_retries: 0,
            max_rate_limited: 0,
            ..Self::default()
        }
    }

    /// Whether a response with this status is worth another attempt: 408, 429, 500, 502, 503, 504.
    pub fn retries_status(status: StatusCode) -> bool {
        matches!(status.as_u16(), 408 | 429 | 500 | 502 | 503 | 504)
    }

    /// The backoff step before jitter: `min(max_delay, base_delay * 2^retry)`.
    pub fn step(&self, retry: u32) -> Duration {
        self.base_delay
            .saturating_mul(2u32.saturating_pow(retry.min(30)))
            .min(self.max_delay)
    }

    /// The backoff before retry number `retry` (0-based), with full jitter: a uniformly random
    /// duration between zero and [`step(retry)`](Self::step).
    pub fn backoff(&self, retry: u32) -> Duration {
        let cap = self.step(retry);
        let nanos = u64::try_from(cap.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(if nanos == 0 {
            0
        } else {
            fastrand::u64(0..=nanos)
        })
    }

    /// How long to wait before retry number `retry` after a response with these status and
    /// headers; `None` when the response should not be retried (not a retryable status, retries
    /// used up, or the server asks for a longer wait than [`RetryPolicy::max_wait`]).
    pub fn delay_after_response(
        &self,
        retry: u32,
        status: StatusCode,
        headers: &HeaderMap,
    ) -> Option<Duration> {
        if retry >= self.max_retries || !Self::retries_status(status) {
            return None;
        }
        match server_wait_hint(status, headers) {
            Some(hint) if hint > self.max_wait => None,
            Some(hint) => Some(hint),
            None => Some(self.backoff(retry)),
        }
    }
}

impl RetryPolicy {
    /// How long to wait after the `waits`-th 429 in a row (0-based): the server's hint
    /// (`Retry-After`, or `X-RateLimit-Reset`), else [`step(waits)`](Self::step), plus a random
    /// share of up to half of it (at least up to `base_delay`), so that readers throttled together
    /// do not come back together. `None` when the hint is longer than
    /// [`max_wait`](Self::max_wait).
    pub fn rate_limited_wait(&self, waits: u32, headers: &HeaderMap) -> Option<Duration> {
        let base = match server_wait_hint(StatusCode::TOO_MANY_REQUESTS, headers) {
            Some(hint) if hint > self.max_wait => return None,
            Some(hint) => hint,
            None => self.step(waits),
        };
        let spread = (base / 2).max(self.base_delay);
        let nanos = u64::try_from(spread.as_nanos()).unwrap_or(u64::MAX);
        Some(base + Duration::from_nanos(fastrand::u64(0..=nanos)))
    }
}

/// The wait the server asks for: `Retry-After` (seconds, or an HTTP date), or on a 429 Lago's
/// `X-RateLimit-Reset` (seconds until the window resets).
pub fn server_wait_hint(status: StatusCode, headers: &HeaderMap) -> Option<Duration> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(v) = header("retry-after") {
        if let Ok(secs) = v.parse::<u64>() {
            return Some(Duration::from_secs(secs));
        }
        if let Ok(at) = chrono::DateTime::parse_from_rfc2822(v) {
            let wait = at.with_timezone(&chrono::Utc) - chrono::Utc::now();
            return Some(wait.to_std().unwrap_or(Duration::ZERO));
        }
    }
    if status == StatusCode::TOO_MANY_REQUESTS {
        if let Some(secs) = header("x-ratelimit-reset").and_then(|v| v.parse::<f64>().ok()) {
            if secs.is_finite() && secs >= 0.0 {
                return Some(Duration::from_secs_f64(secs.min(86_400.0)));
            }
        }
    }
    None
}

/// A failure worth another attempt: a connect error, a timeout, a connection cut. A failed TLS
/// handshake or a certificate the client does not trust is not: it fails the same way again.
pub(crate) fn is_transient(e: &reqwest::Error) -> bool {
    if is_tls_failure(e) {
        return false;
    }
    e.is_connect() || e.is_timeout() || e.is_request() || is_cut_body(e)
}

/// Whether `e` arose while reading a response body (reqwest reports a body that ends before its
/// `Content-Length`, a chunked body without its last chunk, or a reset mid-body as a body or
/// decode error).
pub(crate) fn is_cut_body(e: &reqwest::Error) -> bool {
    e.is_body() || e.is_decode()
}

/// Whether an error comes from TLS (handshake, certificate), judged from its causes: TLS stacks
/// (OpenSSL, Schannel, Security.framework, rustls) do not share an error type.
fn is_tls_failure(e: &reqwest::Error) -> bool {
    if !e.is_connect() {
        return false;
    }
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        if is_rustls_error(c) {
            return true;
        }
        let text = c.to_string().to_ascii_lowercase();
        if ["certificate", "ssl", "tls", "handshake"]
            .iter()
            .any(|w| text.contains(w))
        {
            return true;
        }
        cause = c.source();
    }
    false
}

/// Whether `e` is a rustls error (the default TLS backend), directly or inside an I/O error:
/// its messages ("received corrupt message of type InvalidContentType") name no TLS word.
/// I/O errors nest (the connector wraps rustls's own I/O error), and `io::Error::source` skips
/// the error it wraps, so each wrapped error is looked into.
#[cfg(feature = "rustls")]
fn is_rustls_error(e: &(dyn std::error::Error + 'static)) -> bool {
    if e.is::<rustls::Error>() {
        return true;
    }
    match e
        .downcast_ref::<std::io::Error>()
        .and_then(|io| io.get_ref())
    {
        Some(inner) => is_rustls_error(inner),
        None => false,
    }
}

#[cfg(not(feature = "rustls"))]
fn is_rustls_error(_: &(dyn std::error::Error + 'static)) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    /// Mean and extremes of `n` draws, in seconds.
    fn sample(n: usize, mut draw: impl FnMut() -> Duration) -> (f64, f64, f64) {
        let xs: Vec<f64> = (0..n).map(|_| draw().as_secs_f64()).collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let min = xs.iter().cloned().fold(f64::INFINITY, f64::min);
        let max = xs.iter().cloned().fold(0.0, f64::max);
        (mean, min, max)
    }

    #[test]
    fn backoff_grows_then_caps_with_full_jitter() {
        let p = RetryPolicy::default(); // 250 ms doubling to 8 s
        assert_eq!(p.step(0), Duration::from_millis(250));
        assert_eq!(p.step(1), Duration::from_millis(500));
        assert_eq!(p.step(4), Duration::from_secs(4));
        assert_eq!(p.step(5), Duration::from_secs(8));
        assert_eq!(p.step(40), Duration::from_secs(8), "capped, no overflow");
        // Full jitter: uniform on [0, step]. With 4,000 draws the mean is within 3% of step / 2
        // (its standard error is about 0.5%), and draws reach both ends of the range.
        for retry in [0u32, 1, 3, 5, 9] {
            let step = p.step(retry).as_secs_f64();
            let (mean, min, max) = sample(4000, || p.backoff(retry));
            assert!(
                (mean / step - 0.5).abs() < 0.03,
                "retry {retry}: mean {mean} step {step}"
            );
            assert!(
                min < 0.02 * step,
                "retry {retry}: jitter reaches down to zero ({min})"
            );
            assert!(
                max > 0.98 * step && max <= step,
                "retry {retry}: up to the step ({max})"
            );
        }
        // Growth: each mean doubles until the cap.
        let (m0, _, _) = sample(4000, || p.backoff(0));
        let (m2, _, _) = sample(4000, || p.backoff(2));
        assert!((m2 / m0 - 4.0).abs() < 0.4, "{m0} -> {m2}");
        let zero = RetryPolicy {
            base_delay: Duration::ZERO,
            ..RetryPolicy::default()
        };
        assert_eq!(zero.backoff(3), Duration::ZERO);
    }

    #[test]
    fn rate_limited_waits_are_the_hint_plus_bounded_jitter() {
        let p = RetryPolicy::default();
        let h = headers(&[("x-ratelimit-reset", "2")]);
        let (mean, min, max) = sample(2000, || p.rate_limited_wait(0, &h).unwrap());
        assert!(min >= 2.0 && max <= 3.0, "{min}..{max}");
        assert!(max - min > 0.9, "jittered: {min}..{max}");
        assert!((mean - 2.5).abs() < 0.05, "{mean}");
        // Without a hint: the backoff step plus up to half of it, never zero.
        let (_, min, max) = sample(2000, || p.rate_limited_wait(2, &HeaderMap::new()).unwrap());
        assert!(min >= 1.0 && max <= 1.5 + 1e-9, "{min}..{max}");
        // A hint past max_wait is not waited out.
        let h = headers(&[("retry-after", "3600")]);
        assert_eq!(p.rate_limited_wait(0, &h), None);
    }

    #[test]
    fn which_responses_are_retried() {
        let p = RetryPolicy::default();
        let none = HeaderMap::new();
        assert!(p
            .delay_after_response(0, StatusCode::SERVICE_UNAVAILABLE, &none)
            .is_some());
        assert!(p
            .delay_after_response(0, StatusCode::NOT_FOUND, &none)
            .is_none());
        assert!(p
            .delay_after_response(0, StatusCode::UNPROCESSABLE_ENTITY, &none)
            .is_none());
        assert!(
            p.delay_after_response(3, StatusCode::BAD_GATEWAY, &none)
                .is_none(),
            "retries used up"
        );
        assert!(RetryPolicy::none()
            .delay_after_response(0, StatusCode::BAD_GATEWAY, &none)
            .is_none());
    }

    #[test]
    fn server_hints_win_over_backoff() {
        let p = RetryPolicy::default();
        let h = headers(&[("retry-after", "2")]);
        assert_eq!(
            p.delay_after_response(0, StatusCode::SERVICE_UNAVAILABLE, &h),
            Some(Duration::from_secs(2))
        );
        let h = headers(&[("x-ratelimit-reset", "1")]);
        assert_eq!(
            p.delay_after_response(0, StatusCode::TOO_MANY_REQUESTS, &h),
            Some(Duration::from_secs(1))
        );
        // X-RateLimit-Reset is on every response; only a 429 makes it a wait.
        assert_eq!(server_wait_hint(StatusCode::SERVICE_UNAVAILABLE, &h), None);
        // Too long: give up rather than sleep for an hour.
        let h = headers(&[("retry-after", "3600")]);
        assert_eq!(
            p.delay_after_response(0, StatusCode::TOO_MANY_REQUESTS, &h),
            None
        );
    }

    #[test]
    fn malformed_hints_fall_back_to_backoff() {
        let h = headers(&[("retry-after", "soon"), ("x-ratelimit-reset", "-5")]);
        assert_eq!(server_wait_hint(StatusCode::TOO_MANY_REQUESTS, &h), None);
        let h = headers(&[("x-ratelimit-reset", "NaN")]);
        assert_eq!(server_wait_hint(StatusCode::TOO_MANY_REQUESTS, &h), None);
    }
}
