use super::*;

const ID: &str = "4f1c0f2b0c4b3e0d9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f";
const UID: &str = "0b6c2a52-5f3e-4b0c-9c1a-2d6f1e3b4a59";
const UID_US: &str = "0b6c2a52_5f3e_4b0c_9c1a_2d6f1e3b4a59";

fn c(id: &str, runtime: Runtime, pod_uid: Option<&str>) -> Option<ContainerRef> {
    Some(ContainerRef {
        id: id.to_owned(),
        runtime,
        pod_uid: pod_uid.map(str::to_owned),
    })
}

#[test]
fn ctr_default_namespace_path() {
    assert_eq!(
        parse(&format!("/k8s.io/{ID}")),
        c(ID, Runtime::Containerd, None)
    );
    // ctr ids need not be hex.
    assert_eq!(
        parse("/k8s.io/web-1"),
        c("web-1", Runtime::Containerd, None)
    );
    assert_eq!(parse("/k8s.io"), None);
    assert_eq!(parse("/k8s.io/"), None);
    assert_eq!(parse("/k8s.io/-bad"), None);
}

#[test]
fn kubelet_cgroupfs_every_qos() {
    for qos in ["besteffort/", "burstable/", ""] {
        let path = format!("/kubepods/{qos}pod{UID}/{ID}");
        assert_eq!(parse(&path), c(ID, Runtime::Unknown, Some(UID)), "{path}");
    }
    // Any identifier under a pod cgroup is a container (ctr --cgroup with a non-hex id).
    assert_eq!(
        parse(&format!("/kubepods/besteffort/pod{UID}/app")),
        c("app", Runtime::Unknown, Some(UID))
    );
    // The pod cgroup itself and its ancestors are not containers.
    assert_eq!(parse(&format!("/kubepods/besteffort/pod{UID}")), None);
    assert_eq!(parse("/kubepods/besteffort"), None);
    assert_eq!(parse("/kubepods"), None);
}

#[test]
fn kubelet_cgroupfs_with_runtime_prefixes() {
    assert_eq!(
        parse(&format!("/kubepods/burstable/pod{UID}/crio-{ID}")),
        c(ID, Runtime::Crio, Some(UID))
    );
    assert_eq!(
        parse(&format!("/kubepods/burstable/pod{UID}/crio-conmon-{ID}")),
        None
    );
    assert_eq!(
        parse(&format!("/kubepods/pod{UID}/docker-{ID}.scope")),
        c(ID, Runtime::Docker, Some(UID))
    );
}

#[test]
fn kubelet_systemd_every_qos() {
    let cases = [
        format!("/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{UID_US}.slice/cri-containerd-{ID}.scope"),
        format!("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID_US}.slice/cri-containerd-{ID}.scope"),
        format!("/kubepods.slice/kubepods-pod{UID_US}.slice/cri-containerd-{ID}.scope"),
    ];
    for path in &cases {
        assert_eq!(parse(path), c(ID, Runtime::Containerd, Some(UID)), "{path}");
    }
    assert_eq!(
        parse(&format!("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID_US}.slice/crio-{ID}.scope")),
        c(ID, Runtime::Crio, Some(UID))
    );
    assert_eq!(
        parse(&format!("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID_US}.slice/docker-{ID}.scope")),
        c(ID, Runtime::Docker, Some(UID))
    );
    // Not a container: the pod slice, the conmon scope, an unknown scope under the slice.
    assert_eq!(
        parse(&format!(
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID_US}.slice"
        )),
        None
    );
    assert_eq!(
        parse(&format!("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID_US}.slice/crio-conmon-{ID}.scope")),
        None
    );
    assert_eq!(
        parse(&format!("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID_US}.slice/other.scope")),
        None
    );
}

#[test]
fn static_pod_hash_uid() {
    let hash = "7d5b1c2e9f0a4b3c8d6e1f2a3b4c5d6e";
    assert_eq!(
        parse(&format!("/kubepods/burstable/pod{hash}/{ID}")),
        c(ID, Runtime::Unknown, Some(hash))
    );
}

#[test]
fn systemd_path_written_literally_without_systemd() {
    let path = format!(
        "/system.slice/containerd.service/kubepods-besteffort-pod{UID_US}.slice:cri-containerd:{ID}"
    );
    assert_eq!(parse(&path), c(ID, Runtime::Containerd, Some(UID)));
    let path = format!("/kubepods-burstable-pod{UID_US}.slice:crio:{ID}");
    assert_eq!(parse(&path), c(ID, Runtime::Crio, Some(UID)));
    assert_eq!(parse(&format!("/x.slice:unknown:{ID}")), None);
}

#[test]
fn docker() {
    assert_eq!(
        parse(&format!("/docker/{ID}")),
        c(ID, Runtime::Docker, None)
    );
    assert_eq!(
        parse(&format!("/system.slice/docker-{ID}.scope")),
        c(ID, Runtime::Docker, None)
    );
    // The docker daemon itself and short names are not containers.
    assert_eq!(parse("/system.slice/docker.service"), None);
    assert_eq!(parse("/docker/abc"), None);
    assert_eq!(parse("/docker"), None);
    // Docker in docker: the outer container (the one the node's runtime knows).
    let inner = "a".repeat(64);
    assert_eq!(
        parse(&format!("/docker/{ID}/docker/{inner}")),
        c(ID, Runtime::Docker, None)
    );
}

#[test]
fn crio() {
    assert_eq!(
        parse(&format!("/machine.slice/crio-{ID}.scope")),
        c(ID, Runtime::Crio, None)
    );
    assert_eq!(
        parse(&format!("/machine.slice/crio-conmon-{ID}.scope")),
        None
    );
    assert_eq!(
        parse(&format!("crio-{ID}.scope")),
        c(ID, Runtime::Crio, None)
    );
    assert_eq!(parse(&format!("crio-conmon-{ID}.scope")), None);
}

#[test]
fn podman() {
    assert_eq!(
        parse(&format!("/libpod_parent/libpod-{ID}")),
        c(ID, Runtime::Podman, None)
    );
    assert_eq!(
        parse(&format!("/machine.slice/libpod-{ID}.scope")),
        c(ID, Runtime::Podman, None)
    );
    assert_eq!(
        parse(&format!("machine.slice/libpod-{ID}.scope")),
        c(ID, Runtime::Podman, None)
    );
    // --cgroups=split puts the payload one level down.
    assert_eq!(
        parse(&format!("/machine.slice/libpod-{ID}.scope/container")),
        c(ID, Runtime::Podman, None)
    );
    // Rootless podman under the user's systemd.
    assert_eq!(
        parse(&format!(
            "/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{ID}.scope"
        )),
        c(ID, Runtime::Podman, None)
    );
    assert_eq!(
        parse(&format!("/machine.slice/libpod-conmon-{ID}.scope")),
        None
    );
    assert_eq!(parse("/libpod_parent"), None);
}

#[test]
fn bare_hex_id_anywhere() {
    assert_eq!(
        parse(&format!("/ecs/task-1/{ID}")),
        c(ID, Runtime::Unknown, None)
    );
    assert_eq!(parse(ID), c(ID, Runtime::Unknown, None));
}

#[test]
fn host_paths() {
    for path in [
        "/",
        "",
        "/user.slice/user-1000.slice/session-3.scope",
        "/user.slice",
        "/system.slice/sshd.service",
        "/system.slice/containerd.service",
        "/init.scope",
        "/kubepods.slice",
        "/kubepods.slice/kubepods-besteffort.slice",
        "/machine.slice",
        "/k8s.io",
    ] {
        assert_eq!(parse(path), None, "{path:?}");
        assert_eq!(parse(&format!("0::{path}")), None, "0::{path:?}");
    }
}

#[test]
fn proc_cgroup_line_forms() {
    let path = format!("/kubepods/besteffort/pod{UID}/{ID}");
    let want = c(ID, Runtime::Unknown, Some(UID));
    assert_eq!(parse(&format!("0::{path}")), want);
    assert_eq!(parse(&format!("0::{path}\n")), want);
    assert_eq!(parse(&format!("12:pids:{path}")), want);
    assert_eq!(parse(&format!("4:cpu,cpuacct:{path}")), want);
    assert_eq!(parse(&format!("1:name=systemd:{path}")), want);
    assert_eq!(parse(&format!("0::{path} (deleted)")), want);
    assert_eq!(path_of_line("0::/"), "/");
    assert_eq!(path_of_line("3:memory:/a/b"), "/a/b");
    assert_eq!(path_of_line("/a:b:c"), "/a:b:c");
    assert_eq!(path_of_line("x:y:/z"), "x:y:/z");
}

#[test]
fn whole_proc_cgroup_files() {
    let path = format!("/kubepods/besteffort/pod{UID}/{ID}");
    let hybrid = format!("12:pids:{path}\n11:memory:{path}\n1:name=systemd:{path}\n0::{path}\n");
    assert_eq!(
        parse_proc_cgroup(&hybrid),
        c(ID, Runtime::Unknown, Some(UID))
    );
    assert_eq!(unified_path(&hybrid), Some(path.as_str()));
    // Older runtimes on hybrid hosts leave the unified line on the host.
    let v1_only = format!("12:pids:/docker/{ID}\n0::/system.slice/containerd.service\n");
    assert_eq!(parse_proc_cgroup(&v1_only), c(ID, Runtime::Docker, None));
    let host = "12:pids:/user.slice\n0::/user.slice/user-0.slice/session-1.scope\n";
    assert_eq!(parse_proc_cgroup(host), None);
    assert_eq!(parse_proc_cgroup(""), None);
    assert_eq!(unified_path("12:pids:/\n"), None);
}

#[test]
fn uid_forms() {
    assert_eq!(normalize_uid(UID).as_deref(), Some(UID));
    assert_eq!(normalize_uid(UID_US).as_deref(), Some(UID));
    assert_eq!(normalize_uid("not-a-uid"), None);
    assert_eq!(normalize_uid(""), None);
    assert_eq!(normalize_uid(&UID.replace('-', "x")), None);
    // `pod` followed by garbage is an ordinary segment.
    assert_eq!(parse("/kubepods/besteffort/podnotauid/app"), None);
}

#[test]
fn identifiers() {
    for ok in ["a", "web-1", "a.b_c-d", "A9"] {
        assert!(is_identifier(ok), "{ok}");
    }
    let too_long = "a".repeat(77);
    for bad in ["", "-a", "a-", "a--b", "a b", "é", too_long.as_str()] {
        assert!(!is_identifier(bad), "{bad}");
    }
}

#[test]
fn runtime_names() {
    assert_eq!(Runtime::Containerd.to_string(), "containerd");
    assert_eq!(Runtime::Docker.as_str(), "docker");
    assert_eq!(Runtime::Crio.as_str(), "crio");
    assert_eq!(Runtime::Podman.as_str(), "podman");
    assert_eq!(Runtime::Unknown.as_str(), "unknown");
}

#[test]
fn own_process_does_not_panic() {
    // Whatever the test runs in (host or container), reading our own cgroup must work.
    let _ = container_for_pid(std::process::id());
    assert_eq!(container_for_pid(u32::MAX), None);
}

/// Deterministic pseudo-fuzzing: truncations, byte mutations and random strings around every
/// known layout must never panic.
#[test]
fn garbage_never_panics() {
    let seeds = [
        format!("0::/kubepods/besteffort/pod{UID}/{ID}"),
        format!("/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{UID_US}.slice/cri-containerd-{ID}.scope"),
        format!("/system.slice/containerd.service/kubepods-besteffort-pod{UID_US}.slice:cri-containerd:{ID}"),
        format!("12:pids:/docker/{ID}"),
        format!("/machine.slice/crio-conmon-{ID}.scope"),
        format!("/libpod_parent/libpod-{ID}"),
        "/k8s.io/é€𝄞".to_owned(),
        "::::////..-._:".to_owned(),
    ];
    let alphabet: Vec<char> = "/:.-_ 0aAfgzpod\n\t\u{0}é€𝄞(deleted)slicescope"
        .chars()
        .collect();
    let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    for seed in &seeds {
        for (i, _) in seed.char_indices() {
            let _ = parse(&seed[..i]);
            let _ = parse(&seed[i..]);
        }
        for _ in 0..2000 {
            let mut chars: Vec<char> = seed.chars().collect();
            for _ in 0..(next() % 4 + 1) {
                let pos = (next() as usize) % (chars.len() + 1);
                let ch = alphabet[(next() as usize) % alphabet.len()];
                match next() % 3 {
                    0 if pos < chars.len() => chars[pos] = ch,
                    1 if pos < chars.len() => {
                        chars.remove(pos);
                    }
                    _ => chars.insert(pos, ch),
                }
            }
            let s: String = chars.into_iter().collect();
            let _ = parse(&s);
            let _ = parse_proc_cgroup(&s);
            let _ = unified_path(&s);
        }
    }
    for _ in 0..20_000 {
        let len = (next() % 200) as usize;
        let s: String = (0..len)
            .map(|_| alphabet[(next() as usize) % alphabet.len()])
            .collect();
        let _ = parse(&s);
        let _ = parse_proc_cgroup(&s);
    }
}
