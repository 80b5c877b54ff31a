use std::sync::atomic::{AtomicBool, AtomicUsize};

use super::*;
use crate::cgroup::Runtime;

/// A runtime stand-in: fails while `down`, knows ids starting with "known", counts calls.
#[derive(Default)]
struct Fake {
    calls: AtomicUsize,
    down: AtomicBool,
    /// Part of the returned metadata, to observe refreshes.
    version: AtomicUsize,
    delay: Duration,
}

impl MetadataSource for Fake {
    fn fetch(
        &self,
        container: &ContainerRef,
    ) -> impl Future<Output = Result<Option<ContainerMeta>, EnrichError>> + Send {
        let id = container.id.clone();
        async move {
            self.calls.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(self.delay).await;
            if self.down.load(Ordering::SeqCst) {
                return Err(EnrichError::Timeout {
                    what: "fake",
                    after: Duration::ZERO,
                });
            }
            if !id.starts_with("known") {
                return Ok(None);
            }
            Ok(Some(ContainerMeta {
                id,
                runtime: "containerd".into(),
                name: Some(format!("v{}", self.version.load(Ordering::SeqCst))),
                ..ContainerMeta::default()
            }))
        }
    }
}

fn cref(id: &str) -> ContainerRef {
    ContainerRef {
        id: id.to_owned(),
        runtime: Runtime::Containerd,
        pod_uid: None,
    }
}

fn fast() -> CacheConfig {
    CacheConfig {
        ttl: Duration::from_secs(60),
        negative_ttl: Duration::from_millis(200),
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(50),
        give_up_after: Duration::from_secs(60),
        ..CacheConfig::default()
    }
}

async fn until(mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !f() {
        assert!(Instant::now() < deadline, "condition not met within 5 s");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn a_miss_fetches_once_and_announces_the_result() {
    let fake = Fake {
        delay: Duration::from_millis(50),
        ..Fake::default()
    };
    let cache = MetadataCache::new(fake, fast()).expect("in a runtime");
    let mut rx = cache.subscribe();
    let c = cref("known-1");
    for _ in 0..100 {
        assert_eq!(cache.lookup(&c), Lookup::Pending);
    }
    let (id, meta) = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("announced")
        .expect("not lagged");
    assert_eq!(id, "known-1");
    assert_eq!(meta.name.as_deref(), Some("v0"));
    assert_eq!(cache.lookup(&c), Lookup::Ready(Arc::clone(&meta)));
    assert_eq!(cache.get("known-1"), Some(meta));
    assert_eq!(
        cache.source().calls.load(Ordering::SeqCst),
        1,
        "deduplicated"
    );
    let s = cache.stats();
    assert_eq!((s.misses, s.fetches, s.resolved, s.hits), (1, 1, 1, 1));
    assert_eq!(s.entries, 1);
}

#[tokio::test]
async fn lookups_never_wait_for_the_runtime() {
    let fake = Fake {
        delay: Duration::from_secs(30),
        ..Fake::default()
    };
    let cache = MetadataCache::new(fake, fast()).expect("in a runtime");
    let t = Instant::now();
    for i in 0..1000 {
        assert_eq!(cache.lookup(&cref(&format!("known-{i}"))), Lookup::Pending);
    }
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
}

#[tokio::test]
async fn not_found_is_cached_briefly() {
    let config = CacheConfig {
        negative_ttl: Duration::from_secs(1),
        ..fast()
    };
    let cache = MetadataCache::new(Fake::default(), config).expect("in a runtime");
    let c = cref("gone");
    assert_eq!(cache.lookup(&c), Lookup::Pending);
    until(|| cache.lookup(&c) == Lookup::NotFound).await;
    assert_eq!(cache.source().calls.load(Ordering::SeqCst), 1);
    assert_eq!(cache.stats().not_found, 1);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(cache.lookup(&c), Lookup::Pending, "expired: asked again");
    until(|| cache.source().calls.load(Ordering::SeqCst) == 2).await;
}

#[tokio::test]
async fn failures_are_counted_and_retried_until_the_runtime_is_back() {
    let cache = MetadataCache::new(Fake::default(), fast()).expect("in a runtime");
    cache.source().down.store(true, Ordering::SeqCst);
    let mut rx = cache.subscribe();
    let c = cref("known-2");
    assert_eq!(cache.lookup(&c), Lookup::Pending);
    until(|| cache.stats().failures >= 3).await;
    assert_eq!(cache.lookup(&c), Lookup::Pending);
    assert_eq!(cache.stats().misses, 1, "one background task retries");
    cache.source().down.store(false, Ordering::SeqCst);
    let (id, _) = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("announced after recovery")
        .expect("not lagged");
    assert_eq!(id, "known-2");
    assert!(matches!(cache.lookup(&c), Lookup::Ready(_)));
}

#[tokio::test]
async fn backoff_grows_to_its_cap() {
    let cache = MetadataCache::new(Fake::default(), fast()).expect("in a runtime");
    cache.source().down.store(true, Ordering::SeqCst);
    cache.lookup(&cref("known-3"));
    tokio::time::sleep(Duration::from_millis(500)).await;
    // 20, 40, then 50 ms apart: about 10 attempts in 500 ms, far fewer than unthrottled.
    let calls = cache.source().calls.load(Ordering::SeqCst);
    assert!((3..=12).contains(&calls), "{calls} attempts");
}

#[tokio::test]
async fn giving_up_leaves_the_next_lookup_to_retry() {
    let config = CacheConfig {
        give_up_after: Duration::ZERO,
        ..fast()
    };
    let cache = MetadataCache::new(Fake::default(), config).expect("in a runtime");
    cache.source().down.store(true, Ordering::SeqCst);
    let c = cref("known-4");
    cache.lookup(&c);
    until(|| cache.stats().failures == 1).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(cache.source().calls.load(Ordering::SeqCst), 1, "gave up");
    cache.source().down.store(false, Ordering::SeqCst);
    assert_eq!(cache.lookup(&c), Lookup::Pending, "backoff over: restarts");
    until(|| matches!(cache.lookup(&c), Lookup::Ready(_))).await;
}

#[tokio::test]
async fn stale_metadata_is_served_while_refreshing() {
    let config = CacheConfig {
        ttl: Duration::from_millis(100),
        ..fast()
    };
    let cache = MetadataCache::new(Fake::default(), config).expect("in a runtime");
    let mut rx = cache.subscribe();
    let c = cref("known-5");
    cache.lookup(&c);
    let (_, first) = rx.recv().await.expect("first");
    cache.source().version.store(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(
        cache.lookup(&c),
        Lookup::Ready(first),
        "stale while refreshing"
    );
    let (_, second) = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("changed metadata announced")
        .expect("not lagged");
    assert_eq!(second.name.as_deref(), Some("v1"));
    // A failed refresh keeps serving the last metadata.
    cache.source().down.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(cache.lookup(&c), Lookup::Ready(Arc::clone(&second)));
    until(|| cache.stats().failures >= 1).await;
    assert_eq!(cache.lookup(&c), Lookup::Ready(second));
}

#[tokio::test]
async fn bounded_with_lru_eviction() {
    let config = CacheConfig {
        capacity: 3,
        ..fast()
    };
    let cache = MetadataCache::new(Fake::default(), config).expect("in a runtime");
    for i in 0..10 {
        cache.lookup(&cref(&format!("known-{i}")));
    }
    let s = cache.stats();
    assert_eq!(s.entries, 3);
    assert_eq!(s.evictions, 7);
    until(|| cache.stats().resolved == 10).await;
    assert!(cache.stats().entries <= 3);
    cache.forget("known-9");
    assert_eq!(cache.get("known-9"), None);
}

#[test]
fn needs_a_runtime() {
    assert!(matches!(
        MetadataCache::new(Fake::default(), fast()),
        Err(EnrichError::NoRuntime)
    ));
    // With an explicit runtime, lookups work from any thread.
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let cache = MetadataCache::with_runtime(Fake::default(), fast(), rt.handle().clone());
    let c = cref("known-6");
    assert_eq!(cache.lookup(&c), Lookup::Pending);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !matches!(cache.lookup(&c), Lookup::Ready(_)) {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[tokio::test]
async fn dropping_the_cache_ends_retries() {
    let cache = MetadataCache::new(Fake::default(), fast()).expect("in a runtime");
    cache.source().down.store(true, Ordering::SeqCst);
    cache.lookup(&cref("known-7"));
    until(|| cache.stats().failures >= 1).await;
    let weak = Arc::downgrade(&cache.shared);
    drop(cache);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(weak.upgrade().is_none(), "no task keeps the cache alive");
}
