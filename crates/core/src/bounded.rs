//! A least-recently-used map bounded in bytes: each entry's cost is given when it is put, and
//! the oldest entries go while the costs add up to more than the budget. The maps of a
//! long-lived mount (listings, sniffed formats) use it so memory stays flat over weeks.

use std::hash::Hash;

use lru::LruCache;

/// What one entry costs besides its own heap data: the LRU node, the hash table slot and
/// the allocator's headers (measured well under this on x86-64).
pub const ENTRY_OVERHEAD: usize = 96;

/// An LRU map whose entries' costs add up to at most a budget.
pub struct ByteLru<K: Hash + Eq, V> {
    map: LruCache<K, (V, usize)>,
    bytes: usize,
    budget: usize,
}

impl<K: Hash + Eq, V> ByteLru<K, V> {
    /// An empty map holding at most `budget` bytes of entries.
    pub fn new(budget: usize) -> Self {
        ByteLru {
            map: LruCache::unbounded(),
            bytes: 0,
            budget,
        }
    }

    /// The value of `key`, now the most recently used.
    pub fn get(&mut self, key: &K) -> Option<&V> {
        self.map.get(key).map(|(v, _)| v)
    }

    /// Puts `value` under `key` at `cost` bytes, evicting the least recently used entries
    /// beyond the budget. An entry that alone exceeds the budget is not kept.
    pub fn put(&mut self, key: K, value: V, cost: usize) {
        if cost > self.budget {
            if let Some((_, c)) = self.map.pop(&key) {
                self.bytes -= c;
            }
            return;
        }
        if let Some((_, old)) = self.map.put(key, (value, cost)) {
            self.bytes -= old;
        }
        self.bytes += cost;
        while self.bytes > self.budget {
            match self.map.pop_lru() {
                Some((_, (_, c))) => self.bytes -= c,
                None => break,
            }
        }
    }

    /// Forgets `key`.
    pub fn remove(&mut self, key: &K) {
        if let Some((_, c)) = self.map.pop(key) {
            self.bytes -= c;
        }
    }

    /// Forgets every entry whose key `keep` refuses.
    pub fn retain(&mut self, mut keep: impl FnMut(&K) -> bool)
    where
        K: Clone,
    {
        let gone: Vec<K> = self
            .map
            .iter()
            .filter(|(k, _)| !keep(k))
            .map(|(k, _)| k.clone())
            .collect();
        for k in &gone {
            self.remove(k);
        }
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The sum of the entries' costs.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_go_beyond_the_budget() {
        let mut m = ByteLru::new(100);
        m.put(1, "a", 40);
        m.put(2, "b", 40);
        assert_eq!(m.get(&1), Some(&"a"), "1 is now the newest");
        m.put(3, "c", 40);
        assert_eq!((m.len(), m.bytes()), (2, 80));
        assert_eq!(m.get(&2), None, "2 was the least recently used");
        m.put(1, "A", 10);
        assert_eq!(m.bytes(), 50, "a replaced entry gives back its cost");
        m.put(4, "huge", 101);
        assert_eq!(m.get(&4), None, "larger than the budget: not kept");
        m.remove(&1);
        assert_eq!((m.len(), m.bytes()), (1, 40));
        m.put(5, "e", 20);
        m.retain(|k| *k != 3);
        assert_eq!((m.len(), m.bytes(), m.get(&5)), (1, 20, Some(&"e")));
    }
}
