//! Read caches of one session's device store: what whatsapp-rust reads again and again
//! (the device document, app-state versions, device lists, Signal sessions and identities,
//! tc tokens) answered from memory instead of a MongoDB `find` each time (issue 16 item 7).
//!
//! Owns: the cached values of one [`super::MongoDeviceStore`] (shared by its clones), and
//! nothing on the server. Lives as long as that store, i.e. one engine start of one
//! session: the store of a session is owned by exactly one runtime (in cluster mode by the
//! lease holder, whose fence stops its writes once the lease is lost), so every write to
//! these documents goes through this store and the cache can never miss a change made
//! elsewhere. A new start (after a logout wiped the `wa_*` collections, a migration or an
//! import) opens a new store with empty caches.
//!
//! Consistency: a value enters the cache in two ways only.
//! - **fill** after a read, and only if no write to that cache happened since the read
//!   began (the generation did not move): a read racing a write can never put back the
//!   value the write replaced.
//! - **set** after a write the server acknowledged. Writers of one cache hold its
//!   [`ReadCache::writer`] lock across the database write and the `set`, so the cache sees
//!   writes in the order the server applied them. A failed write `forget`s the key (the
//!   server may or may not have applied it).
//!
//! Bounded: a cache that reaches its capacity is emptied (the next reads refill it), so an
//! idle session keeps a few small entries and a busy one at most `capacity` of them.

use std::collections::HashMap;
use std::sync::Mutex as StdMutex;

/// One map of cached values, keyed by the document's `_id` (as a string).
#[derive(Debug)]
pub(super) struct ReadCache<V> {
    inner: StdMutex<Inner<V>>,
    capacity: usize,
    /// Held across "write to the server, then `set`" so that the cache applies writes in
    /// the order the server did.
    writer: tokio::sync::Mutex<()>,
}

#[derive(Debug)]
struct Inner<V> {
    map: HashMap<String, V>,
    /// Bumped by every `set`, `forget` and `clear`.
    generation: u64,
}

impl<V: Clone> ReadCache<V> {
    pub(super) fn new(capacity: usize) -> Self {
        Self {
            inner: StdMutex::new(Inner {
                map: HashMap::new(),
                generation: 0,
            }),
            capacity,
            writer: tokio::sync::Mutex::new(()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner<V>> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The cached value of `key`, if any.
    pub(super) fn get(&self, key: &str) -> Option<V> {
        self.lock().map.get(key).cloned()
    }

    /// Take before reading the server; hand to [`ReadCache::fill`] with what was read.
    pub(super) fn generation(&self) -> u64 {
        self.lock().generation
    }

    /// Caches what a read that began at `generation` found, unless a write came between.
    pub(super) fn fill(&self, key: &str, value: V, generation: u64) {
        let mut inner = self.lock();
        if inner.generation != generation {
            return;
        }
        if inner.map.len() >= self.capacity && !inner.map.contains_key(key) {
            inner.map.clear();
        }
        inner.map.insert(key.to_owned(), value);
    }

    /// The serialisation of writers (see the module doc).
    pub(super) async fn writer(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.writer.lock().await
    }

    /// A write of `key` succeeded with `value` (call with [`ReadCache::writer`] held).
    pub(super) fn set(&self, key: &str, value: V) {
        let mut inner = self.lock();
        inner.generation += 1;
        if inner.map.len() >= self.capacity && !inner.map.contains_key(key) {
            inner.map.clear();
        }
        inner.map.insert(key.to_owned(), value);
    }

    /// `key` changed (or may have) in a way not mirrored here: read it again next time.
    pub(super) fn forget(&self, key: &str) {
        let mut inner = self.lock();
        inner.generation += 1;
        inner.map.remove(key);
    }

    /// Many keys changed at once (a filtered delete): forget everything.
    pub(super) fn clear(&self) {
        let mut inner = self.lock();
        inner.generation += 1;
        inner.map.clear();
    }

    /// Runs `write` (a write of `key` to the server) under the writer lock and mirrors
    /// its outcome: `set(key, value)` when it succeeded, `forget(key)` when it failed.
    pub(super) async fn write<E>(
        &self,
        key: &str,
        value: V,
        write: impl std::future::Future<Output = Result<(), E>>,
    ) -> Result<(), E> {
        let _writer = self.writer().await;
        let result = write.await;
        match &result {
            Ok(()) => self.set(key, value),
            Err(_) => self.forget(key),
        }
        result
    }

    /// Runs `write` (a write of many keys) under the writer lock, then mirrors it: each
    /// `(key, value)` is `set` when it succeeded; on failure every key is forgotten.
    pub(super) async fn write_many<E>(
        &self,
        entries: Vec<(String, V)>,
        write: impl std::future::Future<Output = Result<(), E>>,
    ) -> Result<(), E> {
        let _writer = self.writer().await;
        let result = write.await;
        for (key, value) in entries {
            match &result {
                Ok(()) => self.set(&key, value),
                Err(_) => self.forget(&key),
            }
        }
        result
    }

    /// The cached value of `key`, else `read` (the server's answer) cached and returned.
    pub(super) async fn get_or_read<E>(
        &self,
        key: &str,
        read: impl std::future::Future<Output = Result<V, E>>,
    ) -> Result<V, E> {
        if let Some(v) = self.get(key) {
            return Ok(v);
        }
        let generation = self.generation();
        let value = read.await?;
        self.fill(key, value.clone(), generation);
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::ReadCache;

    #[test]
    fn a_read_that_raced_a_write_is_not_cached() {
        let cache = ReadCache::<u32>::new(8);
        let before = cache.generation();
        cache.set("a", 2);
        // The read began before the write and found the old value.
        cache.fill("a", 1, before);
        assert_eq!(cache.get("a"), Some(2));
        cache.forget("a");
        let g = cache.generation();
        cache.fill("a", 3, g);
        assert_eq!(cache.get("a"), Some(3));
    }

    #[test]
    fn a_full_cache_starts_over() {
        let cache = ReadCache::<u32>::new(2);
        for (i, k) in ["a", "b", "c"].into_iter().enumerate() {
            let g = cache.generation();
            cache.fill(k, u32::try_from(i).unwrap_or(0), g);
        }
        assert_eq!(cache.get("a"), None);
        assert_eq!(cache.get("c"), Some(2));
    }

    #[tokio::test]
    async fn a_failed_write_forgets_the_key() {
        let cache = ReadCache::<u32>::new(8);
        cache.set("a", 1);
        let failed: Result<(), ()> = cache.write("a", 2, async { Err(()) }).await;
        assert!(failed.is_err());
        assert_eq!(cache.get("a"), None);
        let ok: Result<(), ()> = cache.write("a", 3, async { Ok(()) }).await;
        assert!(ok.is_ok());
        assert_eq!(cache.get("a"), Some(3));
    }
}
