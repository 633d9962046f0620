//! Time as the node's driver reads it: through a [`Clock`], so that the same code runs on the
//! system clock in production and on a [`ManualClock`] in tests, where time moves only when
//! the test moves it. (`clippy.toml` forbids `Instant::now` and `SystemTime::now` in the
//! driver.)

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A source of time.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Monotonic time: timers, pacing and retries.
    fn now(&self) -> Instant;
    /// Wall-clock milliseconds since the Unix epoch: block timestamps.
    fn unix_ms(&self) -> u64;
}

/// The machine's clocks.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)]
    fn now(&self) -> Instant {
        Instant::now()
    }

    #[allow(clippy::disallowed_methods)]
    fn unix_ms(&self) -> u64 {
        SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
    }
}

/// A clock that stands still until [`ManualClock::advance`] moves it; both readings move
/// together. Clones share one time.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<Mutex<(Instant, u64)>>);

impl ManualClock {
    /// A clock reading `unix_ms` (and some fixed monotonic instant).
    pub fn new(unix_ms: u64) -> ManualClock {
        ManualClock(Arc::new(Mutex::new((SystemClock.now(), unix_ms))))
    }

    pub fn advance(&self, by: Duration) {
        let mut time = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        time.0 += by;
        time.1 = time.1.saturating_add(by.as_millis() as u64);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).0
    }

    fn unix_ms(&self) -> u64 {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_advanced_and_its_clones_share_it() {
        let clock = ManualClock::new(1_000);
        let (t0, other) = (clock.now(), clock.clone());
        assert_eq!((clock.now(), clock.unix_ms()), (t0, 1_000));
        other.advance(Duration::from_millis(250));
        assert_eq!((clock.now(), clock.unix_ms()), (t0 + Duration::from_millis(250), 1_250));
    }
}
