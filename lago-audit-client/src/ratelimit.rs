//! A client-side rate limiter, shared by every request of one [`Client`](crate::Client).
//!
//! Lago Cloud allows 50 requests per second per organisation on the audit-log endpoints and
//! answers 429 above that. Read-ahead and parallel readers would cross that line at once, so every
//! attempt (first tries and retries alike) first takes a token from one bucket per client:
//!
//! - the bucket refills at `per_second` tokens per second and holds at most `per_second / 15`
//!   tokens (at least 1), so no one-second window sees more than `per_second + burst` requests:
//!   with the default 45/s (burst 3), at most 48, under Lago Cloud's 50 with a little room for
//!   requests that arrive bunched up;
//! - a request that finds the bucket empty reserves the next token and sleeps until it is due,
//!   so waiting requests go out in the order they asked, without busy loops;
//! - every response's `X-RateLimit-Remaining` / `X-RateLimit-Reset` are read: when the server
//!   says at most one request is left in its window (someone else is using the organisation's
//!   budget too), the limiter spreads what is left over the time until the reset, and when none
//!   is left it pauses until the reset. This keeps several clients (or processes) sharing one
//!   organisation's budget from starting 429 storms. A client alone never gets that low.
//!
//! Configure it with [`ClientBuilder::rate_limit`](crate::ClientBuilder::rate_limit) (0 turns it
//! off). Time spent waiting is reported as a `tracing` event and counted by an export's
//! [`ExportProgress::rate_limit_waits`](crate::ExportProgress::rate_limit_waits).

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Requests per second a client allows itself by default: below Lago Cloud's 50.
pub const DEFAULT_RATE_LIMIT: u32 = 45;

/// A token bucket. See the [module documentation](self).
#[derive(Debug)]
pub struct RateLimiter {
    per_second: f64,
    burst: f64,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// Tokens in the bucket; negative when requests have reserved tokens not yet refilled.
    tokens: f64,
    last: Instant,
    /// No request starts before this instant (the server said its window is used up).
    pause_until: Option<Instant>,
}

impl RateLimiter {
    /// A limiter allowing `per_second` requests per second on average, with bursts of
    /// `max(1, per_second / 15)`. `per_second` is taken as at least 1.
    pub fn new(per_second: u32) -> Self {
        let per_second = f64::from(per_second.max(1));
        let burst = (per_second / 15.0).floor().max(1.0);
        Self {
            per_second,
            burst,
            state: Mutex::new(State {
                tokens: burst,
                last: Instant::now(),
                pause_until: None,
            }),
        }
    }

    /// The configured average rate.
    pub fn per_second(&self) -> f64 {
        self.per_second
    }

    /// Takes a token and returns how long the caller must wait before sending (zero when a
    /// token was available). The token is reserved: the caller should then sleep that long.
    pub fn reserve(&self) -> Duration {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let elapsed = now.saturating_duration_since(s.last).as_secs_f64();
        s.tokens = (s.tokens + elapsed * self.per_second).min(self.burst);
        s.last = now;
        s.tokens -= 1.0;
        let refill = if s.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-s.tokens / self.per_second)
        };
        let pause = s
            .pause_until
            .map_or(Duration::ZERO, |until| until.saturating_duration_since(now));
        refill.max(pause)
    }

    /// Takes a token, sleeping until it is due; returns how long it waited.
    pub async fn acquire(&self) -> Duration {
        let wait = self.reserve();
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        wait
    }

    /// Learns from a response's `X-RateLimit-Remaining` and `X-RateLimit-Reset` (seconds until
    /// the server's window resets). When nothing is left, pauses every request until the reset;
    /// when one request is left, spaces the next by `reset / 2`.
    pub fn observe(&self, headers: &reqwest::header::HeaderMap) {
        let number = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<f64>().ok())
                .filter(|v| v.is_finite() && *v >= 0.0)
        };
        let (Some(remaining), Some(reset)) =
            (number("x-ratelimit-remaining"), number("x-ratelimit-reset"))
        else {
            return;
        };
        // A reset far in the future is not waited out here; the retry policy decides on 429s.
        let reset = reset.min(60.0);
        if remaining >= 2.0 {
            return;
        }
        let pause = if remaining < 1.0 {
            reset
        } else {
            reset / (remaining + 1.0)
        };
        let until = Instant::now() + Duration::from_secs_f64(pause);
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.pause_until = Some(s.pause_until.map_or(until, |u| u.max(until)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderMap, HeaderValue};

    #[test]
    fn a_burst_then_the_average_rate() {
        let l = RateLimiter::new(45);
        // 3 tokens are there at once...
        for _ in 0..3 {
            assert_eq!(l.reserve(), Duration::ZERO);
        }
        // ...then each request reserves the next token: 1/45 s apart.
        let waits: Vec<Duration> = (0..4).map(|_| l.reserve()).collect();
        for (i, w) in waits.iter().enumerate() {
            let want = (i as f64 + 1.0) / 45.0;
            assert!(
                (w.as_secs_f64() - want).abs() < 0.005,
                "wait {i} is {w:?}, want about {want}s"
            );
        }
    }

    #[tokio::test]
    async fn no_one_second_window_sees_more_than_rate_plus_burst() {
        let l = RateLimiter::new(200);
        let start = Instant::now();
        let mut n = 0u32;
        while start.elapsed() < Duration::from_millis(500) {
            l.acquire().await;
            n += 1;
        }
        // 500 ms at 200/s plus a burst of 13: about 113, never much more.
        assert!((95..=116).contains(&n), "{n} requests in 500 ms");
    }

    fn headers(remaining: &str, reset: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-ratelimit-limit", HeaderValue::from_static("50"));
        h.insert(
            "x-ratelimit-remaining",
            HeaderValue::from_str(remaining).unwrap(),
        );
        h.insert("x-ratelimit-reset", HeaderValue::from_str(reset).unwrap());
        h
    }

    #[test]
    fn a_server_running_low_slows_the_client_early() {
        let l = RateLimiter::new(1000);
        l.observe(&headers("40", "1"));
        assert_eq!(l.reserve(), Duration::ZERO, "plenty left: no pause");
        l.observe(&headers("2", "1"));
        assert_eq!(l.reserve(), Duration::ZERO, "two left: no pause");
        l.observe(&headers("1", "1"));
        let w = l.reserve();
        assert!(
            w > Duration::from_millis(450) && w <= Duration::from_millis(500),
            "{w:?}"
        );
        let l = RateLimiter::new(1000);
        l.observe(&headers("0", "2"));
        let w = l.reserve();
        assert!(w > Duration::from_millis(1900), "{w:?}");
        let l = RateLimiter::new(1000);
        l.observe(&headers("nonsense", "-1"));
        assert_eq!(l.reserve(), Duration::ZERO, "malformed headers are ignored");
    }
}
