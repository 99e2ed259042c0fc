//! Rate limits whose memory is bounded whatever clients send: token buckets on the injected clock, one per
//! key, in a map with a hard capacity.
//!
//! Hand-written rather than `governor`'s keyed limiter: that one keeps a bucket for every key it has seen
//! until the caller prunes it (`retain_recent`), so a flood of new keys (every IPv6 address of a /48) grows
//! it without bound between prunes; and it runs on its own clock, where trworker's limits follow the
//! injected [`engine::Clock`] so tests move time instead of sleeping.
//!
//! Keys are small fixed-size values ([`client_key`] for addresses), never strings a client chose.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use engine::Timestamp;

/// A token bucket: `burst` at once, then one more every `refill_every`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Attempts allowed in a row.
    pub burst: u32,
    /// Time for one attempt to be given back.
    pub refill_every: Duration,
}

impl RateLimit {
    /// `burst` at once, then one every `refill_every`.
    pub const fn new(burst: u32, refill_every: Duration) -> RateLimit {
        RateLimit { burst, refill_every }
    }
}

/// One bucket: tokens left at `at`.
#[derive(Debug, Clone, Copy)]
pub struct Bucket {
    tokens: f64,
    at: Timestamp,
}

impl Bucket {
    /// A full bucket.
    pub fn full(limit: RateLimit, now: Timestamp) -> Bucket {
        Bucket { tokens: f64::from(limit.burst), at: now }
    }

    /// This bucket with what it regained since it was last touched, as of `now`.
    pub fn refilled(self, limit: RateLimit, now: Timestamp) -> Bucket {
        let per_ms = limit.refill_every.as_millis().max(1) as f64;
        let gained = now.millis_since(self.at).max(0) as f64 / per_ms;
        Bucket { tokens: (self.tokens + gained).min(f64::from(limit.burst)), at: now.max(self.at) }
    }

    /// Whether a whole token is there.
    pub fn has_one(&self) -> bool {
        self.tokens >= 1.0
    }

    /// Takes a token (the bucket may go below zero only through [`Bucket::spend`]).
    pub fn take(&mut self) {
        self.tokens = (self.tokens - 1.0).max(0.0);
    }

    /// Seconds until a whole token is back (at least 1, for `Retry-After`).
    pub fn wait_secs(&self, limit: RateLimit) -> u64 {
        let per = limit.refill_every.as_secs_f64();
        ((1.0 - self.tokens).max(0.0) * per).ceil().max(1.0) as u64
    }

    fn is_full(&self, limit: RateLimit) -> bool {
        self.tokens >= f64::from(limit.burst)
    }
}

/// One [`Bucket`] per key, at most `capacity` of them.
///
/// When the map is full, buckets that have refilled completely (they hold nothing a full bucket would not)
/// are dropped first; if that frees too little, the quarter touched longest ago goes. Evicting in batches
/// keeps an insertion into a full map O(1) amortized, so a flood of new keys costs no more than the keys
/// themselves. An evicted key starts again with a full bucket: a client that could spread its attempts over
/// more keys than the capacity gains that much, which is why every use of this type pairs it with a limit
/// that no key can escape (the overall sign-in budget, the connection cap).
pub struct KeyedLimiter<K> {
    limit: RateLimit,
    capacity: usize,
    buckets: Mutex<HashMap<K, Bucket>>,
}

impl<K: Hash + Eq + Clone> KeyedLimiter<K> {
    /// Buckets of `limit`, at most `capacity` of them (at least 1).
    pub fn new(limit: RateLimit, capacity: usize) -> KeyedLimiter<K> {
        KeyedLimiter { limit, capacity: capacity.max(1), buckets: Mutex::new(HashMap::new()) }
    }

    /// The limit each key gets.
    pub fn limit(&self) -> RateLimit {
        self.limit
    }

    /// Takes a token from `key`'s bucket, or says how many seconds until one is back.
    pub fn take(&self, key: &K, now: Timestamp) -> Result<(), u64> {
        self.with_bucket(key, now, |bucket, limit| match bucket.has_one() {
            true => {
                bucket.take();
                Ok(())
            }
            false => Err(bucket.wait_secs(limit)),
        })
    }

    /// Whether `key` has a token left, without taking it: `Err(seconds)` when it has none.
    pub fn check(&self, key: &K, now: Timestamp) -> Result<(), u64> {
        let Ok(buckets) = self.buckets.lock() else { return Ok(()) };
        match buckets.get(key) {
            Some(bucket) => {
                let bucket = bucket.refilled(self.limit, now);
                bucket.has_one().then_some(()).ok_or_else(|| bucket.wait_secs(self.limit))
            }
            None => Ok(()),
        }
    }

    /// Runs `f` on `key`'s bucket (created full, refilled to `now`), keeping the map within its capacity.
    fn with_bucket<T>(&self, key: &K, now: Timestamp, f: impl FnOnce(&mut Bucket, RateLimit) -> T) -> T {
        let limit = self.limit;
        // A poisoned lock means a panic elsewhere while holding it; the buckets are still consistent (each
        // update is a single insert), so go on with them.
        let mut buckets = self.buckets.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if !buckets.contains_key(key) && buckets.len() >= self.capacity {
            make_room(&mut buckets, limit, now, self.capacity);
        }
        let bucket = buckets.entry(key.clone()).or_insert_with(|| Bucket::full(limit, now));
        *bucket = bucket.refilled(limit, now);
        f(bucket, limit)
    }

    /// Buckets held now: what the capacity bounds.
    pub fn len(&self) -> usize {
        self.buckets.lock().map(|b| b.len()).unwrap_or(0)
    }

    /// Whether no bucket is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn make_room<K: Hash + Eq + Clone>(
    buckets: &mut HashMap<K, Bucket>,
    limit: RateLimit,
    now: Timestamp,
    capacity: usize,
) {
    buckets.retain(|_, bucket| !bucket.refilled(limit, now).is_full(limit));
    let target = capacity - capacity / 4 - 1;
    if buckets.len() <= target {
        return;
    }
    let mut ages: Vec<(Timestamp, K)> = buckets.iter().map(|(k, b)| (b.at, k.clone())).collect();
    let excess = ages.len() - target;
    ages.select_nth_unstable_by_key(excess - 1, |(at, _)| *at);
    for (_, key) in ages.into_iter().take(excess) {
        buckets.remove(&key);
    }
}

/// The key a client address is limited by: IPv4 addresses (and IPv4-mapped IPv6 ones) as they are, IPv6
/// addresses by their /64, which one subscriber usually holds whole, so it cannot take a fresh bucket for
/// every address it owns.
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !u128::from(u64::MAX)).into()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEN_S: RateLimit = RateLimit::new(2, Duration::from_secs(10));

    #[test]
    fn a_bucket_empties_then_refills() {
        let limiter = KeyedLimiter::new(TEN_S, 100);
        let t0 = Timestamp::from_secs(1000);
        assert_eq!(limiter.take(&1, t0), Ok(()));
        assert_eq!(limiter.take(&1, t0), Ok(()));
        assert_eq!(limiter.take(&1, t0), Err(10));
        assert_eq!(limiter.check(&1, t0), Err(10));
        assert_eq!(limiter.take(&2, t0), Ok(()), "keys are independent");
        assert_eq!(limiter.take(&1, t0.plus_secs(5)), Err(5));
        assert_eq!(limiter.take(&1, t0.plus_secs(10)), Ok(()));
        assert_eq!(limiter.check(&3, t0), Ok(()), "an unseen key has its whole burst");
        assert_eq!(limiter.len(), 2, "check does not create buckets");
    }

    #[test]
    fn a_flood_of_new_keys_never_holds_more_than_the_capacity() {
        let limiter = KeyedLimiter::new(TEN_S, 1000);
        let t0 = Timestamp::from_secs(1000);
        for key in 0..100_000u32 {
            // Every key spent, so none is full and droppable: eviction by age has to do the work.
            let _ = limiter.take(&key, t0.plus_millis(i64::from(key)));
            let _ = limiter.take(&key, t0.plus_millis(i64::from(key)));
            assert!(limiter.len() <= 1000, "{} buckets after key {key}", limiter.len());
        }
        // The most recent keys are the ones kept.
        assert_eq!(limiter.check(&99_999, t0.plus_millis(99_999)), Err(10));
    }

    #[test]
    fn full_buckets_are_dropped_before_recent_ones() {
        let limiter = KeyedLimiter::new(TEN_S, 4);
        let t0 = Timestamp::from_secs(1000);
        for key in 0..4 {
            let _ = limiter.take(&key, t0);
        }
        let _ = limiter.take(&0, t0.plus_secs(100));
        let _ = limiter.take(&0, t0.plus_secs(100));
        // 1..=3 have refilled by now; 0 is spent and must survive the room-making.
        let _ = limiter.take(&9, t0.plus_secs(100));
        assert_eq!(limiter.check(&0, t0.plus_secs(100)), Err(10));
        assert!(limiter.len() <= 4);
    }

    #[test]
    fn ipv6_clients_are_keyed_by_their_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap_or(IpAddr::from([0; 4]));
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap_or(IpAddr::from([0; 4]));
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap_or(IpAddr::from([0; 4]));
        assert_eq!(client_key(a), client_key(b));
        assert_ne!(client_key(a), client_key(c));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap_or(IpAddr::from([0; 4]));
        assert_eq!(client_key(mapped), IpAddr::from([192, 0, 2, 7]));
    }
}
