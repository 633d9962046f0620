//! The token bucket behind every rate limit (a peer's messages, bytes and requests; an RPC
//! caller's requests). Time is passed in, so each limit is tested without a clock.

use std::time::Instant;

/// A token bucket: `per_second` tokens come back each second, up to `burst`. The rate and
/// burst are the owner's, passed to each call, so a bucket is two words.
#[derive(Debug, Clone, Copy)]
pub struct TokenBucket {
    tokens: f64,
    at: Instant,
}

impl TokenBucket {
    /// A bucket holding `burst` tokens at `now`.
    pub fn full(burst: f64, now: Instant) -> TokenBucket {
        TokenBucket { tokens: burst, at: now }
    }

    /// The tokens it holds at `now`.
    pub fn level(&self, per_second: f64, burst: f64, now: Instant) -> f64 {
        (self.tokens + per_second * now.saturating_duration_since(self.at).as_secs_f64()).min(burst)
    }

    /// Takes `amount` tokens if the bucket holds that many at `now`; false (and nothing
    /// taken) if not.
    pub fn take(&mut self, amount: f64, per_second: f64, burst: f64, now: Instant) -> bool {
        self.tokens = self.level(per_second, burst, now);
        self.at = now;
        if self.tokens >= amount {
            self.tokens -= amount;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_bucket_gives_its_burst_then_its_rate_and_never_more_than_its_burst() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::full(4.0, t0);
        assert_eq!((0..6).filter(|_| bucket.take(1.0, 10.0, 4.0, t0)).count(), 4);
        let later = t0 + Duration::from_millis(100);
        assert!(bucket.take(1.0, 10.0, 4.0, later), "a tenth of a second brings one back");
        assert!(!bucket.take(1.0, 10.0, 4.0, later));
        assert_eq!(bucket.level(10.0, 4.0, later + Duration::from_secs(60)), 4.0, "capped at the burst");
        assert!(!bucket.take(5.0, 10.0, 4.0, later + Duration::from_secs(60)), "more than the burst at once");
    }
}
