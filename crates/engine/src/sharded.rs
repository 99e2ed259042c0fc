//! [`Sharded`]: a hash map split into [`SHARDS`] tables, for the maps that grow with the number of tasks.
//!
//! A hash table grows by moving every entry into a table twice the size, all at once. Under the HTTP create
//! load the engine's task map and timer deadlines and the store writer's row index all doubled in the same
//! pass, at 458,752 and 917,504 tasks: the engine's thread stalled for 67 and 120 ms and the writer's for
//! 111 and 208 ms, and every request waiting on them with it (a p99 of 80 and 223 ms in the benchmark rounds
//! that crossed those counts, 8-14 ms in the others; docs/PERFORMANCE.md). Split by a few bits of the key's
//! hash, each table grows on its own, a 64th of the entries at a time.
//!
//! The tables do not get equal shares. With equal shares they all filled up together and doubled within
//! about one percent of each other: no single long stall any more, but a burst of 64 short ones, with about a
//! second of the engine's and the writer's time spent moving entries around 1.8 million tasks (a fifth fewer
//! creates per second in that window; docs/PERFORMANCE.md, eleventh session). Table `i` gets a share
//! proportional to `64 + i` ([`SLOTS`]), so the largest gets about twice the smallest, and their doublings
//! are spread evenly over each doubling of the whole map: growing costs about the same at every size.

use std::borrow::Borrow;
use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};

/// How many tables a [`Sharded`] map is split into.
const SHARDS: usize = 64;

/// The shares of the tables: table `i` owns `SHARDS + i` of these slots, so the shares go from 64 to 127.
const SLOTS: usize = SHARDS * SHARDS + SHARDS * (SHARDS - 1) / 2;

/// Which table each slot belongs to.
static TABLE_OF_SLOT: [u8; SLOTS] = {
    let mut table = [0u8; SLOTS];
    let mut slot = 0;
    let mut shard = 0;
    while shard < SHARDS {
        let mut owned = 0;
        while owned < SHARDS + shard {
            table[slot] = shard as u8;
            slot += 1;
            owned += 1;
        }
        shard += 1;
    }
    table
};

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
        // Bits 40-55 pick the slot: the tables index by the low bits and tag by the top seven, so one table's
        // keys still spread over all of its buckets and tags.
        let bits = (self.hasher.hash_one(key) >> 40) & 0xffff;
        let slot = (bits * SLOTS as u64) >> 16;
        usize::from(TABLE_OF_SLOT[slot as usize])
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
    fn the_slots_give_table_i_a_share_of_64_plus_i() {
        for shard in 0..SHARDS {
            let owned = TABLE_OF_SLOT.iter().filter(|&&t| usize::from(t) == shard).count();
            assert_eq!(owned, SHARDS + shard, "table {shard}");
        }
    }

    #[test]
    fn the_tables_double_at_different_sizes_of_the_map() {
        // Equal shares would make every table go past 3,584 entries (and double) within a few percent of
        // 229,000 entries in the map; with shares from 64 to 127 the doublings spread over 170,000-350,000.
        let mut map: Sharded<String, usize> = Sharded::default();
        let mut doubled_at = vec![None; SHARDS];
        for i in 0..400_000 {
            map.insert(format!("WT{i:032x}"), i);
            for (shard, table) in map.shards.iter().enumerate() {
                if doubled_at[shard].is_none() && table.capacity() > 3_584 {
                    // Each doubling moves only its own table's entries: a few percent of the map.
                    assert!(table.len() < (i + 1) / 30, "table {shard} holds {} of {}", table.len(), i + 1);
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
