//! saker-enrich against a real containerd 1.6 (needs root, like CI): cgroup parsing of a
//! real container process, cgroup id resolution, metadata through containerd's API with exact
//! values, and the cache across a containerd stop/restart.

mod support;

use std::os::unix::fs::MetadataExt;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use saker_enrich::{
    container_for_pid, CacheConfig, CgroupIdCache, ContainerRef, ContainerdClient,
    ContainerdConfig, Lookup, MetadataCache, Resolved, Runtime,
};
use saker_event::ContainerMeta;
use tokio::sync::broadcast;

use support::containerd::{Containerd, Started};
use support::{image, random_uuid, require_root};

const K8S_NAMESPACE: &str = "risk-10-aws-bedrock-java";
const POD: &str = "web-1";
const IMAGE: &str = "localhost/busybox:latest";

fn fast_cache() -> CacheConfig {
    CacheConfig {
        negative_ttl: Duration::from_secs(5),
        initial_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(200),
        ..CacheConfig::default()
    }
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

/// Waits for the announcement of `id`, skipping others.
fn announced(
    rt: &tokio::runtime::Runtime,
    rx: &mut broadcast::Receiver<Resolved>,
    id: &str,
) -> Arc<ContainerMeta> {
    rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(15), async {
            loop {
                match rx.recv().await {
                    Ok((got, meta)) if got == id => return meta,
                    Ok(_) => continue,
                    Err(e) => panic!("subscription: {e}"),
                }
            }
        })
        .await
        .expect("metadata announced within 15 s")
    })
}

/// The container's cgroup, as its process sees it.
fn cref(c: &Started) -> ContainerRef {
    container_for_pid(c.pid).expect("container process resolves to a container")
}

#[test]
fn metadata_from_a_real_containerd_across_a_restart() {
    require_root();
    let started_ns = now_ns();
    let mut ctrd = Containerd::start().expect("start containerd");
    let built = image::build_busybox(&ctrd.scratch.join("image"), IMAGE).expect("build image");
    ctrd.import(&built.archive).expect("import image");

    let uid = random_uuid().expect("uuid");
    let pod_cgroup = format!("/kubepods/besteffort/pod{uid}");
    let kubelet = |container: &'static str| {
        vec![
            ("io.kubernetes.pod.name", POD.to_owned()),
            ("io.kubernetes.pod.namespace", K8S_NAMESPACE.to_owned()),
            ("io.kubernetes.pod.uid", uid.clone()),
            ("io.kubernetes.container.name", container.to_owned()),
        ]
    };
    let as_refs = |v: &[(&'static str, String)]| -> Vec<(&'static str, String)> { v.to_vec() };
    // The pod's sandbox carries the pod's labels, as with the CRI plugin.
    let mut sandbox_labels = as_refs(&kubelet("POD"));
    sandbox_labels.push(("app.kubernetes.io/name", "web".to_owned()));
    sandbox_labels.push(("tier", "backend".to_owned()));
    let sandbox = run(&mut ctrd, &pod_cgroup, &sandbox_labels, &[]);
    let annotations = |name: &str| {
        vec![
            ("io.kubernetes.cri.sandbox-id", sandbox.id.clone()),
            ("io.kubernetes.cri.container-name", name.to_owned()),
            ("io.kubernetes.cri.sandbox-name", POD.to_owned()),
        ]
    };
    let app = run(&mut ctrd, &pod_cgroup, &kubelet("app"), &annotations("app"));
    let sidecar = run(
        &mut ctrd,
        &pod_cgroup,
        &kubelet("sidecar"),
        &annotations("sidecar"),
    );

    // 1. /proc/PID/cgroup of the container's process gives its id and pod.
    let app_ref = cref(&app);
    assert_eq!(
        app_ref,
        ContainerRef {
            id: app.id.clone(),
            runtime: Runtime::Unknown,
            pod_uid: Some(uid.clone()),
        }
    );
    let sidecar_ref = cref(&sidecar);
    assert_eq!(sidecar_ref.id, sidecar.id);

    // 2. The cgroup id (what the sensor reports) resolves to the same container, also once
    //    the pid is no longer usable.
    let ids = CgroupIdCache::new(64);
    let root = ids
        .root()
        .expect("a cgroup2 hierarchy is mounted")
        .to_owned();
    let cgroup_id = std::fs::metadata(root.join(format!("{}/{}", &pod_cgroup[1..], app.id)))
        .expect("stat the container's cgroup2 directory")
        .ino();
    assert_eq!(ids.resolve_pid(app.pid, None), Some(app_ref.clone()));
    assert_eq!(ids.cached(cgroup_id), Some(Some(app_ref.clone())));
    let fresh = CgroupIdCache::new(64);
    assert_eq!(
        fresh.resolve(cgroup_id),
        Some(app_ref.clone()),
        "by walking"
    );
    let fresh = CgroupIdCache::new(64);
    assert_eq!(
        fresh.resolve_pid(u32::MAX, Some(cgroup_id)),
        Some(app_ref.clone()),
        "exited pid falls back to the cgroup id"
    );

    // 3. Metadata through containerd's API, announced when the pending lookup completes.
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    let client = ContainerdClient::new(ContainerdConfig {
        socket: ctrd.socket(),
        timeout: Duration::from_secs(2),
        ..ContainerdConfig::default()
    });
    let cache = MetadataCache::with_runtime(client, fast_cache(), rt.handle().clone());
    let mut rx = cache.subscribe();
    assert_eq!(cache.lookup(&app_ref), Lookup::Pending);
    let meta = announced(&rt, &mut rx, &app.id);
    assert_eq!(cache.lookup(&app_ref), Lookup::Ready(Arc::clone(&meta)));
    assert_eq!(meta.id, app.id);
    assert_eq!(meta.runtime, "containerd");
    assert_eq!(meta.namespace.as_deref(), Some(K8S_NAMESPACE));
    assert_eq!(meta.pod_name.as_deref(), Some(POD));
    assert_eq!(meta.name.as_deref(), Some("app"));
    assert_eq!(meta.pod_uid.as_deref(), Some(uid.as_str()));
    assert_eq!(meta.workload.as_deref(), Some(POD), "bare pod name kept");
    assert_eq!(meta.image.as_deref(), Some(IMAGE));
    assert_eq!(meta.image_repository.as_deref(), Some("localhost/busybox"));
    assert_eq!(meta.image_tag.as_deref(), Some("latest"));
    let digest = meta.image_digest.as_deref().expect("image digest");
    assert!(
        digest.starts_with("sha256:") && digest.len() == 71,
        "{digest}"
    );
    assert_eq!(digest, built.manifest_digest, "the image's target digest");
    let label = |k: &str| meta.labels.get(k).map(String::as_str);
    assert_eq!(label("io.kubernetes.container.name"), Some("app"));
    assert_eq!(label("app.kubernetes.io/name"), Some("web"), "pod label");
    assert_eq!(label("tier"), Some("backend"), "pod label");
    let start = meta.start_ns.expect("created_at");
    assert!(
        start >= started_ns - 1_000_000_000 && start <= now_ns(),
        "start_ns {start} outside the test's run"
    );
    // An id containerd does not know.
    let unknown = ContainerRef {
        id: "f".repeat(64),
        runtime: Runtime::Containerd,
        pod_uid: None,
    };
    assert_eq!(cache.lookup(&unknown), Lookup::Pending);
    wait_for(|| cache.lookup(&unknown) == Lookup::NotFound, "not found");
    assert_eq!(cache.stats().failures, 0);

    // 4. containerd stopped: lookups answer at once, Pending; failures are counted; what is
    //    cached is still served.
    ctrd.stop().expect("stop containerd");
    let t = Instant::now();
    assert_eq!(cache.lookup(&sidecar_ref), Lookup::Pending);
    assert!(t.elapsed() < Duration::from_millis(50), "{:?}", t.elapsed());
    wait_for(|| cache.stats().failures >= 2, "failures counted");
    for _ in 0..100 {
        let t = Instant::now();
        assert_eq!(cache.lookup(&sidecar_ref), Lookup::Pending);
        assert!(t.elapsed() < Duration::from_millis(50), "{:?}", t.elapsed());
    }
    assert_eq!(cache.lookup(&app_ref), Lookup::Ready(Arc::clone(&meta)));
    let direct = rt.block_on(cache.source().container_meta(&sidecar_ref));
    assert!(direct.is_err(), "containerd is down: {direct:?}");

    // 5. containerd back: the pending lookup completes by itself and is announced.
    ctrd.restart().expect("restart containerd");
    let side = announced(&rt, &mut rx, &sidecar.id);
    assert_eq!(side.name.as_deref(), Some("sidecar"));
    assert_eq!(side.pod_uid.as_deref(), Some(uid.as_str()));
    assert_eq!(side.namespace.as_deref(), Some(K8S_NAMESPACE));
    assert_eq!(
        side.image_digest.as_deref(),
        Some(built.manifest_digest.as_str())
    );
    assert_eq!(cache.lookup(&sidecar_ref), Lookup::Ready(side));
    let stats = cache.stats();
    eprintln!("cache stats: {stats:?}");
    assert!(stats.failures >= 2 && stats.resolved >= 2, "{stats:?}");

    drop(cache);
    drop(rt);
    drop(ctrd);
}

fn run(
    ctrd: &mut Containerd,
    pod_cgroup: &str,
    labels: &[(&'static str, String)],
    annotations: &[(&'static str, String)],
) -> Started {
    let labels: Vec<(&str, &str)> = labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let annotations: Vec<(&str, &str)> =
        annotations.iter().map(|(k, v)| (*k, v.as_str())).collect();
    ctrd.run(pod_cgroup, &labels, &annotations, IMAGE, &["sleep", "600"])
        .expect("run container")
}

fn wait_for(mut f: impl FnMut() -> bool, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !f() {
        assert!(Instant::now() < deadline, "{what}: not within 15 s");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// No containerd at all: pending, counted, never blocking.
#[test]
fn missing_socket_is_pending_and_counted() {
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    let client = ContainerdClient::new(ContainerdConfig {
        socket: "/nonexistent/containerd.sock".into(),
        ..ContainerdConfig::default()
    });
    let cache = MetadataCache::with_runtime(client, fast_cache(), rt.handle().clone());
    let c = ContainerRef {
        id: "a".repeat(64),
        runtime: Runtime::Containerd,
        pod_uid: None,
    };
    assert_eq!(cache.lookup(&c), Lookup::Pending);
    wait_for(|| cache.stats().failures >= 3, "failures counted");
    assert_eq!(cache.lookup(&c), Lookup::Pending);
    let err = rt
        .block_on(cache.source().container_meta(&c))
        .expect_err("no socket");
    assert!(
        err.to_string().contains("/nonexistent/containerd.sock"),
        "{err}"
    );
}

/// A containerd that accepts connections but never answers (hung): the call deadline turns
/// it into counted failures; lookups still answer at once.
#[test]
fn hung_socket_times_out() {
    let dir = std::env::temp_dir().join(format!("saker-enrich-hung-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let _cleanup = RemoveOnDrop(dir.clone());
    let socket = dir.join("hung.sock");
    let listener = std::os::unix::net::UnixListener::bind(&socket).expect("bind");
    // Accepts and holds every connection, answering nothing (ends with the process).
    std::thread::spawn(move || {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept() {
            held.push(stream);
        }
    });
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    let client = ContainerdClient::new(ContainerdConfig {
        socket: socket.clone(),
        timeout: Duration::from_millis(300),
        ..ContainerdConfig::default()
    });
    let cache = MetadataCache::with_runtime(client, fast_cache(), rt.handle().clone());
    let c = ContainerRef {
        id: "b".repeat(64),
        runtime: Runtime::Unknown,
        pod_uid: None,
    };
    let t = Instant::now();
    assert_eq!(cache.lookup(&c), Lookup::Pending);
    assert!(t.elapsed() < Duration::from_millis(50));
    wait_for(|| cache.stats().failures >= 1, "timeout counted");
    assert!(t.elapsed() >= Duration::from_millis(300));
    let err = rt
        .block_on(cache.source().container_meta(&c))
        .expect_err("hung");
    assert!(err.to_string().contains("timed out"), "{err}");
    drop(cache);
    drop(rt);
}

struct RemoveOnDrop(std::path::PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
