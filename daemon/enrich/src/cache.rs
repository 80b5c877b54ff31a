//! A bounded, non-blocking container metadata cache for the event path.
//!
//! [`MetadataCache::lookup`] answers at once from memory. On a miss it answers
//! [`Lookup::Pending`] and starts one background fetch for that container id (concurrent
//! misses of the same id share it). When a fetch completes with metadata, subscribers
//! ([`MetadataCache::subscribe`]) receive `(container id, metadata)` so that events flagged
//! pending can be re-enriched.
//!
//! - Found: cached for `ttl`; after that, lookups still answer the (stale) metadata while one
//!   background refresh runs. A container that disappeared keeps its last metadata (late
//!   events of its processes still get it) until evicted.
//! - Not found: cached for `negative_ttl` ([`Lookup::NotFound`]), then asked again.
//! - Failure (runtime down, timeout): counted in [`CacheStats::failures`] and retried by the
//!   same background task with exponential backoff (`initial_backoff` doubling up to
//!   `max_backoff`); lookups answer `Pending` meanwhile. After `give_up_after` the task stops
//!   and the next lookup after the backoff starts a new one. Since the client reconnects on its
//!   own, the cache recovers when the runtime comes back.
//! - At most `capacity` containers are kept (least recently used evicted) and at most
//!   `max_concurrent_fetches` fetches run at once.

use std::future::Future;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use lru::LruCache;
use saker_event::ContainerMeta;
use tokio::runtime::Handle;
use tokio::sync::{broadcast, Semaphore};

use crate::cgroup::ContainerRef;
use crate::containerd::ContainerdClient;
use crate::error::EnrichError;

/// Where metadata comes from (containerd in production; a fake in tests).
pub trait MetadataSource: Send + Sync + 'static {
    /// The metadata of `container`; `Ok(None)` when the runtime does not know it.
    fn fetch(
        &self,
        container: &ContainerRef,
    ) -> impl Future<Output = Result<Option<ContainerMeta>, EnrichError>> + Send;
}

impl MetadataSource for ContainerdClient {
    fn fetch(
        &self,
        container: &ContainerRef,
    ) -> impl Future<Output = Result<Option<ContainerMeta>, EnrichError>> + Send {
        self.container_meta(container)
    }
}

/// A completed lookup: `(container id, metadata)`.
pub type Resolved = (String, Arc<ContainerMeta>);

/// The metadata cache over containerd.
pub type ContainerdCache = MetadataCache<ContainerdClient>;

/// What [`MetadataCache::lookup`] knows right now.
#[derive(Clone, Debug, PartialEq)]
pub enum Lookup {
    Ready(Arc<ContainerMeta>),
    /// Being fetched (or retried after a failure); subscribers hear when it arrives.
    Pending,
    /// The runtime does not know this container (remembered for `negative_ttl`).
    NotFound,
}

/// Tuning of [`MetadataCache`].
#[derive(Clone, Debug)]
pub struct CacheConfig {
    /// Containers kept (at least 1).
    pub capacity: usize,
    /// How long found metadata is served before a background refresh.
    pub ttl: Duration,
    /// How long "not found" is remembered.
    pub negative_ttl: Duration,
    /// First retry delay after a failure; doubles up to `max_backoff`.
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// A background fetch stops retrying after this long (the next lookup restarts it).
    pub give_up_after: Duration,
    /// Fetches running at once (at least 1).
    pub max_concurrent_fetches: usize,
    /// Buffer of the [`MetadataCache::subscribe`] channel (slow subscribers lag).
    pub channel_capacity: usize,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            capacity: 4096,
            ttl: Duration::from_secs(600),
            negative_ttl: Duration::from_secs(30),
            initial_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(30),
            give_up_after: Duration::from_secs(600),
            max_concurrent_fetches: 8,
            channel_capacity: 1024,
        }
    }
}

/// Counters since the cache was created (plus the current entry count).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Lookups answered `Ready` or `NotFound` from the cache.
    pub hits: u64,
    /// Lookups of an id not in the cache.
    pub misses: u64,
    /// Fetch attempts made.
    pub fetches: u64,
    /// Failed fetch attempts (the "metadata lookup failures" metric).
    pub failures: u64,
    /// Fetches that found no such container.
    pub not_found: u64,
    /// Fetches that returned metadata.
    pub resolved: u64,
    /// Containers evicted to stay within capacity.
    pub evictions: u64,
    /// Containers cached now (any state).
    pub entries: usize,
}

/// The cache; cheap to clone (all clones share one cache).
pub struct MetadataCache<S: MetadataSource> {
    shared: Arc<Shared<S>>,
}

impl<S: MetadataSource> Clone for MetadataCache<S> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

struct Shared<S> {
    source: S,
    config: CacheConfig,
    entries: Mutex<LruCache<String, Entry>>,
    tx: broadcast::Sender<Resolved>,
    counters: Counters,
    runtime: Handle,
    fetch_slots: Semaphore,
}

enum Entry {
    /// A background fetch is running.
    Pending,
    Ready {
        meta: Arc<ContainerMeta>,
        expires: Instant,
        refreshing: bool,
    },
    NotFound {
        expires: Instant,
    },
    /// Retries gave up; the next lookup after `retry_at` starts over.
    Failed {
        retry_at: Instant,
    },
}

#[derive(Default)]
struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    fetches: AtomicU64,
    failures: AtomicU64,
    not_found: AtomicU64,
    resolved: AtomicU64,
    evictions: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl<S: MetadataSource> MetadataCache<S> {
    /// A cache whose fetches run on the current tokio runtime.
    pub fn new(source: S, config: CacheConfig) -> Result<Self, EnrichError> {
        let runtime = Handle::try_current().map_err(|_| EnrichError::NoRuntime)?;
        Ok(Self::with_runtime(source, config, runtime))
    }

    /// A cache whose fetches run on `runtime`; usable from any thread.
    pub fn with_runtime(source: S, config: CacheConfig, runtime: Handle) -> Self {
        let cap = NonZeroUsize::new(config.capacity).unwrap_or(NonZeroUsize::MIN);
        let (tx, _) = broadcast::channel(config.channel_capacity.max(1));
        Self {
            shared: Arc::new(Shared {
                fetch_slots: Semaphore::new(config.max_concurrent_fetches.max(1)),
                source,
                config,
                entries: Mutex::new(LruCache::new(cap)),
                tx,
                counters: Counters::default(),
                runtime,
            }),
        }
    }

    /// The metadata of `container` if known; never blocks (a miss starts a background fetch,
    /// see the module docs).
    pub fn lookup(&self, container: &ContainerRef) -> Lookup {
        let now = Instant::now();
        let counters = &self.shared.counters;
        let mut fetch = None;
        let answer = {
            let mut entries = self.shared.lock();
            match entries.get_mut(&container.id) {
                Some(Entry::Ready {
                    meta,
                    expires,
                    refreshing,
                }) => {
                    if now >= *expires && !*refreshing {
                        *refreshing = true;
                        fetch = Some(Fetch::Refresh);
                    }
                    bump(&counters.hits);
                    Lookup::Ready(Arc::clone(meta))
                }
                Some(Entry::Pending) => Lookup::Pending,
                Some(Entry::NotFound { expires }) if now < *expires => {
                    bump(&counters.hits);
                    Lookup::NotFound
                }
                Some(Entry::Failed { retry_at }) if now < *retry_at => Lookup::Pending,
                Some(entry) => {
                    *entry = Entry::Pending;
                    fetch = Some(Fetch::First);
                    Lookup::Pending
                }
                None => {
                    bump(&counters.misses);
                    if let Some((evicted, _)) = entries.push(container.id.clone(), Entry::Pending) {
                        if evicted != container.id {
                            bump(&counters.evictions);
                        }
                    }
                    fetch = Some(Fetch::First);
                    Lookup::Pending
                }
            }
        };
        if let Some(kind) = fetch {
            let weak = Arc::downgrade(&self.shared);
            self.shared
                .runtime
                .spawn(fetch_task(weak, container.clone(), kind));
        }
        answer
    }

    /// Metadata already cached for `id` (fresh or stale), without fetching.
    pub fn get(&self, id: &str) -> Option<Arc<ContainerMeta>> {
        match self.shared.lock().peek(id) {
            Some(Entry::Ready { meta, .. }) => Some(Arc::clone(meta)),
            _ => None,
        }
    }

    /// Drops what is cached for `id` (e.g. when the container is deleted).
    pub fn forget(&self, id: &str) {
        self.shared.lock().pop(id);
    }

    /// Completed lookups from now on (see [`Resolved`]); a refresh that changed the metadata
    /// is announced too.
    pub fn subscribe(&self) -> broadcast::Receiver<Resolved> {
        self.shared.tx.subscribe()
    }

    pub fn stats(&self) -> CacheStats {
        let c = &self.shared.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        CacheStats {
            hits: get(&c.hits),
            misses: get(&c.misses),
            fetches: get(&c.fetches),
            failures: get(&c.failures),
            not_found: get(&c.not_found),
            resolved: get(&c.resolved),
            evictions: get(&c.evictions),
            entries: self.shared.lock().len(),
        }
    }

    pub fn config(&self) -> &CacheConfig {
        &self.shared.config
    }

    pub fn source(&self) -> &S {
        &self.shared.source
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Fetch {
    /// Nothing usable cached: retry failures until `give_up_after`.
    First,
    /// Stale metadata is served meanwhile: one attempt.
    Refresh,
}

/// One container's background fetch. Holds the cache only weakly between attempts, so a
/// dropped cache ends its retries.
async fn fetch_task<S: MetadataSource>(
    weak: Weak<Shared<S>>,
    container: ContainerRef,
    kind: Fetch,
) {
    let started = Instant::now();
    let mut backoff = None::<Duration>;
    loop {
        let Some(shared) = weak.upgrade() else {
            return;
        };
        let result = {
            // The semaphore is never closed; without a permit, fetch anyway.
            let _permit = shared.fetch_slots.acquire().await.ok();
            bump(&shared.counters.fetches);
            shared.source.fetch(&container).await
        };
        let error = match result {
            Ok(found) => return shared.complete(&container.id, found),
            Err(e) => e,
        };
        bump(&shared.counters.failures);
        let cfg = &shared.config;
        let delay = backoff.map_or(cfg.initial_backoff, |b| (b * 2).min(cfg.max_backoff));
        backoff = Some(delay);
        let retry_at = Instant::now() + delay;
        if kind == Fetch::Refresh {
            tracing::debug!(id = %container.id, %error, "container metadata refresh failed");
            return shared.refresh_failed(&container.id, retry_at);
        }
        if started.elapsed() >= cfg.give_up_after {
            tracing::warn!(id = %container.id, %error, "container metadata: giving up for now");
            return shared.give_up(&container.id, retry_at);
        }
        tracing::debug!(id = %container.id, %error, ?delay, "container metadata lookup failed; retrying");
        drop(shared);
        tokio::time::sleep(delay).await;
    }
}

impl<S> Shared<S> {
    fn lock(&self) -> MutexGuard<'_, LruCache<String, Entry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn complete(&self, id: &str, found: Option<ContainerMeta>) {
        let now = Instant::now();
        let mut entries = self.lock();
        let Some(meta) = found else {
            bump(&self.counters.not_found);
            match entries.peek_mut(id) {
                // Gone from the runtime: keep serving what it was.
                Some(Entry::Ready {
                    expires,
                    refreshing,
                    ..
                }) => {
                    *expires = now + self.config.ttl;
                    *refreshing = false;
                }
                _ => {
                    let expires = now + self.config.negative_ttl;
                    self.insert(&mut entries, id, Entry::NotFound { expires });
                }
            }
            return;
        };
        bump(&self.counters.resolved);
        let unchanged =
            matches!(entries.peek(id), Some(Entry::Ready { meta: old, .. }) if **old == meta);
        let meta = Arc::new(meta);
        let entry = Entry::Ready {
            meta: Arc::clone(&meta),
            expires: now + self.config.ttl,
            refreshing: false,
        };
        self.insert(&mut entries, id, entry);
        drop(entries);
        if !unchanged {
            // No subscriber is not an error.
            let _ = self.tx.send((id.to_owned(), meta));
        }
    }

    fn refresh_failed(&self, id: &str, retry_at: Instant) {
        if let Some(Entry::Ready {
            expires,
            refreshing,
            ..
        }) = self.lock().peek_mut(id)
        {
            *expires = retry_at;
            *refreshing = false;
        }
    }

    fn give_up(&self, id: &str, retry_at: Instant) {
        let mut entries = self.lock();
        self.insert(&mut entries, id, Entry::Failed { retry_at });
    }

    fn insert(&self, entries: &mut LruCache<String, Entry>, id: &str, entry: Entry) {
        if let Some((evicted, _)) = entries.push(id.to_owned(), entry) {
            if evicted != id {
                bump(&self.counters.evictions);
            }
        }
    }
}

#[cfg(test)]
mod tests;
