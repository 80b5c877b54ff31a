//! The sensor against a real containerd container with Kubernetes labels: a binary copied
//! into the container is on the overlay upper layer, image binaries are not, and both
//! carry the container's cgroup id. Also drift prevention at exec.

use std::time::Duration;

use saker::{
    event::{Body, Event},
    sensor::SensorConfig,
};
use saker_tests::{
    containerd::Containerd,
    pod::PodSpec,
    sensor::{require_root, TestSensor},
};

const WAIT: Duration = Duration::from_secs(15);

fn exec_named<'a>(evs: &'a [Event], name: &[u8]) -> Option<(&'a Event, &'a saker::event::Exec)> {
    evs.iter().find_map(|e| match &e.body {
        Body::Exec(x) if x.filename.as_bytes() == name => Some((e, x)),
        _ => None,
    })
}

#[test]
fn upper_layer_binary_and_container_cgroup() {
    require_root();
    let ctrd = Containerd::start().expect("containerd starts");
    let spec = PodSpec::new("risk-10-aws-bedrock-java", "web-1", "app").expect("pod spec");
    let c = ctrd.run_pod_container(&spec).expect("container runs");
    let mut s = TestSensor::start_default();
    // busybox picks its applet from argv[0]'s name, so the copy keeps a busybox- prefix.
    let exec = c
        // (the sleep lets the harness find the exec's host pid before it forks away)
        .exec_detached(&["sh", "-c", "sleep 1; cp /bin/busybox /tmp/busybox-drift && /tmp/busybox-drift true; /bin/busybox true"])
        .expect("exec in container");
    let evs = s.collect_for(&[exec.pid], WAIT, |e| {
        exec_named(e, b"/tmp/busybox-drift").is_some() && exec_named(e, b"/bin/busybox").is_some()
    });
    let (drift_ev, drift) =
        exec_named(&evs, b"/tmp/busybox-drift").expect("exec of the copied binary");
    let (image_ev, image) = exec_named(&evs, b"/bin/busybox").expect("exec of the image binary");
    assert!(
        drift.exe_upper_layer,
        "copied binary is on the upper layer: {drift:?}"
    );
    assert!(drift.exe_overlay);
    assert!(!image.exe_upper_layer, "image binary is not: {image:?}");
    assert!(image.exe_overlay);
    assert!(!drift.prevented && !image.prevented);
    assert_eq!(drift_ev.process.cgroup_id, c.cgroup_id);
    assert_eq!(image_ev.process.cgroup_id, c.cgroup_id);
    // Inside a container: a mount namespace other than the host's.
    let host_mnt = saker::sensor::host_mnt_ns();
    assert_ne!(host_mnt, 0);
    assert_ne!(drift_ev.process.mnt_ns, host_mnt);
    // The exe inode is the file in the upper dir.
    let upper = std::fs::metadata(c.upperdir.join("tmp/busybox-drift")).expect("file in upperdir");
    assert_eq!(drift.exe_ino, std::os::unix::fs::MetadataExt::ino(&upper));
}

#[test]
fn drift_prevention_kills_before_the_first_instruction() {
    require_root();
    let ctrd = Containerd::start().expect("containerd starts");
    let spec = PodSpec::new("risk-10-aws-bedrock-java", "web-2", "app").expect("pod spec");
    let c = ctrd.run_pod_container(&spec).expect("container runs");
    c.exec_ok(&["cp", "/bin/busybox", "/tmp/busybox-marker"])
        .expect("copy");

    // Prevention off: the drifted binary runs and leaves its marker.
    {
        let _s = TestSensor::start(SensorConfig {
            prevent_drift: false,
            ..Default::default()
        });
        let out = c
            .exec(&["/tmp/busybox-marker", "touch", "/tmp/marker-off"])
            .expect("exec");
        assert!(out.status.success());
        assert!(
            c.upperdir.join("tmp/marker-off").exists(),
            "marker written with prevention off"
        );
    }
    // Prevention on: killed at exec, no marker, and the event says so.
    let mut s = TestSensor::start(SensorConfig {
        prevent_drift: true,
        ..Default::default()
    });
    let exec = c
        .exec_detached(&[
            "sh",
            "-c",
            "sleep 1; exec /tmp/busybox-marker touch /tmp/marker-on",
        ])
        .expect("exec");
    let pid = exec.pid;
    let evs = s.collect_for(&[pid], WAIT, |e| {
        e.iter()
            .any(|e| e.process.pid == pid && matches!(&e.body, Body::Exit(_)))
    });
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !c.upperdir.join("tmp/marker-on").exists(),
        "marker must not appear with prevention on"
    );
    let (_, x) = exec_named(&evs, b"/tmp/busybox-marker")
        .unwrap_or_else(|| panic!("exec event of pid {} in {evs:#?}", exec.pid));
    assert!(x.prevented && x.exe_upper_layer, "{x:?}");
    let killed = evs
        .iter()
        .any(|e| e.process.pid == pid && matches!(&e.body, Body::Exit(x) if x.signal == Some(9)));
    assert!(killed, "killed by SIGKILL: {evs:#?}");
    // Image binaries still run with prevention on.
    let out = c.exec(&["/bin/busybox", "true"]).expect("exec");
    assert!(out.status.success());
}
