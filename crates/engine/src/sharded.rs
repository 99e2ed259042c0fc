//! [`Sharded`]: a hash map split into [`SHARDS`] tables, for the maps that grow with the number of tasks.
//!
//! A hash table grows by moving every entry into a table twice the size, all at once. Under the HTTP create
//! load the engine's task map and timer deadlines and the store writer's row index all doubled in the same
//! pass, at 458,752 and 917,504 tasks: the engine's thread stalled for 67 and 120 ms and the writer's for
//! 111 and 208 ms, and every request waiting on them with it (a p99 of 80 and 223 ms in the benchmark rounds
//! that crossed those counts, 8-14 ms in the others; docs/PERFORMANCE.md, "Sharded maps: 256 tables of
//! unequal shares"). Split by some bits of the key's hash, each table grows on its own, with a small part of
//! the entries.
//!
//! The tables do not get equal shares. With equal shares (and 64 tables) they all filled up together and
//! doubled within about one percent of each other: a burst of 64 short stalls, about a second of the
//! engine's and the writer's time around 1.8 million tasks, and a window of the create benchmark 10-28%
//! slower. Table `i` gets a share proportional to `1 + i / SHARDS`, so the largest gets about twice the
//! smallest and their doublings are spread over each doubling of the whole map: growing costs about the same
//! at every size. Spread out, the stalls land in many more of the benchmark's rounds, so each must be short:
//! with 64 tables a table held up to 2% of three million tasks and the rounds past two million had p99s of
//! 8-18 ms; 256 tables hold a quarter of that each (docs/PERFORMANCE.md, "Sharded maps: 256 tables of
//! unequal shares").

use std::borrow::Borrow;
use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};

/// How many tables a [`Sharded`] map is split into.
const SHARDS: usize = 256;

/// The table for 16 bits of a key's hash: table `i` gets a share of the 65,536 values proportional to
/// `1 + i / SHARDS` (the inverse of that share's cumulative distribution, `x = sqrt(1 + 3u) - 1`).
fn table_for(bits: u16) -> usize {
    let u = f64::from(bits) / 65_536.0;
    let x = (1.0 + 3.0 * u).sqrt() - 1.0;
    // `x < 1` for every `u < 1`; the `min` only guards the last value against rounding.
    ((x * SHARDS as f64) as usize).min(SHARDS - 1)
}

/// A `HashMap` with hasher `S`, split into [`SHARDS`] tables; the methods the engine uses, with the same
/// meaning. Iteration is in no particular order, as a hash map's.
pub(crate) struct Sharded<K, V, S = RandomState> {
    shards: Box<[HashMap<K, V, S>]>,
    hasher: S,
}

impl<K, V, S: BuildHasher + Clone + Default> Default for Sharded<K, V, S> {
    fn default() -> Self {
        let hasher = S::default();
        // Every table hashes as `hasher` does, so a key's shard and its slot come from one hash.
        let shards = (0..SHARDS).map(|_| HashMap::with_hasher(hasher.clone())).collect();
        Sharded { shards, hasher }
    }
}

impl<K: Hash + Eq, V, S: BuildHasher> Sharded<K, V, S> {
    fn shard<Q: Hash + ?Sized>(&self, key: &Q) -> usize {
        // Bits 40-55 pick the table: the tables index by the low bits and tag by the top seven, so one
        // table's keys still spread over all of its buckets and tags.
        table_for((self.hasher.hash_one(key) >> 40) as u16)
    }

    pub(crate) fn get<Q: Hash + Eq + ?Sized>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
    {
        self.shards[self.shard(key)].get(key)
    }

    pub(crate) fn get_mut<Q: Hash + Eq + ?Sized>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
    {
        let shard = self.shard(key);
        self.shards[shard].get_mut(key)
    }

    pub(crate) fn insert(&mut self, key: K, value: V) -> Option<V> {
        let shard = self.shard(&key);
        self.shards[shard].insert(key, value)
    }

    pub(crate) fn remove<Q: Hash + Eq + ?Sized>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
    {
        let shard = self.shard(key);
        self.shards[shard].remove(key)
    }

    pub(crate) fn len(&self) -> usize {
        self.shards.iter().map(HashMap::len).sum()
    }

    pub(crate) fn keys(&self) -> impl Iterator<Item = &K> {
        self.shards.iter().flat_map(HashMap::keys)
    }

    pub(crate) fn values(&self) -> impl Iterator<Item = &V> {
        self.shards.iter().flat_map(HashMap::values)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaves_as_one_map_and_spreads_its_keys() {
        let mut map: Sharded<String, usize> = Sharded::default();
        for i in 0..10_000 {
            assert_eq!(map.insert(format!("WT{i:032x}"), i), None);
        }
        assert_eq!(map.insert("WT0".to_owned(), 1), None);
        assert_eq!(map.insert("WT0".to_owned(), 2), Some(1));
        assert_eq!(map.len(), 10_001);
        assert_eq!(map.get("WT0"), Some(&2));
        *map.get_mut(&format!("WT{:032x}", 7)).unwrap() += 1;
        assert_eq!(map.get(format!("WT{:032x}", 7).as_str()), Some(&8));
        assert_eq!(map.remove("WT0"), Some(2));
        assert_eq!(map.remove("WT0"), None);
        assert_eq!(map.keys().count(), 10_000);
        assert_eq!(map.values().sum::<usize>(), (0..10_000).sum::<usize>() + 1);
        // Every table holds a share: none is empty, none holds more than twice the average.
        let sizes: Vec<usize> = map.shards.iter().map(HashMap::len).collect();
        assert!(sizes.iter().all(|n| (1..=2 * 10_000 / SHARDS).contains(n)), "{sizes:?}");
    }

    #[test]
    fn table_i_gets_a_share_rising_from_1_to_2() {
        let mut shares = vec![0usize; SHARDS];
        for bits in 0..=u16::MAX {
            shares[table_for(bits)] += 1;
        }
        // 65,536 values: 171 for the first table, 341 for the last, rising in between.
        let (first, last) = (shares[0], shares[SHARDS - 1]);
        assert!((165..=180).contains(&first) && (330..=350).contains(&last), "{first} .. {last}");
        assert!(shares.windows(2).all(|w| w[1] + 2 >= w[0]), "{shares:?}");
    }

    #[test]
    fn the_tables_double_at_different_sizes_of_the_map() {
        // Equal shares would make every table go past 896 entries (and double) within a few percent of
        // 229,000 entries in the map; with shares from 1 to 2 the doublings spread over 172,000-344,000.
        let mut map: Sharded<String, usize> = Sharded::default();
        let mut doubled_at = vec![None; SHARDS];
        for i in 0..400_000 {
            map.insert(format!("WT{i:032x}"), i);
            if i % 500 != 0 {
                continue;
            }
            for (shard, table) in map.shards.iter().enumerate() {
                if doubled_at[shard].is_none() && table.capacity() > 896 {
                    // Each doubling moves only its own table's entries: under one percent of the map.
                    assert!(table.len() < (i + 1) / 100, "table {shard} holds {} of {}", table.len(), i + 1);
                    doubled_at[shard] = Some(i + 1);
                }
            }
        }
        let sizes: Vec<usize> = doubled_at.iter().map(|at| at.unwrap_or(usize::MAX)).collect();
        let (first, last) = (sizes.iter().min().copied(), sizes.iter().max().copied());
        assert!(last < Some(400_000), "every table doubles by 400,000 entries: {sizes:?}");
        assert!(last > first.map(|f| f * 3 / 2), "the doublings are spread out: {sizes:?}");
    }
}
