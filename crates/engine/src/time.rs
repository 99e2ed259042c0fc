//! Engine time: milliseconds since the Unix epoch, always passed in, never read from the system here.
//!
//! The sans-IO core takes `now` as an argument to every call; only the actor reads a [`Clock`].

use std::fmt;

/// A point in time, in milliseconds since 1970-01-01T00:00:00Z.
#[derive(
    Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// From whole seconds.
    pub const fn from_secs(secs: i64) -> Timestamp {
        Timestamp(secs.saturating_mul(1000))
    }

    /// Milliseconds since the epoch.
    pub const fn millis(self) -> i64 {
        self.0
    }

    /// Whole seconds since the epoch, truncated.
    pub const fn secs(self) -> i64 {
        self.0.div_euclid(1000)
    }

    /// This time plus a number of milliseconds (saturating).
    pub const fn plus_millis(self, ms: i64) -> Timestamp {
        Timestamp(self.0.saturating_add(ms))
    }

    /// This time plus a number of seconds (saturating).
    pub const fn plus_secs(self, secs: i64) -> Timestamp {
        self.plus_millis(secs.saturating_mul(1000))
    }

    /// Milliseconds from `earlier` to `self`; zero if `earlier` is later.
    pub const fn millis_since(self, earlier: Timestamp) -> i64 {
        let d = self.0.saturating_sub(earlier.0);
        if d < 0 {
            0
        } else {
            d
        }
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}ms", self.0)
    }
}

/// Where the actor reads the current time. Tests use [`ManualClock`].
pub trait Clock: Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> Timestamp;
}

/// The system's wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        Timestamp(ms)
    }
}

/// A clock that only moves when told to. Shared by cloning.
#[derive(Debug, Clone, Default)]
pub struct ManualClock {
    now: std::sync::Arc<std::sync::atomic::AtomicI64>,
}

impl ManualClock {
    /// A clock stopped at `start`.
    pub fn new(start: Timestamp) -> ManualClock {
        ManualClock { now: std::sync::Arc::new(std::sync::atomic::AtomicI64::new(start.0)) }
    }

    /// Moves the clock forward.
    pub fn advance_millis(&self, ms: i64) {
        self.now.fetch_add(ms, std::sync::atomic::Ordering::SeqCst);
    }

    /// Sets the clock.
    pub fn set(&self, to: Timestamp) {
        self.now.store(to.0, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.now.load(std::sync::atomic::Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates_and_never_goes_negative() {
        let t = Timestamp::from_secs(10);
        assert_eq!(t.plus_secs(5).millis(), 15_000);
        assert_eq!(t.millis_since(t.plus_secs(1)), 0);
        assert_eq!(Timestamp(i64::MAX).plus_millis(1), Timestamp(i64::MAX));
        assert_eq!(Timestamp(-1).secs(), -1);
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let clock = ManualClock::new(Timestamp(1_000));
        let other = clock.clone();
        assert_eq!(clock.now(), Timestamp(1_000));
        other.advance_millis(500);
        assert_eq!(clock.now(), Timestamp(1_500));
    }
}
